"""The Beat Alignment node on a clip with known beats: a square that turns round (a kinematic beat) on every
click of a 120 bpm click track. Aligned music must score higher than the same frames against clicks half a
beat late, or than shuffled frames; the tempo and beat times are the click track's; the plot is an IMAGE;
long runs report progress and stop on an interrupt; bad inputs get a one-line error naming the input."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from dabfusion.errors import MediaError
from dabfusion.metrics.beat_plot import BEAT, KINEMATIC
from dabfusion.metrics.beat_report import beat_report
from dabfusion.testing.dance_toy import beat_times, click_track, dancer_positions, render_video
from pack_loader import load_pack

torch.set_num_threads(1)
PACK = "dab_pack_beat_alignment"
FPS, BPM, SECONDS, SIZE, SR = 30.0, 120.0, 4.0, 48, 22050
NODES = load_pack(PACK).NODE_CLASS_MAPPINGS


def audio(wave: np.ndarray) -> dict:
    return {"waveform": torch.from_numpy(np.asarray(wave, np.float32))[None, None], "sample_rate": SR}


def images(video: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(video.astype(np.float32) / 255.0)


@pytest.fixture(scope="module")
def clip():
    n = int(SECONDS * FPS)
    video = render_video(dancer_positions(BPM, n, FPS), SIZE, seed=1)
    return {"video": video, "on": click_track(BPM, SECONDS, sample_rate=SR),
            "half": click_track(BPM, SECONDS, sample_rate=SR, delay=0.5 * 60.0 / BPM)}


def analyze(**kwargs):
    cls = NODES["DabFusionBeatAlignment"]
    out = getattr(cls(), cls.FUNCTION)(**kwargs)
    assert isinstance(out, tuple) and len(out) == len(cls.RETURN_TYPES) == 6
    return out


@pytest.fixture(scope="module")
def aligned(clip):
    return analyze(images=images(clip["video"]), audio=audio(clip["on"]), fps=FPS)


def test_node_is_registered_with_its_category():
    cls = NODES["DabFusionBeatAlignment"]
    assert cls.CATEGORY == "Dance Any Beat/analysis"
    assert cls.RETURN_TYPES == ("FLOAT", "FLOAT", "FLOAT", "STRING", "IMAGE", "STRING")
    assert load_pack(PACK).NODE_DISPLAY_NAME_MAPPINGS["DabFusionBeatAlignment"] == "Beat Alignment"


def test_aligned_music_scores_higher_than_half_a_beat_late_or_shuffled_frames(clip, aligned):
    mm_on, av_on = aligned[:2]
    mm_half, av_half = analyze(images=images(clip["video"]), audio=audio(clip["half"]), fps=FPS)[:2]
    shuffled = clip["video"][np.random.default_rng(0).permutation(len(clip["video"]))]
    mm_shuffled = analyze(images=images(shuffled), audio=audio(clip["on"]), fps=FPS)[0]
    assert all(isinstance(v, float) for v in (mm_on, av_on, mm_half, av_half, mm_shuffled))
    assert mm_on > 0.9 and mm_half < 0.3 and mm_shuffled < mm_on - 0.3
    # The square moves fastest half-way between its turns: clicks half a beat late sit on its motion peaks,
    # which is what AV-Align rewards (motion peaks meeting audio onsets).
    assert av_half > 0.8 and av_half > av_on + 0.5


def test_tempo_and_beat_times_are_the_click_tracks(aligned):
    tempo, text = aligned[2], aligned[3]
    assert abs(tempo - BPM) < 3.0
    times = np.array([float(t) for t in text.split(",")])
    expected = beat_times(BPM, SECONDS)
    expected = expected[expected <= (SECONDS * FPS - 1) / FPS]
    assert times.shape == expected.shape
    assert np.abs(times - expected).max() < 0.03


def test_plot_is_an_image_of_the_speed_against_the_beat_grid(clip, aligned):
    plot = aligned[4]
    assert isinstance(plot, torch.Tensor) and plot.dtype == torch.float32
    assert plot.dim() == 4 and plot.shape[0] == 1 and plot.shape[-1] == 3 and plot.shape[1] >= 96
    assert 0.0 <= float(plot.min()) and float(plot.max()) <= 1.0
    pixels = (plot[0].numpy() * 255 + 0.5).astype(np.uint8)
    for colour in (BEAT, KINEMATIC):  # the beat lines and the kinematic-beat dots are drawn
        assert (pixels == np.array(colour, np.uint8)).all(axis=-1).sum() > 50, colour
    # one orange column per beat: 7 beats in 4 s -> 7 runs of orange columns along a row in the plot
    row = pixels[pixels.shape[0] // 2]
    orange = (row == np.array(BEAT, np.uint8)).all(axis=-1)
    assert np.count_nonzero(np.diff(orange.astype(int)) == 1) == 7


def test_report_text_names_the_numbers(aligned):
    mm, av, tempo, _, _, report = aligned
    assert f"2D-MM Align {mm:.3f}" in report and f"AV-Align    {av:.3f}" in report and f"{tempo:.1f} BPM" in report
    assert len(report.splitlines()) <= 6


def test_progress_per_chunk_and_interrupt_stops_early(clip, monkeypatch):
    compat = importlib.import_module(f"{PACK}.nodes.comfy_compat")
    calls = []

    class Interrupted(Exception):
        pass

    def interrupt():
        calls.append(1)
        if len(calls) >= 2:
            raise Interrupted

    monkeypatch.setattr(compat, "check_interrupted", interrupt)
    with pytest.raises(Interrupted):
        analyze(images=images(clip["video"]), audio=audio(clip["on"]), fps=FPS)
    assert len(calls) == 2  # music analysed, first flow chunk, then stopped (120 frames = 8 chunks)


def test_chunking_does_not_change_the_scores(clip):
    steps = []
    a = beat_report(clip["video"][:50], FPS, clip["on"], SR, chunk=7, progress=lambda d, t: steps.append((d, t)))
    b = beat_report(clip["video"][:50], FPS, clip["on"], SR, chunk=1000)
    assert a.mm_align == b.mm_align and a.av_align == b.av_align and np.array_equal(a.speed, b.speed)
    assert steps == [(i, 8) for i in range(1, 9)]  # music + 7 chunks of 7 intervals (49 intervals)


@pytest.mark.parametrize("change,message", [
    ({"images": torch.zeros(0, 32, 32, 3)}, "zero frames in images"),
    ({"images": torch.rand(2, 32, 32, 3)}, "images: 2 frame"),
    ({"fps": 0.0}, "fps must be > 0"),
    ({"audio": audio(np.zeros(SR * 2))}, "audio is silent"),
    ({"audio": audio(click_track(BPM, 0.6, sample_rate=SR, lead_in=0.1))}, "audio is only 0.60 s long"),
    ({"audio": {"waveform": torch.zeros(1, 1, 0), "sample_rate": SR}}, "AUDIO waveform is empty"),
])
def test_bad_inputs_give_one_line_errors_naming_the_input(clip, change, message):
    kwargs = {"images": images(clip["video"][:30]), "audio": audio(clip["on"]), "fps": FPS, **change}
    with pytest.raises(MediaError, match=message) as err:
        analyze(**kwargs)
    assert "\n" not in str(err.value)
