"""The default beat tracker: percussive magnitude onsets, a bar-aware tempo model, a varying-tempo DP.

Why not librosa's ``beat_track`` on its onset strength: that onset function is the mean
*log*-mel flux, in which a quiet hi-hat rises as far as a loud kick and, being broadband, fills
more bands. On the usual dance pattern (kick on the beat, hats or claps between) the dynamic
programme then locks to the off-beats. The benchmark and the lab log that chose each step below:
``docs/beat_tracking.md`` and ``docs/beat_tracking_lab_log.md``.

1. **Percussive magnitude onsets.** A 64-band mel spectrogram, its percussive part (median-filter
   HPSS, soft mask: a kick is a short broadband line, a bass note a long narrow one), and the
   positive flux of its *linear* magnitudes, summed over bands. Without the log, a mix's loudest
   attacks (kick, snare) dominate, as they do for a listener.
2. **Tempo.** The autocorrelation of that onset function in 8 s windows every 2 s, at one, two
   and four beat periods (a beat is confirmed by the half bar and the bar), times a log-normal
   prior around 120 bpm. The windows' tempi are decoded jointly (Viterbi, at most 8 % change
   between windows), so ramps are followed and one odd window cannot flip the octave.
3. **Beats.** Dynamic programming over onset frames (Ellis 2007) with the local period: each
   beat is the best mix of onset strength and an interval close to the period at that time.
   Beats at either end that sit in silence or a fading tail are dropped.
4. **Bars.** Beats per bar (3 or 4) and which beat starts the bar: the metre and phase whose
   first beats carry the most low-band onset (kick) and harmonic change (chords change on the bar).

Known limits (measured): the tempo octave of drum and bass and of half-time trap (notated
fast, found at half), and a drumless intro may be tracked half a beat off until the drums come in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Analysis rate, STFT size and hop (11.6 ms frames: enough for the DP; attacks are refined later).
SR = 22050
N_FFT = 1024
HOP = 256
FPS = SR / HOP
#: Band edges (Hz): low = kick and bass, mid = snare body, chords, voice; high = hats, cymbals.
BANDS = ((30.0, 150.0), (150.0, 2500.0), (2500.0, 11025.0))
#: Tempo search range (bpm) and the resonance prior: log-normal around PRIOR_BPM.
MIN_BPM, MAX_BPM = 50.0, 220.0
PRIOR_BPM = 120.0
PRIOR_OCTAVES = 0.9
#: Window (s) and hop (s) of the local tempo estimate.
TEMPO_WINDOW_S = 8.0
TEMPO_HOP_S = 2.0
#: How strongly the DP holds an interval to the local period (librosa's "tightness"; it uses 100).
#: 400 keeps counting through a drumless intro instead of following its off-beat stabs (lab log).
TIGHTNESS = 400.0
#: Largest tempo change between tempo windows (TEMPO_HOP_S apart), and its cost in log-salience.
MAX_TEMPO_STEP = 0.08
TEMPO_STEP_COST = 1.0
N_MELS = 64
FMIN = 30.0
#: The onset function is the flux of mel power ** ONSET_POWER: 0.5 = magnitudes. Log (librosa)
#: locks to off-beat hats; power (1.0) to loud off-beat pads and skanks (lab log).
ONSET_POWER = 0.5
#: HPSS median filters: frames (~0.2 s) and mel bands.
HPSS_TIME = 17
HPSS_FREQ = 9
#: Shorter music gets no beats (as :data:`.beats.MIN_BEAT_SECONDS`: two beats need a second).
MIN_SECONDS = 1.0
#: A trailing beat is kept only with an attack this strong against the median beat's.
TAIL_ATTACK = 0.1
#: Mel bands summed for bass-note onsets (centres below ~150 Hz).
LOW_MELS = 8
#: Metres considered and their weight (4/4 is the default unless 3 is clearly better).
METRES = ((4, 1.0), (3, 0.8))
_BLOCK = 4096  # STFT frames per block (~47 s): bounded memory on long tracks


@dataclass
class TrackedBeats:
    """What :func:`track_beats` finds: beat times (s), tempo (bpm), bar position of the beats."""

    beats: np.ndarray
    tempo: float
    downbeat_offset: int = 0
    beats_per_bar: int = 4


def mel_power(y: np.ndarray) -> np.ndarray:
    """Mel power spectrogram [N_MELS, T] at :data:`FPS`, computed block by block."""
    import librosa

    n = 1 + len(y) // HOP
    fb = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN)
    out = np.zeros((N_MELS, n), np.float32)
    half = N_FFT // 2
    for t0 in range(0, n, _BLOCK):
        t1 = min(t0 + _BLOCK, n)
        a, b = t0 * HOP - half, (t1 - 1) * HOP + half
        seg = np.pad(y[max(a, 0): min(b, len(y))], (max(-a, 0), max(b - len(y), 0)))
        spec = np.abs(librosa.stft(seg, n_fft=N_FFT, hop_length=HOP, center=False)) ** 2
        out[:, t0:t1] = (fb @ spec)[:, : t1 - t0]
    return out


def percussive(mel: np.ndarray) -> np.ndarray:
    """The percussive part of a mel power spectrogram (median-filter HPSS, soft mask).

    A kick and a bass note are both loud and low; what tells them apart is that the kick is
    short and broadband (a vertical line in the spectrogram) and the note long and narrow.
    """
    from scipy.ndimage import median_filter

    harm = median_filter(mel, size=(1, HPSS_TIME))
    perc = median_filter(mel, size=(HPSS_FREQ, 1))
    mask = perc ** 2 / (perc ** 2 + harm ** 2 + 1e-20)
    return mel * mask


def band_onsets_from_mel(mel: np.ndarray) -> np.ndarray:
    """Per-band onset strength [3, T] at :data:`FPS`: positive flux of the percussive mel
    spectrogram raised to :data:`ONSET_POWER` (magnitudes).

    Linear magnitudes, not logs: a mix's loudest attacks (kick, snare) are its beats; in a log
    spectrum a quiet hi-hat rises as far as a kick, and the hats between the kicks win.
    """
    import librosa

    perc = percussive(mel) ** ONSET_POWER
    centres = librosa.mel_frequencies(n_mels=N_MELS, fmin=FMIN, fmax=SR / 2)
    flux = np.maximum(0.0, np.diff(perc, axis=1, prepend=perc[:, :1]))
    return np.stack([flux[(centres >= lo) & (centres < hi)].sum(axis=0) for lo, hi in BANDS])


def activation(bands: np.ndarray) -> np.ndarray:
    """The beat activation [T]: the bands' onsets summed, over their 99th percentile (at most 4).

    Summed with equal weights and not compressed: on the dev split, weighting the low band up
    or compressing (square root) lost more excerpts than it won (lab log).
    """
    x = bands.sum(axis=0)
    return np.minimum(x / (np.percentile(x, 99) + 1e-12), 4.0)


def _prior(bpm: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)


def _autocorr(x: np.ndarray, max_lag: int) -> np.ndarray:
    x = x - x.mean()
    n = len(x)
    f = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(f * np.conj(f))[: max_lag + 1]
    ac /= np.maximum(n - np.arange(max_lag + 1), 1)  # unbiased
    return ac / (ac[0] + 1e-12)


#: Candidate tempi: log-spaced, 0.25% apart (a 0.5% period error drifts a beat in 200 beats).
BPM_GRID = np.exp(np.arange(np.log(MIN_BPM), np.log(MAX_BPM), np.log(1.0025)))


def tempo_salience(act: np.ndarray) -> np.ndarray:
    """Salience of each tempo in :data:`BPM_GRID` for one stretch of the activation.

    The autocorrelation at the beat period, at two and at four periods (a beat is confirmed by
    the half bar and the bar), times the resonance prior. Lags are fractional (interpolated).
    """
    lags = 60.0 * FPS / BPM_GRID
    max_lag = int(np.ceil(4 * lags.max())) + 2
    ac = _autocorr(act, min(max_lag, len(act) - 1))
    at = lambda l: np.interp(l, np.arange(len(ac)), ac, right=0.0)  # noqa: E731
    sal = at(lags) + at(2 * lags) + at(4 * lags)
    return np.maximum(sal, 0.0) * _prior(BPM_GRID)


def local_periods(act: np.ndarray) -> np.ndarray:
    """The beat period (frames) at each frame.

    The tempo of each window is decoded jointly (Viterbi over windows): a window may move the
    tempo by at most :data:`MAX_TEMPO_STEP` from the one before and pays for each step, so a
    ramp is followed while a single odd window cannot flip the octave.
    """
    n = len(act)
    win, hop = int(TEMPO_WINDOW_S * FPS), int(TEMPO_HOP_S * FPS)
    starts = list(range(0, max(n - win, 0) + 1, hop)) or [0]
    sal = np.array([tempo_salience(act[s: s + win]) for s in starts])
    obs = np.log(sal / (sal.max() + 1e-12) + 1e-2)
    reach = int(np.ceil(np.log(1 + MAX_TEMPO_STEP) / np.log(BPM_GRID[1] / BPM_GRID[0])))
    score = obs[0].copy()
    back = np.zeros(sal.shape, np.int64)
    idx = np.arange(len(BPM_GRID))
    for w in range(1, len(starts)):
        best = np.full(len(BPM_GRID), -np.inf)
        arg = np.zeros(len(BPM_GRID), np.int64)
        for d in range(-reach, reach + 1):
            src = np.clip(idx - d, 0, len(idx) - 1)
            cand = score[src] - TEMPO_STEP_COST * abs(d) / reach
            better = cand > best
            best[better], arg[better] = cand[better], src[better]
        score, back[w] = best + obs[w], arg
    path = [int(np.argmax(score))]
    for w in range(len(starts) - 1, 0, -1):
        path.append(int(back[w][path[-1]]))
    best_bpm = BPM_GRID[np.array(path[::-1])]
    centres = np.array(starts) + min(win, n) / 2
    return 60.0 * FPS / np.interp(np.arange(n), centres, best_bpm)


def dp_beats(act: np.ndarray, period: np.ndarray, tightness: float = TIGHTNESS) -> np.ndarray:
    """Beat frames by dynamic programming with a period that may vary per frame."""
    n = len(act)
    a = act / (act.std() + 1e-9)
    score = a.astype(np.float64).copy()
    back = np.full(n, -1)
    for t in range(n):
        p = period[t]
        lo, hi = int(t - round(2.0 * p)), int(t - round(0.5 * p))
        if hi < 0:
            continue
        lo = max(lo, 0)
        tau = np.arange(lo, hi + 1)
        cand = score[tau] - tightness * np.log((t - tau) / p) ** 2
        j = int(np.argmax(cand))
        if cand[j] > 0:
            score[t] += cand[j]
            back[t] = tau[j]
    # the last beat: the best score in the final period
    p_end = period[-1]
    tail = np.arange(max(n - int(round(p_end)), 0), n)
    # local maxima of score over the last period favour a full-length path
    t = int(tail[np.argmax(score[tail])])
    path = [t]
    while back[t] >= 0:
        t = int(back[t])
        path.append(t)
    return np.array(path[::-1])


def _trim_edges(frames: np.ndarray, act: np.ndarray, mel: np.ndarray) -> np.ndarray:
    """Drop beats at either end that sit in silence or a fading tail. At the start: no attack near
    the beat and the music there quiet (within 45 dB of silence, or 20 dB under the track's median
    loudness); beats in a quiet but playing intro stay (the DP put them at the tempo). At the end:
    beats after the last one with an attack (:data:`TAIL_ATTACK` of the median beat's)."""
    if frames.size == 0:
        return frames
    loud = mel.sum(axis=0)
    median = float(np.median(loud[loud > loud.max() * 1e-6])) if loud.max() > 0 else 0.0
    idx = np.clip(np.round(frames).astype(int), 0, len(loud) - 1)
    level = np.array([loud[max(i - 2, 0): i + 6].max() for i in idx])
    attack = np.array([act[max(i - 2, 0): i + 3].max() for i in idx])
    strong = float(np.median(attack)) + 1e-12
    silent = level < loud.max() * 10 ** (-45 / 10)
    weak = ((attack < 0.2 * strong) & (level < median * 10 ** (-20 / 10))) | silent
    keep = ~weak
    if not keep.any():
        return frames[:0]
    i = int(np.argmax(keep))
    # at the end, a beat needs an attack: the music stops there, a held chord or drone rings on
    ends = (attack >= TAIL_ATTACK * strong) & ~silent
    j = len(ends) - int(np.argmax(ends[::-1])) if ends[i:].any() else len(keep) - int(np.argmax(keep[::-1]))
    return frames[i:max(j, i + 1)]


def bar_position(frames: np.ndarray, bands: np.ndarray, mel: np.ndarray) -> tuple[int, int]:
    """(downbeat offset, beats per bar): the metre (3 or 4) and phase whose first beats carry the
    most kick (low percussive onsets), bass-note onsets and harmonic change (chords change on the
    bar). Each cue over its own mean, summed (lab log: downbeat F on SynthDance and the dev set)."""
    if frames.size < 8:
        return 0, 4
    n = mel.shape[1]
    idx = np.clip(np.round(frames).astype(int), 0, n - 1)

    def near(x: np.ndarray) -> np.ndarray:
        return np.array([x[max(i - 2, 0): i + 3].max() for i in idx])

    kick = near(bands[0])
    low = mel[:LOW_MELS].sum(axis=0)
    bass = near(np.maximum(0.0, np.diff(np.log1p(low / (np.percentile(low, 99) + 1e-12) * 100.0), prepend=0.0)))
    # harmonic change at beat i: the log-mel spectrum of the beat it starts against the one before
    logm = np.log1p(mel / (np.percentile(mel, 99) + 1e-12) * 100.0)
    ends = np.r_[idx[1:], min(n, idx[-1] + int(np.median(np.diff(idx))))]  # the last beat: one period
    seg = np.array([logm[:, a:b].mean(axis=1) if b > a else logm[:, min(a, n - 1)] for a, b in zip(idx, ends)])
    change = np.r_[0.0, np.linalg.norm(np.diff(seg, axis=0), axis=1)]
    # each cue over its mean, capped: one outlier (the music stopping) must not pick the bar
    ev = sum(np.minimum(x / (x.mean() + 1e-12), 3.0) for x in (kick, bass, change))
    best = (-np.inf, 0, 4)
    for meter, bias in METRES:
        for ph in range(meter):
            score = bias * (ev[ph::meter].mean() - ev.mean())
            if score > best[0]:
                best = (score, ph, meter)
    return best[1], best[2]


def track_beats(y: np.ndarray) -> TrackedBeats:
    """Beats of mono ``y`` at :data:`SR` (float32)."""
    mel = mel_power(y)
    bands = band_onsets_from_mel(mel)
    act = activation(bands)
    if act.max() <= 0 or len(act) < FPS * MIN_SECONDS:
        return TrackedBeats(np.zeros(0), 0.0)
    period = local_periods(act)
    frames = _trim_edges(dp_beats(act, period).astype(np.float64), act, mel)
    beats = frames * HOP / SR
    tempo = 60.0 / float(np.median(np.diff(beats))) if beats.size >= 2 else 0.0
    offset, meter = bar_position(frames, bands, mel)
    return TrackedBeats(beats, tempo, offset, meter)
