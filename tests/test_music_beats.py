"""librosa beat analysis: tracking accuracy on SynthDance, and the per-frame/global features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dabfusion.music.beats import (FRAME_COLUMNS, GLOBAL_COLUMNS, TEMPO_SCALE, analyze_beats,
                                   f_measure, frame_beat_features, global_beat_vector)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synth(synthdance_tiny) -> Path:
    return synthdance_tiny


def click_track(bpm: float, seconds: float, sr: int, lead_in: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A kick-like thump on every beat over a soft drone; returns (wave, beat times)."""
    t = np.arange(int(seconds * sr)) / sr
    y = 0.03 * np.sin(2 * np.pi * 220 * t)
    beats = np.arange(lead_in, seconds - 1.0, 60.0 / bpm)
    n = int(0.12 * sr)
    tt = np.arange(n) / sr
    hit = np.sin(2 * np.pi * (60 + 200 * np.exp(-tt / 0.02)) * tt) * np.exp(-tt / 0.05)
    hit[: max(1, int(0.001 * sr))] *= 0.5
    for b in beats:
        i = int(round(b * sr))
        y[i: i + n] += 0.8 * hit[: len(y) - i]
    return y.astype(np.float32), beats


def test_f_measure_counts_one_to_one_matches():
    ref = np.arange(1.0, 11.0, 0.5)
    assert f_measure(ref, ref) == 1.0
    assert f_measure(ref + 0.06, ref) == 1.0
    assert f_measure(ref + 0.1, ref) == 0.0
    assert f_measure(ref[::2], ref) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert f_measure(np.zeros(0), ref) == 0.0


def test_beat_tracking_on_synthdance_matches_the_true_beats(synth: Path):
    wavs = sorted((synth / "music").glob("m*.wav"))
    assert wavs, "SynthDance wrote no music"
    from dabfusion.media.audio import load_audio

    scores = {}
    for wav in wavs:
        truth = json.loads(wav.with_suffix(".json").read_text())
        true_beats = np.asarray(truth.get("beat_times", truth.get("beats")), float)
        true_tempo = float(truth.get("tempo_bpm", truth.get("tempo")))
        wave, sr = load_audio(wav)
        a = analyze_beats(wave, sr)
        scores[wav.stem] = f_measure(a.beats, true_beats, window=0.07)
        assert abs(a.tempo - true_tempo) / true_tempo < 0.03, (wav.stem, a.tempo, true_tempo)
    print("beat F-measure (70 ms):", {k: round(v, 3) for k, v in scores.items()},
          "mean", round(float(np.mean(list(scores.values()))), 3))
    assert min(scores.values()) >= 0.9, scores


def test_frame_features_follow_the_beat_grid():
    sr, bpm, fps = 22050, 120.0, 30.0
    y, beats = click_track(bpm, 12.0, sr)
    a = analyze_beats(y, sr)
    assert abs(a.tempo - bpm) < 2.0
    assert f_measure(a.beats, beats) >= 0.95
    n = 120
    ff = frame_beat_features(a, n, fps, start=2.0)
    assert ff.shape == (n, len(FRAME_COLUMNS)) and ff.dtype == np.float32
    t = 2.0 + np.arange(n) / fps
    on = np.array([np.min(np.abs(beats - x)) < 0.5 / fps for x in t])  # frames that show a beat
    col = {c: i for i, c in enumerate(FRAME_COLUMNS)}
    assert ff[on, col["beat_pulse"]].min() > 0.6
    assert ff[~on, col["beat_pulse"]].mean() < 0.2
    assert ff[on, col["beat_phase_cos"]].min() > 0.9
    assert ff[on, col["beat_distance"]].max() < 0.1
    # phase pairs are points on the unit circle wherever there are beats
    r = ff[:, col["beat_phase_sin"]] ** 2 + ff[:, col["beat_phase_cos"]] ** 2
    np.testing.assert_allclose(r, 1.0, atol=1e-5)
    assert ff[on, col["onset"]].mean() > 3 * ff[~on, col["onset"]].mean()
    np.testing.assert_allclose(ff[:, col["tempo"]], a.tempo / TEMPO_SCALE, rtol=1e-5)
    # a later start is the same features shifted: frame i at start 2.0 + k/fps == frame i+k at 2.0
    ff2 = frame_beat_features(a, n - 15, fps, start=2.0 + 15 / fps)
    np.testing.assert_allclose(ff2, ff[15:], atol=1e-5)


def test_frames_outside_the_music_are_zero():
    y, _ = click_track(100.0, 6.0, 16000)
    a = analyze_beats(y, 16000)
    ff = frame_beat_features(a, 40, 10.0, start=-1.0)  # 1 s before the start ... 3 s in
    assert np.all(ff[:10] == 0) and np.abs(ff[11:]).sum() > 0
    late = frame_beat_features(a, 20, 10.0, start=a.duration + 0.5)
    assert np.all(late == 0)


def test_global_vector_has_fixed_length_and_meaning():
    sr = 22050
    fast, _ = click_track(140.0, 10.0, sr)
    slow, _ = click_track(90.0, 10.0, sr)
    vf = global_beat_vector(analyze_beats(fast, sr))
    vs = global_beat_vector(analyze_beats(slow, sr))
    col = {c: i for i, c in enumerate(GLOBAL_COLUMNS)}
    assert vf.shape == vs.shape == (len(GLOBAL_COLUMNS),)
    assert vf[col["has_beats"]] == 1 and vs[col["has_beats"]] == 1
    assert vf[col["tempo"]] * TEMPO_SCALE == pytest.approx(140, abs=3)
    assert vs[col["tempo"]] * TEMPO_SCALE == pytest.approx(90, abs=3)
    assert vf[col["beat_regularity"]] > 0.9 and vf[col["pulse_clarity"]] > 0.3
    assert vf[col["beat_density"]] > vs[col["beat_density"]]
    assert np.all(np.isfinite(vf)) and np.all((vf >= -1) & (vf <= 1))


def test_the_bar_phase_features_count_bars_as_the_shipped_model_was_trained():
    """The tracker's bars (``downbeats``, the preview) are its own; the per-frame bar-phase features keep
    counting from librosa's guess (the phase with the most onset strength), as before issue 19."""
    from dabfusion.music.beats import _guess_downbeat

    sr = 22050
    y, beats = click_track(120.0, 12.0, sr)
    a = analyze_beats(y, sr)
    assert a.downbeat_offset == _guess_downbeat(a.beats, a.onset_env)
    assert a.bar_offset is not None and np.allclose(a.downbeats, a.beats[a.bar_offset::a.beats_per_bar])


def test_music_of_one_and_a_half_seconds_gets_its_beats():
    sr = 22050
    y, beats = click_track(120.0, 2.5, sr)  # beats at 0.5 and 1.0 (1.5 s is left for them)
    a = analyze_beats(y[: int(1.5 * sr)], sr)
    assert a.beats.size >= 2 and f_measure(a.beats, beats[beats < 1.5]) == 1.0
