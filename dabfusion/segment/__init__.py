"""Choreograph anyone: find a person in any photo, cut them out, and stand them in a start frame.

``SegmentPerson`` (in :mod:`.person`) is the whole job; the parts are usable alone:
:mod:`.detect` (YOLO persons and the selection rule), :mod:`.sam_mask` (SAM prompted by a box,
architecture read from the checkpoint), :mod:`.mask_ops` (mask cleaning) and :mod:`.composite`
(placement geometry, backgrounds). Importing this package imports neither torch, ultralytics
nor segment-anything; they load when a model is first needed.
"""

from __future__ import annotations

from .cache import clear_model_cache, resolve_device
from .composite import Composite, Placement, make_background, place_person, studio_background
from .detect import (
    RULES,
    YOLO_FOLDERS,
    Detection,
    NoPersonError,
    PersonChoice,
    detect_objects,
    load_yolo,
    offline_ultralytics,
    select_person,
)
from .mask_ops import clean_mask, feather, fill_holes, keep_main_component, mask_bbox
from .person import SEGMENTERS, SegmentPerson, SegmentResult, segment_person
from .sam_mask import SAM_FOLDER, SAM_VARIANTS, LoadedSam, SamConfig, load_sam, sam_box_mask, sam_config_from_state_dict

__all__ = [
    "RULES",
    "SAM_FOLDER",
    "SAM_VARIANTS",
    "SEGMENTERS",
    "YOLO_FOLDERS",
    "Composite",
    "Detection",
    "LoadedSam",
    "NoPersonError",
    "Placement",
    "PersonChoice",
    "SamConfig",
    "SegmentPerson",
    "SegmentResult",
    "clean_mask",
    "clear_model_cache",
    "detect_objects",
    "feather",
    "fill_holes",
    "keep_main_component",
    "load_sam",
    "load_yolo",
    "make_background",
    "mask_bbox",
    "offline_ultralytics",
    "place_person",
    "resolve_device",
    "sam_box_mask",
    "sam_config_from_state_dict",
    "segment_person",
    "select_person",
    "studio_background",
]
