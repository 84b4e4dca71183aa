"""Media I/O shared by the nodes, the data readers and the training scripts.

Conventions: audio is float32 numpy ``[channels, samples]``; frames are uint8 numpy
``[N, H, W, 3]`` RGB. ``comfy`` converts to and from ComfyUI's IMAGE/MASK/AUDIO types.
Importing this package does not import torch (the comfy converters import it when called).
"""

from __future__ import annotations

from .audio import fit_audio_length, load_audio, resample, to_mono
from .comfy import (
    audio_from_comfy,
    audio_to_comfy,
    image_from_comfy,
    image_to_comfy,
    mask_from_comfy,
    mask_to_comfy,
)
from .image import load_image, load_image_with_alpha, resize_square
from .video import VideoInfo, probe_video, read_video_frames, write_mp4

__all__ = [
    "VideoInfo",
    "audio_from_comfy",
    "audio_to_comfy",
    "fit_audio_length",
    "image_from_comfy",
    "image_to_comfy",
    "load_audio",
    "load_image",
    "load_image_with_alpha",
    "mask_from_comfy",
    "mask_to_comfy",
    "probe_video",
    "read_video_frames",
    "resample",
    "resize_square",
    "to_mono",
    "write_mp4",
]
