"""Rhythm with librosa: tempo, beats, onsets, and the per-video-frame beat features (e_b).

The paper feeds "beat information from librosa" to the diffusion model. We give it two things:

* a short global vector (:func:`global_beat_vector`, :data:`GLOBAL_COLUMNS`) describing the
  rhythm of a span of music (tempo, regularity, pulse clarity, onset statistics), and
* per-frame features (:func:`frame_beat_features`, :data:`FRAME_COLUMNS`) for the N video frames
  being generated, so that the model can put motion accents on the beat frame by frame.

How beats are found: the pack's tracker (:mod:`.beat_tracker`: percussive magnitude onsets, a
bar-aware tempo model, dynamic programming with the local period, bars from kick, bass and chord
changes), then each beat is moved to the attack it belongs to on a finer onset function (23 ms
window, 5.8 ms hop; see :func:`_attack_envelope`). ``tracker="librosa"`` runs what the pack
shipped before (librosa's ``beat_track`` on its log-mel onset strength, which locks to the
off-beat when hats fall between the kicks), kept as the benchmark's baseline. Benchmark:
``docs/beat_tracking.md``; on SynthDance both give F = 0.97-1.0 (70 ms window).

The onset strength, onsets and global features below are librosa's (log-mel flux), unchanged,
so the features a model was trained on keep their meaning.

Analysis runs at :data:`ANALYSIS_SR` after resampling, whatever the input rate, so results do not
depend on how the music was stored. Spectrograms and the tempogram behind the tempo estimate are
computed in blocks, so a ten-minute track never holds a full-length STFT (200 MB) or tempogram
(400 MB) in memory; peak extra memory is about 50 MB for ten minutes.

Robustness (all tested):

* silence (peak below :data:`SILENCE_PEAK`): no beats, tempo 0; every feature is zero;
* audio shorter than :data:`MIN_BEAT_SECONDS`: onsets are measured but no beats are tracked
  (a tempo cannot be estimated from less than two beats), so the beat columns are zero;
* frames whose time lies outside the music (before 0 or after its end) get all-zero rows.

"All zero" is never a valid value of a beat column (the phase columns are sin/cos pairs, so a
real phase has sin^2 + cos^2 = 1), so a model can tell "no beat information" from "on the beat".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._audio import mono_at

#: Rate every analysis runs at (librosa's default; plenty for rhythm).
ANALYSIS_SR = 22050
HOP = 512  # onset frames of ~23 ms
N_FFT = 2048
N_MELS = 128
#: A peak below this (about -80 dBFS) is treated as silence.
SILENCE_PEAK = 1e-4
#: Shorter audio gets onsets but no beat tracking.
MIN_BEAT_SECONDS = 1.0
#: Tempi are reported in 0..TEMPO_SCALE bpm -> 0..1 in the features.
TEMPO_SCALE = 240.0
_BLOCK_FRAMES = 2048  # spectrogram block: 2048 frames (47 s at HOP, 12 s at REFINE_HOP)
REFINE_N_FFT = 512  # short-window onset function for beat refinement
REFINE_HOP = 128
REFINE_S = 0.06  # a beat may move this far to the attack it belongs to
#: Which default tracker made the beats (part of every embedding cache key; see beat_tracker.py).
TRACKER_VERSION = "percussive-dp-2"
#: Progress steps of :func:`analyze_beats` (its stages).
ANALYSIS_STEPS = 4

#: Columns of :func:`frame_beat_features`, in order.
FRAME_COLUMNS: tuple[str, ...] = (
    "beat_pulse",      # exp(-d^2 / 2), d = distance to the nearest beat in video frames
    "beat_distance",   # distance to the nearest beat in beats, 0 (on a beat) .. 1 (half-way)
    "beat_phase_sin",  # sin(2 pi phase), phase = 0 on a beat, 0.5 half-way to the next
    "beat_phase_cos",  # cos(2 pi phase)
    "bar_phase_sin",   # sin(2 pi bar phase), bars of 4 beats from the downbeat guess
    "bar_phase_cos",
    "onset",           # attack strength (fine onset envelope), max over the frame's span,
                       # / its 99th percentile, clipped to <= 1
    "tempo",           # global tempo / TEMPO_SCALE (constant over frames)
)

#: Columns of :func:`global_beat_vector`, in order.
GLOBAL_COLUMNS: tuple[str, ...] = (
    "has_beats",         # 1 when beats were found in the span, else 0 (and the rest is 0)
    "tempo",             # bpm / TEMPO_SCALE
    "tempo_octave_sin",  # sin/cos of 2 pi log2(tempo): the same for 60, 120 and 240 bpm
    "tempo_octave_cos",
    "beat_density",      # beats per second / 4
    "beat_regularity",   # 1 - std/mean of the inter-beat intervals, clipped to 0..1
    "pulse_clarity",     # autocorrelation of the onset envelope at the beat period, 0..1
    "beat_strength",     # mean onset on beats / mean onset, / 4, clipped to 0..1
    "offbeat_ratio",     # mean onset half-way between beats / mean onset on beats (syncopation)
    "onset_mean",        # mean onset strength / the track's 99th percentile
    "onset_std",
    "onset_rate",        # detected onsets per second / 10
)


@dataclass
class BeatAnalysis:
    """librosa's view of a piece of music; times are seconds from the start of the audio."""

    tempo: float                 # bpm; 0 when no beats
    beats: np.ndarray            # beat times [B] float64, sorted
    onset_env: np.ndarray        # onset strength [T] float32 (librosa units, >= 0)
    onset_times: np.ndarray      # time of each onset_env frame [T]
    duration: float              # seconds of audio analysed
    #: index (0..3) of the first beat the per-frame bar-phase features count bars of 4 from. For the
    #: tracker's own grid this is librosa's guess as before issue 19 (the beat phase with the most onset
    #: strength), which the built-in model was trained with; an edited grid sets it to its bar start.
    downbeat_offset: int = 0
    onset_ref: float = 1.0       # 99th percentile of onset_env (normaliser, > 0)
    onsets: np.ndarray = field(default_factory=lambda: np.zeros(0))  # onset times (s)
    silent: bool = False
    #: fine onset strength (23 ms window, REFINE_HOP hop) used to time attacks to the video frame
    attack_env: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    attack_ref: float = 1.0      # 99th percentile of attack_env (normaliser, > 0)

    #: the bars a listener hears (the tracker's metre and bar start, or an edit's): what
    #: :attr:`downbeats`, the grid preview and the beat overlay show; None = ``downbeat_offset``
    beats_per_bar: int = 4
    bar_offset: int | None = None

    @property
    def has_beats(self) -> bool:
        return self.beats.size >= 2

    @property
    def downbeats(self) -> np.ndarray:
        """Times of the beats that start a bar (every ``beats_per_bar``-th from ``bar_offset``)."""
        if self.beats.size == 0:
            return np.zeros(0)
        start = self.downbeat_offset if self.bar_offset is None else self.bar_offset
        return self.beats[start::max(int(self.beats_per_bar), 1)]

    @property
    def beat_period(self) -> float:
        """Median inter-beat interval (s); 0 without beats."""
        if self.beats.size < 2:
            return 0.0
        return float(np.median(np.diff(self.beats)))


def _mel_power_blocks(y: np.ndarray, sr: int, n_fft: int = N_FFT, hop: int = HOP,
                      n_mels: int = N_MELS) -> np.ndarray:
    """Mel power spectrogram [N_MELS, T] of the centred STFT, computed in blocks of frames.

    Same frames as ``librosa.feature.melspectrogram(y, center=True, pad_mode="constant")``, but the
    complex STFT of only one block (~47 s) exists at a time.
    """
    import librosa

    n_frames = 1 + len(y) // hop
    half = n_fft // 2
    mel_fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmax=sr / 2)
    out = np.empty((n_mels, n_frames), np.float32)
    for t0 in range(0, n_frames, _BLOCK_FRAMES):
        t1 = min(t0 + _BLOCK_FRAMES, n_frames)
        a, b = t0 * hop - half, (t1 - 1) * hop + half  # samples under frames t0..t1-1
        seg = y[max(a, 0): min(b, len(y))]
        seg = np.pad(seg, (max(-a, 0), max(b - len(y), 0)))  # zeros beyond the ends (centre=True)
        spec = np.abs(librosa.stft(seg, n_fft=n_fft, hop_length=hop, center=False)) ** 2
        out[:, t0:t1] = (mel_fb @ spec)[:, : t1 - t0]
    return out


def _guess_downbeat(beats: np.ndarray, env: np.ndarray) -> int:
    """Which beat (0..3) starts a bar: the phase whose beats carry the most onset energy."""
    if beats.size < 8:
        return 0
    idx = np.clip(np.round(beats * ANALYSIS_SR / HOP).astype(int), 0, len(env) - 1)
    strength = env[idx]
    scores = [strength[k::4].mean() for k in range(4)]
    return int(np.argmax(scores))


def _attack_envelope(y: np.ndarray) -> np.ndarray:
    """Onset strength with a 23 ms window every 5.8 ms: where attacks really are.

    beat_track works on 23 ms frames of an onset function whose 93 ms window smears attacks;
    against exact beat grids its beats come out 20-45 ms late, more than a video frame at 30 fps.
    This short-window function times them to a few milliseconds. It is librosa's onset strength
    (mean positive log-mel flux, 80 dB range, centred), computed block by block so that no
    full-length intermediate beyond the mel power itself is made.
    """
    mel = _mel_power_blocks(y, ANALYSIS_SR, n_fft=REFINE_N_FFT, hop=REFINE_HOP, n_mels=64)
    n = mel.shape[1]
    env = np.zeros(n, np.float32)
    if n < 2:
        return env
    top = 10.0 * np.log10(max(float(mel.max()), 1e-10)) - 80.0
    shift = REFINE_N_FFT // (2 * REFINE_HOP)  # librosa's centring of the onset function
    for t0 in range(1, n, _BLOCK_FRAMES):
        t1 = min(t0 + _BLOCK_FRAMES, n)
        db = np.maximum(10.0 * np.log10(np.maximum(mel[:, t0 - 1: t1], 1e-10)), top)
        flux = np.maximum(0.0, np.diff(db, axis=1)).mean(axis=0)  # frames t0 .. t1-1
        a, b = t0 + shift, min(t1 + shift, n)
        if a < n:
            env[a:b] = flux[: b - a]
    return env


def _refine_beats(env: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Move each beat to the strongest attack within +-REFINE_S on the fine envelope ``env``.

    A beat moves only where that function has a clear peak (above its median + a quarter of its
    99th percentile), so beats the tracker placed in quiet passages by tempo stay where they are.
    """
    if beats.size == 0 or env.size == 0 or env.max() <= 0:
        return beats
    floor = float(np.median(env) + 0.25 * np.percentile(env, 99))
    fr = ANALYSIS_SR / REFINE_HOP
    reach = int(round(REFINE_S * fr))
    out = beats.copy()
    for i, b in enumerate(beats):
        c = int(round(b * fr))
        lo, hi = max(c - reach, 0), min(c + reach + 1, len(env))
        if hi <= lo:
            continue
        j = lo + int(np.argmax(env[lo:hi]))
        if env[j] >= floor:
            out[i] = j / fr
    return np.maximum.accumulate(out)  # keep them sorted


def _tempo(env: np.ndarray) -> float:
    """librosa's global tempo estimate (mean tempogram, log-normal prior at 120 bpm), in blocks.

    ``librosa.feature.tempo`` builds the whole tempogram (344 lags x every frame, float64):
    ~420 MB for ten minutes. Its mean over frames is a sum, so we add up the tempogram of one
    block of frames at a time (same centre padding, so every column is identical) and hand the
    mean to ``librosa.feature.tempo``, which applies the same prior and picks the same peak.
    """
    import librosa

    win = int(librosa.time_to_frames(8.0, sr=ANALYSIS_SR, hop_length=HOP))  # librosa's ac_size
    padded = np.pad(env.astype(np.float64), win // 2, mode="linear_ramp", end_values=[0, 0])
    total = np.zeros(win)
    for t0 in range(0, len(env), _BLOCK_FRAMES):
        t1 = min(t0 + _BLOCK_FRAMES, len(env))
        tg = librosa.feature.tempogram(onset_envelope=padded[t0: t1 + win - 1], sr=ANALYSIS_SR,
                                       hop_length=HOP, win_length=win, center=False)
        total += tg[:, : t1 - t0].sum(axis=1)
    mean = total / max(len(env), 1)
    return float(librosa.feature.tempo(tg=mean[:, None], sr=ANALYSIS_SR, hop_length=HOP,
                                       aggregate=None).reshape(-1)[0])


def _p99(env: np.ndarray) -> float:
    """A normaliser for an onset envelope: its 99th percentile, else its max, else 1."""
    if env.size == 0:
        return 1.0
    p = float(np.percentile(env, 99))
    return p if p > 1e-6 else (float(env.max()) if env.max() > 0 else 1.0)


def analyze_beats(wave: Any, sr: int, *, progress: Callable[[int, int], None] | None = None,
                  tracker: str = "default") -> BeatAnalysis:
    """Tempo, beats, bars and onsets of ``wave`` ([S], [C, S] or [1, C, S] at ``sr`` Hz, any rate).

    ``tracker``: ``"default"`` (the pack's tracker) or ``"librosa"`` (the one shipped before issue
    19, for comparison).

    ``progress(done, ANALYSIS_STEPS)`` is called after each of the analysis' stages (resampling and the
    spectrogram, onsets, the attack envelope, tempo and beats), so a long track can be followed and
    an exception raised in it (a user's cancel) stops the analysis between stages.
    """
    import librosa

    def step(done: int) -> None:
        if progress is not None:
            progress(done, ANALYSIS_STEPS)

    y = mono_at(wave, sr, ANALYSIS_SR)
    duration = len(y) / ANALYSIS_SR
    peak = max(float(y.max()), -float(y.min())) if y.size else 0.0  # no |y| copy
    if peak < SILENCE_PEAK:
        n = 1 + len(y) // HOP
        step(ANALYSIS_STEPS)
        return BeatAnalysis(tempo=0.0, beats=np.zeros(0), onset_env=np.zeros(n, np.float32),
                            onset_times=np.arange(n) * HOP / ANALYSIS_SR, duration=duration,
                            silent=True)
    mel_db = librosa.power_to_db(_mel_power_blocks(y, ANALYSIS_SR))
    step(1)
    env = librosa.onset.onset_strength(S=mel_db, sr=ANALYSIS_SR, hop_length=HOP, n_fft=N_FFT)
    env = env.astype(np.float32)
    times = librosa.frames_to_time(np.arange(len(env)), sr=ANALYSIS_SR, hop_length=HOP)
    ref = _p99(env)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=ANALYSIS_SR, hop_length=HOP,
                                        units="time") if env.size > 3 else np.zeros(0)
    step(2)
    attack = _attack_envelope(y)
    attack_ref = _p99(attack)
    step(3)
    tempo, beats = 0.0, np.zeros(0)
    downbeat, per_bar = 0, 4
    if duration >= MIN_BEAT_SECONDS and env.max() > 0:
        if tracker == "librosa":
            _, b = librosa.beat.beat_track(onset_envelope=env, sr=ANALYSIS_SR, hop_length=HOP,
                                           bpm=_tempo(env), units="time", trim=True)
            beats = np.asarray(b, dtype=np.float64)
        elif tracker == "default":
            from .beat_tracker import track_beats

            found = track_beats(y)
            beats, downbeat, per_bar = found.beats, found.downbeat_offset, found.beats_per_bar
        else:
            raise ValueError(f"unknown beat tracker {tracker!r}: use 'default' or 'librosa'")
        if beats.size >= 2:  # the tempo the beats actually have (beat_track's is the prior's peak)
            beats = _refine_beats(attack, beats)
            tempo = 60.0 / float(np.median(np.diff(beats)))
        else:
            beats = np.zeros(0)
    bars = None if tracker == "librosa" else downbeat
    step(ANALYSIS_STEPS)
    return BeatAnalysis(tempo=tempo, beats=beats, onset_env=env, onset_times=times,
                        duration=duration, downbeat_offset=_guess_downbeat(beats, env),
                        beats_per_bar=per_bar, bar_offset=bars,
                        onset_ref=ref, onsets=np.asarray(onsets, dtype=np.float64),
                        attack_env=attack, attack_ref=attack_ref)


def _phase(t: np.ndarray, beats: np.ndarray, period: float) -> np.ndarray:
    """Beat phase in [0, 1) at times ``t``: interpolated between beats, extrapolated outside."""
    idx = np.searchsorted(beats, t, side="right") - 1  # last beat at or before t
    phase = np.empty_like(t)
    before = idx < 0
    after = idx >= len(beats) - 1
    mid = ~before & ~after
    i = idx[mid]
    phase[mid] = (t[mid] - beats[i]) / (beats[i + 1] - beats[i])
    phase[before] = (t[before] - beats[0]) / period
    phase[after] = (t[after] - beats[-1]) / period
    return np.mod(phase, 1.0)


def frame_beat_features(analysis: BeatAnalysis, n_frames: int, fps: float,
                        start: float = 0.0) -> np.ndarray:
    """Per-frame rhythm features ``[n_frames, len(FRAME_COLUMNS)]`` float32.

    Frame ``i`` shows time ``start + i / fps`` of the music. See :data:`FRAME_COLUMNS`; rows for
    times outside the music are zero, and without beats the beat columns are zero.
    """
    n_frames = int(n_frames)
    if n_frames < 0 or not fps or fps <= 0:
        raise ValueError(f"need n_frames >= 0 and fps > 0, got {n_frames}, {fps}")
    return beat_features_at(analysis, float(start) + np.arange(n_frames) / float(fps), fps)


def beat_features_at(analysis: BeatAnalysis, times: Any, fps: float) -> np.ndarray:
    """The rows of :func:`frame_beat_features` at any track times (s), e.g. a beat-time grid.

    ``fps`` sets the widths measured in video frames (the beat pulse, each row's onset span).
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    out = np.zeros((t.size, len(FRAME_COLUMNS)), np.float32)
    if t.size == 0 or analysis.silent:
        return out
    inside = (t >= 0) & (t <= analysis.duration)
    if not inside.any():
        return out
    ti = t[inside]

    env = analysis.attack_env
    if env.size:  # strongest attack within the frame's span, so short peaks are not missed
        fr = ANALYSIS_SR / REFINE_HOP
        lo = np.clip(np.floor((ti - 0.5 / fps) * fr).astype(int), 0, len(env) - 1)
        hi = np.clip(np.ceil((ti + 0.5 / fps) * fr).astype(int), lo + 1, len(env))
        onset = np.array([env[a:b].max() for a, b in zip(lo, hi)], np.float32)
        out[inside, 6] = np.clip(onset / analysis.attack_ref, 0.0, 1.0)

    if analysis.has_beats:
        beats, period = analysis.beats, analysis.beat_period
        j = np.clip(np.searchsorted(beats, ti), 1, len(beats) - 1)
        d = np.minimum(np.abs(ti - beats[j - 1]), np.abs(ti - beats[j]))
        d = np.where(ti < beats[0], beats[0] - ti, d)
        d = np.where(ti > beats[-1], ti - beats[-1], d)
        ph = _phase(ti, beats, period)
        # bar phase: count beats from the downbeat guess, 4 beats to a bar
        idx = np.searchsorted(beats, ti, side="right") - 1
        beat_no = idx - analysis.downbeat_offset + ph
        bar = np.mod(beat_no / 4.0, 1.0)
        out[inside, 0] = np.exp(-0.5 * (d * fps) ** 2)
        out[inside, 1] = np.clip(2.0 * np.minimum(ph, 1.0 - ph), 0.0, 1.0)
        out[inside, 2] = np.sin(2 * np.pi * ph)
        out[inside, 3] = np.cos(2 * np.pi * ph)
        out[inside, 4] = np.sin(2 * np.pi * bar)
        out[inside, 5] = np.cos(2 * np.pi * bar)
        out[inside, 7] = min(analysis.tempo / TEMPO_SCALE, 1.0)
    return out


def global_beat_vector(analysis: BeatAnalysis, start: float = 0.0,
                       end: float | None = None) -> np.ndarray:
    """e_b: rhythm summary of ``[start, end]`` (default: all) as ``[len(GLOBAL_COLUMNS)]`` float32."""
    out = np.zeros(len(GLOBAL_COLUMNS), np.float32)
    if analysis.silent:
        return out
    end = analysis.duration if end is None else min(float(end), analysis.duration)
    start = max(float(start), 0.0)
    if end <= start:
        return out
    tt = analysis.onset_times
    sel = (tt >= start) & (tt <= end)
    env = analysis.onset_env[sel] if sel.any() else analysis.onset_env[:0]
    span = end - start
    if env.size:
        out[9] = float(env.mean() / analysis.onset_ref)
        out[10] = float(env.std() / analysis.onset_ref)
    on = analysis.onsets
    out[11] = min(float(((on >= start) & (on <= end)).sum()) / span / 10.0, 1.0)
    beats = analysis.beats[(analysis.beats >= start) & (analysis.beats <= end)]
    if beats.size < 2 or env.size < 4:
        return out
    ibi = np.diff(beats)
    period = float(np.median(ibi))
    tempo = 60.0 / period
    out[0] = 1.0
    out[1] = min(tempo / TEMPO_SCALE, 1.0)
    out[2] = np.sin(2 * np.pi * np.log2(tempo))
    out[3] = np.cos(2 * np.pi * np.log2(tempo))
    out[4] = min(len(beats) / span / 4.0, 1.0)
    out[5] = float(np.clip(1.0 - ibi.std() / max(ibi.mean(), 1e-6), 0.0, 1.0))
    lag = int(round(period * ANALYSIS_SR / HOP))
    x = env - env.mean()
    denom = float(np.dot(x, x))
    if 0 < lag < len(x) and denom > 0:
        out[6] = float(np.clip(np.dot(x[:-lag], x[lag:]) / denom, 0.0, 1.0))
    frames = np.clip(np.round(beats * ANALYSIS_SR / HOP).astype(int), 0, len(analysis.onset_env) - 1)
    half = np.clip(np.round((beats[:-1] + ibi / 2) * ANALYSIS_SR / HOP).astype(int), 0,
                   len(analysis.onset_env) - 1)
    on_beat = float(analysis.onset_env[frames].mean())
    mean = float(env.mean())
    out[7] = float(np.clip(on_beat / max(mean, 1e-6) / 4.0, 0.0, 1.0))
    out[8] = float(np.clip(analysis.onset_env[half].mean() / max(on_beat, 1e-6), 0.0, 1.0))
    return out


def f_measure(estimated: np.ndarray, reference: np.ndarray, window: float = 0.07) -> float:
    """Beat-tracking F-measure (as mir_eval): one-to-one matches within +-``window`` seconds."""
    est = np.sort(np.asarray(estimated, dtype=np.float64))
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    if est.size == 0 or ref.size == 0:
        return float(est.size == ref.size)
    hits, i, j = 0, 0, 0
    while i < ref.size and j < est.size:  # greedy in time; exact while window < half a beat
        if abs(ref[i] - est[j]) <= window:
            hits, i, j = hits + 1, i + 1, j + 1
        elif est[j] < ref[i]:
            j += 1
        else:
            i += 1
    if hits == 0:
        return 0.0
    precision, recall = hits / est.size, hits / ref.size
    return 2 * precision * recall / (precision + recall)
