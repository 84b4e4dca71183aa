"""VideoCombine: IMAGE frames + AUDIO + fps -> an MP4 in ComfyUI's output folder, a preview and core VIDEO."""

from __future__ import annotations

import json
import logging

from dabfusion.errors import MediaError
from dabfusion.media.comfy import audio_beat_edit, audio_from_comfy, image_from_comfy

from . import comfy_compat as compat
from .common import CATEGORY

log = logging.getLogger(__name__)


def overlay_beats(frames, fps: float, wave, sample_rate, beat_edit=None):
    """Frames with a flash on each beat of the music's grid (the tracker's, with the creator's ``beat_edit``
    from Load Music applied); a clear error without music, a warning without beats."""
    from dabfusion.media.beat_overlay import draw_beat_overlay
    from dabfusion.music.beat_grid import edited_analysis

    if wave is None:
        raise MediaError("Video Combine: beat_overlay needs the audio input - connect the music or switch "
                         "beat_overlay off")
    beats = edited_analysis(wave, sample_rate, beat_edit).beats
    if beats.size == 0:
        log.warning("Video Combine: no beats found in the audio, so the video is saved without the beat overlay")
    return draw_beat_overlay(frames, beats, fps)


#: At most this many progress updates per video (each one is a message to the browser).
PROGRESS_UPDATES = 100


def frame_progress(n_frames: int):
    """A ``progress(done, total)`` for write_mp4 that moves the node's bar (and checks for cancel) every
    ``n_frames / PROGRESS_UPDATES`` frames; a cancel stops the encode and write_mp4 leaves no file."""
    bar = compat.ProgressBar(n_frames)
    bar.update_absolute(0)  # a cancel pressed before the encode started stops it here
    every = max(1, -(-n_frames // PROGRESS_UPDATES))

    def progress(done: int, total: int | None) -> None:
        if done % every == 0 or done == n_frames:
            bar.update_absolute(done, n_frames)

    return progress


class VideoCombine:
    """Writes the frames and the music to an MP4 (h264 + AAC) with the workflow in its metadata."""

    DESCRIPTION = ("Saves the frames as an MP4 (h264, with the music as AAC) in ComfyUI's output folder, shows it "
                   "in the node, and stores the workflow in the file (drop the MP4 on ComfyUI to get the graph "
                   "back). Its VIDEO output works with core Save Video and other video nodes.")
    CATEGORY = f"{CATEGORY}/video"
    RETURN_TYPES = ("VIDEO", "STRING")
    RETURN_NAMES = ("video", "filename")
    OUTPUT_TOOLTIPS = ("The saved video as core VIDEO.", "Full path of the MP4.")
    FUNCTION = "combine"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames (an IMAGE batch, e.g. from Warp and Decode)."}),
                "fps": ("FLOAT", {"default": 30.0, "min": 0.01, "max": 240.0, "step": 0.01,
                                  "tooltip": "Frame rate; connect Warp and Decode's fps to keep the music in sync."}),
                "filename_prefix": ("STRING", {"default": "DanceAnyBeat/dance",
                                               "tooltip": "Name of the file in the output folder (a sub-folder "
                                                          "may be given with '/'); a counter is appended."}),
                "crf": ("INT", {"default": 19, "min": 0, "max": 51,
                                "tooltip": "h264 quality: lower is better and bigger (18-23 is typical)."}),
            },
            "optional": {
                "audio": ("AUDIO", {"tooltip": "The music: trimmed (or padded with silence) to the video's length."}),
                "beat_overlay": ("BOOLEAN", {"default": False,
                                             "tooltip": "Flash a border on the frame of each music beat (needs the "
                                                        "audio; the beat grid set in Load Music), to see whether "
                                                        "the motion meets the beats. It is drawn into the saved "
                                                        "video."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def combine(self, images, fps, filename_prefix="DanceAnyBeat/dance", crf=19, audio=None, beat_overlay=False,
                prompt=None, extra_pnginfo=None):
        from dabfusion.media.video import write_mp4

        shape = tuple(getattr(images, "shape", ()))
        if len(shape) == 4 and shape[0] == 0:
            raise MediaError("Video Combine got zero frames: there is nothing to save")
        frames = image_from_comfy(images)
        if not fps or float(fps) <= 0:
            raise MediaError(f"fps must be > 0, got {fps}")
        wave = sr = None
        if audio is not None:
            wave, sr = audio_from_comfy(audio)
        if beat_overlay:
            frames = overlay_beats(frames, float(fps), wave, sr, audio_beat_edit(audio))
        metadata = {}
        if compat.metadata_enabled():
            if prompt is not None:
                metadata["prompt"] = json.dumps(prompt)
            for key, value in (extra_pnginfo or {}).items():
                metadata[key] = json.dumps(value)
        h, w = frames.shape[1:3]
        path, file, subfolder = compat.save_path(filename_prefix, "mp4", w, h)
        write_mp4(path, frames, float(fps), audio=wave, sample_rate=sr, crf=int(crf), metadata=metadata,
                  progress=frame_progress(len(frames)))
        preview = {"filename": file, "subfolder": subfolder, "type": "output"}
        return {"ui": {"images": [preview], "animated": (True,)},
                "result": (compat.video_from_file(path), str(path))}
