"""Load DabFusion Model: a model folder from the "dabfusion" model folders, or the built-in demo model."""

from __future__ import annotations

import os
from pathlib import Path

from dabfusion.errors import ModelFileError
from dabfusion.model_bundle import DEMO_MODEL_DIR, is_bundle_dir
from dabfusion.pipeline import DabFusionPipeline

from . import comfy_compat as compat
from .common import CATEGORY, DABFUSION_FOLDER, MODEL, register_folders, search_dirs

DEMO_ENTRY = "built-in demo model (SynthDance)"
DEVICES = ("auto", "cpu")
_MAX_DEPTH = 3


def list_bundles() -> list[str]:
    """Model folders (relative names, "/"-separated) under every registered "dabfusion" folder."""
    found: list[str] = []
    for root in compat.model_folders(DABFUSION_FOLDER):
        if not root.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(root, followlinks=True):
            here = Path(dirpath)
            depth = len(here.relative_to(root).parts)
            if depth >= _MAX_DEPTH:
                dirnames[:] = []
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            if depth and is_bundle_dir(here):
                name = here.relative_to(root).as_posix()
                if name not in found:
                    found.append(name)
    return sorted(found)


def resolve_bundle(name: str) -> Path | None:
    """The folder of a combo entry (None: the demo model); a clear error naming the folders."""
    if name in ("", DEMO_ENTRY):
        return None
    direct = Path(name).expanduser()
    if direct.is_absolute() and is_bundle_dir(direct):
        return direct
    for root in compat.model_folders(DABFUSION_FOLDER):
        if is_bundle_dir(root / name):
            return root / name
    folders = ", ".join(str(f) for f in compat.model_folders(DABFUSION_FOLDER))
    raise ModelFileError(
        f"DabFusion model '{name}' was not found. Put the model folder (flow_ae.safetensors + "
        f"diffusion.safetensors, as training/ writes them) in the '{DABFUSION_FOLDER}' model folder ({folders}).")


class LoadDabFusionModel:
    """Loads a DabFusion generator: flow auto-encoder, flow diffusion model and music encoder."""

    DESCRIPTION = ("Loads a DabFusion model folder (flow auto-encoder + music-conditioned flow diffusion model "
                   "+ music encoder) and checks that its parts belong together. The built-in demo model was "
                   "trained on SynthDance, the project's synthetic dance world: it animates SynthDance-like "
                   "dancers; train on AIST++ (see training/) for real people.")
    CATEGORY = f"{CATEGORY}/model"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The loaded generator, for Music Encoder, FlowAE Encode, the sampler and Warp and Decode.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        register_folders()
        return {"required": {
            "checkpoint": ([DEMO_ENTRY, *list_bundles()], {
                "default": DEMO_ENTRY,
                "tooltip": f"A model folder inside models/{DABFUSION_FOLDER}/ (one sub-folder per model, holding "
                           "flow_ae.safetensors and diffusion.safetensors), or the built-in demo model."}),
            "device": (list(DEVICES), {
                "default": "auto",
                "tooltip": "auto: ComfyUI's device (the GPU when there is one; ComfyUI's model management loads the "
                           "model there for each node's work and offloads it when it needs the memory); cpu: "
                           "always the CPU."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, checkpoint, device="auto"):
        if device not in DEVICES:
            return f"device must be one of {DEVICES}, got {device!r}"
        try:
            path = resolve_bundle(checkpoint)
        except ModelFileError as err:
            return str(err)
        if path is None and not is_bundle_dir(DEMO_MODEL_DIR):
            return (f"The built-in demo model is missing from this installation ({DEMO_MODEL_DIR}); reinstall "
                    "the pack or pick a model folder.")
        return True

    def load(self, checkpoint, device="auto"):
        register_folders()
        path = resolve_bundle(checkpoint)
        if device == "auto" and compat.manages_models():
            # Inside ComfyUI: held on the offload device, loaded onto ComfyUI's device by each node that
            # works with it (compat.load_models) and offloaded when ComfyUI needs the memory. The cache
            # returns the same object to later runs; it stays registered once.
            pipe = DabFusionPipeline.from_folder(path, device=compat.offload_device(), search_dirs=search_dirs(),
                                                 cached=True)
            return (compat.manage_model(pipe),)
        dev = compat.torch_device() if device == "auto" else "cpu"
        # "cpu" inside ComfyUI: a pipeline of its own (the cached one may be the managed "auto" pipeline,
        # which ComfyUI moves to the GPU), never registered, so it always stays on the CPU.
        cached = not (device == "cpu" and compat.manages_models())
        return (DabFusionPipeline.from_folder(path, device=dev, search_dirs=search_dirs(), cached=cached),)
