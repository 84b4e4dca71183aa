"""The beat-grid overlay: a flash on exactly the frames of the music's beats, nothing when it is off, a
clear error when it is on without music - in the library function and through Video Combine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dabfusion.errors import MediaError
from dabfusion.media.beat_overlay import FLASH_COLOUR, beat_frame_indices, draw_beat_overlay, flash_frames
from dabfusion.testing.dance_toy import beat_times, click_track
from pack_loader import load_pack

PACK = "dab_pack_beat_overlay"
FPS, BPM, SECONDS, SR = 30.0, 120.0, 3.0, 22050
NODES = load_pack(PACK).NODE_CLASS_MAPPINGS


def changed_frames(before: np.ndarray, after: np.ndarray) -> list[int]:
    return np.flatnonzero((before != after).reshape(len(before), -1).any(axis=1)).tolist()


def test_beat_frames_are_the_rounded_beat_times_inside_the_clip():
    assert beat_frame_indices([0.0, 0.49, 0.51, 1.0, -0.2, 5.0], 10.0, 20).tolist() == [0, 5, 10]
    assert beat_frame_indices([], 30.0, 10).size == 0


def test_overlay_changes_exactly_the_beat_frames():
    frames = np.random.default_rng(0).integers(0, 200, (40, 24, 32, 3), dtype=np.uint8)
    out = draw_beat_overlay(frames, [0.5, 1.0, 1.2], 10.0)
    assert changed_frames(frames, out) == [5, 10, 12]
    assert (out[5, 0] == FLASH_COLOUR).all() and (out[5, :, -1] == FLASH_COLOUR).all()
    assert np.array_equal(out[5, 4:-4, 4:-4], frames[5, 4:-4, 4:-4])  # a border, the picture stays
    assert np.array_equal(draw_beat_overlay(frames, [], 10.0), frames)
    assert frames.max() < 200  # the input is not drawn on
    with pytest.raises(MediaError, match="uint8"):
        flash_frames(frames.astype(np.float32), [1])


@pytest.fixture()
def captured(monkeypatch, tmp_path):
    """Video Combine's frames as handed to the MP4 writer (h264 is lossy, so compare before encoding)."""
    monkeypatch.setenv("DABFUSION_OUTPUT_DIR", str(tmp_path))
    seen = {}

    def fake_write(path, frames, fps, **kwargs):
        seen["frames"] = np.array(frames)
        path.write_bytes(b"")

    monkeypatch.setattr("dabfusion.media.video.write_mp4", fake_write)
    return seen


def combine(**kwargs):
    cls = NODES["DabFusionVideoCombine"]
    return getattr(cls(), cls.FUNCTION)(fps=FPS, filename_prefix="overlay/clip", crf=23, **kwargs)


def test_video_combine_flashes_the_beats_of_the_audio_and_nothing_when_off(captured):
    frames = np.random.default_rng(1).integers(0, 200, (int(SECONDS * FPS), 32, 32, 3), dtype=np.uint8)
    images = torch.from_numpy(frames.astype(np.float32) / 255.0)
    music = {"waveform": torch.from_numpy(click_track(BPM, SECONDS, sample_rate=SR))[None, None], "sample_rate": SR}
    spec = NODES["DabFusionVideoCombine"].INPUT_TYPES()["optional"]["beat_overlay"]
    assert spec[0] == "BOOLEAN" and spec[1]["default"] is False

    combine(images=images, audio=music)
    assert np.array_equal(captured["frames"], frames)  # off by default
    combine(images=images, audio=music, beat_overlay=False)
    assert np.array_equal(captured["frames"], frames)
    combine(images=images, audio=music, beat_overlay=True)
    expected = beat_frame_indices(beat_times(BPM, SECONDS), FPS, len(frames)).tolist()
    assert expected == [15, 30, 45, 60, 75]
    assert changed_frames(frames, captured["frames"]) == expected


def test_overlay_without_audio_is_a_clear_error(captured):
    with pytest.raises(MediaError, match="beat_overlay needs the audio input"):
        combine(images=torch.rand(4, 16, 16, 3), beat_overlay=True)
