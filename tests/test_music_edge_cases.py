"""Music encoder edge cases: silence, audio shorter than a frame, a ten-minute track in bounded
memory, multichannel input, sample rates from 8 to 96 kHz, bad rates, spec checks and caching."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from dabfusion.errors import ConfigMismatchError, MediaError
from dabfusion.music import beats as B
from dabfusion.music.encoder import MusicEncoder, check_compatible
from dabfusion.music.mel_branch import MelStatsEncoder
from dabfusion.music.wav2clip_branch import Wav2ClipEncoder


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def w2c():
    torch.manual_seed(0)
    return Wav2ClipEncoder()


def thumps(bpm: float, seconds: float, sr: int, lead_in: float = 0.5, seed: int = 0):
    """Noise-burst + low thump on every beat over a quiet hum: (wave [S] float32, beat times)."""
    rng = np.random.default_rng(seed)
    n_total = int(seconds * sr)
    y = np.zeros(n_total, np.float32)
    y += 0.02 * np.sin(2 * np.pi * 110 * np.arange(n_total) / sr).astype(np.float32)
    beats = np.arange(lead_in, seconds - 1.0, 60.0 / bpm)
    n = int(0.1 * sr)
    tt = np.arange(n) / sr
    hit = (np.sin(2 * np.pi * 70 * tt) * np.exp(-tt / 0.04)
           + 0.3 * rng.standard_normal(n) * np.exp(-tt / 0.01)).astype(np.float32)
    for b in beats:
        i = int(round(b * sr))
        y[i: i + n] += 0.7 * hit[: n_total - i]
    return y, beats


def test_silence_gives_no_beats_and_zero_features(w2c):
    for sr in (8000, 44100):
        a = B.analyze_beats(np.zeros(sr * 5, np.float32), sr)
        assert a.silent and a.tempo == 0.0 and a.beats.size == 0
        assert np.all(B.frame_beat_features(a, 30, 10.0) == 0)
        assert np.all(B.global_beat_vector(a) == 0)
    enc = MusicEncoder(wav2clip=w2c, mel=True)
    e = enc.encode(np.zeros((2, 16000 * 3), np.float32), 16000, n_frames=12, fps=4.0)
    assert e.global_vec.shape == (enc.global_dim,) and np.isfinite(e.global_vec).all()
    assert np.all(e.part("beats") == 0) and np.all(e.part("mel") == 0)
    assert np.all(e.frame_features == 0) and e.beats.size == 0 and e.tempo == 0.0


@pytest.mark.parametrize("n_samples", [0, 1, 100])
def test_audio_shorter_than_one_frame(n_samples, w2c):
    sr, fps = 44100, 30.0  # one frame = 1470 samples
    wave = (0.3 * np.random.default_rng(n_samples).standard_normal(n_samples)).astype(np.float32)
    a = B.analyze_beats(wave, sr)
    assert a.beats.size == 0 and a.tempo == 0.0
    ff = B.frame_beat_features(a, 8, fps)
    assert ff.shape == (8, len(B.FRAME_COLUMNS)) and np.isfinite(ff).all()
    assert np.all(ff[1:] == 0)  # only frame 0 lies inside the audio
    enc = MusicEncoder(wav2clip=w2c, mel=True)
    e = enc.encode(wave, sr, n_frames=8, fps=fps)
    assert e.global_vec.shape == (enc.global_dim,) and np.isfinite(e.global_vec).all()
    assert e.frame_features.shape == (8, len(B.FRAME_COLUMNS))


def test_ten_minute_track_is_processed_in_bounded_windows():
    sr, bpm = 22050, 125.0
    y, true_beats = thumps(bpm, 600.0, sr)
    calls: list[list[int]] = []

    class Spy(MelStatsEncoder):  # records what each encoder call receives (features skipped)
        def embed_clips(self, clips, batch_size=1):
            calls.append([len(c) for c in clips])
            return np.ones((len(clips), self.dim), np.float32)

    mel = Spy()
    enc = MusicEncoder(mel=mel, batch_size=4)
    enc.encode(y[: 20 * sr], sr)  # warm up: librosa's lazy imports would count as allocations
    calls.clear()
    tracemalloc.start()
    try:
        e = enc.encode(y, sr)  # the whole track
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_stft = (B.N_FFT // 2 + 1) * (len(y) // B.HOP + 1) * 8  # complex64 STFT of the whole track
    print(f"10-minute track: peak numpy/python allocation {peak / 2**20:.0f} MiB "
          f"(one full-length STFT would be {full_stft / 2**20:.0f} MiB); {len(calls)} encoder calls")
    assert peak < 0.5 * full_stft
    assert sum(len(c) for c in calls) == 60 and max(len(c) for c in calls) <= 4
    assert max(max(c) for c in calls) <= 10 * sr  # no call saw more than one 10 s window each
    assert abs(e.tempo - bpm) < 1.5
    assert B.f_measure(e.beats, true_beats) > 0.95
    assert e.span == (0.0, pytest.approx(600.0))


def test_multichannel_is_averaged_to_mono(w2c):
    sr = 16000
    y, _ = thumps(110.0, 6.0, sr)
    rng = np.random.default_rng(3)
    other = (0.05 * rng.standard_normal(y.size)).astype(np.float32)
    stereo = np.stack([y + other, y - other])  # the mono mix is y
    six = np.stack([y] * 6)
    enc = MusicEncoder(wav2clip=w2c, mel=True, cache_size=0)
    ref = enc.encode(y, sr, n_frames=20, fps=10.0, start=1.0)
    for wave in (stereo, six, torch.from_numpy(stereo)[None]):  # [C,S], [6,S], ComfyUI [1,C,S]
        e = enc.encode(wave, sr, n_frames=20, fps=10.0, start=1.0)
        np.testing.assert_allclose(e.global_vec, ref.global_vec, atol=2e-4)
        np.testing.assert_allclose(e.frame_features, ref.frame_features, atol=1e-4)
    with pytest.raises(MediaError, match="one clip at a time"):
        enc.encode(np.zeros((2, 2, 100), np.float32), sr)


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 44100, 48000, 96000])
def test_sample_rates_from_8_to_96_khz(sr, w2c):
    y, true_beats = thumps(118.0, 12.0, sr)
    a = B.analyze_beats(y, sr)
    assert abs(a.tempo - 118.0) < 2.0, a.tempo
    assert B.f_measure(a.beats, true_beats, 0.07) >= 0.9
    e = w2c.embed(y, sr)
    assert e.shape == (512,) and np.isfinite(e).all()


def test_bad_sample_rates_are_refused():
    enc = MusicEncoder.default()
    for sr in (0, -1, 44100.5, 10**7, "fast"):
        with pytest.raises(MediaError):
            enc.encode(np.zeros(1000, np.float32), sr)


def test_spec_records_branches_and_mismatches_are_caught(w2c):
    base = MusicEncoder.default()
    s = base.spec
    assert [b["name"] for b in s["branches"]] == ["beats"]
    assert s["global_dim"] == len(B.GLOBAL_COLUMNS) and s["frame_columns"] == list(B.FRAME_COLUMNS)
    check_compatible(s, MusicEncoder.default().spec)
    full = MusicEncoder(wav2clip=w2c, mel=True)
    assert [b["name"] for b in full.spec["branches"]] == ["wav2clip", "mel", "beats"]
    assert full.spec["global_dim"] == 512 + MelStatsEncoder.dim + len(B.GLOBAL_COLUMNS)
    w = full.spec["branches"][0]
    assert w["sample_rate"] == 16000 and w["encoder"]["random_weights"] is True
    with pytest.raises(ConfigMismatchError, match="branches"):
        check_compatible(s, full.spec)
    torch.manual_seed(5)
    other = MusicEncoder(wav2clip=Wav2ClipEncoder(), mel=True)  # same shape, other weights
    with pytest.raises(ConfigMismatchError, match="wav2clip encoder weights"):
        check_compatible(full.spec, other.spec, what="flow_diffusion.safetensors")
    with pytest.raises(ConfigMismatchError, match="context seconds"):
        check_compatible(s, MusicEncoder.default(context_seconds=5.0).spec)


def test_segment_context_and_cache(tmp_path):
    sr = 22050
    y, _ = thumps(100.0, 30.0, sr)
    enc = MusicEncoder(mel=True, cache_dir=tmp_path)
    e = enc.encode(y, sr, n_frames=40, fps=10.0, start=12.0)
    assert e.span == (pytest.approx(9.0), pytest.approx(19.0))  # 10 s centred on [12, 16]
    assert e.frame_features.shape == (40, len(B.FRAME_COLUMNS))
    assert np.all((e.beats >= 12.0) & (e.beats <= 16.0)) and e.beats.size >= 6
    end = enc.encode(y, sr, n_frames=40, fps=10.0, start=27.0)
    assert end.span == (pytest.approx(20.0), pytest.approx(30.0))  # kept inside the track
    assert enc.encode(y, sr, n_frames=40, fps=10.0, start=12.0) is e  # memory cache
    assert len(list(tmp_path.glob("*.npz"))) == 2
    fresh = MusicEncoder(mel=True, cache_dir=tmp_path)
    fresh._analysis = None  # a disk hit must not analyse the audio again
    again = fresh.encode(y, sr, n_frames=40, fps=10.0, start=12.0)
    np.testing.assert_array_equal(again.global_vec, e.global_vec)
    np.testing.assert_array_equal(again.frame_features, e.frame_features)
