"""AIST++ names and track splits: pure Python, no media."""

from __future__ import annotations

import itertools
import json

import pytest

from dabfusion.data.aist_names import (GENRE_CODES, GENRES, VideoName, format_video_name,
                                       genre_id, genre_name, is_video_name, parse_music_name,
                                       parse_video_name)
from dabfusion.data.splits import (PAPER_TEST_TRACKS, resolve_split, select_part,
                                   split_by_track)
from dabfusion.errors import DataError


def test_parse_video_name_fields_and_round_trip():
    v = parse_video_name("gBR_sBM_c01_d04_mBR0_ch01")
    assert v == VideoName(genre="BR", situation="BM", camera=1, dancer=4, music="mBR0", choreo=1)
    assert (v.genre_id, v.camera_id, v.dancer_id) == (0, 0, 3)
    assert format_video_name(v) == v.stem == "gBR_sBM_c01_d04_mBR0_ch01"
    assert parse_video_name("/data/aist/videos/gJB_sFM_c09_d30_mJB5_ch10.mp4").stem == \
        "gJB_sFM_c09_d30_mJB5_ch10"
    for stem in ("gLH_sFM_c05_d16_mLH4_ch04", "gKR_sBM_c10_d28_mKR2_ch07"):
        assert format_video_name(parse_video_name(stem + ".mp4")) == stem


def test_call_sequence_form():
    v = parse_video_name("motions/gWA_sFM_cAll_d26_mWA0_ch01.pkl")
    assert v.camera is None and v.stem == "gWA_sFM_cAll_d26_mWA0_ch01"
    video = parse_video_name("gWA_sFM_c03_d26_mWA0_ch01")
    assert video.sequence == v.stem and v.with_camera(3) == video
    with pytest.raises(DataError, match="cAll"):
        v.camera_id


@pytest.mark.parametrize("bad", [
    "videos/dance_clip.mp4",                # not AIST++ at all
    "gBR_sBM_c1_d04_mBR0_ch01.mp4",         # camera needs two digits
    "gXX_sBM_c01_d04_mXX0_ch01.mp4",        # unknown genre
    "gBR_sBM_c01_d04_mBR0.mp4",             # missing choreography
])
def test_bad_video_names_name_the_file_and_the_pattern(bad):
    with pytest.raises(DataError) as err:
        parse_video_name(bad)
    msg = str(err.value)
    assert bad in msg and "gBR_sBM_c01_d04_mBR0_ch01" in msg and "g{GENRE}" in msg
    assert not is_video_name(bad)


def test_genre_table_and_music_names():
    assert GENRE_CODES == ("BR", "PO", "LO", "MH", "LH", "HO", "WA", "KR", "JS", "JB")
    assert [genre_id(c) for c in GENRE_CODES] == list(range(10))
    assert genre_id("gHO") == 5 and genre_name("LH") == "LA-style Hip-hop" and len(GENRES) == 10
    m = parse_music_name("music/mJS3.wav")
    assert (m.genre, m.index, m.stem, m.genre_id) == ("JS", 3, "mJS3", 8)
    with pytest.raises(DataError, match="mBR0"):
        parse_music_name("song.mp3")
    with pytest.raises(DataError, match="known codes"):
        genre_id("ZZ")


def _aist_like_names() -> list[str]:
    """10 genres x 6 tracks, two cameras and two dancers each: 240 videos."""
    return [f"g{g}_sBM_c{c:02d}_d{d:02d}_m{g}{k}_ch01"
            for g, k, c, d in itertools.product(GENRE_CODES, range(6), (1, 2), (1, 2))]


def test_paper_split_is_50_train_10_test_tracks():
    names = _aist_like_names()
    parts = split_by_track(names, resolve_split("paper"))
    tracks = {p: {parse_video_name(n).music for n in parts[p]} for p in parts}
    assert len(tracks["train"]) == 50 and tracks["test"] == set(PAPER_TEST_TRACKS)
    assert (len(parts["train"]), len(parts["test"])) == (200, 40)
    assert not tracks["train"] & tracks["test"]
    assert select_part(names, "all", resolve_split("paper")) == names


def test_other_split_specs(tmp_path):
    names = _aist_like_names()
    explicit = split_by_track(names, resolve_split(["mBR1", "mPO2"]))
    assert len(explicit["test"]) == 8 and len(explicit["train"]) == 232
    assert resolve_split("mBR1, mPO2").test == {"mBR1", "mPO2"}

    # AIST++'s own split files list cAll sequence names; comments and blanks are fine
    f = tmp_path / "crossmodal_test.txt"
    f.write_text("# test\ngBR_sFM_cAll_d04_mBR0_ch01\n\ngHO_sFM_cAll_d20_mHO5_ch13\nmJB5\n")
    assert resolve_split(f).test == {"mBR0", "mHO5", "mJB5"}
    j = tmp_path / "split.json"
    j.write_text(json.dumps({"train": ["mBR1"], "test": ["mBR0"]}))
    parts = split_by_track(names, resolve_split(str(j)))
    assert {parse_video_name(n).music for n in parts["train"]} == {"mBR1"}  # others left out

    all_train = resolve_split("all-train")
    assert split_by_track(names, all_train) == {"train": names, "test": []}
    with pytest.raises(DataError, match="no test part"):
        select_part(names, "test", all_train)

    manifest = {"split": {"test": ["mPO0"]}}
    assert resolve_split("manifest", manifest=manifest).test == {"mPO0"}
    assert resolve_split("auto", manifest=None).test == set(PAPER_TEST_TRACKS)
    with pytest.raises(DataError, match="declares no split"):
        resolve_split("manifest", manifest={"preset": "tiny"})


def test_split_that_empties_a_part_is_an_error():
    only_train_tracks = [n for n in _aist_like_names() if parse_video_name(n).music == "mBR1"]
    with pytest.raises(DataError, match="test part .* empty.*mBR1"):
        split_by_track(only_train_tracks, resolve_split("paper"))
    only_test = [n for n in _aist_like_names() if parse_video_name(n).music == "mBR0"]
    with pytest.raises(DataError, match="train part"):
        select_part(only_test, "test", resolve_split("paper"))
    with pytest.raises(DataError, match="Unknown split spec"):
        resolve_split("papr")
    with pytest.raises(DataError, match="not an AIST\\+\\+-like music track"):
        resolve_split(["mBR0", "mXY1"])
