"""The beat grid controls in the nodes: Load Music's offset / tempo / bpm / beats widgets and its grid
preview; the edit travels in the AUDIO, so Music Encoder (tempo, the sampler's beat clock), Video
Combine's beat overlay and Beat Alignment all use the same edited grid; bad beat input is one clear
error (ComfyUI shows it in red), never a traceback from inside numpy."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from dabfusion.errors import BeatGridError, DabFusionError
from dabfusion.media.comfy import BEAT_GRID_KEY, audio_beat_edit
from dabfusion.music.beat_grid import BeatGridEdit, tracked_analysis
from dabfusion.testing.dance_toy import click_track, dancer_positions, render_video
from dabfusion.testing.random_bundle import make_random_bundle
from pack_loader import load_pack

torch.set_num_threads(1)
PACK = "dab_pack_beat_grid"
NODES = load_pack(PACK).NODE_CLASS_MAPPINGS
SR, BPM, SECONDS, FPS = 22050, 120.0, 6.0, 30.0


def node(name):
    cls = NODES[name]
    return getattr(cls(), cls.FUNCTION)


def audio_of(wave) -> dict:
    return {"waveform": torch.from_numpy(np.asarray(wave, np.float32))[None, None], "sample_rate": SR}


LOAD = dict(audio_file="", start=0.0, duration=0.0)


@pytest.fixture(scope="module")
def clicks():
    return click_track(BPM, SECONDS, sample_rate=SR)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    bundle = make_random_bundle(tmp_path_factory.mktemp("bg") / "tiny")
    return node("DabFusionModelLoader")(checkpoint=str(bundle), device="cpu")[0]


def test_load_music_declares_the_controls_and_the_preview():
    cls = NODES["DabFusionLoadMusic"]
    opt = cls.INPUT_TYPES()["optional"]
    assert opt["beat_offset"][0] == "FLOAT" and opt["bpm"][0] == "FLOAT" and opt["beats"][0] == "STRING"
    assert opt["tempo"][0] == ["as tracked", "halve", "double"]
    assert cls.RETURN_TYPES == ("AUDIO", "FLOAT", "IMAGE") and cls.RETURN_NAMES[2] == "beat_grid"
    assert "beat_offset 0.5" in cls.DESCRIPTION and all(o[1].get("tooltip") for o in opt.values())


def test_offset_in_load_music_reaches_the_encoder_and_the_sampler(clicks, model):
    raw = tracked_analysis(clicks, SR)
    audio, seconds, grid = node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), beat_offset=0.5)
    edit = audio_beat_edit(audio)
    assert edit == BeatGridEdit(offset_beats=0.5) and audio[BEAT_GRID_KEY] is edit
    assert grid.dim() == 4 and grid.shape[0] == 1 and grid.shape[-1] == 3 and grid.dtype == torch.float32
    clip, _, tempo = node("DabFusionMusicEncoder")(model=model, audio=audio)
    assert clip.beat_edit == edit and tempo == pytest.approx(raw.tempo, rel=0.02)
    moved = edit.apply(raw).beats
    assert np.allclose(clip.summary.beats, moved[moved <= seconds])
    clock = clip.windows(FPS).beat_music().clock  # the sampler's beat clock: half a beat later
    assert np.allclose(np.mod(clock.phase(raw.beats[2:-2]), 1.0), 0.5, atol=0.01)
    # the plain AUDIO has no edit and the tracker's grid
    plain, _, _ = node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks))
    assert BEAT_GRID_KEY not in plain and audio_beat_edit(plain) is None
    clip2, _, _ = node("DabFusionMusicEncoder")(model=model, audio=plain)
    assert clip2.beat_edit is None and np.allclose(clip2.summary.beats, raw.beats)


def test_tempo_and_bpm_controls_set_the_encoders_tempo(clicks, model):
    raw = tracked_analysis(clicks, SR)
    halved, _, _ = node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), tempo="halve")
    assert node("DabFusionMusicEncoder")(model=model, audio=halved)[2] == pytest.approx(raw.tempo / 2, rel=0.02)
    fixed, _, _ = node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), bpm=128.0)
    assert node("DabFusionMusicEncoder")(model=model, audio=fixed)[2] == pytest.approx(128.0)


def test_a_beat_file_from_the_input_folder_is_cut_with_the_music(clicks, tmp_path, monkeypatch):
    monkeypatch.setenv("DABFUSION_INPUT_DIR", str(tmp_path))
    (tmp_path / "my beats.txt").write_text("# from my DAW\n0.5\n1.0 downbeat\n1.5\n2.0\n2.5\n3.0\n", encoding="utf-8")
    assert NODES["DabFusionLoadMusic"].VALIDATE_INPUTS("x", beats="my beats.txt") is True
    audio, _, _ = node("DabFusionLoadMusic")(audio_file="", start=0.9, duration=2.0, audio=audio_of(clicks),
                                             beats="my beats.txt")
    edit = audio_beat_edit(audio)
    assert np.allclose(edit.beats, [0.1, 0.6, 1.1, 1.6]) and edit.source == "my beats.txt"
    grid = edit.apply(tracked_analysis(audio["waveform"][0].numpy(), SR))
    assert grid.downbeats[0] == pytest.approx(0.1)  # 1.0 s of the file
    # an edited beat file re-runs the node
    before = NODES["DabFusionLoadMusic"].IS_CHANGED("dance_any_beat_music.ogg", beats="my beats.txt")
    (tmp_path / "my beats.txt").write_text("0.5\n1.0\n1.5\n2.0\n2.5\n", encoding="utf-8")
    assert NODES["DabFusionLoadMusic"].IS_CHANGED("dance_any_beat_music.ogg", beats="my beats.txt") != before
    # a typed list works the same way
    typed, _, _ = node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), beats="0.5, 1.1, 1.6, 2.2")
    assert np.allclose(audio_beat_edit(typed).beats, [0.5, 1.1, 1.6, 2.2])


@pytest.mark.parametrize("beats,words", [
    ("bad.txt", "beat file {p}, line 3: 'abc' is not a time in seconds"),
    ("empty.txt", "beat file {p}: no beat times"),
    ("late.txt", "beat file {p}, line 2: 60 s is after the end of the music (6.00 s long)"),
    ("unsorted.txt", "beat file {p}, line 3: 0.7 s comes before the beat before it"),
    ("0.5, 1.0, x", "Load Music's typed beats list, line 1: 'x' is not a time in seconds"),
    ("missing.txt", "beat file 'missing.txt' not found"),
])
def test_bad_beat_input_is_one_clear_line(clicks, tmp_path, monkeypatch, beats, words):
    monkeypatch.setenv("DABFUSION_INPUT_DIR", str(tmp_path))
    (tmp_path / "bad.txt").write_text("0.5\n1.0\nabc\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    (tmp_path / "late.txt").write_text("0.5\n60\n", encoding="utf-8")
    (tmp_path / "unsorted.txt").write_text("0.5\n1.0\n0.7\n", encoding="utf-8")
    with pytest.raises(BeatGridError) as err:
        node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), beats=beats)
    msg = str(err.value)
    assert "\n" not in msg and words.format(p=tmp_path / beats) in msg, msg
    assert isinstance(err.value, DabFusionError)
    # ComfyUI asks VALIDATE_INPUTS before running: what can be told without the music (missing, empty,
    # not numbers, unsorted) is refused there, so the node turns red with the same line and nothing runs
    checked = NODES["DabFusionLoadMusic"].VALIDATE_INPUTS("x", beats=beats)
    if beats == "late.txt":  # past the music's end: only known once the music is loaded
        assert checked is True
    else:
        assert isinstance(checked, str) and "\n" not in checked
        assert words.format(p=tmp_path / beats) in checked or "not found" in checked, checked


def test_an_edit_that_leaves_no_grid_is_a_clear_error(clicks):
    with pytest.raises(BeatGridError, match="no grid to move"):  # silence: no tracked beats to move
        node("DabFusionLoadMusic")(**LOAD, audio=audio_of(np.zeros(SR * 2)), beat_offset=0.5)
    with pytest.raises(BeatGridError, match="either a beat list or a BPM"):
        node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), bpm=120.0, beats="0.5, 1.0")
    with pytest.raises(BeatGridError, match="needs at least two"):
        node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), beats="0.5, 1.0", tempo="halve")


def test_the_beat_overlay_flashes_the_edited_beats(clicks, tmp_path, monkeypatch):
    monkeypatch.setenv("DABFUSION_OUTPUT_DIR", str(tmp_path / "out"))
    seen = []
    import dabfusion.media.beat_overlay as overlay

    real = overlay.draw_beat_overlay
    monkeypatch.setattr(overlay, "draw_beat_overlay", lambda f, b, fps: seen.append(np.asarray(b)) or real(f, b, fps))
    audio, _, _ = node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), beat_offset=0.5)
    frames = torch.rand(12, 32, 32, 3)
    node("DabFusionVideoCombine")(images=frames, fps=FPS, filename_prefix="t/d", crf=30, audio=audio,
                                  beat_overlay=True)
    assert np.allclose(seen[0], audio_beat_edit(audio).apply(tracked_analysis(clicks, SR)).beats)
    video = importlib.import_module(f"{PACK}.nodes.video")
    plain = video.overlay_beats(np.zeros((60, 16, 16, 3), np.uint8), FPS, clicks[None], SR)
    moved = video.overlay_beats(np.zeros((60, 16, 16, 3), np.uint8), FPS, clicks[None], SR,
                                BeatGridEdit(offset_beats=0.5))
    lit = lambda v: np.flatnonzero(v.reshape(len(v), -1).max(1) > 0)  # noqa: E731
    assert np.allclose(lit(plain), [15, 30, 45]) and np.allclose(lit(moved), [23, 38, 53])  # +0.25 s = 7.5 frames


def test_beat_alignment_scores_against_the_grid_in_the_audio(clicks):
    n = int(SECONDS * FPS)
    frames = torch.from_numpy(render_video(dancer_positions(BPM, n, FPS), 48, seed=1).astype(np.float32) / 255)
    align = node("DabFusionBeatAlignment")
    on = align(images=frames, audio=node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks))[0], fps=FPS)
    audio = node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), beat_offset=0.5)[0]
    off = align(images=frames, audio=audio, fps=FPS)
    moved = audio_beat_edit(audio).apply(tracked_analysis(clicks, SR)).beats
    assert off[3] == ", ".join(f"{t:.3f}" for t in moved[moved <= (n - 1) / FPS])
    assert on[0] > 0.6 and off[0] < on[0] - 0.3  # the dance is on the tracked beats, not half a beat later
    halved = node("DabFusionLoadMusic")(**LOAD, audio=audio_of(clicks), tempo="halve")[0]
    assert align(images=frames, audio=halved, fps=FPS)[2] == pytest.approx(on[2] / 2, rel=0.02)
