"""Run a ComfyUI API prompt without ComfyUI: the pack's nodes plus stand-ins for the core nodes our
templates use (Load Image, Preview Image, Preview Any), executed in dependency order the way
ComfyUI's executor calls them. For the workflow tests and the thumbnail script.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"


class CoreLoadImage:
    """Core Load Image: RGB IMAGE [1, H, W, 3] and MASK = 1 - alpha (zeros 64x64 without alpha), from
    ``DABFUSION_INPUT_DIR`` or else the pack's example files (what the pack puts into input/)."""

    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (sorted(p.name for p in EXAMPLES.glob("*.png")), {"image_upload": True})}}

    def load_image(self, image):
        import torch
        from PIL import Image, ImageOps

        folder = Path(os.environ.get("DABFUSION_INPUT_DIR", "."))
        path = folder / image if (folder / image).is_file() else EXAMPLES / image
        img = ImageOps.exif_transpose(Image.open(path))
        rgb = torch.from_numpy(np.asarray(img.convert("RGB"), np.float32) / 255.0)[None]
        if "A" in img.getbands():
            mask = 1.0 - torch.from_numpy(np.asarray(img.getchannel("A"), np.float32) / 255.0)[None]
        else:
            mask = torch.zeros(1, 64, 64)
        return rgb, mask


class CorePreviewImage:
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}

    def save_images(self, images):
        if images.dim() != 4:
            raise ValueError(f"Preview Image takes an IMAGE batch [B, H, W, C], got shape {tuple(images.shape)}")
        return {"ui": {"images": []}}


class CorePreviewAny:
    """comfy_extras/nodes_preview_any.py (ComfyUI 0.3.64): any value as the text of its ui."""

    RETURN_TYPES = ()
    FUNCTION = "main"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"source": ("*", {})}}

    def main(self, source=None):
        value = source if isinstance(source, str) else json.dumps(source)
        return {"ui": {"text": (value,)}}


CORE_STAND_INS = {"LoadImage": CoreLoadImage, "PreviewImage": CorePreviewImage, "PreviewAny": CorePreviewAny}


def input_specs(cls: Any) -> dict[str, tuple]:
    types = cls.INPUT_TYPES()
    return {**types.get("required", {}), **types.get("optional", {})}


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def execute(api: dict, classes: dict, overrides: dict | None = None, *, extra_pnginfo: dict | None = None,
            on_node: Callable[[str, str], Any] | None = None) -> tuple[dict, dict]:
    """Run an API prompt: nodes in dependency order, links resolved to the producers' outputs, literal
    inputs a node does not declare dropped (as ComfyUI's get_input_data does), ``overrides`` (class type
    -> inputs) applied on top. Returns (outputs, ui) by node id; ``on_node(id, class_type)`` after each."""
    deps = {nid: {v[0] for v in node["inputs"].values() if is_link(v)} for nid, node in api.items()}
    order: list[str] = []
    while len(order) < len(api):
        ready = sorted((n for n in api if n not in order and deps[n] <= set(order)), key=int)
        if not ready:
            raise ValueError("the prompt has a cycle")
        order += ready
    results, uis = {}, {}
    for nid in order:
        node = api[nid]
        cls = classes[node["class_type"]]
        declared = input_specs(cls)
        kwargs = {k: (results[v[0]][v[1]] if is_link(v) else v) for k, v in node["inputs"].items()
                  if k in declared or is_link(v)}
        kwargs.update((overrides or {}).get(node["class_type"], {}))
        hidden = cls.INPUT_TYPES().get("hidden", {})
        if "prompt" in hidden:
            kwargs["prompt"] = api
        if "extra_pnginfo" in hidden:
            kwargs["extra_pnginfo"] = extra_pnginfo or {}
        out = getattr(cls(), cls.FUNCTION)(**kwargs)
        if isinstance(out, dict):
            uis[nid] = out.get("ui")
            out = out.get("result", ())
        if not (isinstance(out, tuple) and len(out) == len(cls.RETURN_TYPES)):
            raise TypeError(f"{node['class_type']} returned {type(out).__name__} of {len(out)} outputs, "
                            f"declares {len(cls.RETURN_TYPES)}")
        results[nid] = out
        if on_node is not None:
            on_node(nid, node["class_type"])
    return results, uis
