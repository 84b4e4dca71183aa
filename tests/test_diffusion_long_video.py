"""Any-length clips: window plan, known prefixes at the borders, z0 never changes, music per window."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from dabfusion.diffusion import PRESETS, StaticMusic, UNet3D, generate_flows, identity_frame, plan_windows
from dabfusion.flow_ae import frames_to_uint8, render_frames, render_video
from dabfusion.metrics.borders import border_discontinuity
from dabfusion.testing.unets import random_unet

torch.set_num_threads(1)
TINY = PRESETS["tiny"]  # 8-frame windows


def _model(seed: int = 0) -> UNet3D:
    return random_unet(TINY, seed)


class Spy(torch.nn.Module):
    """Wraps the U-Net and records z0 and the known prefix of every call."""

    def __init__(self, model: UNet3D) -> None:
        super().__init__()
        self.model, self.config, self.calls = model, model.config, []

    @property
    def has_music(self) -> bool:
        return True

    def forward(self, x, t, z0, **kw):
        self.calls.append({"z0": z0.clone(), "mask": None if kw.get("known_mask") is None else kw["known_mask"].clone(),
                           "known": None if kw.get("known") is None else kw["known"].clone(),
                           "beats": None if kw.get("beats") is None else kw["beats"].clone()})
        return self.model(x, t, z0, **kw)


class RecordingMusic(StaticMusic):
    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.asked: list[tuple[int, int]] = []

    def window(self, start, n):
        self.asked.append((start, n))
        return super().window(start, n)


@pytest.mark.parametrize("total,window,overlap,expected", [
    (8, 8, 2, [0]), (5, 8, 2, [0]), (9, 8, 2, [0, 6]), (14, 8, 2, [0, 6]), (15, 8, 2, [0, 6, 12]),
    (24, 8, 2, [0, 6, 12, 18]), (24, 8, 0, [0, 8, 16]), (40, 16, 4, [0, 12, 24]),
])
def test_plan_windows(total, window, overlap, expected):
    starts = plan_windows(total, window, overlap)
    assert starts == expected
    assert starts[-1] + window >= total  # covered
    assert all(b - a == window - overlap for a, b in zip(starts, starts[1:]))
    with pytest.raises(ValueError):
        plan_windows(10, 8, 8)


def test_long_clip_continues_each_window_from_the_last_and_keeps_z0():
    model = Spy(_model())
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(1, TINY.latent_channels, 8, 8, generator=g)
    frames = torch.rand(40, TINY.beat_dim, generator=g)
    music = RecordingMusic(torch.randn(TINY.music_dim, generator=g), frames)
    steps = 4
    out = generate_flows(model, z0=z0, n_frames=20, music=music, overlap=2, sampler="dpm++",
                         num_inference_steps=steps, generator=torch.Generator().manual_seed(1), keep_windows=True)
    assert out.starts == [0, 6, 12] and out.flow.shape == (1, 20, 2, 8, 8) and out.occlusion.shape == (1, 20, 1, 8, 8)
    assert len(model.calls) == 3 * steps
    # every window works from the same, original reference latent
    assert all(torch.equal(c["z0"], z0) for c in model.calls)
    # music windows are asked for the right spans, and the beat features are that span's rows
    assert music.asked == [(0, 8), (6, 8), (12, 8)]
    for j, s in enumerate(out.starts):
        torch.testing.assert_close(model.calls[j * steps]["beats"][0], frames[s:s + 8])
    # window 0 starts from the reference itself; windows 1, 2 from the previous window's last 2 frames
    first = model.calls[0]
    assert first["mask"][0].tolist() == [True] + [False] * 7
    torch.testing.assert_close(first["known"][0, :, 0], identity_frame(8))
    for j in (1, 2):
        call = model.calls[j * steps]
        assert call["mask"][0].tolist() == [True, True] + [False] * 6
        prev = out.windows[j - 1]
        torch.testing.assert_close(call["known"][0, :, :2], prev[0, :, 6:8])
        # the known prefix is reproduced: the border frames agree across windows
        torch.testing.assert_close(out.windows[j][0, :, :2], prev[0, :, 6:8], atol=1e-5, rtol=0)
    # the clip starts exactly at the reference: zero flow, fully visible
    assert out.flow[0, 0].abs().max() < 1e-5 and (out.occlusion[0, 0] > 1 - 1e-5).all()
    # and the stitched clip is each window's frames
    torch.testing.assert_close(out.x[0, :, 8:14], out.windows[1][0, :, 2:8])
    torch.testing.assert_close(out.x[0, :, 14:20], out.windows[2][0, :, 2:8])


def test_without_reference_start_first_window_is_free():
    model = Spy(_model())
    z0 = torch.randn(1, TINY.latent_channels, 8, 8)
    generate_flows(model, z0=z0, n_frames=8, music=None, sampler="ddim", num_inference_steps=4,
                   start_from_reference=False)
    assert model.calls[0]["mask"] is None


def test_render_warps_the_reference_for_every_frame():
    class FakeAE:
        def __init__(self):
            self.zs = []

        def warp(self, z, flow, occ):
            self.zs.append(z)
            return z.expand(flow.shape[0], -1, -1, -1) * occ

        def decode(self, z):
            return z[:, :3].sigmoid()

    ae = FakeAE()
    z0 = torch.randn(1, 4, 8, 8)
    frames = render_frames(ae, z0, torch.zeros(5, 2, 8, 8), torch.ones(5, 1, 8, 8))
    assert frames.shape == (5, 3, 8, 8) and torch.equal(ae.zs[0], z0)
    with pytest.raises(ValueError):
        render_frames(ae, torch.randn(2, 4, 8, 8), torch.zeros(5, 2, 8, 8), torch.ones(5, 1, 8, 8))


def _render_world(n_frames: int):
    """A tiny random flow AE, a reference latent and ``n_frames`` random flows and occlusions."""
    from dabfusion.flow_ae import FlowAE, FlowAutoEncoder, get_config

    torch.manual_seed(0)
    ae = FlowAE(FlowAutoEncoder(get_config("tiny")).eval())
    z0 = ae.encode(torch.rand(1, 3, ae.image_size, ae.image_size))
    h = z0.shape[-1]
    return ae, z0, torch.randn(n_frames, 2, h, h) * 0.3, torch.rand(n_frames, 1, h, h)


def test_render_video_in_chunks_equals_one_pass():
    ae, z0, flow, occ = _render_world(7)
    calls = []
    video = render_video(ae, z0, flow, occ, chunk=3, progress=lambda k, n: calls.append((k, n)))
    with torch.no_grad():
        whole = frames_to_uint8(render_frames(ae, z0, flow, occ))
    assert video.shape == (7, ae.image_size, ae.image_size, 3) and video.dtype.name == "uint8"
    assert abs(video.astype(int) - whole.astype(int)).max() <= 1  # same frames, chunking aside
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_frame_stream_hands_over_the_rendered_frames_and_stops_when_asked():
    from dabfusion.flow_ae import FrameStream

    ae, z0, flow, occ = _render_world(11)
    calls = []
    stream = FrameStream(ae, z0, flow, occ, chunk=4, prefetch=1, progress=lambda k, n: calls.append((k, n)))
    assert len(stream) == 11
    frames = list(stream)
    assert np.array_equal(np.stack(frames), render_video(ae, z0, flow, occ, chunk=4))
    assert calls == [(1, 3), (2, 3), (3, 3)]

    class Cancelled(Exception):
        pass

    def cancel(k, n):
        if k == 2:
            raise Cancelled

    with pytest.raises(Cancelled):  # a cancel raised in progress stops the stream in the consumer
        list(FrameStream(ae, z0, flow, occ, chunk=2, progress=cancel))
    early = iter(FrameStream(ae, z0, flow, occ, chunk=2, prefetch=1))
    next(early)
    early.close()  # leaving early ends the drawing thread
    assert not any(t.name == "dabfusion-render" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(ValueError):  # a failure while drawing (a bad flow shape) reaches the consumer
        list(FrameStream(ae, z0, flow[:, :1], occ, chunk=2))


def test_border_discontinuity_finds_a_jump():
    flow = torch.zeros(20, 2, 4, 4)
    for i in range(20):
        flow[i] = 0.01 * i
    flow[8:] += 1.0  # a jump between frame 7 and 8 = the border step of a window starting at 6 (overlap 2)
    d = border_discontinuity(flow, [7, 13])  # steps 7 -> 8 and 13 -> 14 (windows at 6 and 12, overlap 2)
    assert d["n_border"] == 2 and d["border"] > 10 * d["within"]
    smooth = border_discontinuity(flow - (torch.arange(20) >= 8).float().view(20, 1, 1, 1), [7, 13])
    assert abs(smooth["ratio"] - 1.0) < 1e-4


def test_music_windows_follow_the_music_time():
    import numpy as np

    from dabfusion.diffusion import MusicWindows
    from dabfusion.testing.dance_toy import click_track
    from dabfusion.music import MusicEncoder

    enc = MusicEncoder.default()
    wave = click_track(120.0, 6.0)
    fps = 20.0
    mw = MusicWindows(enc, wave, 22050, fps)
    g, f = mw.window(10, 8)
    ref = enc.encode(wave, 22050, n_frames=8, fps=fps, start=0.5)
    np.testing.assert_allclose(f.numpy(), ref.frame_features)
    np.testing.assert_allclose(g.numpy(), ref.global_vec)
    # music delayed by 0.25 s: frame 15 of the clip shows time 0.5 s of the track
    delayed = MusicWindows(enc, wave, 22050, fps, offset=-0.25)
    np.testing.assert_allclose(delayed.window(15, 8)[1].numpy(), ref.frame_features, atol=1e-6)
    # before the music starts: padded with silence, still N rows
    early = delayed.window(0, 8)[1]
    assert early.shape == (8, enc.frame_dim) and torch.isfinite(early).all()


def test_frame_stream_draws_under_the_callers_autocast():
    """Autocast is per thread: the drawing thread must run under the one the caller iterates in."""
    from dabfusion.flow_ae import FrameStream

    ae, z0, flow, occ = _render_world(4)
    seen = []
    decode = ae.decode

    def spy(z):
        seen.append(torch.is_autocast_enabled("cpu"))
        return decode(z)

    ae.decode = spy
    with torch.autocast("cpu", dtype=torch.bfloat16):
        list(FrameStream(ae, z0, flow, occ, chunk=2))
    list(FrameStream(ae, z0, flow, occ, chunk=2))
    assert seen == [True, True, False, False]
