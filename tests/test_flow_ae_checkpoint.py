"""Checkpoints: safetensors + JSON round trip, clear config mismatches, pickle-free training states."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from dabfusion.checkpoint_io import checkpoint_paths, load_checkpoint, read_header, save_checkpoint
from dabfusion.errors import ConfigMismatchError, ModelFileError
from dabfusion.flow_ae import PRESETS, FlowAE, FlowAutoEncoder, load_flow_ae, read_flow_ae_config, save_flow_ae
from dabfusion.training_utils.state import flatten, unflatten


def test_flow_ae_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = FlowAutoEncoder(PRESETS["tiny"]).eval()
    path = save_flow_ae(tmp_path / "tiny.safetensors", model, {"step": 7, "weights": "ema"})
    assert (tmp_path / "tiny.json").is_file()
    assert not list(tmp_path.glob("*.tmp"))
    loaded, header = load_flow_ae(path)
    assert header["kind"] == "flow_ae" and header["extra"]["step"] == 7
    assert read_flow_ae_config(path) == model.config
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x, y), loaded(x, y)
    for key in ("reconstruction", "flow", "occlusion"):
        assert torch.equal(a[key], b[key])
    assert torch.equal(FlowAE.from_checkpoint(path).reconstruct(x, y), a["reconstruction"])


def test_header_is_embedded_so_the_weights_file_alone_loads(tmp_path):
    path = save_flow_ae(tmp_path / "m.safetensors", FlowAutoEncoder(PRESETS["tiny"]))
    (tmp_path / "m.json").unlink()
    assert read_header(path)["config"]["name"] == "tiny"
    load_flow_ae(path)


def test_config_mismatch_names_every_differing_key(tmp_path):
    path = save_flow_ae(tmp_path / "m.safetensors", FlowAutoEncoder(PRESETS["tiny"]))
    with pytest.raises(ConfigMismatchError) as e:
        load_flow_ae(path, expected_config={"image_size": 64, "num_regions": 10, "latent_typo": 1})
    msg = str(e.value)
    assert "image_size: checkpoint has 32, expected 64" in msg
    assert "num_regions: checkpoint has 4, expected 10" in msg
    assert "latent_typo: missing" in msg and str(path) in msg
    with pytest.raises(ConfigMismatchError, match="image_size"):
        load_flow_ae(path, expected_config=PRESETS["small"])
    load_flow_ae(path, expected_config=PRESETS["tiny"].replace(name="renamed"))  # a name is only a label


def test_wrong_kind_and_missing_file(tmp_path):
    p = save_checkpoint(tmp_path / "other", {"w": torch.zeros(2)}, {"a": 1}, kind="diffusion")
    assert p == tmp_path / "other.safetensors"
    with pytest.raises(ConfigMismatchError, match="'diffusion' model, expected 'flow_ae'"):
        load_flow_ae(p)
    with pytest.raises(ModelFileError, match=str(tmp_path / "nowhere")):
        load_flow_ae(tmp_path / "nowhere" / "flow_ae.safetensors")


def test_generic_checkpoint_directory_form(tmp_path):
    d = tmp_path / "model_dir"
    d.mkdir()
    state = {"a": torch.arange(6.0).view(2, 3), "b": torch.ones(3, dtype=torch.int64)}
    save_checkpoint(d, state, {"width": 8, "mults": (1, 2)}, {"note": "x"}, kind="toy", version=3)
    assert checkpoint_paths(d) == (d / "model.safetensors", d / "config.json")
    assert json.loads((d / "config.json").read_text())["config"]["mults"] == [1, 2]
    loaded, header = load_checkpoint(d, expected_kind="toy", expected_version=3,
                                     expected_config_subset={"mults": [1, 2]})
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    with pytest.raises(ConfigMismatchError, match="version"):
        load_checkpoint(d, expected_version=4)


def test_training_state_flatten_round_trip_without_pickle():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    random.seed(3)
    np.random.seed(4)
    obj = {"opt": opt.state_dict(), "py": random.getstate(), "np": np.random.get_state(),
           "torch": torch.get_rng_state(), "x": 0.1, "inf": float("inf"), "t": (1, "a", None), "dtype": torch.bfloat16}
    skeleton, tensors = flatten(obj)
    text = json.dumps(skeleton)  # plain JSON, nothing pickled
    back = unflatten(json.loads(text), tensors)
    assert back["py"] == obj["py"] and back["x"] == 0.1 and back["inf"] == float("inf")
    assert back["t"] == (1, "a", None) and back["dtype"] is torch.bfloat16
    assert back["np"][0] == "MT19937" and np.array_equal(back["np"][1], obj["np"][1])
    assert torch.equal(back["torch"], obj["torch"])
    opt2 = torch.optim.Adam(model.parameters())
    opt2.load_state_dict(back["opt"])
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for k in s1["state"]:
        for name, v in s1["state"][k].items():
            assert torch.equal(v, s2["state"][k][name])
