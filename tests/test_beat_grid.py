"""The creator's beat grid controls (dabfusion.music.beat_grid): each edit with numbers that can fail, the
order of operations, beat lists from files (and every bad file's one-line error naming the file and the
line), the grid preview's pixels, and the edited grid reaching the diffusion (encoder features, beat clock,
MusicClip) without poisoning the cache of the tracker's raw analysis."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dabfusion.errors import BeatGridError, DabFusionError
from dabfusion.music.beat_grid import (TRACKED_ANALYSES, BeatGridEdit, format_beat_list, looks_like_beat_list,
                                       parse_beat_list, read_beat_file, tracked_analysis)
from dabfusion.music.beat_grid_preview import BEAT, DOWNBEAT, GridLayout, draw_beat_grid
from dabfusion.music.beats import ANALYSIS_SR, HOP, REFINE_HOP, BeatAnalysis

SR = 22050
BPM = 120.0
PERIOD = 60.0 / BPM


def analysis(beats, duration=10.0, downbeat_offset=0, attack=None) -> BeatAnalysis:
    n = int(duration * ANALYSIS_SR / HOP) + 1
    return BeatAnalysis(tempo=60.0 / float(np.median(np.diff(beats))), beats=np.asarray(beats, np.float64),
                        onset_env=np.zeros(n, np.float32), onset_times=np.arange(n) * HOP / ANALYSIS_SR,
                        duration=duration, downbeat_offset=downbeat_offset,
                        attack_env=np.zeros(0, np.float32) if attack is None else attack)


def click_music(seconds: float = 8.0, bpm: float = BPM, first: float = 0.5, accent_every: int = 4) -> np.ndarray:
    """Clicks on each beat from ``first``; every ``accent_every``-th one (from the first) three times louder."""
    rng = np.random.default_rng(0)
    wave = 0.01 * rng.standard_normal(int(seconds * SR))
    k = int(0.03 * SR)
    burst = np.hanning(2 * k)[k:] * rng.standard_normal(k)
    for i, t in enumerate(np.arange(first, seconds - 0.1, 60.0 / bpm)):
        a = int(t * SR)
        wave[a: a + k] += burst[: len(wave[a: a + k])] * (0.9 if i % accent_every == 0 else 0.3)
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def music():
    wave = click_music()
    return wave, tracked_analysis(wave, SR)


# ------------------------------------------------------------------------------------ the edits


IRREGULAR = np.array([0.50, 1.00, 1.52, 2.00, 2.46, 3.00, 3.50, 4.04, 4.50, 5.00])


def test_offset_half_a_beat_puts_each_beat_at_the_midpoint_of_the_tracked_beats():
    a = analysis(IRREGULAR, duration=6.0)
    b = BeatGridEdit(offset_beats=0.5).apply(a)
    assert np.allclose(b.beats[:-1], (IRREGULAR[:-1] + IRREGULAR[1:]) / 2)
    period = np.median(np.diff(IRREGULAR))
    assert b.beats[-1] == pytest.approx(IRREGULAR[-1] + period / 2)  # past the grid: the median period
    assert np.array_equal(a.beats, IRREGULAR)  # the analysis given is not changed
    back = BeatGridEdit(offset_beats=-0.5).apply(analysis(np.arange(0.5, 5.1, 0.5), duration=6.0))
    assert np.allclose(back.beats, np.arange(0.25, 4.8, 0.5))  # before the first beat: the median period
    # a beat that leaves the music is dropped, the bar phase follows the beats
    c = BeatGridEdit(offset_beats=-1.5).apply(analysis(IRREGULAR, duration=6.0, downbeat_offset=1))
    assert c.beats[0] >= 0 and c.beats[-1] <= 6.0 and np.all(np.diff(c.beats) > 0)
    assert c.beats[0] == pytest.approx(0.25) and c.downbeats[0] == pytest.approx(0.25)  # beat 1 was a downbeat
    # a shift by whole beats loses no beat at the end it moves away from: the grid goes on there
    whole = BeatGridEdit(offset_beats=1).apply(analysis(np.arange(1.0, 8.0, 0.5), duration=10.0))
    assert np.allclose(whole.beats, np.arange(1.0, 8.1, 0.5)) and whole.downbeats[0] == pytest.approx(1.5)
    early = BeatGridEdit(offset_beats=-1).apply(analysis(np.arange(1.0, 8.0, 0.5), duration=10.0))
    assert np.allclose(early.beats, np.arange(0.5, 7.6, 0.5)) and early.downbeats[0] == pytest.approx(0.5)


def test_offset_moves_bars_with_their_beats():
    a = analysis(np.arange(0.5, 9.6, 0.5), downbeat_offset=2)  # downbeats at 1.5, 3.5, 5.5 ...
    b = BeatGridEdit(offset_beats=0.5).apply(a)
    assert np.allclose(b.downbeats[:3], [1.75, 3.75, 5.75])
    c = BeatGridEdit(offset_beats=-2).apply(a)  # the first beat falls before 0 and is dropped
    assert np.allclose(c.beats[:2], [0.0, 0.5]) and np.allclose(c.downbeats[:2], [0.5, 2.5])


def test_halve_keeps_the_downbeats_and_double_doubles_the_count():
    beats = np.arange(0.5, 9.6, 0.5)  # 19 beats
    a = analysis(beats, downbeat_offset=1)  # bars start at 1.0, 3.0, 5.0 ...
    h = BeatGridEdit(tempo="halve").apply(a)
    assert np.allclose(h.beats, beats[1::2]) and h.tempo == pytest.approx(60.0)
    assert set(np.round(a.downbeats, 6)) <= set(np.round(h.beats, 6))  # every downbeat kept
    assert h.downbeats[0] == pytest.approx(a.downbeats[0])
    d = BeatGridEdit(tempo="double").apply(a)
    # a beat between each pair, one before the first and one after the last (both inside the 10 s)
    assert d.beats.size == 2 * beats.size + 1 and d.tempo == pytest.approx(240.0)
    assert np.allclose(np.diff(d.beats), 0.25) and d.beats[0] == pytest.approx(0.25)
    assert set(np.round(a.downbeats, 6)) <= set(np.round(d.downbeats, 6))  # a bar start stays a bar start
    # no room past the end: no extension
    e = BeatGridEdit(tempo="double").apply(analysis(np.arange(0.0, 10.0 + 1e-9, 0.5)))
    assert e.beats.size == 2 * 21 - 1


def test_bpm_gives_a_regular_grid_at_that_tempo_on_the_music(music):
    wave, raw = music
    g = BeatGridEdit(bpm=128).apply(raw)
    assert np.allclose(np.diff(g.beats), 60.0 / 128) and g.tempo == pytest.approx(128.0)
    assert g.beats[0] >= 0 and g.beats[-1] <= raw.duration and raw.duration - g.beats[-1] < 60.0 / 128
    # at the music's own tempo the grid lands on its clicks (within 12 ms), bars on the loud ones
    same = BeatGridEdit(bpm=BPM).apply(raw)
    clicks = np.arange(0.5, 7.9, PERIOD)
    assert np.abs(same.beats[(same.beats > 0.4)][: clicks.size] - clicks).max() < 0.012
    assert same.downbeats[0] == pytest.approx(0.5, abs=0.012)  # the accented click starts the bars
    assert np.allclose(np.diff(same.downbeats), 4 * PERIOD)


def test_a_beat_list_replaces_the_tracker(music):
    _, raw = music
    edit = parse_beat_list("0.3\n0.9\n1.6 downbeat\n2.2\n2.9\n", raw.duration)
    g = edit.apply(raw)
    assert np.allclose(g.beats, [0.3, 0.9, 1.6, 2.2, 2.9])
    assert g.tempo == pytest.approx(60.0 / 0.65)
    assert g.downbeats[0] == pytest.approx(1.6) and g.downbeat_offset == 2
    assert np.array_equal(g.onset_env, raw.onset_env)  # onset data untouched
    assert parse_beat_list("0.3\n0.9\n1.6\n", raw.duration).apply(raw).downbeats[0] == pytest.approx(0.3)


def test_order_of_operations_list_or_bpm_then_tempo_then_offset():
    a = analysis(np.arange(0.5, 9.6, 0.5))
    g = BeatGridEdit(bpm=60, tempo="double", offset_beats=0.5).apply(a)
    # 60 BPM -> doubled to 120 -> moved by half a beat of the doubled grid (0.25 s)
    assert g.tempo == pytest.approx(120.0) and np.allclose(np.diff(g.beats), 0.5)
    base = BeatGridEdit(bpm=60, tempo="double").apply(a)
    assert np.allclose(g.beats[: base.beats.size - 1], base.beats[:-1] + 0.25)
    h = BeatGridEdit(beats=(1.0, 2.0, 3.0, 4.0, 5.0), tempo="halve", offset_beats=0.5).apply(a)
    assert np.allclose(h.beats, [2.0, 4.0, 6.0])  # halved to 1, 3, 5 (2 s apart), then +1 s


def test_identity_and_bad_values():
    assert BeatGridEdit().is_identity and BeatGridEdit(bpm=0).is_identity
    a = analysis(IRREGULAR)
    assert BeatGridEdit().apply(a) is a
    for bad in (dict(tempo="triple"), dict(bpm=-5), dict(bpm=5000), dict(offset_beats=float("nan")),
                dict(beats=(1.0, 2.0), bpm=120), dict(beats=(2.0, 1.0))):
        with pytest.raises(BeatGridError) as err:
            BeatGridEdit(**bad)
        assert "\n" not in str(err.value)
    no_beats = analysis(IRREGULAR)
    no_beats = dataclasses.replace(no_beats, beats=np.zeros(0), tempo=0.0)
    with pytest.raises(BeatGridError, match="no grid to move"):
        BeatGridEdit(offset_beats=0.5).apply(no_beats)
    assert BeatGridEdit(bpm=100).apply(no_beats).beats.size > 2  # a BPM needs no tracked beats


def test_a_beat_list_is_cut_with_the_music():
    edit = BeatGridEdit(beats=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0), downbeat=2, source="b.txt")
    cut = edit.cut(1.2, 1.5)  # the music from 1.2 s to 2.7 s
    assert np.allclose(cut.beats, [0.3, 0.8, 1.3])
    g = cut.apply(analysis([0.1, 0.6, 1.1], duration=1.5))
    assert g.downbeats[0] == pytest.approx(0.3)  # 1.5 s of the file was the downbeat
    with pytest.raises(BeatGridError, match="b.txt.*1 beat"):
        edit.cut(2.8, None)
    assert np.allclose(edit.shifted(0.25).beats[:2], [0.75, 1.25])


# ------------------------------------------------------------------------------------ beat files

GOOD = {
    "plain.txt": "# my beats\n0.5\n\n1.0\n1.5  # a comment\n2.0\n",
    "audacity.txt": "0.500000\t0.500000\tdownbeat\n1.000000\t1.000000\t\n1.500000\t1.500000\tbeat\n2.0\t2.0\t\n",
    "markers.csv": "time,label\n0.5,Bar 1\n1.0,beat\n1.5,beat\n2.0,beat\n",
    "inline.txt": "0.5, 1.0, 1.5, 2.0",
    "list.json": "[0.5, 1.0, 1.5, 2]",
    "objects.json": '[{"time": 0.5, "downbeat": true},\n {"time": 1.0}, {"time": 1.5}, {"time": 2.0}]',
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_beat_file_formats(tmp_path, name):
    path = tmp_path / name
    path.write_text(GOOD[name], encoding="utf-8")
    edit = read_beat_file(path, duration=10.0)
    assert np.allclose(edit.beats, [0.5, 1.0, 1.5, 2.0]) and edit.source == name
    assert edit.downbeat == 0


def test_the_beats_command_output_reads_back_as_a_beat_file(tmp_path):
    a = analysis(np.arange(0.5, 9.6, 0.5), downbeat_offset=1)
    path = tmp_path / "out.txt"
    path.write_text("# comment header\n" + format_beat_list(a), encoding="utf-8")
    g = read_beat_file(path, 10.0).apply(a)
    assert np.allclose(g.beats, a.beats) and np.allclose(g.downbeats, a.downbeats)


BAD = [  # (content, line in the message or None, words in the message)
    ("", None, "no beat times"),
    ("# only a comment\n\n", None, "no beat times"),
    ("0.5\n", 1, "the only beat time"),
    ("0.5\n1.0\nabc\n2.0\n", 3, "'abc' is not a time"),
    ("0.5\n1.0\nnan\n", 3, "not a time"),
    ("0.5\n1.5\n1.0\n", 3, "comes before the beat before it (1.5 s on line 2)"),
    ("0.5\n1.0\n\n1.0\n", 4, "repeats the beat before it"),
    ("-0.5\n1.0\n", 1, "before the start of the music"),
    ("0.5\n1.0\n12.5\n", 3, "after the end of the music (10.00 s long)"),
    ("[0.5,\n 1.0,\n \"x\"]", 3, "is not a time"),
    ("[0.5,\n 1.0\n 1.5]", 3, "not valid JSON"),
    ("[0.5,\n {\"label\": 1}]", 2, "needs a \"time\""),
    ("[0.5,\n 0.2]", 2, "comes before"),
    ("[]", None, "no beat times"),
]


@pytest.mark.parametrize("content,line,words", BAD)
def test_a_bad_beat_file_gets_one_line_naming_the_file_and_the_line(tmp_path, content, line, words):
    path = tmp_path / "beats.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BeatGridError) as err:
        read_beat_file(path, duration=10.0)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"beat file {path}")
    assert words in msg
    if line is not None:
        assert f"line {line}:" in msg
    assert isinstance(err.value, DabFusionError)


def test_a_missing_or_binary_beat_file(tmp_path):
    with pytest.raises(BeatGridError, match="not found"):
        read_beat_file(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02")
    with pytest.raises(BeatGridError, match="not a text file"):
        read_beat_file(tmp_path / "bin.txt")


def test_what_counts_as_a_typed_list():
    assert looks_like_beat_list("0.5, 1.0, 1.5") and looks_like_beat_list("[1, 2]") and looks_like_beat_list("1\n2")
    assert not looks_like_beat_list("beats.txt") and not looks_like_beat_list("") and looks_like_beat_list("2.5")
    assert looks_like_beat_list("0.5, 1.0, x") and not looks_like_beat_list("2024 beats.txt")


# ------------------------------------------------------------------------------------ the preview


def test_preview_draws_beats_and_downbeats_at_their_columns():
    beats = np.arange(0.5, 9.6, 0.5)
    a = analysis(beats, downbeat_offset=1)
    img = draw_beat_grid(a, np.zeros(int(10 * SR), np.float32), SR, width=800)
    lay = GridLayout.for_music(a.duration, 800)
    assert img.dtype == np.uint8 and img.shape == (lay.height, 800, 3) and lay.rows == 1
    x0, y0, x1, y1 = lay.row_box(0)
    band = img[y0 + 25: y1 - 25]  # away from the bar numbers and the frame
    downs = set(np.round(a.downbeats, 6))
    for t in beats:
        colour = DOWNBEAT if round(t, 6) in downs else BEAT
        column = band[:, lay.x_of(t)]
        assert (column == colour).all(axis=-1).mean() > 0.9, t
    # between beats there is no beat line
    mid = lay.x_of(0.75)
    assert not (band[:, mid] == BEAT).all(axis=-1).any()
    # an offset moves the lines by half a beat: 0.25 s of 10 s of the row
    moved = draw_beat_grid(BeatGridEdit(offset_beats=0.5).apply(a), width=800)
    assert (moved[y0 + 25: y1 - 25, lay.x_of(0.75)] == BEAT).all(axis=-1).mean() > 0.9


def test_preview_of_long_music_wraps_into_rows():
    beats = np.arange(0.25, 59.9, 0.5)
    a = analysis(beats, duration=60.0)
    img = draw_beat_grid(a, width=1024)
    lay = GridLayout.for_music(60.0, 1024)
    assert lay.rows == 5 and lay.row_seconds == 12.0 and img.shape[0] == lay.height
    t = beats[60]  # 30.25 s: in the third row
    x0, y0, x1, y1 = lay.row_box(lay.row_of(t))
    assert lay.row_of(t) == 2
    assert (img[y0 + 25: y1 - 25, lay.x_of(t)] != 255).any(axis=-1).mean() > 0.9
    ten_min = GridLayout.for_music(600.0, 1024)
    assert ten_min.rows <= 8 and ten_min.row_seconds * ten_min.rows >= 600


def test_preview_of_the_real_tracker_on_music(music, tmp_path):
    wave, raw = music
    img = draw_beat_grid(raw, wave, SR, edit=None)
    assert img.shape[1] == 1024 and img.shape[0] > 150


# ------------------------------------------------------------------------------------ into the diffusion


def test_the_encoder_applies_the_edit_and_keeps_the_raw_analysis_clean(music):
    from dabfusion.music import MusicEncoder

    wave, raw = music
    enc = MusicEncoder.default()
    edit = BeatGridEdit(offset_beats=0.5)
    edited = enc.beat_analysis(wave, SR, beat_edit=edit)
    assert np.allclose(edited.beats[: raw.beats.size - 1], (raw.beats[:-1] + raw.beats[1:]) / 2)
    again = enc.beat_analysis(wave, SR)  # after an edit, the tracker's grid is still the cached one
    assert np.array_equal(again.beats, raw.beats) and again is tracked_analysis(wave, SR)
    fps = 30.0
    plain = enc.encode(wave, SR, n_frames=120, fps=fps, start=0.0)
    moved = enc.encode(wave, SR, n_frames=120, fps=fps, start=0.0, beat_edit=edit)
    assert enc.encode(wave, SR, n_frames=120, fps=fps, start=0.0).frame_features is plain.frame_features
    # the beat phase columns (sin, cos) are half a turn apart wherever the grid is interpolated
    inside = slice(int(raw.beats[0] * fps) + 2, int(raw.beats[-2] * fps))
    ph = np.arctan2(plain.frame_features[inside, 2], plain.frame_features[inside, 3])
    pm = np.arctan2(moved.frame_features[inside, 2], moved.frame_features[inside, 3])
    diff = np.mod(ph - pm, 2 * np.pi) / (2 * np.pi)
    assert np.allclose(diff, 0.5, atol=0.03)
    assert np.allclose(moved.beats, edited.beats[edited.beats <= 4.0])


def test_the_beat_clock_and_the_music_clip_follow_the_edit(music):
    from dabfusion.music import MusicEncoder
    from dabfusion.pipeline import MusicClip

    wave, raw = music
    edit = BeatGridEdit(offset_beats=0.5)
    clip = MusicClip(encoder=MusicEncoder.default(), wave=wave[None], sample_rate=SR, beat_edit=edit)
    plain = MusicClip(encoder=MusicEncoder.default(), wave=wave[None], sample_rate=SR)
    bm, bp = clip.windows(30.0).beat_music(), plain.windows(30.0).beat_music()
    t = raw.beats[2:-2]  # on the tracked beats the edited clock is half a beat off (the tracked intervals
    assert np.allclose(np.mod(bp.clock.phase(t), 1.0), 0.0, atol=1e-6)  # vary by a few ms: so does the half)
    assert np.allclose(np.mod(bm.clock.phase(t), 1.0), 0.5, atol=0.01)
    assert np.allclose(clip.beat_analysis.beats, edit.apply(raw).beats)
    halved = MusicClip(encoder=MusicEncoder.default(), wave=wave[None], sample_rate=SR,
                       beat_edit=BeatGridEdit(tempo="halve"))
    assert halved.summary.tempo == pytest.approx(raw.tempo / 2, rel=0.02)
    assert "tempo halved" in halved.describe()
    # a delayed clip (silence in front) moves a beat list with the music
    listed = BeatGridEdit(beats=tuple(raw.beats))
    delayed = MusicClip(encoder=MusicEncoder.default(), wave=wave[None], sample_rate=SR, offset=-0.5,
                        beat_edit=listed).windows(30.0).beat_music()
    assert np.allclose(delayed.analysis.beats, raw.beats + 0.5, atol=1e-4)


def test_best_of_n_scores_against_the_edited_grid(monkeypatch, music):
    """sample_best_of hands mm_align the clip's (edited) beats, not a fresh tracker run."""
    from types import SimpleNamespace

    from dabfusion.music import MusicEncoder
    from dabfusion.pipeline import DabFusionPipeline, MusicClip, SamplingSettings

    wave, raw = music
    edit = BeatGridEdit(tempo="double")
    clip = MusicClip(encoder=MusicEncoder.default(), wave=wave[None], sample_rate=SR, beat_edit=edit)
    seen = []

    def fake_mm_align(frames, fps, *, beat_times, start):
        seen.append(np.asarray(beat_times))
        return SimpleNamespace(score=0.5)

    monkeypatch.setattr("dabfusion.metrics.mm_align.mm_align", fake_mm_align)
    fake = SimpleNamespace(fps=30.0, settings=lambda **kw: SamplingSettings(),
                           sampling_units=lambda n, s: 1,
                           sample_flows=lambda *a, **k: SimpleNamespace(),
                           render=lambda *a, **k: np.zeros((4, 8, 8, 3), np.uint8))
    DabFusionPipeline.sample_best_of(fake, None, clip, n_frames=4, candidates=2)
    assert len(seen) == 2 and all(np.allclose(s, edit.apply(raw).beats) for s in seen)


def test_the_shared_cache_holds_only_raw_analyses(music):
    wave, raw = music
    BeatGridEdit(offset_beats=0.5).apply(raw)
    for value in TRACKED_ANALYSES._data.values():
        assert value.beats.size == 0 or value.tempo > 0
    assert tracked_analysis(wave, SR) is raw and np.allclose(raw.beats[:3], [0.5, 1.0, 1.5], atol=0.012)


def test_the_attack_envelope_scores_a_bpm_grid():
    """A BPM grid's phase is where the attack envelope peaks (no audio needed)."""
    rate = ANALYSIS_SR / REFINE_HOP
    attack = np.zeros(int(10 * rate) + 1, np.float32)
    for t in np.arange(0.37, 9.9, 0.5):
        attack[int(round(t * rate))] = 1.0
    a = analysis(np.arange(0.5, 9.6, 0.5), attack=attack)
    g = BeatGridEdit(bpm=120).apply(a)
    assert g.beats[0] == pytest.approx(0.37, abs=0.01)


def test_audio_duration_reads_the_whole_file(tmp_path):
    import soundfile as sf

    from dabfusion.media.audio import audio_duration

    sf.write(str(tmp_path / "a.wav"), np.zeros(int(2.5 * SR), np.float32), SR)
    assert audio_duration(tmp_path / "a.wav") == pytest.approx(2.5)
    from pathlib import Path

    ogg = Path(__file__).resolve().parents[1] / "dabfusion" / "assets" / "examples" / "dance_any_beat_music.ogg"
    assert audio_duration(ogg) == pytest.approx(8.0, abs=0.01)
