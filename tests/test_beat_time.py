"""Beat time: the clock, the grid, resampling, windows denoised together, training windows, generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dabfusion.diffusion import PRESETS, UNet3D, generate_flows, identity_frame
from dabfusion.diffusion.beat_time import BeatClock, BeatGrid, BeatMusic, resample_cubic, resample_linear
from dabfusion.diffusion import MusicWindows, StaticMusic
from dabfusion.diffusion.samplers import sample_sequence, sample_window
from dabfusion.testing.dance_toy import click_track
from dabfusion.music import MusicEncoder
from dabfusion.testing.unets import random_unet

torch.set_num_threads(1)
SR = 22050
FPS = 20.0
BEAT_TINY = PRESETS["tiny"].replace(time_base="beats", samples_per_beat=4, n_frames=8, temporal_kernel=3,
                                    prediction_type="v_prediction")


def _model(config, seed: int = 0) -> UNet3D:
    return random_unet(config, seed)


def test_clock_counts_beats_and_inverts():
    beats = np.array([0.5, 1.0, 1.5, 2.0, 2.7])
    clock = BeatClock(beats)
    np.testing.assert_allclose(clock.phase(beats), np.arange(5))
    t = np.linspace(-1.0, 4.0, 101)  # before, between and after the beats
    np.testing.assert_allclose(clock.time(clock.phase(t)), t, atol=1e-9)
    assert np.all(np.diff(clock.phase(t)) > 0)  # monotone: time never runs backwards
    assert clock.phase(0.0) == pytest.approx(-1.0)  # extrapolated with the median period (0.5 s)
    silent = BeatClock(np.zeros(0))
    assert not silent.has_beats and silent.tempo == pytest.approx(120.0)
    assert silent.phase(1.0) == pytest.approx(2.0)


def test_grid_starts_at_the_clip_and_covers_every_frame():
    clock = BeatClock(np.arange(0.3, 10, 0.55))
    grid = BeatGrid.for_clip(clock, start=1.234, n_frames=50, fps=FPS, samples_per_beat=8)
    pos = grid.frame_positions(1.234, 50, FPS)
    assert pos[0] == pytest.approx(0.0) and pos[-1] <= grid.n_samples - 1
    # one beat is exactly 8 samples, whatever the tempo
    t = grid.times(0, grid.n_samples)
    np.testing.assert_allclose(clock.phase(t[8::8]) - clock.phase(t[:-8:8][: len(t[8::8])]), 1.0)


def test_resampling_is_exact_at_samples_and_linear_on_lines():
    v = torch.arange(10, dtype=torch.float32)[:, None] * torch.tensor([1.0, -2.0])
    pos = np.array([0.0, 0.25, 3.5, 8.75, 9.0])
    torch.testing.assert_close(resample_linear(v, pos), torch.as_tensor(pos, dtype=torch.float32)[:, None]
                               * torch.tensor([1.0, -2.0]))
    torch.testing.assert_close(resample_cubic(v, pos[[0, 2, 4]]), resample_linear(v, pos[[0, 2, 4]]))
    torch.testing.assert_close(resample_cubic(v, pos[1:4]), resample_linear(v, pos[1:4]))  # Catmull-Rom keeps lines
    x = torch.randn(3, 12, 2)
    torch.testing.assert_close(resample_cubic(x, np.arange(12.0), dim=1), x)


def test_one_window_sequence_is_the_window_sampler():
    """Windows denoised together reduce to the plain window sampler when there is one window."""
    model = _model(BEAT_TINY)
    z0 = torch.randn(2, 16, 8, 8)
    music = torch.randn(2, 12)
    beats = torch.randn(2, 8, 8)
    known = torch.zeros(2, 3, 8, 8, 8)
    known[:, :, 0] = identity_frame(8)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, 0] = True
    kw = dict(sampler="dpm++", num_inference_steps=4, guidance_scale=1.5)
    a = sample_window(model, z0=z0, n_frames=8, music=music, beats=beats, known=known, known_mask=mask,
                      generator=torch.Generator().manual_seed(3), **kw)
    b = sample_sequence(model, z0=z0, length=8, starts=[0], window=8, music=music[:, None], beats=beats,
                        known=known, known_mask=mask, generator=torch.Generator().manual_seed(3), **kw)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="tile"):
        sample_sequence(model, z0=z0, length=12, starts=[0], window=8, music=music[:, None], beats=None, **kw)


def _track(bpm: float, seconds: float = 4.0, lead_in: float = 0.4) -> np.ndarray:
    return click_track(bpm, seconds, lead_in=lead_in, sample_rate=SR)


def test_generation_in_beat_time_follows_the_music_path():
    model = _model(BEAT_TINY.with_music(MusicEncoder.default().spec))
    enc = MusicEncoder.default()
    z0 = torch.randn(1, 16, 8, 8)

    def gen(wave, seed=0):
        return generate_flows(model, z0=z0, n_frames=50, music=MusicWindows(enc, wave, SR, FPS), num_inference_steps=3,
                              guidance_scale=1.5, generator=torch.Generator().manual_seed(seed))

    a, again, other = gen(_track(120)), gen(_track(120)), gen(_track(95))
    assert a.flow.shape == (1, 50, 2, 8, 8) and torch.isfinite(a.flow).all()
    assert torch.equal(a.flow, again.flow)  # same seed, same track: the same clip
    assert not torch.allclose(a.flow, other.flow, atol=1e-4)  # the music reaches the motion
    assert a.flow[0, 0].abs().max() == 0 and torch.allclose(a.occlusion[0, 0], torch.ones(1))  # frame 0 = reference
    assert len(a.starts) >= 2 and a.borders[0] and all(0 <= i < 49 for i in a.borders[0])
    with pytest.raises(ValueError, match="MusicWindows"):
        generate_flows(model, z0=z0, n_frames=10, music=StaticMusic(torch.zeros(12)), num_inference_steps=2)


def test_beat_music_vectors_are_the_encoders_and_survive_pickling():
    import pickle

    enc = MusicEncoder.default()
    wave = _track(110, seconds=6.0)
    bm = BeatMusic(enc, wave, SR, FPS).precompute()
    direct = enc.encode(wave, SR, n_frames=1, fps=FPS, start=2.0 - 0.5 / FPS).global_vec
    np.testing.assert_allclose(bm.global_vector(1.6, 2.4), direct)  # window centred on 2.0 s
    copy = pickle.loads(pickle.dumps(bm))
    assert copy.encoder is None and copy.wave is None
    np.testing.assert_allclose(copy.global_vector(1.6, 2.4), direct)
    t = np.array([0.5, 1.2, 3.3])
    np.testing.assert_allclose(copy.features(t), bm.features(t))


def test_beat_windows_read_the_cached_flows_on_the_grid(tmp_path):
    from dabfusion.diffusion.data import BeatWindowDataset
    from dabfusion.testing.beat_toy import make_track, write_targets

    tr = make_track("t0", 100.0, 6.0, 0.5)
    targets = write_targets(tmp_path, [tr], duration=6.0, channels=16, n_frames=1, ref_span=60, ref_hop=30)
    bm = BeatMusic(MusicEncoder.default(), tr.wave, SR, FPS).precompute()
    ds = BeatWindowDataset(targets, {"t0": bm}, fps=FPS, samples_per_beat=4, n_samples=8, flow_scale=1.0,
                           windows_per_ref=4, p_first=0.3, p_drop=0.0, seed=1)
    seen_first = seen_later = False
    for i in range(len(ds)):
        v, j, off, _ = ds.draw(i)
        item = ds[i]
        vt = targets.videos[v]
        r = vt.refs[j]
        times = bm.clock.time(bm.clock.phase(r / FPS) + (off + np.arange(8)) / 4)
        flows = torch.from_numpy(np.asarray(targets.array(vt.flows_file)[j], dtype=np.float32))
        expect = resample_linear(flows, times * FPS - r)[:, 0]  # x flow at each sample
        got = item["x0"][0]
        assert item["x0"].shape == (3, 8, 8, 8) and item["beats"].shape == (8, 8)
        if off == 0:
            seen_first = True
            assert bool(item["known_mask"][0]) and int(item["known_mask"].sum()) == 1
            torch.testing.assert_close(item["x0"][:, 0], identity_frame(8))
            torch.testing.assert_close(got[1:], expect[1:], atol=2e-3, rtol=0)
        else:
            seen_later = True
            assert not item["known_mask"].any()
            torch.testing.assert_close(got, expect, atol=2e-3, rtol=0)
            assert (times * FPS - r).max() <= 59  # inside the cached span
    assert seen_first and seen_later


def test_a_batch_of_two_tempi_keeps_each_clips_grid():
    """Clips of one batch with different tempi: each has its own window borders, and each clip is
    read off its own grid (frame 0 is its reference, the flows differ)."""
    model = _model(BEAT_TINY.with_music(MusicEncoder.default().spec))
    enc = MusicEncoder.default()
    slow, fast = MusicWindows(enc, _track(80), SR, FPS), MusicWindows(enc, _track(150), SR, FPS)
    out = generate_flows(model, z0=torch.randn(2, 16, 8, 8), n_frames=60, music=[slow, fast], num_inference_steps=2,
                         guidance_scale=1.0, generator=torch.Generator().manual_seed(0))
    b_slow, b_fast = out.borders[0], out.borders[1]
    assert b_slow and b_fast and b_slow != b_fast
    assert len(b_fast) > len(b_slow)  # more beats per second: more window borders per second
    for k, music in enumerate((slow, fast)):
        grid = music.beat_music().grid(60, BEAT_TINY.samples_per_beat)
        pos = grid.frame_positions(0.0, 60, FPS)
        edges = [s for s in out.starts[1:] if s <= pos[-1]]
        for s in edges:  # every window start inside the clip shows up as a border step of this clip
            i = int(np.searchsorted(pos, s, side="left")) - 1
            assert i in out.borders[k], (k, s, i)
        assert torch.equal(out.flow[k, 0], torch.zeros_like(out.flow[k, 0]))
