"""MP4 writing and frame reading: streams, durations, fidelity, odd sizes, atomic failure, timing."""

from __future__ import annotations

import json
import os
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from dabfusion.errors import MediaError
from dabfusion.media.video import probe_video, read_video_frames, write_mp4


def smooth_frames(n: int, h: int, w: int) -> np.ndarray:
    """A moving colour gradient: smooth, so h264 at crf 18 should reproduce it closely."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        r = 128 + 100 * np.sin(2 * np.pi * (xx / w + i / n))
        g = 128 + 100 * np.cos(2 * np.pi * (yy / h))
        b = np.full_like(xx, 40 + 4 * i)
        out.append(np.stack([r, g, b], -1))
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def index_frames(n: int, h: int = 16, w: int = 16) -> np.ndarray:
    """Frame i is flat grey 8*i, so the decoded brightness tells which source frame we got."""
    return np.stack([np.full((h, w, 3), 8 * i, np.uint8) for i in range(n)])


def frame_indices(frames: np.ndarray) -> list[int]:
    return [int(round(f.astype(np.float32).mean() / 8)) for f in frames]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_mp4_with_audio_streams_durations_and_fidelity(tmp_path):
    n, fps, sr = 36, 24, 44100
    frames = smooth_frames(n, 64, 96)
    t = np.arange(int(sr * 2.0)) / sr  # 2 s of audio for a 1.5 s video: must be trimmed
    audio = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]).astype(np.float32) * 0.5
    out = write_mp4(tmp_path / "clip.mp4", frames, fps, audio=audio, sample_rate=sr)
    assert out == tmp_path / "clip.mp4" and listing(tmp_path) == ["clip.mp4"]

    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert a.codec_context.name == "aac" and a.codec_context.channels == 2
        expected = n / fps
        assert abs(float(v.duration * v.time_base) - expected) <= 1 / fps
        assert abs(float(a.duration * a.time_base) - expected) <= 1 / fps
        decoded_audio = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)
    assert abs(decoded_audio.shape[1] - n / fps * sr) <= sr / fps

    back, back_fps = read_video_frames(out)
    assert back.shape == frames.shape and back.dtype == np.uint8 and back_fps == pytest.approx(fps)
    assert np.abs(back.astype(np.float32) - frames).mean() < 3.0
    assert psnr(back, frames) > 30.0


def test_audio_is_zero_padded_to_video_length(tmp_path):
    fps, sr = 10, 16000
    audio = torch.full((8000,), 0.5)  # 0.5 s of audio (torch, 1-D) for a 2 s video
    out = write_mp4(tmp_path / "pad.mp4", index_frames(20), fps, audio=audio, sample_rate=sr)
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.channels == 1
        assert abs(float(a.duration * a.time_base) - 2.0) <= 1 / fps
        wave = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)[0]
    assert np.abs(wave[int(0.1 * sr) : int(0.4 * sr)]).mean() > 0.2  # the tone is there
    assert np.abs(wave[int(1.0 * sr) :]).max() < 0.01  # then silence


def test_sample_rate_aac_cannot_take_is_resampled(tmp_path):
    sr = 22000  # not an AAC rate
    tone = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr).astype(np.float32)
    out = write_mp4(tmp_path / "r.mp4", index_frames(10), 10, audio=tone, sample_rate=sr)
    assert probe_video(out).audio_sample_rate == 48000
    with av.open(str(out)) as c:
        wave = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)[0]
    spectrum = np.abs(np.fft.rfft(wave[4800:43200]))
    assert abs(np.argmax(spectrum) * 48000 / 38400 - 1000) < 5


def test_odd_size_is_padded_by_edge_replication(tmp_path):
    frames = smooth_frames(6, 47, 33)
    out = write_mp4(tmp_path / "odd.mp4", frames, 12)
    info = probe_video(out)
    assert (info.width, info.height) == (34, 48)
    back, _ = read_video_frames(out)
    assert back.shape == (6, 48, 34, 3)
    assert psnr(back[:, :47, :33], frames) > 30.0
    # the added column/row repeats the edge, not black
    assert np.abs(back[:, :47, 33].astype(int) - frames[:, :, 32]).mean() < 6
    assert np.abs(back[:, 47, :33].astype(int) - frames[:, 46, :]).mean() < 6


def test_iterable_and_float_torch_frames(tmp_path):
    src = smooth_frames(8, 32, 32)

    def gen():
        for f in src:
            yield torch.from_numpy(f.astype(np.float32) / 255.0)

    out = write_mp4(tmp_path / "gen.mp4", gen(), Fraction(30000, 1001))
    info = probe_video(out)
    assert info.n_frames == 8 and info.fps == pytest.approx(30000 / 1001, rel=1e-4)
    back, _ = read_video_frames(out)
    assert psnr(back, src) > 30.0


def test_metadata_round_trips_long_json(tmp_path):
    workflow = json.dumps({"nodes": [{"id": i, "type": "DabFusionSampler", "widgets": ["x" * 50]} for i in range(500)]})
    assert len(workflow) > 30000
    out = write_mp4(tmp_path / "meta.mp4", index_frames(3), 8, metadata={"workflow": workflow, "prompt": "{}"})
    with av.open(str(out)) as c:
        assert c.metadata["workflow"] == workflow
        assert c.metadata["prompt"] == "{}"


@pytest.mark.parametrize(
    "frames, match",
    [
        (np.zeros((0, 8, 8, 3), np.uint8), "no frames"),
        ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)], "frame 1 has shape"),
        (np.stack([np.zeros((8, 8, 3)), np.full((8, 8, 3), np.nan)]).astype(np.float32), "NaN"),
        (np.zeros((8, 8, 3), np.uint8), r"\[N, H, W, 3\]"),
    ],
    ids=["empty", "inconsistent", "nan", "rank3"],
)
def test_bad_frames_raise_and_leave_nothing(tmp_path, frames, match):
    with pytest.raises(MediaError, match=match) as err:
        write_mp4(tmp_path / "bad.mp4", frames, 10)
    assert "bad.mp4" in str(err.value)
    assert listing(tmp_path) == []


def test_failed_write_keeps_existing_file(tmp_path):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"old")
    bad = (np.full((8, 8, 3), np.inf, np.float32) for _ in range(3))
    with pytest.raises(MediaError):
        write_mp4(target, bad, 10)
    assert target.read_bytes() == b"old" and listing(tmp_path) == ["keep.mp4"]


def test_audio_without_sample_rate(tmp_path):
    with pytest.raises(MediaError, match="sample_rate"):
        write_mp4(tmp_path / "a.mp4", index_frames(2), 10, audio=np.zeros(100, np.float32))
    assert listing(tmp_path) == []


def test_missing_or_unusable_output_folder(tmp_path):
    missing = tmp_path / "nope" / "x.mp4"
    with pytest.raises(MediaError, match="nope"):
        write_mp4(missing, index_frames(2), 10)
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(MediaError, match="afile"):
        write_mp4(afile / "x.mp4", index_frames(2), 10)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(MediaError, match="ro"):
            write_mp4(ro / "x.mp4", index_frames(2), 10)
        assert listing(ro) == []
    finally:
        ro.chmod(0o700)


@pytest.fixture(scope="module")
def indexed_video(tmp_path_factory):
    """30 frames at 30 fps, frame i of grey level 8*i."""
    path = tmp_path_factory.mktemp("vid") / "idx.mp4"
    write_mp4(path, index_frames(30), 30)
    return path


def test_frames_selected_by_time(indexed_video):
    frames, fps = read_video_frames(indexed_video)
    assert fps == pytest.approx(30) and frame_indices(frames) == list(range(30))

    frames, fps = read_video_frames(indexed_video, fps=10)
    assert fps == 10 and frame_indices(frames) == list(range(0, 30, 3))

    frames, _ = read_video_frames(indexed_video, fps=60, max_frames=6)
    assert frame_indices(frames) == [0, 0, 1, 1, 2, 2]

    frames, _ = read_video_frames(indexed_video, fps=15, start=0.5, duration=0.4)
    assert frame_indices(frames) == [15, 17, 19, 21, 23, 25]

    frames, _ = read_video_frames(indexed_video, start=0.8)  # native fps, seek then keep the rest
    assert frame_indices(frames) == list(range(24, 30))


def test_start_beyond_end(indexed_video):
    with pytest.raises(MediaError, match="idx.mp4"):
        read_video_frames(indexed_video, fps=10, start=5.0)


def test_square_crop_and_pad(tmp_path):
    # 64 wide x 32 high: a white square in the centre, red left quarter, blue right quarter
    f = np.zeros((32, 64, 3), np.uint8)
    f[:, :16] = (255, 0, 0)
    f[:, 48:] = (0, 0, 255)
    f[8:24, 24:40] = 255
    out = write_mp4(tmp_path / "wide.mp4", np.stack([f] * 3), 10)

    crop, _ = read_video_frames(out, size=16, fit="crop")
    assert crop.shape == (3, 16, 16, 3)
    assert crop[0, 8, 8].min() > 200  # centre is the white square
    assert crop[0, :, 0, 0].mean() < 60  # the red quarter was cut away

    pad, _ = read_video_frames(out, size=16, fit="pad")
    assert pad.shape == (3, 16, 16, 3)
    assert pad[0, :3].max() == 0 and pad[0, -3:].max() == 0  # letterbox bars are black
    assert pad[0, 8, 1, 0] > 180 and pad[0, 8, 14, 2] > 180  # red and blue edges are kept

    with pytest.raises(MediaError, match="fit"):
        read_video_frames(out, size=16, fit="stretch")


def test_probe(tmp_path):
    out = write_mp4(tmp_path / "p.mp4", index_frames(12), 24, audio=np.zeros((2, 100), np.float32), sample_rate=48000)
    info = probe_video(out)
    assert (info.width, info.height, info.n_frames) == (16, 16, 12)
    assert info.fps == pytest.approx(24) and info.duration == pytest.approx(0.5, abs=1 / 24)
    assert info.has_audio and info.audio_sample_rate == 48000
    silent = probe_video(write_mp4(tmp_path / "s.mp4", index_frames(2), 24))
    assert not silent.has_audio and silent.audio_sample_rate is None


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(MediaError, match="missing.mp4"):
        read_video_frames(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(2000))
    with pytest.raises(MediaError, match="junk.mp4"):
        read_video_frames(junk)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty.mp4"):
        probe_video(empty)


def test_mkv_without_stored_frame_count(tmp_path):
    out = write_mp4(tmp_path / "c.mkv", index_frames(12), 24, audio=np.zeros((1, 4800), np.float32), sample_rate=48000)
    with av.open(str(out)) as c:
        assert c.format.name.startswith("matroska")
    info = probe_video(out)
    assert info.n_frames == 12 and info.duration == pytest.approx(0.5) and info.has_audio
    frames, _ = read_video_frames(out, fps=12)
    assert frame_indices(frames) == [0, 2, 4, 6, 8, 10]
