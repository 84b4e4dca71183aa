"""The SynthDance world for a preset and a seed: tracks, dancers, cameras, choreographies, videos.

Everything here is plain data derived from ``(preset, seed)`` alone, so the manifest can be
built (and compared) without rendering anything, and any single video can be re-rendered on
its own. Each entity draws from its own random stream keyed by its name, so adding a video
does not change the others.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from .cameras import CAMERAS, Camera
from .choreography import Choreography, make_choreography
from .dancers import Dancer, make_dancer
from .genres import GENRES, TEST_TRACKS
from .music import SAMPLE_RATE, STYLES, TrackSpec, beat_grid
from .presets import Preset, get_preset
from .skeleton import JOINT_NAMES, SKELETON_EDGES

SYNTHDANCE_VERSION = "1.0"
MANIFEST_NAME = "synthdance.json"
_KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def rng_for(seed: int, *names: object) -> np.random.Generator:
    """A random stream for one named thing, independent of every other thing's stream."""
    keys = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(n).encode()) for n in names]
    return np.random.default_rng(np.random.SeedSequence(keys))


@dataclass(frozen=True)
class VideoJob:
    """One video: a sequence (dancer x choreography x track) seen from one camera."""

    stem: str
    genre: str
    situation: str
    camera: str
    dancer: str
    music: str
    choreo: int
    n_frames: int

    @property
    def sequence(self) -> str:
        """The camera-independent name (``cAll``); all views of a sequence share its motion."""
        return f"g{self.genre}_s{self.situation}_cAll_{self.dancer}_{self.music}_ch{self.choreo:02d}"

    def to_json(self, fps: int) -> dict:
        return {
            "stem": self.stem, "file": f"videos/{self.stem}.mp4", "keypoints": f"keypoints2d/{self.stem}.json",
            "genre": self.genre, "situation": f"s{self.situation}", "camera": self.camera, "dancer": self.dancer,
            "music": self.music, "choreo": f"ch{self.choreo:02d}", "num_frames": self.n_frames,
            "duration_s": round(self.n_frames / fps, 6),
        }


@dataclass(frozen=True)
class World:
    preset: Preset
    seed: int
    tracks: dict[str, TrackSpec]
    dancers: dict[str, Dancer]
    cameras: dict[str, Camera]
    choreographies: dict[tuple[str, str, int], Choreography]
    videos: tuple[VideoJob, ...]

    def choreography_of(self, job: VideoJob) -> Choreography:
        return self.choreographies[(job.genre, job.situation, job.choreo)]


def track_indices(genre: str, n: int) -> list[int]:
    """The test track's k plus ``n - 1`` others, spread over the genre's tempo range."""
    chosen = [GENRES[genre].test_k]
    while len(chosen) < min(n, 6):
        chosen.append(max((k for k in range(6) if k not in chosen), key=lambda k: (min(abs(k - c) for c in chosen), -k)))
    return sorted(chosen)


def _track(genre: str, k: int, preset: Preset, seed: int) -> TrackSpec:
    rng = rng_for(seed, "track", genre, k)
    tid = GENRES[genre].track_id(k)
    return TrackSpec(
        id=tid, genre=genre, k=k, tempo_bpm=GENRES[genre].tempi[k],
        lead_in_s=round(float(rng.uniform(0.5, 1.0)), 4), duration_s=preset.track_duration_s,
        key=int(rng.integers(12)), mode=STYLES[genre].mode, seed=int(rng.integers(2**31 - 1)),
        split="test" if tid in TEST_TRACKS else "train",
    )


def video_frames(track: TrackSpec, length_s: float, fps: int) -> int:
    """Frames of a video on ``track``: ``length_s`` at most, and never past half a beat after the
    track's last ground-truth beat (the music stops there, so the dance stops too)."""
    beats, _ = beat_grid(track)
    end = beats[-1] + 0.5 * 60.0 / track.tempo_bpm if len(beats) else track.duration_s
    return int(math.floor(min(length_s, end, track.duration_s) * fps))


def build_world(preset: str | Preset = "small", seed: int = 0) -> World:
    """Plan every track, dancer, camera, choreography and video for ``(preset, seed)``."""
    pr = get_preset(preset) if isinstance(preset, str) else preset
    tracks = {t.id: t for g in pr.genres for t in (_track(g, k, pr, seed) for k in track_indices(g, pr.tracks_per_genre))}
    dancers = {d.id: d for d in (make_dancer(i, rng_for(seed, "dancer", i)) for i in range(1, pr.n_dancers + 1))}
    cameras = {c: CAMERAS[c] for c in pr.cameras}
    choreos: dict[tuple[str, str, int], Choreography] = {}
    for g in pr.genres:
        for c in range(1, pr.n_basic_choreos + 1):
            choreos[(g, "BM", c)] = make_choreography(g, c, "BM", rng_for(seed, "choreo", g, c))
        for c in range(pr.n_basic_choreos + 1, pr.n_basic_choreos + pr.n_advanced_choreos + 1):
            choreos[(g, "FM", c)] = make_choreography(g, c, "FM", rng_for(seed, "choreo", g, c))

    videos: list[VideoJob] = []
    dancer_ids = list(dancers)
    cam_ids = list(cameras)
    for t_index, track in enumerate(tracks.values()):
        rng = rng_for(seed, "videos", track.id)
        n_seq = pr.basic_per_track + pr.advanced_per_track
        who = rng.choice(len(dancer_ids), size=n_seq, replace=n_seq > len(dancer_ids))
        for j in range(n_seq):
            if j < pr.basic_per_track:
                sit, length = "BM", pr.basic_len_s
                choreo = (t_index * pr.basic_per_track + j) % pr.n_basic_choreos + 1
            else:
                sit, length = "FM", pr.advanced_len_s
                jj = j - pr.basic_per_track
                choreo = pr.n_basic_choreos + (t_index * pr.advanced_per_track + jj) % pr.n_advanced_choreos + 1
            views = sorted(rng.choice(len(cam_ids), size=min(pr.views_per_sequence, len(cam_ids)), replace=False))
            n_frames = video_frames(track, length, pr.fps)
            for v in views:
                cam, dancer = cam_ids[v], dancer_ids[who[j]]
                stem = f"g{track.genre}_s{sit}_{cam}_{dancer}_{track.id}_ch{choreo:02d}"
                videos.append(VideoJob(stem, track.genre, sit, cam, dancer, track.id, choreo, n_frames))
    stems = [v.stem for v in videos]
    assert len(set(stems)) == len(stems), "video names must be unique"
    return World(pr, int(seed), tracks, dancers, cameras, choreos, tuple(videos))


def music_annotation(track: TrackSpec, sample_rate: int = SAMPLE_RATE) -> dict:
    """``music/m{GENRE}{k}.json``: tempo, beats, downbeats and what the track is."""
    beats, downbeats = beat_grid(track)
    return {
        "id": track.id,
        "genre": track.genre,
        "genre_name": GENRES[track.genre].name,
        "k": track.k,
        "tempo_bpm": track.tempo_bpm,
        "time_signature": "4/4",
        "beats_per_bar": 4,
        "beat_times": [round(float(b), 6) for b in beats],
        "downbeat_times": [round(float(b), 6) for b in downbeats],
        "lead_in_s": track.lead_in_s,
        "duration_s": track.duration_s,
        "sample_rate": sample_rate,
        "num_samples": int(round(track.duration_s * sample_rate)),
        "key": f"{_KEY_NAMES[track.key]} {track.mode}",
        "split": track.split,
    }


def manifest(world: World) -> dict:
    """``synthdance.json``: the whole world, enough to find, split and re-create every file."""
    pr = world.preset
    tracks = list(world.tracks.values())
    return {
        "name": "SynthDance",
        "version": SYNTHDANCE_VERSION,
        "preset": pr.name,
        "seed": world.seed,
        "fps": pr.fps,
        "size": [pr.size, pr.size],
        "sample_rate": SAMPLE_RATE,
        "layout": {
            "video": "videos/{stem}.mp4",
            "keypoints2d": "keypoints2d/{stem}.json",
            "music": "music/{track}.wav",
            "music_annotation": "music/{track}.json",
        },
        "keypoints": {
            "format": "COCO-17",
            "coordinates": "pixels of the video frame; origin at the top-left corner, x right, y down",
            "joint_names": list(JOINT_NAMES),
            "skeleton_edges": [list(e) for e in SKELETON_EDGES],
        },
        "genres": {g: {"name": GENRES[g].name, "tempo_range_bpm": [GENRES[g].tempi[0], GENRES[g].tempi[-1]],
                       "test_track": GENRES[g].track_id(GENRES[g].test_k)} for g in pr.genres},
        "tracks": [{**t.to_json(), "file": f"music/{t.id}.wav", "annotation": f"music/{t.id}.json"} for t in tracks],
        "split": {"test": [t.id for t in tracks if t.split == "test"],
                  "train": [t.id for t in tracks if t.split == "train"]},
        "dancers": [d.to_json() for d in world.dancers.values()],
        "cameras": [c.to_json() for c in world.cameras.values()],
        "choreographies": [c.to_json() for c in world.choreographies.values()],
        "preset_config": pr.to_json(),
        "videos": [v.to_json(pr.fps) for v in world.videos],
    }
