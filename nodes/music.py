"""LoadMusic (a file or core AUDIO, cut to start + duration) and MusicEncoder (the model's encoder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dabfusion.errors import MediaError
from dabfusion.media.comfy import audio_from_comfy, audio_to_comfy

from . import comfy_compat as compat
from .common import CATEGORY, MODEL, MUSIC

#: Example tracks shipped with the pack, offered when the input folder has no file of that name.
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "dabfusion" / "assets" / "examples"
_MAX_SECONDS = 36000.0


def example_files(extensions: set[str]) -> list[str]:
    if not EXAMPLES_DIR.is_dir():
        return []
    return sorted(p.name for p in EXAMPLES_DIR.iterdir() if p.is_file() and p.suffix.lower() in extensions)


def music_choices() -> list[str]:
    found = compat.input_files(compat.AUDIO_EXTENSIONS)
    return found + [n for n in example_files(compat.AUDIO_EXTENSIONS) if n not in found]


def resolve_input_file(name: str, what: str = "music file") -> Path:
    """A combo entry of the input folder (or a shipped example); a clear error if it is gone."""
    if not name:
        raise MediaError(f"no {what} chosen: pick one, give a path, or connect an AUDIO input")
    path = compat.input_path(name)
    if path.is_file():
        return path
    example = EXAMPLES_DIR / name
    if example.is_file():
        return example
    raise MediaError(f"{what} '{name}' is not in ComfyUI's input folder ({compat.input_directory()}); upload it "
                     "again, give a path, or connect an AUDIO input")


def _path_of(audio_file: str, path: str) -> Path:
    if path and path.strip():
        p = Path(path.strip()).expanduser()
        if not p.is_file():
            raise MediaError(f"music file not found: {p}")
        return p
    return resolve_input_file(audio_file)


class LoadMusic:
    """Music from ComfyUI's input folder, a path, or another node's AUDIO, cut to start + duration."""

    DESCRIPTION = ("Loads music to dance to: a file from ComfyUI's input folder (upload one with core Load Audio, "
                   "or use the bundled example track), a file path, or the AUDIO of another node. Cuts it to "
                   "start + duration; the video will be as long as this music unless the sampler says otherwise.")
    CATEGORY = f"{CATEGORY}/music"
    RETURN_TYPES = ("AUDIO", "FLOAT")
    RETURN_NAMES = ("audio", "seconds")
    OUTPUT_TOOLTIPS = ("The music (core AUDIO): feed Music Encoder and Video Combine with it.",
                       "Its length in seconds.")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio_file": (music_choices(), {
                    "tooltip": "A music file in ComfyUI's input folder (wav, flac, ogg, mp3, m4a, or a video's "
                               "audio track). Ignored when 'path' or 'audio' is given."}),
                "start": ("FLOAT", {"default": 0.0, "min": 0.0, "max": _MAX_SECONDS, "step": 0.01,
                                    "tooltip": "Where in the music the dance starts, in seconds."}),
                "duration": ("FLOAT", {"default": 0.0, "min": 0.0, "max": _MAX_SECONDS, "step": 0.01,
                                       "tooltip": "Seconds of music to use; 0 = everything after 'start'."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "A music file path; overrides 'audio_file'."}),
                "audio": ("AUDIO", {"tooltip": "Music from another node (e.g. core Load Audio); overrides the "
                                               "file. Its first batch item is used."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, audio_file, path=""):
        # audio_file is validated at run time: with an AUDIO input connected it is not used.
        if path and path.strip() and not Path(path.strip()).expanduser().is_file():
            return f"music file not found: {path.strip()}"
        return True

    @classmethod
    def IS_CHANGED(cls, audio_file, start=0.0, duration=0.0, path="", **_):
        try:
            p = _path_of(audio_file, path)
        except MediaError:
            return ""
        st = p.stat()
        return f"{p}:{st.st_size}:{st.st_mtime_ns}:{start}:{duration}"

    def load(self, audio_file, start=0.0, duration=0.0, path="", audio=None):
        start, duration = float(start), float(duration)
        if start < 0 or duration < 0:
            raise MediaError(f"start and duration must be >= 0 seconds, got {start} and {duration}")
        if audio is not None:
            wave, sr = audio_from_comfy(audio)
            a = int(round(start * sr))
            if a >= wave.shape[1]:
                raise MediaError(f"start {start:.2f} s is beyond the end of the AUDIO input "
                                 f"({wave.shape[1] / sr:.2f} s long)")
            b = wave.shape[1] if duration == 0 else min(wave.shape[1], a + int(round(duration * sr)))
            wave = np.ascontiguousarray(wave[:, a:b])
        else:
            from dabfusion.pipeline import load_music

            wave, sr = load_music(_path_of(audio_file, path), start=start, seconds=duration or None)
        if wave.shape[1] == 0:
            raise MediaError("the music is empty after cutting it to start + duration")
        return (audio_to_comfy(wave, sr), float(wave.shape[1] / sr))


class MusicEncoder:
    """Encodes music with the model's own music encoder (CLAP / Wav2CLIP adapters and librosa beats)."""

    DESCRIPTION = ("Analyses the music with the encoder the model was trained with: the global embedding (CLAP "
                   "and Wav2CLIP through their adapters and/or librosa rhythm statistics) and per-frame beat "
                   "features. Silent music is refused: there is nothing to dance to.")
    CATEGORY = f"{CATEGORY}/music"
    RETURN_TYPES = (MUSIC, "FLOAT", "FLOAT")
    RETURN_NAMES = ("music", "seconds", "tempo_bpm")
    OUTPUT_TOOLTIPS = ("The music embedding for the FlowDiffusion Sampler.", "The music's length in seconds.",
                       "The tempo the beat tracker found (0 when there is no steady beat).")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "The DabFusion model whose music encoder to use."}),
            "audio": ("AUDIO", {"tooltip": "The music (e.g. from Load Music); its first batch item is used."}),
        }}

    def encode(self, model, audio):
        wave, sr = audio_from_comfy(audio)
        compat.check_interrupted()
        clip = model.encode_music(wave, sr, what="the music (AUDIO input)")
        # The whole track's analysis is the slow part: run it here, per stage and per batch of windows, so
        # the bar moves and cancel works; the encoder caches it, so clip.summary and the sampler reuse it.
        bar = compat.ProgressBar(1)
        compat.load_models(model, ("music",))  # CLAP / Wav2CLIP and adapters, when the model has them
        summary = clip.analyze(progress=bar)
        return (clip, float(clip.duration), float(summary.tempo))
