"""SegmentPerson: any photo -> a start frame with the person where the training dancers stand."""

from __future__ import annotations

import numpy as np

from dabfusion.errors import MediaError
from dabfusion.media.comfy import image_from_comfy, image_to_comfy, mask_from_comfy, mask_to_comfy

from . import comfy_compat as compat
from .common import CATEGORY, register_folders

NONE = "none"
BACKGROUNDS = ("studio", "white", "grey", "black", "green")
RULES = ("largest", "most_confident", "index")
FITS = ("crop", "pad")
_YOLO_PREFIX = {"ultralytics_bbox": "bbox/", "ultralytics_segm": "segm/"}


def yolo_choices() -> list[str]:
    out = [NONE]
    for folder, prefix in _YOLO_PREFIX.items():
        out += [prefix + name for name in compat.list_models(folder)]
    return out


def sam_choices() -> list[str]:
    return [NONE, *compat.list_models("sams")]


def yolo_path(choice: str):
    if choice in ("", NONE):
        return None
    for folder, prefix in _YOLO_PREFIX.items():
        if choice.startswith(prefix):
            return compat.model_path(folder, choice[len(prefix):], source="the ultralytics releases")
    return compat.model_path("ultralytics_bbox", choice, source="the ultralytics releases")


def sam_path(choice: str):
    if choice in ("", NONE):
        return None
    return compat.model_path("sams", choice, source="Meta's segment-anything release")


def _uniform(mask: np.ndarray) -> bool:
    return float(mask.max() - mask.min()) < 1e-3


class SegmentPerson:
    """Cuts the person out of any photo and places them on a background, sized like the training dancers."""

    DESCRIPTION = ("Choreograph anyone: finds the person (YOLO), cuts them out (SAM, or the YOLO-seg mask) and "
                   "stands them on a background at the size and place the model's training dancers have, which "
                   "is what makes it move well. With a MASK of the person (or a transparent image) no model is "
                   "needed. Models come from models/ultralytics_bbox, models/ultralytics_segm and models/sams "
                   "(the folders Impact Pack uses).")
    CATEGORY = f"{CATEGORY}/image"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("start_frame", "mask")
    OUTPUT_TOOLTIPS = ("The square start frame: feed FlowAE Encode with it.", "The placed person's mask.")
    FUNCTION = "segment"

    @classmethod
    def INPUT_TYPES(cls):
        register_folders()
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "A photo with a person in it (the first image of a batch is used)."}),
                "yolo_model": (yolo_choices(), {
                    "default": NONE,
                    "tooltip": "Person detector: an ultralytics .pt in models/ultralytics_bbox (bbox/) or "
                               "models/ultralytics_segm (segm/). Not needed when a mask is given."}),
                "sam_model": (sam_choices(), {
                    "default": NONE,
                    "tooltip": "SAM checkpoint in models/sams that cuts out the detected person; 'none' uses the "
                               "YOLO-seg model's own mask."}),
                "background": (list(BACKGROUNDS), {
                    "default": "studio",
                    "tooltip": "What the person stands on (a 'background_image' input overrides it); 'studio' "
                               "looks like the training frames."}),
                "size": ("INT", {"default": 128, "min": 16, "max": 1024, "step": 8,
                                 "tooltip": "Side of the square start frame (the model resizes to its own size)."}),
                "person": (list(RULES), {
                    "default": "largest",
                    "tooltip": "Which person when there are several: the largest, the most confident, or by "
                               "'index' (left to right)."}),
                "index": ("INT", {"default": 0, "min": 0, "max": 64,
                                  "tooltip": "With person = index: 0 is the leftmost person."}),
                "height": ("FLOAT", {"default": 0.7, "min": 0.1, "max": 1.5, "step": 0.01,
                                     "tooltip": "Person height as a fraction of the frame (training dancers: 0.7)."}),
                "fit": (list(FITS), {"default": "crop",
                                     "tooltip": "How a non-square background image is made square."}),
                "invert_mask": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Turn on when the mask is 0 on the person, e.g. the MASK of core Load Image, which "
                               "is 1 - alpha (transparent = 1)."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "The person (1 = person) at the photo's resolution; skips detection. "
                                             "An all-0 or all-1 mask (Load Image without alpha) counts as none."}),
                "background_image": ("IMAGE", {"tooltip": "A background picture (squared with 'fit')."}),
            },
        }

    def segment(self, image, yolo_model, sam_model, background, size, person, index, height, fit, invert_mask,
                mask=None, background_image=None):
        from dabfusion.segment import Placement
        from dabfusion.segment import SegmentPerson as Segmenter

        rgb = image_from_comfy(image)[0]
        person_mask = None
        if mask is not None:
            m = mask_from_comfy(mask)[0]
            if invert_mask:
                m = 1.0 - m
            if not _uniform(m):
                person_mask = m
        bg = image_from_comfy(background_image)[0] if background_image is not None else background
        if person_mask is None and yolo_model in ("", NONE):
            raise MediaError("SegmentPerson needs a MASK of the person or a YOLO model to find them: connect a mask "
                             "or pick a model (put one in models/ultralytics_bbox or models/ultralytics_segm)")
        seg = Segmenter(yolo_path(yolo_model), sam_path(sam_model), device=str(compat.torch_device()))
        bar = compat.ProgressBar(4)
        bar.update_absolute(0)  # a cancel pressed before this node started stops it here
        result = seg(rgb, person_mask, rule=person, index=int(index), background=bg, size=int(size),
                     placement=Placement(height=float(height)), fit=fit, progress=bar)
        return (image_to_comfy(result.frame), mask_to_comfy(result.mask))
