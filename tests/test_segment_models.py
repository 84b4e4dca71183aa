"""YOLO and SAM with random weights, saved in their official checkpoint formats, loaded through the
real loaders and run, with the network refused; the no-person error through the real YOLO; the
whole SegmentPerson path; model caching; clear errors for wrong files."""

from __future__ import annotations

import os
import re
import socket
from copy import deepcopy
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from dabfusion.errors import ModelFileError
from dabfusion.segment import (
    NoPersonError,
    SamConfig,
    SAM_VARIANTS,
    SegmentPerson,
    clear_model_cache,
    detect_objects,
    load_sam,
    load_yolo,
    sam_box_mask,
    sam_config_from_state_dict,
)
from dabfusion.segment import cache as cache_mod
from dabfusion.segment.detect import offline_ultralytics
from dabfusion.segment.sam_mask import build_sam, variant_from_filename

TINY_SAM = SamConfig(embed_dim=32, depth=3, num_heads=2, global_attn_indexes=(1,), img_size=256, patch_size=16,
                     window_size=4, prompt_dim=32, mask_in_chans=8, decoder_depth=1, decoder_mlp_dim=64,
                     iou_head_hidden_dim=32)


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection or resolve a name is recorded and refused."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:2] or args[:1])
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


# ------------------------------------------------------------------------------ YOLO checkpoints


def coco_names() -> list[str]:
    import yaml
    import ultralytics

    data = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/datasets/coco.yaml").read_text())
    return [data["names"][i] for i in range(80)]


def save_yolo(path: Path, cfg: str = "yolov8n.yaml", names: list[str] | None = None, boost: str | None = None) -> Path:
    """A random-weight YOLO saved as ultralytics releases do (strip_optimizer's layout, fp16 module).

    ``boost``: make every anchor say this class with ~100 % confidence (a detector that "sees" it);
    a segmentation model's masks are then made solid (each mask fills its box).
    """
    offline_ultralytics()
    from ultralytics import __version__
    from ultralytics.utils import DEFAULT_CFG_DICT
    from ultralytics.nn.tasks import DetectionModel, SegmentationModel

    names = names or coco_names()
    torch.manual_seed(0)
    kind = SegmentationModel if "-seg" in cfg else DetectionModel
    model = kind(cfg, nc=len(names), verbose=False)
    model.names = dict(enumerate(names))
    args = {**DEFAULT_CFG_DICT, "model": cfg, "task": "segment" if "-seg" in cfg else "detect"}
    model.args = {k: v for k, v in args.items() if k in DEFAULT_CFG_DICT}
    if boost is not None:
        with torch.no_grad():
            for branch in model.model[-1].cv3:
                branch[-1].bias.fill_(-12.0)
                branch[-1].bias[names.index(boost)] = 12.0
            if "-seg" in cfg:
                head = model.model[-1]
                head.proto.cv3.conv.weight.zero_()
                head.proto.cv3.bn.bias.fill_(3.0)
                for branch in head.cv4:
                    branch[-1].weight.zero_()
                    branch[-1].bias.fill_(1.0)
    for p in model.parameters():
        p.requires_grad = False
    ckpt = {
        "date": datetime.now().isoformat(), "version": __version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)", "docs": "https://docs.ultralytics.com",
        "epoch": -1, "best_fitness": None, "model": deepcopy(model).half(), "ema": None, "updates": None,
        "optimizer": None, "scaler": None, "train_args": model.args, "train_metrics": {}, "train_results": {},
    }
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(d / "ultralytics_config"))  # no settings file in ~
    return d


@pytest.fixture(scope="module")
def yolo_random(model_dir):
    return save_yolo(model_dir / "yolov8n.pt")


@pytest.fixture(scope="module")
def yolo_person(model_dir):
    return save_yolo(model_dir / "person_yolov8n.pt", boost="person")


def photo(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 150, np.uint8)
    img[60:220, 130:190] = rng.integers(0, 255, (160, 60, 3))
    return img


def test_random_yolo_loads_through_ultralytics_and_runs_offline(yolo_random, no_network):
    model = load_yolo(yolo_random)
    assert model.task == "detect" and model.names[0] == "person" and len(model.names) == 80
    dets = detect_objects(model, photo(), conf=0.25, device="cpu")
    assert dets == []  # random weights: nothing confident
    some = detect_objects(model, photo(), conf=1e-6, device="cpu", max_det=5)
    assert 0 < len(some) <= 5 and all(d.score < 0.25 for d in some)
    assert no_network == []
    assert os.environ.get("YOLO_OFFLINE") and os.environ.get("YOLO_AUTOINSTALL", "").lower() == "false"
    from ultralytics.utils.events import events

    assert not events.enabled  # no analytics


def test_no_person_error_through_the_real_yolo(yolo_random, model_dir, no_network):
    clear_model_cache()
    with pytest.raises(NoPersonError, match=r"nothing was detected above confidence 0.25"):
        SegmentPerson(yolo_random, device="cpu").detect(photo())
    dog = save_yolo(model_dir / "dog_yolov8n.pt", boost="dog")
    with pytest.raises(NoPersonError) as err:
        SegmentPerson(dog, device="cpu").detect(photo())
    assert "no person found" in str(err.value)
    assert re.search(r"detected instead: dog( x\d+ \(best 1\.00\)| \(1\.00\))\.", str(err.value)), str(err.value)
    assert no_network == []


def test_yolo_person_detection_and_report(yolo_person, no_network):
    choice = SegmentPerson(yolo_person, device="cpu").detect(photo(), rule="most_confident")
    assert choice.person.label == "person" and choice.score > 0.9 and choice.n_persons >= 1
    assert all(d.label == "person" for d in choice.detections)
    x0, y0, x1, y1 = choice.box
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
    assert no_network == []


def test_yolo_segmentation_model_masks(model_dir, no_network):
    seg = save_yolo(model_dir / "yolov8n-seg.pt", "yolov8n-seg.yaml", boost="person")
    model = load_yolo(seg)
    assert model.task == "segment"
    dets = detect_objects(model, photo(), conf=0.5, device="cpu", max_det=3)
    assert dets and all(d.mask is not None and d.mask.shape == (240, 320) and d.mask.dtype == bool for d in dets)
    assert no_network == []


def test_wrong_yolo_files_say_what_and_where(model_dir, tmp_path):
    with pytest.raises(ModelFileError, match="not found.*ultralytics_bbox"):
        load_yolo(tmp_path / "yolov8n.pt")  # must not try to download it
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelFileError, match=r"not an ultralytics YOLO checkpoint.*junk\.pt.*ultralytics_segm"):
        load_yolo(junk)
    sam_as_yolo = tmp_path / "sam.pt"
    torch.save(build_sam(TINY_SAM).state_dict(), sam_as_yolo)
    with pytest.raises(ModelFileError, match="not an ultralytics YOLO checkpoint"):
        load_yolo(sam_as_yolo)
    faces = save_yolo(tmp_path / "face_yolov8n.pt", names=["face"])
    with pytest.raises(ModelFileError, match=r"no 'person' class \(its classes: face\)"):
        load_yolo(faces)
    onnx = tmp_path / "yolov8n.onnx"
    onnx.write_bytes(b"onnx")
    with pytest.raises(ModelFileError, match=r"must be an ultralytics \.pt checkpoint"):
        load_yolo(onnx)

# ------------------------------------------------------------------------------ SAM checkpoints


@pytest.fixture(scope="module")
def sam_tiny(model_dir):
    torch.manual_seed(0)
    path = model_dir / "sam_tiny.pth"
    torch.save(build_sam(TINY_SAM).state_dict(), path)  # plain state dict, like sam_vit_b_01ec64.pth
    return path


@pytest.mark.parametrize("variant", ["vit_b", "vit_l", "vit_h"])
def test_official_architectures_are_read_from_their_shapes(variant):
    from segment_anything import sam_model_registry

    with torch.device("meta"):  # shapes only: no 375 MB - 2.5 GB of random weights
        official = sam_model_registry[variant]()
    config = sam_config_from_state_dict(official.state_dict())
    assert config == SAM_VARIANTS[variant] and config.variant == variant
    with torch.device("meta"):
        rebuilt = build_sam(config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in official.state_dict().items()}
    assert variant_from_filename({"vit_b": "sam_vit_b_01ec64.pth", "vit_l": "sam_vit_l_0b3195.pth",
                                  "vit_h": "sam_vit_h_4b8939.pth"}[variant]) == variant


def test_small_sam_loads_through_the_same_path_and_segments_a_box(sam_tiny, no_network):
    loaded = load_sam(sam_tiny, "cpu")
    assert loaded.config == TINY_SAM and loaded.variant == "custom"
    assert not any(p.is_meta for p in loaded.model.parameters())
    img = photo()
    out = sam_box_mask(loaded, img, (130, 60, 190, 220))
    assert out.mask.shape == (240, 320) and out.mask.dtype == bool
    assert len(out.scores) == 3 and out.score == max(out.scores)
    assert no_network == []


def test_hq_sam_extras_are_ignored_and_wrapped_dicts_unwrapped(sam_tiny, tmp_path):
    sd = torch.load(sam_tiny, weights_only=True)
    sd["mask_decoder.hf_token.weight"] = torch.zeros(1, 32)
    sd["mask_decoder.hf_mlp.layers.0.weight"] = torch.zeros(32, 32)
    torch.save({"model": sd}, tmp_path / "sam_hq_tiny.pth")
    loaded = load_sam(tmp_path / "sam_hq_tiny.pth")
    assert loaded.config == TINY_SAM and len(loaded.ignored_keys) == 2


def test_wrong_sam_files_say_what_and_where(yolo_random, sam_tiny, tmp_path):
    with pytest.raises(ModelFileError, match=r"not found.*models/sams.*segment-anything"):
        load_sam(tmp_path / "sam_vit_b_01ec64.pth")
    with pytest.raises(ModelFileError, match=r"could not read it as a SAM checkpoint.*yolov8n\.pt.*models/sams.*Meta's segment-anything"):
        load_sam(yolo_random)  # a pickled YOLO: refused by the weights-only reader
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(ModelFileError, match=r"not a segment-anything checkpoint.*other\.pth"):
        load_sam(tmp_path / "other.pth")
    torch.save({"image_encoder.patch_embed.seq.0.c.weight": torch.zeros(2, 3)}, tmp_path / "mobile_sam.pt")
    with pytest.raises(ModelFileError, match=r"other than segment-anything's ViT.*mobile_sam\.pt"):
        load_sam(tmp_path / "mobile_sam.pt")
    sd = torch.load(sam_tiny, weights_only=True)
    del sd["mask_decoder.iou_token.weight"]
    torch.save(sd, tmp_path / "sam_vit_b_cut.pth")
    with pytest.raises(ModelFileError, match=r"do not fit a custom SAM.*iou_token.*its name says vit_b.*cut\.pth"):
        load_sam(tmp_path / "sam_vit_b_cut.pth")


# ------------------------------------------------------------------------------ the whole path


@pytest.fixture(scope="module")
def sam_everything(model_dir):
    """A tiny SAM whose masks cover everything (deterministic, whatever the random init)."""
    torch.manual_seed(1)
    sam = build_sam(TINY_SAM)
    with torch.no_grad():
        sam.mask_decoder.output_upscaling[3].weight.zero_()
        sam.mask_decoder.output_upscaling[3].bias.fill_(1.0)
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.zero_()
            mlp.layers[-1].bias.fill_(1.0)
    path = model_dir / "sam_everything.pth"
    torch.save(sam.state_dict(), path)
    return path


def test_segment_person_end_to_end_and_models_are_cached(yolo_person, sam_everything, no_network):
    clear_model_cache()
    before = dict(cache_mod.BUILD_COUNT)
    img = photo()
    seg = SegmentPerson(yolo_person, sam_everything, device="cpu")
    res = seg(img, rule="largest", size=64, background="studio")
    assert res.mask_source == "sam" and res.choice is not None and res.choice.rule == "largest"
    assert res.frame.shape == (64, 64, 3) and res.frame.dtype == np.uint8
    assert res.mask.shape == (64, 64) and 0 <= res.mask.min() and res.mask.max() <= 1 and res.mask.max() > 0.5
    assert res.person_mask.shape == (240, 320) and res.sam_score is not None
    assert "by rule 'largest'" in res.describe() and "mask by SAM" in res.describe()
    # a second run, even from a new instance, builds nothing
    SegmentPerson(yolo_person, sam_everything, device="cpu")(img, rule="index", index=0, size=64)
    built = {k: cache_mod.BUILD_COUNT.get(k, 0) - before.get(k, 0) for k in ("yolo", "sam")}
    assert built == {"yolo": 1, "sam": 1}
    assert no_network == []


def test_yolo_seg_mask_is_used_without_sam(model_dir, yolo_person):
    with pytest.raises(ModelFileError, match="SAM checkpoint or a YOLO segmentation"):
        SegmentPerson(yolo_person, device="cpu")(photo(), size=64)  # boxes only, no SAM
    seg_model = save_yolo(model_dir / "person_yolov8n-seg.pt", "yolov8n-seg.yaml", boost="person")
    res = SegmentPerson(seg_model, device="cpu")(photo(), size=64, rule="largest")
    assert res.mask_source == "yolo" and res.sam_score is None
    x0, y0, x1, y1 = res.choice.box  # the solid mask fills the chosen box
    assert res.source_box == pytest.approx((x0, y0, x1, y1), abs=2.0)
    assert res.frame_box[3] - res.frame_box[1] == pytest.approx(0.7 * 64, abs=1.5)


def test_device_defaults_to_the_gpu_when_there_is_one():
    assert cache_mod.resolve_device("cpu") == "cpu"
    assert cache_mod.resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert SegmentPerson(device="auto").device == cache_mod.resolve_device(None)
