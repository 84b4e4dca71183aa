"""Choreograph anyone (paper section 4.4): any photo to a start frame the animator knows.

    photo ─► YOLO: persons ─► rule picks one ─► SAM, prompted by its box ─► clean mask
          └──────────────────────────── user MASK / RGBA alpha skips all of that ──┘
                                        ─► scale + place on a background ─► start frame, mask

:class:`SegmentPerson` holds the model paths and the device; the models are built on first use
and cached per (file, device) across instances (see :mod:`.cache`), so a ComfyUI node can make a
new ``SegmentPerson`` per run for free. No model is touched when the caller gives the mask.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import MediaError, ModelFileError
from ..media.image import to_uint8
from .cache import cached, resolve_device
from .composite import Placement, split_rgba, make_background, place_person
from .detect import YOLO_FOLDERS, YOLO_SOURCE, PersonChoice, detect_objects, load_yolo, select_person
from .mask_ops import Box, as_mask, clean_mask, fit_mask_to
from .sam_mask import SAM_FOLDER, SAM_SOURCE, LoadedSam, load_sam, sam_box_mask

SEGMENTERS = ("auto", "sam", "yolo")
MASK_SOURCES = ("user", "alpha", "sam", "yolo")
#: Progress steps of :meth:`SegmentPerson.__call__`: detection, segmentation, background, compositing.
STEPS = 4


@dataclass(frozen=True)
class SegmentResult:
    """The start frame and everything a user may want to check about how it was made."""

    frame: np.ndarray  # uint8 [S, S, 3] (float32 0..1 with as_float)
    mask: np.ndarray  # float32 [S, S], the placed person
    person_mask: np.ndarray  # float32 [H, W], the person in the source image
    source_box: Box  # person's box in the source image (from the mask)
    frame_box: Box  # person's box in the frame
    scale: float
    placement: Placement
    mask_source: str  # "user", "alpha", "sam" or "yolo"
    choice: PersonChoice | None = None  # None when the mask was given
    sam_score: float | None = None

    def describe(self) -> str:
        """A short report: which person, how segmented, where placed."""
        parts = [self.choice.describe() if self.choice else f"person mask from the {self.mask_source}"]
        if self.mask_source in ("sam", "yolo"):
            parts.append(f"mask by {self.mask_source.upper()}"
                         + (f" (predicted IoU {self.sam_score:.2f})" if self.sam_score is not None else ""))
        p = self.placement
        parts.append(f"placed at height {p.height:.2f}, {p.anchor} at ({p.x:.2f}, {p.y:.2f}), scale {self.scale:.3f}")
        return "; ".join(parts)


def _missing_model(kind: str) -> ModelFileError:
    if kind == "yolo":
        folders = " or ".join(f"models/{f}" for f in YOLO_FOLDERS)
        return ModelFileError(
            f"finding the person needs a YOLO model: put {YOLO_SOURCE} in {folders} and select it, or "
            "give a MASK of the person (or an RGBA image whose alpha is the person)"
        )
    return ModelFileError(
        f"cutting out the person needs a SAM checkpoint or a YOLO segmentation (-seg) model: put a SAM "
        f"checkpoint from {SAM_SOURCE} in models/{SAM_FOLDER}, or give a MASK of the person"
    )


class SegmentPerson:
    """Detect, segment and place one person.

    Args:
        yolo_model: path of an ultralytics ``.pt`` file with a "person" class (None: masks only).
        sam_model: path of a SAM checkpoint (None: use a YOLO-seg model's mask).
        device: "cuda", "cpu", "cuda:1" ...; None or "auto" picks the GPU when there is one.
        conf, iou, imgsz: YOLO's confidence threshold, NMS IoU and inference size.
        segmenter: "auto" (SAM if given, else the YOLO-seg mask), "sam" or "yolo".
    """

    def __init__(
        self,
        yolo_model: str | os.PathLike | None = None,
        sam_model: str | os.PathLike | None = None,
        *,
        device: Any = None,
        conf: float = 0.25,
        iou: float = 0.7,
        imgsz: int = 640,
        segmenter: str = "auto",
    ) -> None:
        if segmenter not in SEGMENTERS:
            raise MediaError(f"segmenter must be one of {SEGMENTERS}, got {segmenter!r}")
        self.yolo_path = Path(yolo_model).expanduser() if yolo_model else None
        self.sam_path = Path(sam_model).expanduser() if sam_model else None
        self._device = device
        self.conf, self.iou, self.imgsz = float(conf), float(iou), int(imgsz)
        self.segmenter = segmenter

    @property
    def device(self) -> str:
        return resolve_device(self._device)

    # ----------------------------------------------------------------------------- models

    def yolo(self) -> Any:
        if self.yolo_path is None:
            raise _missing_model("yolo")
        path = self.yolo_path
        return cached("yolo", path, self.device, lambda: load_yolo(path))

    def sam(self) -> LoadedSam:
        if self.sam_path is None:
            raise _missing_model("sam")
        path, device = self.sam_path, self.device
        return cached("sam", path, device, lambda: load_sam(path, device))

    # ----------------------------------------------------------------------------- steps

    def detect(self, image: Any, rule: str = "largest", index: int = 0) -> PersonChoice:
        """Every detection, and the person ``rule`` picks (:func:`.detect.select_person`)."""
        rgb = _rgb_uint8(image)
        detections = detect_objects(self.yolo(), rgb, conf=self.conf, iou=self.iou, imgsz=self.imgsz,
                                    device=self.device)
        return select_person(detections, rule, index, conf=self.conf)

    def segment(
        self,
        image: Any,
        choice: PersonChoice,
        *,
        max_hole_frac: float | None = 0.01,
        fill_holes: bool = True,
    ) -> tuple[np.ndarray, str, float | None]:
        """The chosen person's clean mask (float32 ``[H, W]``), which model made it, SAM's score."""
        rgb = _rgb_uint8(image)
        use_sam = self.segmenter == "sam" or (self.segmenter == "auto" and self.sam_path is not None)
        if use_sam:
            found = sam_box_mask(self.sam(), rgb, choice.box)
            raw, source, score = found.mask, "sam", found.score
        elif choice.person.mask is not None:
            raw, source, score = choice.person.mask, "yolo", None
        else:
            raise _missing_model("sam")
        alpha = clean_mask(raw, choice.box, holes=fill_holes, max_hole_frac=max_hole_frac)
        if not alpha.any():
            raise MediaError(
                f"the {source.upper()} mask of the chosen person is empty; try another person, another "
                "model, or give a MASK"
            )
        return alpha, source, score

    # ----------------------------------------------------------------------------- all of it

    def __call__(
        self,
        image: Any,
        mask: Any = None,
        *,
        rule: str = "largest",
        index: int = 0,
        background: Any = "studio",
        size: int = 128,
        placement: Placement | None = None,
        feather_px: float = 1.0,
        fill_holes: bool = True,
        max_hole_frac: float | None = 0.01,
        use_alpha: bool = True,
        background_remove_mask: Any = None,
        fit: str = "crop",
        as_float: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> SegmentResult:
        """Start frame ``[size, size, 3]`` and mask ``[size, size]`` with the person of ``image``.

        ``mask``: the person, 1 = person, any resolution of the same picture; with it (or with an RGBA
        image whose alpha has transparent pixels, when ``use_alpha``) no model is loaded or run.
        ``background``: see :func:`.composite.make_background`. ``background_remove_mask``: the dancer
        already in a data-set background frame; it is inpainted away, and unless ``placement`` is
        given the new person stands exactly where that dancer stood (the paper's substitution).
        ``progress(done, STEPS)`` after detection, segmentation (both at once when the mask is known),
        the background and the compositing; an exception raised in it (a user's cancel) stops the work.
        """

        def step(done: int) -> None:
            if progress is not None:
                progress(done, STEPS)

        rgb01, own_alpha = split_rgba(image)
        choice, score = None, None
        if mask is not None:
            alpha = fit_mask_to(as_mask(mask, "person MASK"), *rgb01.shape[:2], what="person MASK")
            source = "user"
        elif use_alpha and own_alpha is not None and float(own_alpha.min()) < 0.99:
            alpha, source = own_alpha, "alpha"
        else:
            rgb = to_uint8(rgb01)
            choice = self.detect(rgb, rule, index)
            step(1)
            alpha, source, score = self.segment(rgb, choice, max_hole_frac=max_hole_frac, fill_holes=fill_holes)
        step(2)
        if placement is None:
            placement = (Placement.from_mask(background_remove_mask, fit=fit) if background_remove_mask is not None
                         else Placement())
        bg = make_background(background, size, fit=fit, remove_mask=background_remove_mask)
        step(3)
        comp = place_person(rgb01, alpha, bg, size, placement, feather_px=feather_px, as_float=as_float)
        step(STEPS)
        return SegmentResult(comp.frame, comp.mask, alpha.astype(np.float32), comp.source_box, comp.box,
                             comp.scale, placement, source, choice, score)


def _rgb_uint8(image: Any) -> np.ndarray:
    rgb01, _ = split_rgba(image)
    return to_uint8(rgb01)


def segment_person(image: Any, mask: Any = None, *, yolo_model: Any = None, sam_model: Any = None,
                   device: Any = None, conf: float = 0.25, segmenter: str = "auto", **kwargs: Any) -> SegmentResult:
    """One call: ``SegmentPerson(yolo_model, sam_model, ...)(image, mask, **kwargs)``."""
    return SegmentPerson(yolo_model, sam_model, device=device, conf=conf, segmenter=segmenter)(image, mask, **kwargs)
