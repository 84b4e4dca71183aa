"""The beat trackers the benchmark compares, by name: each maps (mono wave, sr) -> BeatAnalysis.

``"default"`` is what :func:`dabfusion.music.analyze_beats` runs; ``"librosa"`` is the tracker the
pack shipped before issue 19 (librosa's dynamic-programming ``beat_track`` on its mel-flux onset
strength, beats refined to the attacks), kept as the baseline every table shows beside it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .beats import BeatAnalysis, analyze_beats

Tracker = Callable[[np.ndarray, int], BeatAnalysis]


def _librosa(wave: np.ndarray, sr: int) -> BeatAnalysis:
    return analyze_beats(wave, sr, tracker="librosa")


def _default(wave: np.ndarray, sr: int) -> BeatAnalysis:
    return analyze_beats(wave, sr)


#: name -> tracker; ``default`` first.
TRACKERS: dict[str, Tracker] = {"default": _default, "librosa": _librosa}
