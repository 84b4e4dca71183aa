"""SynthDance: layout and names, determinism, readable frames, and - the point of it - ground
truth that dances on the beat of music that librosa can track."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dabfusion.errors import DataError
from dabfusion.metrics.alignment import (beat_alignment_score, beat_f_measure, kinematic_beats,
                                         motion_speed_from_joints, times_to_frames)
from dabfusion.synth import (GENRES, JOINT_NAMES, MANIFEST_NAME, PRESETS, TEST_TRACKS, build_world,
                             generate, manifest, music_annotation, render_track)
from dabfusion.synth import sequence
from dabfusion.synth.music import STYLES, TrackSpec, beat_grid
from dabfusion.synth.world import track_indices
from dabfusion.synth.writer import dumps

VIDEO_RE = re.compile(r"^g(?P<g>[A-Z]{2})_s(?P<s>BM|FM)_c(?P<c>0[1-9])_d(?P<d>\d{2})_m(?P<mg>[A-Z]{2})(?P<k>[0-5])"
                      r"_ch(?P<ch>\d{2})$")
MUSIC_RE = re.compile(r"^m(?P<g>[A-Z]{2})(?P<k>[0-5])$")
FPS = 30


@pytest.fixture(scope="module")
def tiny(synthdance_tiny) -> Path:
    return synthdance_tiny


@pytest.fixture(scope="module")
def man(tiny) -> dict:
    return json.loads((tiny / MANIFEST_NAME).read_text())


@pytest.fixture(scope="module")
def tracked(tiny, man) -> dict[str, tuple[float, np.ndarray]]:
    """librosa's tempo and beat times for every track (the first call compiles numba code)."""
    import librosa
    import soundfile as sf

    out = {}
    for t in man["tracks"]:
        y, sr = sf.read(tiny / t["file"], dtype="float32")
        tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
        out[t["id"]] = (float(np.atleast_1d(tempo)[0]), np.asarray(beats))
    return out


def _joints(tiny: Path, video: dict) -> np.ndarray:
    return np.asarray(json.loads((tiny / video["keypoints"]).read_text())["keypoints"], dtype=np.float64)


def test_layout_and_aist_names(tiny, man):
    videos = sorted(p.stem for p in (tiny / "videos").glob("*.mp4"))
    assert videos == sorted(v["stem"] for v in man["videos"]) and len(videos) >= 6
    tracks = sorted(p.stem for p in (tiny / "music").glob("*.wav"))
    assert tracks == sorted(t["id"] for t in man["tracks"])
    for stem in videos:
        m = VIDEO_RE.match(stem)
        assert m, stem
        assert m["g"] == m["mg"] and m["g"] in GENRES
        assert f"m{m['mg']}{m['k']}" in tracks
        assert (tiny / "keypoints2d" / f"{stem}.json").is_file()
    for tid in tracks:
        assert MUSIC_RE.match(tid) and (tiny / "music" / f"{tid}.json").is_file()
    assert not list(tiny.rglob("*.partial*"))  # atomic writes left nothing behind
    # the project's AIST++ name parser reads every SynthDance name
    from dabfusion.data.aist_names import parse_video_name

    for stem in videos:
        assert parse_video_name(stem).stem == stem


def test_split_follows_the_paper_test_tracks(man):
    from dabfusion.data.splits import PAPER_TEST_TRACKS

    assert TEST_TRACKS == PAPER_TEST_TRACKS
    genres = {t["genre"] for t in man["tracks"]}
    assert set(man["split"]["test"]) == {g for g in TEST_TRACKS if g[1:3] in genres}
    assert set(man["split"]["train"]) == {t["id"] for t in man["tracks"]} - set(man["split"]["test"])
    for g in GENRES.values():  # every preset generates each genre's test track, at distinct tempi
        assert len(set(g.tempi)) == 6
        for preset in PRESETS.values():
            ks = track_indices(g.code, preset.tracks_per_genre)
            assert g.test_k in ks and len(ks) == preset.tracks_per_genre


def test_manifest_matches_the_files(tiny, man):
    import soundfile as sf

    assert man["preset"] == "tiny" and man["seed"] == 0 and man["fps"] == FPS
    assert man["keypoints"]["joint_names"] == list(JOINT_NAMES)
    cams = {c["id"] for c in man["cameras"]}
    dancers = {d["id"] for d in man["dancers"]}
    for t in man["tracks"]:
        ann = json.loads((tiny / t["annotation"]).read_text())
        assert ann["tempo_bpm"] == t["tempo_bpm"] and ann["genre"] == t["genre"] == t["id"][1:3]
        beats = np.asarray(ann["beat_times"])
        np.testing.assert_allclose(np.diff(beats), 60.0 / t["tempo_bpm"], atol=2e-6)
        assert beats[0] == pytest.approx(t["lead_in_s"]) and ann["downbeat_times"] == ann["beat_times"][::4]
        info = sf.info(str(tiny / t["file"]))
        assert info.samplerate == man["sample_rate"] and info.channels == 1
        assert info.frames == ann["num_samples"] and beats[-1] < info.duration
    for v in man["videos"]:
        assert v["camera"] in cams and v["dancer"] in dancers
        kp = json.loads((tiny / v["keypoints"]).read_text())
        assert kp["num_frames"] == v["num_frames"] == len(kp["keypoints"])
        assert np.asarray(kp["keypoints"]).shape == (v["num_frames"], 17, 2)
        assert kp["fps"] == FPS and kp["video"] == v["stem"] and kp["music"] == v["music"]


def test_same_seed_same_world_other_seed_differs(tiny, man):
    text = (tiny / MANIFEST_NAME).read_text()
    assert dumps(manifest(build_world("tiny", 0))) == text  # byte-identical re-derivation
    assert dumps(manifest(build_world("tiny", 0))) == dumps(manifest(build_world("tiny", 0)))
    assert dumps(manifest(build_world("tiny", 1))) != text
    w0, w1 = build_world("tiny", 0), build_world("tiny", 1)
    tid = man["tracks"][0]["id"]
    assert dumps(music_annotation(w0.tracks[tid])) == (tiny / "music" / f"{tid}.json").read_text()
    a, b = render_track(w0.tracks[tid]), render_track(w0.tracks[tid])
    assert np.array_equal(a, b) and not np.array_equal(a, render_track(w1.tracks[tid]))
    # the wav on disk is that waveform (16-bit PCM)
    import soundfile as sf

    disk, _ = sf.read(tiny / "music" / f"{tid}.wav", dtype="float32")
    np.testing.assert_allclose(disk, a, atol=1.0 / 32000)
    # frames and keypoints of one video, re-rendered in memory, are identical
    job = w0.videos[0]
    f1 = np.stack(list(sequence.frames(w0, job)))
    f2 = np.stack(list(sequence.frames(w0, job)))
    assert f1.shape == (job.n_frames, 128, 128, 3) and np.array_equal(f1, f2)
    np.testing.assert_allclose(_joints(tiny, {"keypoints": f"keypoints2d/{job.stem}.json"}),
                               sequence.keypoints(w0, job), atol=0.006)


def test_frames_are_readable_and_show_the_dancer_where_the_keypoints_say(tiny, man):
    from dabfusion.media.video import read_video_frames

    world = build_world("tiny", 0)
    for v in man["videos"][:2]:
        frames, fps = read_video_frames(tiny / v["file"])
        assert frames.shape == (v["num_frames"], 128, 128, 3) and frames.dtype == np.uint8 and fps == FPS
        joints = _joints(tiny, v)
        shirt = np.asarray(world.dancers[v["dancer"]].shirt, dtype=np.float64)
        # torso centre (between shoulders and hips) shows the shirt colour in (nearly) every frame
        px = np.floor(joints[:, [5, 6, 11, 12]].mean(axis=1)).astype(int)
        colours = frames[np.arange(len(frames)), px[:, 1], px[:, 0]].astype(np.float64)
        close = np.abs(colours - shirt).max(axis=1) < 40
        assert close.mean() > 0.9, (v["stem"], close.mean())
        # and the figure moves: frames differ over time, the background corner does not
        assert np.abs(frames[::10].astype(int) - frames[0]).mean() > 0.5
        assert np.ptp(frames[:, 2, 2].astype(int), axis=0).max() <= 6


def test_librosa_finds_the_true_tempo_and_beats(tiny, man, tracked):
    for t in man["tracks"]:
        tempo, beats = tracked[t["id"]]
        truth = json.loads((tiny / t["annotation"]).read_text())
        err = min(abs(tempo * m / t["tempo_bpm"] - 1.0) for m in (1.0, 2.0, 0.5))
        f = beat_f_measure(beats, truth["beat_times"], window=0.07)
        print(f"{t['id']}: tempo {t['tempo_bpm']:.1f} librosa {tempo:.1f} ({100 * err:.1f}%), beat F {f:.3f}")
        assert err < 0.04 and f >= 0.9


def _incommensurate(a: float, b: float) -> float:
    """How far a tempo ratio is from 1, 3/2, 2, 3 (ratios whose beats would partly coincide)."""
    r = max(a, b) / min(a, b)
    return min(abs(np.log(r / q)) for q in (1.0, 1.5, 2.0, 3.0))


def test_ground_truth_dances_on_the_beat(tiny, man, tracked):
    tempo = {t["id"]: t["tempo_bpm"] for t in man["tracks"]}
    for v in man["videos"]:
        joints = _joints(tiny, v)
        kin = kinematic_beats(motion_speed_from_joints(joints, FPS))

        def bas(track: str) -> float:
            music = times_to_frames(tracked[track][1], FPS)
            return beat_alignment_score(kin, music[music < len(joints)], sigma=3.0)

        other = max((t for t in tempo if t != v["music"]), key=lambda t: _incommensurate(tempo[t], tempo[v["music"]]))
        own, wrong = bas(v["music"]), bas(other)
        print(f"{v['stem']}: BAS {own:.3f} with its music ({tempo[v['music']]} bpm), "
              f"{wrong:.3f} with {other} ({tempo[other]} bpm); {len(kin)} kinematic beats")
        assert own >= 0.8
        assert own >= wrong + 0.2


def test_speed_minima_fall_on_beats_and_nowhere_else():
    """Across every genre, dancer style and choreography of the small preset (motion only)."""
    world = build_world("small", 0)
    for job in world.videos[::5]:
        joints = sequence.keypoints(world, job)
        kin = kinematic_beats(motion_speed_from_joints(joints, FPS))
        beats = times_to_frames(beat_grid(world.tracks[job.music])[0], FPS)
        beats = beats[(beats > 2) & (beats < job.n_frames - 3)]
        d = np.abs(kin[:, None] - beats[None, :]).min(axis=1)
        assert d.max() <= 2.5, (job.stem, kin[d > 2.5])  # no extra minima between beats
        assert len(kin) >= len(beats)  # and no beat without its accent
        assert beat_alignment_score(kin, beats) > 0.9


def test_genres_sound_different():
    """Leave-one-out nearest neighbour on MFCC statistics tells 10 genres apart (chance 0.1)."""
    import librosa

    feats, labels = [], []
    for gi, g in enumerate(GENRES.values()):
        for k in (0, 2, 4):
            spec = TrackSpec(g.track_id(k), g.code, k, g.tempi[k], 0.7, 6.0, (3 * gi + k) % 12,
                             STYLES[g.code].mode, 1000 * gi + k, "train")
            m = librosa.feature.mfcc(y=render_track(spec), sr=22050, n_mfcc=20)
            feats.append(np.concatenate([m.mean(1), m.std(1)]))
            labels.append(gi)
    x = np.asarray(feats)
    x = (x - x.mean(0)) / x.std(0)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    acc = float((np.asarray(labels)[d.argmin(1)] == np.asarray(labels)).mean())
    print(f"genre 1-NN accuracy on MFCC stats: {acc:.2f}")
    assert acc >= 0.75


def test_videos_stop_with_the_music():
    world = build_world("small", 0)
    for job in world.videos:
        beats = beat_grid(world.tracks[job.music])[0]
        assert job.n_frames / FPS <= beats[-1] + 0.5 * 60 / world.tracks[job.music].tempo_bpm + 1e-9
    assert len(world.videos) >= 200 and len({v.music for v in world.videos}) == 30


def test_cli_prints_the_output_folder_last(tmp_path, monkeypatch):
    import training.make_synthetic as cli

    calls = {}

    def fake_generate(out, preset, seed, **kw):
        calls.update(out=out, preset=preset, seed=seed, **kw)
        return Path(out)

    monkeypatch.setattr("dabfusion.synth.generate", fake_generate)
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert cli.main(["--out", str(tmp_path / "sd"), "--preset", "tiny", "--seed", "3", "--workers", "1"]) == 0
    assert buf.getvalue().strip().splitlines()[-1] == str(tmp_path / "sd")
    assert calls["preset"] == "tiny" and calls["seed"] == 3 and calls["workers"] == 1
    with pytest.raises(SystemExit):
        cli.parse_args(["--out", "x", "--preset", "huge"])


def test_bad_output_folder_and_preset_are_clear_errors(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="file.txt"):
        generate(blocker / "sd", "tiny", 0, workers=1, progress=False)
    with pytest.raises(DataError, match="preset"):
        build_world("huge", 0)
    assert replace(PRESETS["tiny"], n_dancers=1).n_dancers == 1  # presets are plain data
