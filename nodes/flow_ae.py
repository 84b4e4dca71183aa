"""FlowAE Encode (start frame -> z0) and Warp and Decode (z0 + generated flows -> frames)."""

from __future__ import annotations

from dataclasses import replace

from dabfusion.errors import MediaError
from dabfusion.media.comfy import image_to_comfy

from . import comfy_compat as compat
from .common import CATEGORY, FLOWS, LATENT, MODEL

FITS = ("crop", "pad")


class FlowAEEncode:
    """Encodes the start frame into the flow auto-encoder's latent z0."""

    DESCRIPTION = ("Encodes the reference image (the person who will dance) into the flow auto-encoder's latent. "
                   "The image is made square ('fit') and resized to the model's frame size (128x128 for the "
                   "paper's model). For a photo of anyone, run Segment Person first.")
    CATEGORY = f"{CATEGORY}/generate"
    RETURN_TYPES = (LATENT, "IMAGE")
    RETURN_NAMES = ("latent", "reference")
    OUTPUT_TOOLTIPS = ("The reference latent z0, for the sampler and Warp and Decode.",
                       "The reference frame as the model sees it (square, model size).")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "The DabFusion model."}),
            "image": ("IMAGE", {"tooltip": "The start frame: one image (a batch of one)."}),
            "fit": (list(FITS), {"default": "crop",
                                 "tooltip": "Make a non-square image square by cropping its centre or by "
                                            "padding it."}),
        }}

    def encode(self, model, image, fit="crop"):
        shape = tuple(getattr(image, "shape", ()))
        if len(shape) == 4 and shape[0] != 1:
            raise MediaError(f"FlowAE Encode takes one start frame, got a batch of {shape[0]} images; pick one "
                             "(e.g. with core 'Get Image from Batch')")
        if len(shape) not in (3, 4):
            raise MediaError(f"FlowAE Encode needs an IMAGE [1, H, W, 3], got shape {shape}")
        if fit not in FITS:
            raise MediaError(f"fit must be one of {FITS}, got {fit!r}")
        bar = compat.ProgressBar(2)
        bar.update_absolute(0)
        frame, _ = model.prepare_reference(image, fit=fit, segment=False)  # square, model size
        bar.update_absolute(1)
        compat.load_models(model, ("flow_ae",))  # inside ComfyUI: onto its device, through its model management
        ref = model.encode_reference(frame, fit=fit)
        ref = replace(ref, z0=compat.to_intermediate(ref.z0))  # the output holds no VRAM (as core's outputs)
        bar.update_absolute(2)
        return (ref, image_to_comfy(ref.image))


class WarpAndDecode:
    """Warps z0 with every generated flow and decodes the frames."""

    DESCRIPTION = ("Turns the generated latent flows into frames: every frame is the reference latent warped by "
                   "its flow, masked by its occlusion map and decoded (the decoder fills what the occlusion hid). "
                   "Outputs the frames as an IMAGE batch and their frame rate.")
    CATEGORY = f"{CATEGORY}/generate"
    RETURN_TYPES = ("IMAGE", "FLOAT")
    RETURN_NAMES = ("frames", "fps")
    OUTPUT_TOOLTIPS = ("The video frames (an IMAGE batch).", "Their frame rate, for Video Combine.")
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "The DabFusion model (the one that sampled the flows)."}),
            "latent": (LATENT, {"tooltip": "The reference latent from FlowAE Encode."}),
            "flows": (FLOWS, {"tooltip": "The latent flows from the FlowDiffusion Sampler."}),
            "chunk_size": ("INT", {"default": 16, "min": 1, "max": 512,
                                   "tooltip": "Frames decoded at once (lower it if memory runs out)."}),
        }}

    def decode(self, model, latent, flows, chunk_size=16):
        n = flows.n_frames
        bar = compat.ProgressBar(max(1, -(-n // int(chunk_size))))
        bar.update_absolute(0)  # a cancel pressed before this node started stops it here
        compat.load_models(model, ("flow_ae",))
        frames = model.render(latent, flows, chunk=int(chunk_size), progress=bar)  # checks after every chunk
        return (image_to_comfy(frames), float(flows.fps))
