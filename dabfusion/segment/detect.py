"""Find the person to choreograph: an ultralytics YOLO model, the class "person", and a rule.

The detector is any ultralytics ``.pt`` checkpoint that knows a class named "person" (COCO's
``yolov8n.pt``, ``yolov8n-seg.pt``, Impact Pack's ``person_yolov8m-seg.pt`` ...). The class is
found by *name* in ``model.names``, never by index, because person-only models number it 0 like
COCO does but other custom models do not. Segmentation models also give a mask per box; it is
kept on the :class:`Detection` so a caller without SAM can use it.

The selection rule is pure Python on :class:`Detection` objects (:func:`select_person`), so it
is tested without a model. ``ultralytics`` is imported only when a model is loaded, and always
after :func:`offline_ultralytics` has told it not to reach the network (no update checks, no
analytics, no auto-install of pip packages, no asset downloads for local files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import MediaError, ModelFileError

PERSON = "person"
RULES = ("largest", "most_confident", "index")

#: Where the nodes look for YOLO files (the folders Impact Pack uses), for error messages.
YOLO_FOLDERS = ("ultralytics_bbox", "ultralytics_segm")
YOLO_SOURCE = (
    "an ultralytics detection or segmentation checkpoint (.pt) whose classes include 'person', "
    "e.g. yolov8n.pt / yolov8n-seg.pt from the ultralytics assets release "
    "(github.com/ultralytics/assets/releases) or person_yolov8m-seg.pt (Bingsu/adetailer, as "
    "Impact Pack uses)"
)
_TASKS = ("detect", "segment", "pose")  # tasks whose results carry boxes of whole objects


class NoPersonError(MediaError):
    """The image has no person the detector can see (or none that the rule can pick).

    The message says what *was* detected instead, so the user can tell a wrong image from a
    wrong model or a threshold that is too high.
    """


@dataclass(frozen=True)
class Detection:
    """One detected object. ``box`` is ``(x0, y0, x1, y1)`` in pixels of the source image."""

    label: str
    score: float
    box: tuple[float, float, float, float]
    class_id: int = -1
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # bool [H, W] (seg models)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0


@dataclass(frozen=True)
class PersonChoice:
    """Which person the rule picked, and out of what.

    ``persons`` are ordered left to right (by box centre x, then y): ``index`` counts in that
    order, and ``choice_index`` is the chosen person's place in it whatever the rule.
    """

    person: Detection
    rule: str
    choice_index: int
    persons: tuple[Detection, ...]
    detections: tuple[Detection, ...]

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.person.box

    @property
    def score(self) -> float:
        return self.person.score

    @property
    def n_persons(self) -> int:
        return len(self.persons)

    def describe(self) -> str:
        """One line for a log or a node's text output."""
        x0, y0, x1, y1 = self.box
        return (
            f"person {self.choice_index} of {self.n_persons} (left to right) by rule '{self.rule}': "
            f"score {self.score:.2f}, box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f})"
        )


# ----------------------------------------------------------------------------------- selection


def _summary(detections: Sequence[Detection], limit: int = 8) -> str:
    """One entry per label, most confident first: "dog (0.81), chair x3 (best 0.40)"."""
    best: dict[str, list[float]] = {}
    for d in detections:
        best.setdefault(d.label, []).append(d.score)
    ranked = sorted(best.items(), key=lambda kv: -max(kv[1]))
    parts = [f"{label} ({s[0]:.2f})" if len(s) == 1 else f"{label} x{len(s)} (best {max(s):.2f})"
             for label, s in ranked[:limit]]
    if len(ranked) > limit:
        parts.append(f"{len(ranked) - limit} more kinds")
    return ", ".join(parts)


def no_person_message(detections: Sequence[Detection], conf: float | None = None) -> str:
    """The no-person message: what was detected instead, or that nothing was (and the threshold)."""
    where = "no person found in the image"
    if detections:
        return f"{where}; detected instead: {_summary(detections)}. Use a photo with a person in it, or give a MASK."
    above = f" above confidence {conf:g}" if conf is not None else ""
    return (
        f"{where}: nothing was detected{above}. Use a photo with a clearly visible person, lower the "
        "confidence threshold, or give a MASK of the person."
    )


def left_to_right(persons: Sequence[Detection]) -> list[Detection]:
    """The order ``index`` counts in: box centre x, then centre y (top first)."""
    return sorted(persons, key=lambda d: (d.center[0], d.center[1]))


def select_person(
    detections: Sequence[Detection],
    rule: str = "largest",
    index: int = 0,
    *,
    person_label: str = PERSON,
    conf: float | None = None,
) -> PersonChoice:
    """Pick one person from all detections by ``rule``.

    - ``"largest"`` (default): the biggest box, i.e. usually the main subject of a photo;
      ties go to the higher score.
    - ``"most_confident"``: the highest score; ties go to the bigger box.
    - ``"index"``: the ``index``-th person counting from the left (0 = leftmost; negative
      counts from the right, -1 = rightmost), as a user sees them in the picture.

    Raises :class:`NoPersonError` naming what was detected instead when there is no person,
    and when ``index`` is out of range (saying how many persons there are).
    """
    if rule not in RULES:
        raise MediaError(f"person selection rule must be one of {RULES}, got {rule!r}")
    detections = tuple(detections)
    persons = tuple(left_to_right([d for d in detections if d.label == person_label]))
    if not persons:
        raise NoPersonError(no_person_message(detections, conf))
    if rule == "largest":
        chosen = max(range(len(persons)), key=lambda i: (persons[i].area, persons[i].score))
    elif rule == "most_confident":
        chosen = max(range(len(persons)), key=lambda i: (persons[i].score, persons[i].area))
    else:
        n = len(persons)
        if not -n <= int(index) < n:
            raise NoPersonError(
                f"person index {index} is out of range: {n} person(s) found "
                f"(index counts from the left, 0 to {n - 1}, or -1 for the rightmost)"
            )
        chosen = int(index) % n
    return PersonChoice(persons[chosen], rule, chosen, persons, detections)


# ------------------------------------------------------------------------------------ ultralytics


def offline_ultralytics() -> None:
    """Keep ultralytics off the network, before and after it is imported.

    Before import: ``YOLO_OFFLINE`` makes its ``ONLINE`` constant False (no DNS probe, no
    update check, no hub calls) and ``YOLO_AUTOINSTALL=false`` stops it pip-installing modules
    a checkpoint names. Both are set only if the user has not set them. After import the
    analytics singleton is switched off in memory (the user's settings file is not rewritten).
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    import sys

    events_mod = sys.modules.get("ultralytics.utils.events")
    if events_mod is not None and hasattr(events_mod, "events"):
        events_mod.events.enabled = False


def _import_yolo():
    offline_ultralytics()
    from ultralytics import YOLO

    offline_ultralytics()  # the events singleton exists now
    return YOLO


def _yolo_error(path: Path, why: str) -> ModelFileError:
    folders = " or ".join(f"models/{f}" for f in YOLO_FOLDERS)
    return ModelFileError(f"{why}: {path}. Put a YOLO model in {folders}: {YOLO_SOURCE}.")


def _first_line(err: BaseException) -> str:
    """An exception's first line without ultralytics' "ERROR ❌️" decoration."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.replace("ERROR ❌️", "").replace("ERROR", "").strip()


def load_yolo(path: str | os.PathLike) -> Any:
    """``ultralytics.YOLO`` from a local ``.pt`` file; clear :class:`ModelFileError` otherwise.

    The file must exist before ultralytics sees it: given a bare name it does not find, ultralytics
    would try to download it from GitHub. The model must have a "person" class and box outputs.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise _yolo_error(path, "YOLO model file not found")
    if path.suffix.lower() != ".pt":
        raise _yolo_error(path, f"YOLO model must be an ultralytics .pt checkpoint, not '{path.suffix}'")
    YOLO = _import_yolo()
    try:
        model = YOLO(str(path.resolve()))
    except Exception as err:  # ultralytics raises TypeError/AttributeError/KeyError/... for foreign files
        raise _yolo_error(path, f"not an ultralytics YOLO checkpoint ({type(err).__name__}: {_first_line(err)})") from err
    if model.task not in _TASKS:
        raise _yolo_error(path, f"YOLO model is a '{model.task}' model; a detection or segmentation model is needed")
    names = dict(model.names or {})
    if PERSON not in names.values():
        shown = ", ".join(list(map(str, names.values()))[:10])
        raise _yolo_error(path, f"YOLO model has no '{PERSON}' class (its classes: {shown})")
    return model


def _as_rgb_uint8(image: Any) -> np.ndarray:
    from ..media.image import channels_to_rgb, to_float01, to_numpy, to_uint8

    arr = to_numpy(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise MediaError(f"image must be [H, W, C], got shape {arr.shape}")
    if arr.dtype != np.uint8 or arr.shape[-1] != 3:
        arr = to_uint8(channels_to_rgb(to_float01(arr, "image"), what="image"))
    return np.ascontiguousarray(arr)


def detect_objects(
    model: Any,
    image: Any,
    *,
    conf: float = 0.25,
    iou: float = 0.7,
    imgsz: int = 640,
    device: str | None = None,
    max_det: int = 100,
) -> list[Detection]:
    """Every object the YOLO model sees in an RGB image (uint8 or 0..1 float ``[H, W, 3]``).

    Masks of segmentation models come back at the image's own size (``retina_masks``).
    """
    rgb = _as_rgb_uint8(image)
    bgr = np.ascontiguousarray(rgb[..., ::-1])  # ultralytics reads numpy arrays as OpenCV BGR
    kwargs = dict(conf=float(conf), iou=float(iou), imgsz=int(imgsz), max_det=int(max_det),
                  verbose=False, retina_masks=True, save=False)
    if device is not None:
        kwargs["device"] = str(device)
    offline_ultralytics()
    result = model.predict(bgr, **kwargs)[0]
    names = result.names or model.names
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return []
    xyxy = boxes.xyxy.detach().float().cpu().numpy()
    scores = boxes.conf.detach().float().cpu().numpy()
    classes = boxes.cls.detach().cpu().numpy().astype(int)
    masks = None
    if getattr(result, "masks", None) is not None:
        masks = result.masks.data.detach().float().cpu().numpy() > 0.5
        if masks.shape[1:] != rgb.shape[:2]:  # defensive: a version without retina masks
            import cv2

            masks = np.stack([cv2.resize(m.astype(np.uint8), rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
                              for m in masks]).astype(bool)
    out = []
    for i in range(len(xyxy)):
        x0, y0, x1, y1 = (float(v) for v in xyxy[i])
        out.append(Detection(str(names.get(int(classes[i]), classes[i])), float(scores[i]),
                             (x0, y0, x1, y1), int(classes[i]), None if masks is None else masks[i]))
    return out
