"""LoadMusic (a file or core AUDIO, cut to start + duration; the beat grid controls and its preview) and
MusicEncoder (the model's encoder, on the grid Load Music set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dabfusion.errors import BeatGridError, MediaError
from dabfusion.media.comfy import audio_beat_edit, audio_from_comfy, audio_to_comfy, image_to_comfy
from dabfusion.music.beat_grid import TEMPO_CHOICES, BeatGridEdit, looks_like_beat_list

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


def _beat_file(text: str) -> Path | None:
    """The beat file a 'beats' entry names (a path, or a file in ComfyUI's input folder), or None."""
    p = Path(text).expanduser()
    if p.is_file():
        return p
    try:
        q = compat.input_path(text)
    except (OSError, ValueError):
        return None
    return q if q.is_file() else None


def beat_grid_edit(beat_offset=0.0, tempo="as tracked", bpm=0.0, beats="", *, start: float = 0.0,
                   length: float | None, music_seconds: float | None) -> BeatGridEdit | None:
    """Load Music's beat controls as a :class:`BeatGridEdit` in the times of the cut music (None: as tracked).

    ``beats`` is a beat file (a path, or a file in the input folder) or a typed list of times, in the
    seconds of the whole music (``music_seconds`` long); it is cut to ``start`` .. ``start + length``.
    """
    text = (beats or "").strip()
    listed = None
    if text:
        if looks_like_beat_list(text):
            from dabfusion.music.beat_grid import parse_beat_list

            listed = parse_beat_list(text, music_seconds, source="Load Music's typed beats list",
                                     labels="\n" in text)
        else:
            path = _beat_file(text)
            if path is None:
                raise BeatGridError(f"beat file '{text}' not found: give a path, a file in ComfyUI's input folder "
                                    f"({compat.input_directory()}), or type the times (e.g. 0.5, 1.0, 1.5)")
            from dabfusion.music.beat_grid import read_beat_file

            listed = read_beat_file(path, music_seconds)
    edit = BeatGridEdit(offset_beats=beat_offset, tempo=tempo, bpm=bpm or None,
                        beats=None if listed is None else listed.beats,
                        downbeat=0 if listed is None else listed.downbeat,
                        source="" if listed is None else listed.source)
    if edit.is_identity:
        return None
    return edit.cut(start, length)


class LoadMusic:
    """Music from ComfyUI's input folder, a path, or another node's AUDIO, cut to start + duration, with the
    beat grid controls (offset, tempo halve / double, BPM, a beat list) and a picture of the grid."""

    DESCRIPTION = ("Loads music to dance to: a file from ComfyUI's input folder (upload one with core Load Audio, "
                   "or use the bundled example track), a file path, or the AUDIO of another node. Cuts it to "
                   "start + duration; the video will be as long as this music unless the sampler says otherwise.\n"
                   "Beat grid: the beat tracker finds the beats the dance follows. Check them in 'beat_grid' (connect "
                   "a Preview Image; queue just that output to look before sampling): an orange line should run "
                   "through each kick (the tall blue peaks). If not, fix the grid here: beat_offset 0.5 moves it onto "
                   "the off-beat (the tracker sometimes locks onto the hi-hats), tempo halve / double, bpm sets a "
                   "steady grid at that tempo, and 'beats' replaces the tracker with your own beat times (a file, "
                   "e.g. exported from a DAW, or a typed list). The grid travels with the AUDIO output, so Music "
                   "Encoder, the sampler (and its best-of-N scoring), Video Combine's beat overlay and Beat "
                   "Alignment all use this same grid.")
    CATEGORY = f"{CATEGORY}/music"
    RETURN_TYPES = ("AUDIO", "FLOAT", "IMAGE")
    RETURN_NAMES = ("audio", "seconds", "beat_grid")
    OUTPUT_TOOLTIPS = ("The music (core AUDIO) with its beat grid: feed Music Encoder, Video Combine and Beat "
                       "Alignment with it.",
                       "Its length in seconds.",
                       "A picture of the beat grid on the music (waveform, attacks, beats, bars and tempo): connect a "
                       "Preview Image to check the grid before sampling.")
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
                "beat_offset": ("FLOAT", {"default": 0.0, "min": -4.0, "max": 4.0, "step": 0.05,
                                          "tooltip": "Move the beat grid by this many beats: 0.5 puts it on the "
                                                     "off-beat (when the tracker locked onto the hi-hats between the "
                                                     "kicks), -0.5 back; 1 moves the bar starts by one beat. Applied "
                                                     "last, in beats of the grid after tempo / bpm / beats."}),
                "tempo": (list(TEMPO_CHOICES), {"default": "as tracked",
                                                "tooltip": "halve: keep every other beat (the ones on the bar "
                                                           "starts), when the tracker counts twice too fast; "
                                                           "double: a beat between each pair, when it counts "
                                                           "half as fast."}),
                "bpm": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1000.0, "step": 0.1,
                                  "tooltip": "A steady grid at this tempo (beats per minute) over the whole music, "
                                             "placed where the music's attacks are strongest; 0 = the tracker's "
                                             "beats. Not together with 'beats'."}),
                "beats": ("STRING", {"default": "",
                                     "tooltip": "Your own beat times, replacing the tracker: a text file (a path, or "
                                                "a file in ComfyUI's input folder: one time in seconds per line, "
                                                "# comments, optional label after the time - 'downbeat' or 'bar' "
                                                "marks a bar start; Audacity label tracks and time,label CSV marker "
                                                "exports work - or a JSON list), or the times typed here "
                                                "(0.5, 1.0, 1.5, ...). Times are seconds of the whole music file, "
                                                "before 'start' cuts it. Empty = the tracker."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, audio_file, path="", beats=""):
        # audio_file is validated at run time: with an AUDIO input connected it is not used.
        if path and path.strip() and not Path(path.strip()).expanduser().is_file():
            return f"music file not found: {path.strip()}"
        text = (beats or "").strip()
        if text and not looks_like_beat_list(text) and _beat_file(text) is None:
            return (f"beat file '{text}' not found (a path, or a file in ComfyUI's input folder); or type the beat "
                    "times (0.5, 1.0, ...)")
        if text:  # a list that is empty, unsorted or not numbers is refused here (a red node), not mid-run;
            try:  # times past the music's end can only be checked once the music is loaded
                beat_grid_edit(beats=text, length=None, music_seconds=None)
            except BeatGridError as err:
                return str(err)
        return True

    @classmethod
    def IS_CHANGED(cls, audio_file, start=0.0, duration=0.0, path="", beats="", **_):
        try:
            p = _path_of(audio_file, path)
        except MediaError:
            return ""
        st = p.stat()
        key = f"{p}:{st.st_size}:{st.st_mtime_ns}:{start}:{duration}"
        text = (beats or "").strip()
        bf = _beat_file(text) if text and not looks_like_beat_list(text) else None
        if bf is not None:  # an edited beat file re-runs the node (and what follows it)
            bst = bf.stat()
            key += f"|{bf}:{bst.st_size}:{bst.st_mtime_ns}"
        return key

    def load(self, audio_file, start=0.0, duration=0.0, path="", audio=None, beat_offset=0.0,
             tempo="as tracked", bpm=0.0, beats=""):
        from dabfusion.music.beat_grid import tracked_analysis
        from dabfusion.music.beat_grid_preview import draw_beat_grid
        from dabfusion.music.beats import ANALYSIS_STEPS

        start, duration = float(start), float(duration)
        if start < 0 or duration < 0:
            raise MediaError(f"start and duration must be >= 0 seconds, got {start} and {duration}")
        wants_file_length = bool((beats or "").strip())
        if audio is not None:
            wave, sr = audio_from_comfy(audio)
            music_seconds = wave.shape[1] / sr
            a = int(round(start * sr))
            if a >= wave.shape[1]:
                raise MediaError(f"start {start:.2f} s is beyond the end of the AUDIO input "
                                 f"({wave.shape[1] / sr:.2f} s long)")
            b = wave.shape[1] if duration == 0 else min(wave.shape[1], a + int(round(duration * sr)))
            wave = np.ascontiguousarray(wave[:, a:b])
        else:
            from dabfusion.pipeline import load_music

            source = _path_of(audio_file, path)
            wave, sr = load_music(source, start=start, seconds=duration or None)
            music_seconds = None
            if wants_file_length:  # a beat list is checked against the whole file
                from dabfusion.media.audio import audio_duration

                music_seconds = audio_duration(source)
        if wave.shape[1] == 0:
            raise MediaError("the music is empty after cutting it to start + duration")
        seconds = float(wave.shape[1] / sr)
        edit = beat_grid_edit(beat_offset, tempo, bpm, beats, start=start, length=seconds,
                              music_seconds=music_seconds if music_seconds is not None else start + seconds)
        # The tracker's analysis (cached per audio: Music Encoder, Video Combine and Beat Alignment reuse it),
        # then the edit: the grid the preview shows is the grid the whole graph uses.
        compat.check_interrupted()
        bar = compat.ProgressBar(ANALYSIS_STEPS)
        raw = tracked_analysis(wave, sr, progress=bar)
        grid = raw if edit is None else edit.apply(raw)
        picture = draw_beat_grid(grid, wave, sr, edit=edit, tracked_tempo=raw.tempo)
        return (audio_to_comfy(wave, sr, beat_edit=edit), seconds, image_to_comfy(picture))


class MusicEncoder:
    """Encodes music with the model's own music encoder (CLAP / Wav2CLIP adapters and librosa beats)."""

    DESCRIPTION = ("Analyses the music with the encoder the model was trained with: the global embedding (CLAP "
                   "and Wav2CLIP through their adapters and/or librosa rhythm statistics) and per-frame beat "
                   "features, on the beat grid set in Load Music (its beat controls travel with the AUDIO; "
                   "core Load Audio gives the tracker's grid). Silent music is refused: there is nothing to "
                   "dance to.")
    CATEGORY = f"{CATEGORY}/music"
    RETURN_TYPES = (MUSIC, "FLOAT", "FLOAT")
    RETURN_NAMES = ("music", "seconds", "tempo_bpm")
    OUTPUT_TOOLTIPS = ("The music embedding for the FlowDiffusion Sampler.", "The music's length in seconds.",
                       "The tempo of the beat grid the dance follows: the tracker's, or the one Load Music's beat "
                       "controls set (0 when there is no steady beat).")
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
        clip = model.encode_music(wave, sr, what="the music (AUDIO input)", beat_edit=audio_beat_edit(audio))
        # The whole track's analysis is the slow part: run it here, per stage and per batch of windows, so
        # the bar moves and cancel works; the encoder caches it, so clip.summary and the sampler reuse it.
        bar = compat.ProgressBar(1)
        compat.load_models(model, ("music",))  # CLAP / Wav2CLIP and adapters, when the model has them
        summary = clip.analyze(progress=bar)
        return (clip, float(clip.duration), float(summary.tempo))
