"""Music encoding for DabFusion: e = [e_c (CLAP), e_w (Wav2CLIP), e_b (librosa beats)].

Public API (imported lazily, so ``import dabfusion.music`` stays cheap):

- :class:`MusicEncoder`, :class:`MusicEmbedding`, :func:`check_compatible` (``encoder``)
- :func:`analyze_beats`, :func:`frame_beat_features`, :func:`global_beat_vector`,
  :data:`FRAME_COLUMNS`, :data:`GLOBAL_COLUMNS` (``beats``)
- :func:`load_clap_audio`, :class:`ClapAudioEncoder` (``clap_branch``)
- :func:`load_wav2clip`, :class:`Wav2ClipEncoder` (``wav2clip_branch``)
- :class:`MelStatsEncoder` (``mel_branch``): the weight-free stand-in encoder
- :class:`BeatGridEdit`, :func:`read_beat_file`, :func:`parse_beat_list`, :func:`tracked_analysis`,
  :func:`edited_analysis` (``beat_grid``): the creator's edits of the beat grid; :func:`draw_beat_grid`
  (``beat_grid_preview``): its picture
- :class:`MusicAdapter`, :class:`AdapterConfig`, :func:`train_adapter` (``adapters``)
- :func:`resolve_model_file` (``model_files``)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MusicEncoder": "encoder", "MusicEmbedding": "encoder", "check_compatible": "encoder",
    "spec_hash": "encoder",
    "analyze_beats": "beats", "frame_beat_features": "beats", "beat_features_at": "beats",
    "global_beat_vector": "beats",
    "BeatAnalysis": "beats", "FRAME_COLUMNS": "beats", "GLOBAL_COLUMNS": "beats",
    "f_measure": "beats",
    "BeatGridEdit": "beat_grid", "read_beat_file": "beat_grid", "parse_beat_list": "beat_grid",
    "tracked_analysis": "beat_grid", "edited_analysis": "beat_grid", "draw_beat_grid": "beat_grid_preview",
    "load_clap_audio": "clap_branch", "ClapAudioEncoder": "clap_branch",
    "load_wav2clip": "wav2clip_branch", "Wav2ClipEncoder": "wav2clip_branch",
    "MelStatsEncoder": "mel_branch",
    "MusicAdapter": "adapters", "AdapterConfig": "adapters", "train_adapter": "adapters",
    "resolve_model_file": "model_files",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
