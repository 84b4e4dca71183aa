"""Node-level bad input gets a clear error that names the problem: wrong image size or rank, silent
music, a missing model, zero frames, music files that are not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from pack_loader import load_pack as load_pack_as
import torch

from dabfusion.errors import DabFusionError, MediaError, ModelFileError
from dabfusion.testing.random_bundle import make_random_bundle

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
PACK = "dab_pack_errors"


def load_pack():
    return load_pack_as(PACK)


NODES = load_pack().NODE_CLASS_MAPPINGS


def node(key):
    cls = NODES[key]
    return getattr(cls(), cls.FUNCTION)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    bundle = make_random_bundle(tmp_path_factory.mktemp("m") / "tiny")
    return node("DabFusionModelLoader")(checkpoint=str(bundle), device="cpu")[0]


@pytest.fixture(scope="module")
def latent(model):
    return node("DabFusionFlowAEEncode")(model=model, image=torch.rand(1, 40, 40, 3))[0]


@pytest.fixture(scope="module")
def music(model):
    sr = 16000
    t = torch.arange(2 * sr) / sr
    audio = {"waveform": (0.4 * torch.sin(2 * torch.pi * 300 * t) * (torch.sin(2 * torch.pi * 2 * t) > 0))[None, None],
             "sample_rate": sr}
    return node("DabFusionMusicEncoder")(model=model, audio=audio)[0]


@pytest.mark.parametrize("image,message", [
    (torch.rand(1, 8, 8, 3), "at least 16 pixels"),
    (torch.rand(2, 32, 32, 3), "batch of 2"),
    (torch.rand(32, 32), "IMAGE"),
    (torch.rand(1, 32, 32, 7), "channels"),
    (torch.full((1, 32, 32, 3), float("nan")), "NaN"),
])
def test_flow_ae_encode_refuses_bad_images(model, image, message):
    with pytest.raises(MediaError, match=message):
        node("DabFusionFlowAEEncode")(model=model, image=image)


def test_silent_or_broken_music_is_refused(model):
    enc = node("DabFusionMusicEncoder")
    with pytest.raises(MediaError, match="silent"):
        enc(model=model, audio={"waveform": torch.zeros(1, 2, 22050), "sample_rate": 22050})
    with pytest.raises(MediaError, match="sample_rate"):
        enc(model=model, audio={"waveform": torch.rand(1, 1, 100)})
    with pytest.raises(MediaError, match="NaN"):
        enc(model=model, audio={"waveform": torch.full((1, 1, 100), float("nan")), "sample_rate": 8000})


def test_missing_model_names_the_folder(tmp_path):
    loader = NODES["DabFusionModelLoader"]
    with pytest.raises(ModelFileError) as err:
        node("DabFusionModelLoader")(checkpoint="gone_model", device="cpu")
    assert "gone_model" in str(err.value) and "'dabfusion' model folder" in str(err.value)
    assert "gone_model" in loader.VALIDATE_INPUTS("gone_model")
    assert "device" in loader.VALIDATE_INPUTS("gone_model", device="tpu")
    not_a_bundle = tmp_path / "empty"
    not_a_bundle.mkdir()
    with pytest.raises(ModelFileError):
        node("DabFusionModelLoader")(checkpoint=str(not_a_bundle), device="cpu")


def test_zero_frames_anywhere_is_a_clear_error(model, latent, music):
    sample = node("DabFusionSampler")
    common = dict(model=model, latent=latent, music=music, seed=0, steps=1, sampler="dpm++", guidance=1.0, fps=0.0)
    with pytest.raises(DabFusionError, match="less than one frame"):
        sample(**common, length=0.001, length_unit="seconds")
    with pytest.raises(DabFusionError, match="whole number"):
        sample(**common, length=2.5, length_unit="frames")
    with pytest.raises(DabFusionError, match="overlap"):
        sample(**common, length=4, length_unit="frames", overlap=8)
    with pytest.raises(MediaError, match="zero frames"):
        node("DabFusionVideoCombine")(images=torch.zeros(0, 32, 32, 3), fps=30.0)
    assert NODES["DabFusionSampler"].VALIDATE_INPUTS(sampler="euler") != True  # noqa: E712


def test_flows_from_another_model_are_refused(model, latent, music, tmp_path):
    other = node("DabFusionModelLoader")(checkpoint=str(make_random_bundle(tmp_path / "o", seed=2)), device="cpu")[0]
    with pytest.raises(DabFusionError, match="encoded by the model"):
        node("DabFusionSampler")(model=other, latent=latent, music=music, seed=0, steps=1, sampler="dpm++",
                                 guidance=1.0, length=4, length_unit="frames", fps=0.0)


def test_music_files_that_are_not_there(tmp_path, monkeypatch):
    monkeypatch.setenv("DABFUSION_INPUT_DIR", str(tmp_path))
    load = node("DabFusionLoadMusic")
    with pytest.raises(MediaError, match="input folder"):
        load(audio_file="gone.wav", start=0.0, duration=0.0)
    with pytest.raises(MediaError, match="not found"):
        load(audio_file="", start=0.0, duration=0.0, path=str(tmp_path / "nope.mp3"))
    assert "not found" in NODES["DabFusionLoadMusic"].VALIDATE_INPUTS("x", path=str(tmp_path / "nope.mp3"))
    with pytest.raises(MediaError, match="beyond the end"):
        load(audio_file="", start=5.0, duration=0.0, audio={"waveform": torch.rand(1, 1, 8000), "sample_rate": 8000})
    with pytest.raises(MediaError, match="beyond the end"):
        load(audio_file="dance_any_beat_music.ogg", start=60.0, duration=0.0)


def test_segment_person_needs_a_mask_or_a_detector():
    seg = node("DabFusionSegmentPerson")
    kw = dict(yolo_model="none", sam_model="none", background="studio", size=64, person="largest", index=0,
              height=0.7, fit="crop", invert_mask=False)
    with pytest.raises(MediaError, match="MASK of the person or a YOLO model"):
        seg(image=torch.rand(1, 64, 64, 3), **kw)
    with pytest.raises(MediaError, match="MASK of the person or a YOLO model"):  # Load Image without alpha: all 0
        seg(image=torch.rand(1, 64, 64, 3), mask=torch.zeros(1, 64, 64), **kw)
    with pytest.raises(ModelFileError, match="ultralytics_bbox"):
        seg(image=torch.rand(1, 64, 64, 3), **{**kw, "yolo_model": "bbox/yolov8n.pt"})
