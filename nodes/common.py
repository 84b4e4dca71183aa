"""What the node modules share: the pack's custom types, categories and model folders.

Custom types exist only where no core type fits:

- ``DABFUSION_MODEL``: a loaded :class:`dabfusion.pipeline.DabFusionPipeline` (flow AE + diffusion
  model + music encoder, checked against each other, and the steps the nodes call);
- ``MUSIC_EMBEDDING``: a :class:`dabfusion.pipeline.MusicClip` (the music and the model's encoder);
- ``DABFUSION_LATENT``: a :class:`dabfusion.pipeline.ReferenceLatent` (z0 of the start frame);
- ``FLOW_LATENT``: a :class:`dabfusion.pipeline.FlowLatent` (generated latent flows + occlusions).

Images, masks, audio and video travel as core IMAGE, MASK, AUDIO and VIDEO.
"""

from __future__ import annotations

from . import comfy_compat as compat

MODEL = "DABFUSION_MODEL"
MUSIC = "MUSIC_EMBEDDING"
LATENT = "DABFUSION_LATENT"
FLOWS = "FLOW_LATENT"

CATEGORY = "Dance Any Beat"

#: Model folders: ours, the music encoders', and the ones Impact Pack uses for YOLO and SAM.
DABFUSION_FOLDER = "dabfusion"
FOLDERS = {
    DABFUSION_FOLDER: {".safetensors", ".json"},
    "clap": {".pt", ".pth", ".ckpt", ".bin", ".safetensors"},
    "wav2clip": {".pt", ".pth"},
    "ultralytics_bbox": {".pt"},
    "ultralytics_segm": {".pt"},
    "sams": {".pth", ".pt"},
}

_registered = False


def register_folders() -> None:
    """Register the model folders once (keeping paths extra_model_paths.yaml already added)."""
    global _registered
    if _registered:
        return
    for name, exts in FOLDERS.items():
        compat.register_model_folder(name, set(exts))
    _registered = True


def search_dirs() -> dict[str, list]:
    """Folders the music encoder files are looked up in (CLAP, Wav2CLIP)."""
    return {"clap": compat.model_folders("clap"), "wav2clip": compat.model_folders("wav2clip")}


def progress_bar(total: int) -> compat.ProgressBar:
    return compat.ProgressBar(max(1, int(total)))
