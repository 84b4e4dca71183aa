"""The 3D U-Net: shapes, conditioning paths, classifier-free-guidance nulls, configs as data."""

from __future__ import annotations

import json

import pytest
import torch

from dabfusion.diffusion import PRESETS, DiffusionConfig, UNet3D, count_parameters, estimate_gflops, get_config

torch.set_num_threads(1)
TINY = PRESETS["tiny"]


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (zero-initialised heads and null embeddings too) a random value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def _inputs(config: DiffusionConfig, b: int = 2, n: int | None = None, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    n = n or config.n_frames
    s = config.latent_size
    return {"x": torch.randn(b, 3, n, s, s, generator=g), "timesteps": torch.tensor([10, 700])[:b],
            "z0": torch.randn(b, config.latent_channels, s, s, generator=g),
            "music": torch.randn(b, config.music_dim, generator=g),
            "beats": torch.rand(b, n, config.beat_dim, generator=g)}


@pytest.mark.parametrize("beats", [True, False])
def test_output_shape_with_and_without_beat_features(beats):
    config = TINY.replace(beat_features=beats)
    model = _randomise(UNet3D(config))
    inp = _inputs(config)
    if not beats:
        inp.pop("beats")
    out = model(inp.pop("x"), inp.pop("timesteps"), inp.pop("z0"), **inp)
    assert out.shape == (2, 3, config.n_frames, config.latent_size, config.latent_size)
    assert torch.isfinite(out).all()
    assert (model.conditioner.beats is not None) == beats
    assert count_parameters(UNet3D(TINY)) > count_parameters(UNet3D(TINY.replace(beat_features=False)))


def test_any_number_of_frames_and_broadcast_reference():
    model = _randomise(UNet3D(TINY))
    inp = _inputs(TINY, n=13)
    out = model(inp["x"], inp["timesteps"], inp["z0"][:1], music=inp["music"], beats=inp["beats"])
    assert out.shape[2] == 13


def test_beat_features_change_the_output_frame_by_frame():
    model = _randomise(UNet3D(TINY))
    inp = _inputs(TINY)
    base = model(inp["x"], inp["timesteps"], inp["z0"], music=inp["music"], beats=inp["beats"])
    beats = inp["beats"].clone()
    beats[:, 3] += 1.0
    moved = model(inp["x"], inp["timesteps"], inp["z0"], music=inp["music"], beats=beats)
    diff = (moved - base).abs().amax(dim=(0, 1, 3, 4))
    assert diff[3] > 0 and diff.max() == diff[3]  # mostly frame 3 moves; attention spreads a little


def test_dropped_condition_is_the_null_condition():
    model = _randomise(UNet3D(TINY))
    inp = _inputs(TINY)
    x, t, z0 = inp["x"], inp["timesteps"], inp["z0"]
    drop = torch.tensor([True, False])
    mixed = model(x, t, z0, music=inp["music"], beats=inp["beats"], drop=drop)
    null = model(x, t, z0)  # no music at all = the learned null embeddings
    cond = model(x, t, z0, music=inp["music"], beats=inp["beats"])
    other_music = model(x, t, z0, music=torch.randn_like(inp["music"]), beats=torch.rand_like(inp["beats"]),
                        drop=torch.tensor([True, True]))
    torch.testing.assert_close(mixed[0], null[0])
    torch.testing.assert_close(mixed[1], cond[1])
    torch.testing.assert_close(other_music, null)  # dropped: the music given does not matter
    assert (cond[0] - null[0]).abs().max() > 1e-3


def test_known_frames_enter_the_input():
    model = _randomise(UNet3D(TINY))
    inp = _inputs(TINY)
    mask = torch.zeros(2, TINY.n_frames, dtype=torch.bool)
    mask[:, :2] = True
    known = torch.randn_like(inp["x"])
    a = model(inp["x"], inp["timesteps"], inp["z0"], known=known, known_mask=mask)
    b = model(inp["x"], inp["timesteps"], inp["z0"], known=known * 2, known_mask=mask)
    c = model(inp["x"], inp["timesteps"], inp["z0"], known=known * 2, known_mask=torch.zeros_like(mask))
    d = model(inp["x"], inp["timesteps"], inp["z0"], known=known * 3, known_mask=torch.zeros_like(mask))
    assert (a - b).abs().max() > 1e-4
    torch.testing.assert_close(c, d)  # unknown frames' values are ignored


def test_z0_concatenation_equals_split_convolution():
    """conv(cat(x, z0)) == conv_x(x) + conv_z(z0): the cheap form computes LFDM's concatenation."""
    model = _randomise(UNet3D(TINY))
    full = torch.nn.Conv2d(model.init_frame.in_channels + model.init_z0.in_channels, TINY.dim, 7, padding=3)
    with torch.no_grad():
        full.weight.copy_(torch.cat([model.init_frame.weight, model.init_z0.weight], dim=1))
        full.bias.copy_(model.init_frame.bias)
    x = torch.randn(3, model.init_frame.in_channels, 8, 8)
    z = torch.randn(1, model.init_z0.in_channels, 8, 8)
    torch.testing.assert_close(full(torch.cat([x, z.expand(3, -1, -1, -1)], 1)), model.init_frame(x) + model.init_z0(z),
                               atol=1e-4, rtol=1e-4)


def test_bad_inputs_are_named():
    model = UNet3D(TINY)
    inp = _inputs(TINY)
    with pytest.raises(ValueError, match="z0"):
        model(inp["x"], inp["timesteps"], torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="music embedding"):
        model(inp["x"], inp["timesteps"], inp["z0"], music=torch.randn(2, 5))


def test_configs_round_trip_and_validate(tmp_path):
    for name, config in PRESETS.items():
        again = DiffusionConfig.from_dict(json.loads(config.to_json()))
        assert again == config
    path = tmp_path / "c.json"
    path.write_text(TINY.replace(name="mine", dim=8).to_json())
    assert get_config(str(path)).dim == 8
    with pytest.raises(ValueError, match="divisible"):
        TINY.replace(latent_size=7)
    with pytest.raises(ValueError, match="prediction_type"):
        TINY.replace(prediction_type="sample")


def test_size_estimates():
    small = UNet3D(PRESETS["small"])
    assert 1e6 < count_parameters(small) < 10e6
    gf = estimate_gflops(UNet3D(TINY))
    assert 0.01 < gf < 1.0
