"""Thin ComfyUI node classes, one module per stage. The work lives in the `dabfusion` package.

    Load DabFusion Model ─► model ─┬──────────────┬───────────────┬──────────────┐
    Load Music ─► AUDIO ─► Music Encoder ─► music ─► FlowDiffusion Sampler ─► flows ─► Warp and Decode
    IMAGE ─(Segment Person)─► FlowAE Encode ─► latent ─┘                                  │
                                                        frames + fps + AUDIO ─► Video Combine ─► MP4, VIDEO
                                                        frames + fps + AUDIO ─► Beat Alignment ─► scores, tempo, plot
"""

from .beat_alignment import BeatAlignment
from .common import register_folders
from .examples import provide_examples_in_comfyui
from .flow_ae import FlowAEEncode, WarpAndDecode
from .load_model import LoadDabFusionModel
from .music import LoadMusic, MusicEncoder
from .sampler import FlowDiffusionSampler
from .segment import SegmentPerson
from .video import VideoCombine

register_folders()
provide_examples_in_comfyui()  # the example files the templates name, into ComfyUI's input/

NODE_CLASS_MAPPINGS: dict = {
    "DabFusionModelLoader": LoadDabFusionModel,
    "DabFusionLoadMusic": LoadMusic,
    "DabFusionMusicEncoder": MusicEncoder,
    "DabFusionSegmentPerson": SegmentPerson,
    "DabFusionFlowAEEncode": FlowAEEncode,
    "DabFusionSampler": FlowDiffusionSampler,
    "DabFusionWarpDecode": WarpAndDecode,
    "DabFusionVideoCombine": VideoCombine,
    "DabFusionBeatAlignment": BeatAlignment,
}
NODE_DISPLAY_NAME_MAPPINGS: dict = {
    "DabFusionModelLoader": "Load DabFusion Model",
    "DabFusionLoadMusic": "Load Music",
    "DabFusionMusicEncoder": "Music Encoder",
    "DabFusionSegmentPerson": "Segment Person",
    "DabFusionFlowAEEncode": "FlowAE Encode",
    "DabFusionSampler": "FlowDiffusion Sampler",
    "DabFusionWarpDecode": "Warp and Decode",
    "DabFusionVideoCombine": "Video Combine (Dance Any Beat)",
    "DabFusionBeatAlignment": "Beat Alignment",
}
