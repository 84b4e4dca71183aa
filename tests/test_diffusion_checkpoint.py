"""Diffusion checkpoints: round trip, provenance records, and clear mismatch errors."""

from __future__ import annotations

import json

import pytest
import torch

from dabfusion.diffusion import PRESETS, UNet3D, flow_ae_identity, load_diffusion, read_diffusion_config, save_diffusion
from dabfusion.errors import ConfigMismatchError, ModelFileError
from dabfusion.flow_ae import FlowAutoEncoder, save_flow_ae
from dabfusion.flow_ae import get_config as flow_ae_config
from dabfusion.music import MusicEncoder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    ae = FlowAutoEncoder(flow_ae_config("tiny"))
    ae_path = save_flow_ae(root / "flow_ae.safetensors", ae)
    other = FlowAutoEncoder(flow_ae_config("tiny"))  # same shape, other weights
    other_path = save_flow_ae(root / "other_ae.safetensors", other)
    encoder = MusicEncoder.default()
    config = PRESETS["tiny"].with_flow_ae(flow_ae_identity(ae_path)).with_music(encoder.spec)
    model = UNet3D(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = save_diffusion(root / "diffusion.safetensors", model, {"step": 3})
    return {"root": root, "ae": ae, "ae_path": ae_path, "other_path": other_path, "encoder": encoder,
            "model": model, "path": path}


def test_round_trip_gives_the_same_model(setup):
    model, header = load_diffusion(setup["path"], music_spec=setup["encoder"].spec, flow_ae=setup["ae_path"])
    assert header["kind"] == "flow_diffusion" and header["extra"]["step"] == 3
    assert model.config == setup["model"].config
    x = torch.randn(1, 3, 8, 8, 8)
    z0 = torch.randn(1, 16, 8, 8)
    music = torch.randn(1, 12)
    torch.testing.assert_close(model(x, torch.tensor([5]), z0, music=music),
                               setup["model"].eval()(x, torch.tensor([5]), z0, music=music))
    cfg = read_diffusion_config(setup["path"])
    assert cfg.music_spec == setup["encoder"].spec and cfg.flow_ae["weights_sha256"] == flow_ae_identity(setup["ae"])["weights_sha256"]
    # the readable JSON beside the weights has the same config
    side = json.loads(open(str(setup["path"]).replace(".safetensors", ".json"), encoding="utf-8").read())
    assert side["config"]["n_frames"] == 8 and side["kind"] == "flow_diffusion"


def test_identity_is_about_weights_not_files(setup, tmp_path):
    again = save_flow_ae(tmp_path / "copy.safetensors", setup["ae"], {"note": "re-saved"})
    assert flow_ae_identity(again) == flow_ae_identity(setup["ae_path"]) == flow_ae_identity(setup["ae"])
    assert flow_ae_identity(setup["other_path"])["weights_sha256"] != flow_ae_identity(setup["ae_path"])["weights_sha256"]


def test_another_flow_ae_is_refused(setup):
    with pytest.raises(ConfigMismatchError, match="weights_sha256"):
        load_diffusion(setup["path"], flow_ae=setup["other_path"])


def test_another_music_encoder_is_refused(setup):
    mel = MusicEncoder(mel=True)
    with pytest.raises(ConfigMismatchError, match="music encoder"):
        load_diffusion(setup["path"], music_spec=mel.spec)


def test_expected_config_and_kind_and_missing_file(setup, tmp_path):
    with pytest.raises(ConfigMismatchError, match="n_frames"):
        load_diffusion(setup["path"], expected_config={"n_frames": 16})
    with pytest.raises(ConfigMismatchError, match="flow_ae"):
        load_diffusion(setup["ae_path"])
    with pytest.raises(ModelFileError, match="not found"):
        load_diffusion(tmp_path / "nothing.safetensors")
    with pytest.raises(ConfigMismatchError, match="flow AE"):
        flow_ae_identity(setup["path"])


def test_weights_that_do_not_fit_their_config_are_reported(tmp_path):
    from dabfusion.checkpoint_io import save_checkpoint
    from dabfusion.diffusion.checkpoint import KIND
    from dabfusion.diffusion.config import CONFIG_VERSION

    small_weights = UNet3D(PRESETS["tiny"].replace(dim=8)).state_dict()
    path = save_checkpoint(tmp_path / "bad.safetensors", small_weights, PRESETS["tiny"].to_dict(), kind=KIND,
                           version=CONFIG_VERSION)
    with pytest.raises(ConfigMismatchError, match="do not fit"):
        load_diffusion(path)
