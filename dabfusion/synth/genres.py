"""The ten AIST++ genres as SynthDance plays them: names, tempi per track index, test tracks.

As in the AIST Dance DB, the track index ``k`` of ``m{GENRE}{k}`` orders a genre's tracks by
tempo, so every track of a genre has its own tempo. The tempo ranges are genre-typical and kept
inside 84-152 bpm, where librosa's beat tracker locks onto the quarter note (its tempo prior is
centred on 120 bpm); AIST++'s real music spans 80-135 bpm.
"""

from __future__ import annotations

from dataclasses import dataclass

#: AIST++ genre codes in canonical order (the position is the genre id used everywhere).
GENRE_CODES: tuple[str, ...] = ("BR", "PO", "LO", "MH", "LH", "HO", "WA", "KR", "JS", "JB")

#: AIST++ cross-modal test tracks (one per genre) - the split the paper evaluates on.
TEST_TRACKS: tuple[str, ...] = (
    "mBR0", "mPO1", "mLO2", "mMH3", "mLH4", "mHO5", "mWA0", "mKR2", "mJS3", "mJB5",
)


@dataclass(frozen=True)
class Genre:
    """A genre's identity: code, name, one tempo per track index 0..5, and its test track."""

    code: str
    name: str
    tempi: tuple[float, ...]
    test_k: int

    def track_id(self, k: int) -> str:
        return f"m{self.code}{k}"


def _tempi(lo: float, hi: float) -> tuple[float, ...]:
    return tuple(round(lo + i * (hi - lo) / 5, 2) for i in range(6))


GENRES: dict[str, Genre] = {
    g.code: g
    for g in (
        Genre("BR", "Break", _tempi(90, 110), 0),
        Genre("PO", "Pop", _tempi(96, 116), 1),
        Genre("LO", "Lock", _tempi(102, 122), 2),
        Genre("MH", "Middle Hip-hop", _tempi(86, 101), 3),
        Genre("LH", "LA-style Hip-hop", _tempi(90, 105), 4),
        Genre("HO", "House", _tempi(118, 128), 5),
        Genre("WA", "Waack", _tempi(108, 123), 0),
        Genre("KR", "Krump", _tempi(84, 104), 2),
        Genre("JS", "Street Jazz", _tempi(126, 146), 3),
        Genre("JB", "Ballet Jazz", _tempi(132, 152), 5),
    )
}

assert tuple(GENRES) == GENRE_CODES
assert tuple(g.track_id(g.test_k) for g in GENRES.values()) == TEST_TRACKS
