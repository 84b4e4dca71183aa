"""BeatAlignment: IMAGE frames + AUDIO + fps -> how well the motion meets the music's beats (scores, tempo,
beat times, a plot and a short report). The work is :func:`dabfusion.metrics.beat_report.beat_report`."""

from __future__ import annotations

from dabfusion.errors import MediaError
from dabfusion.media.comfy import audio_beat_edit, audio_from_comfy, image_from_comfy, image_to_comfy

from . import comfy_compat as compat
from .common import CATEGORY


class BeatAlignment:
    """Measures music-motion alignment of a video: 2D-MM Align, AV-Align, tempo and beats."""

    DESCRIPTION = ("Measures how well the motion in the frames meets the beats of the music: 2D-MM Align (do the "
                   "dancer's slow-downs land on beats? DabFusion paper) and AV-Align (do motion peaks meet the "
                   "audio's onsets?), both 0..1, higher is better. Also gives the music's tempo and beat times and a "
                   "plot of the motion speed against the beat grid. The audio must start with the first frame. "
                   "The beat grid is the one set in Load Music (its beat controls travel with the AUDIO), so the "
                   "video is scored against the grid it was made on.")
    CATEGORY = f"{CATEGORY}/analysis"
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "STRING", "IMAGE", "STRING")
    RETURN_NAMES = ("mm_align", "av_align", "tempo", "beat_times", "plot", "report")
    OUTPUT_TOOLTIPS = (
        "2D-MM Align (0..1): mean closeness of each kinematic beat (speed minimum) to the nearest music beat.",
        "AV-Align (0..1): overlap of the audio's onsets and the video's motion peaks (within one frame). It needs "
        "8 onsets or more (about 4 s of music) to mean anything; the report says when a clip has too few.",
        "Tempo of the music's beat grid in beats per minute (the tracker's, or the one set in Load Music).",
        "The music's beat times inside the clip, in seconds from the first frame, comma-separated.",
        "Motion speed (blue) against the beat grid (orange); green dots are the kinematic beats.",
        "A short text report of the numbers.",
    )
    FUNCTION = "analyze"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The video frames (an IMAGE batch, e.g. from Warp and Decode)."}),
                "audio": ("AUDIO", {"tooltip": "The music, starting with the first frame (from Load Music: with "
                                               "its beat grid)."}),
                "fps": ("FLOAT", {"default": 30.0, "min": 0.01, "max": 240.0, "step": 0.01,
                                  "tooltip": "Frame rate of the frames; connect Warp and Decode's fps."}),
            },
            "optional": {
                "sigma": ("FLOAT", {"default": 3.0, "min": 0.1, "max": 30.0, "step": 0.1,
                                    "tooltip": "2D-MM Align tolerance in frames (the paper and AIST++ use 3)."}),
                "analysis_size": ("INT", {"default": 0, "min": 0, "max": 1024, "step": 8,
                                          "tooltip": "Resize frames to this square size before measuring motion; "
                                                     "0 keeps them as they are, 128 is the paper's resolution."}),
            },
        }

    def analyze(self, images, audio, fps, sigma=3.0, analysis_size=0):
        from dabfusion.metrics.beat_plot import plot_beat_report
        from dabfusion.metrics.beat_report import beat_report

        shape = tuple(getattr(images, "shape", ()))
        if len(shape) == 4 and shape[0] == 0:
            raise MediaError("Beat Alignment got zero frames in images: there is no motion to measure")
        frames = image_from_comfy(images)
        wave, sr = audio_from_comfy(audio)
        bar = compat.ProgressBar(1)
        report = beat_report(frames, fps, wave, sr, sigma=float(sigma),  # checks fps, frames and music
                             size=int(analysis_size) or None, progress=bar, beat_edit=audio_beat_edit(audio))
        plot = image_to_comfy(plot_beat_report(report))
        return (report.mm_align, report.av_align, report.tempo, report.beat_times_text(), plot, report.summary())
