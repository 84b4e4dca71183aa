"""Schedulers and the window sampler: shapes, seeds, thresholding, guidance, known frames, progress."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dabfusion.diffusion import PRESETS, UNet3D, make_scheduler, sample_window
from dabfusion.diffusion.schedule import (DEFAULT_STEPS, from_model_space, needs_output_thresholding,
                                          supports_native_thresholding, to_model_space)
from dabfusion.testing.unets import random_unet

torch.set_num_threads(1)
TINY = PRESETS["tiny"]
STEPS = {"ddpm": 12, "ddim": 5, "dpm++": 5}  # DDIM: steps must divide 1000 (see schedule.py)


def _model(config=TINY, seed: int = 0) -> UNet3D:
    return random_unet(config, seed)


def _cond(b: int = 1, seed: int = 3) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"z0": torch.randn(b, TINY.latent_channels, 8, 8, generator=g),
            "music": torch.randn(b, TINY.music_dim, generator=g),
            "beats": torch.rand(b, TINY.n_frames, TINY.beat_dim, generator=g)}


class Explode(nn.Module):
    """Predicts eps = -c x: the implied x0 grows without bound unless thresholded."""

    def __init__(self, config, c: float = 5.0) -> None:
        super().__init__()
        self.config, self.c, self.has_music = config, c, False
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, z0, **kw):
        return -self.c * x + self.dummy


def test_the_three_samplers_support_thresholding_natively():
    for name in STEPS:
        s = make_scheduler(TINY, name)
        assert supports_native_thresholding(s) and s.config.thresholding
        assert s.config.dynamic_thresholding_ratio == 0.9
        assert s.config.beta_schedule == "squaredcos_cap_v2" and s.config.num_train_timesteps == 1000
        assert not needs_output_thresholding(s, TINY)
    assert DEFAULT_STEPS == {"ddpm": 1000, "ddim": 50, "dpm++": 25}
    assert needs_output_thresholding(make_scheduler(TINY, "ddpm", thresholding=False), TINY)


@pytest.mark.parametrize("sampler", list(STEPS))
def test_samplers_finite_shaped_and_seeded(sampler):
    model = _model()
    runs = []
    for seed in (7, 7, 8):
        x = sample_window(model, **_cond(), sampler=sampler, num_inference_steps=STEPS[sampler],
                          guidance_scale=2.0, generator=torch.Generator().manual_seed(seed))
        runs.append(x)
    assert runs[0].shape == (1, 3, TINY.n_frames, 8, 8)
    assert torch.isfinite(runs[0]).all()
    assert torch.equal(runs[0], runs[1])
    assert (runs[0] - runs[2]).abs().max() > 1e-3


@pytest.mark.parametrize("sampler", list(STEPS))
def test_dynamic_thresholding_keeps_samples_in_range(sampler):
    cond = _cond()
    on = sample_window(Explode(TINY), **cond, sampler=sampler, num_inference_steps=STEPS[sampler],
                       generator=torch.Generator().manual_seed(0))
    off_config = TINY.replace(thresholding=False)
    off = sample_window(Explode(off_config), **cond, sampler=sampler, num_inference_steps=STEPS[sampler],
                        generator=torch.Generator().manual_seed(0))
    assert on.abs().max() <= 1.0 + 1e-5
    assert off.abs().max() > 2.0


def test_output_thresholding_fallback_matches_ddpm_native():
    model = _model()
    cond = _cond()
    native = sample_window(model, **cond, sampler="ddpm", num_inference_steps=10,
                           generator=torch.Generator().manual_seed(1), guidance_scale=3.0)
    plain = make_scheduler(TINY, "ddpm", thresholding=False)
    fallback = sample_window(model, **cond, scheduler=plain, num_inference_steps=10,
                             generator=torch.Generator().manual_seed(1), guidance_scale=3.0)
    torch.testing.assert_close(native, fallback, atol=1e-4, rtol=1e-4)


def test_guidance_changes_the_sample_and_scale_one_is_conditional():
    model = _model()
    cond = _cond()
    kw = dict(sampler="ddim", num_inference_steps=4)
    one = sample_window(model, **cond, guidance_scale=1.0, generator=torch.Generator().manual_seed(0), **kw)
    three = sample_window(model, **cond, guidance_scale=3.0, generator=torch.Generator().manual_seed(0), **kw)
    assert (one - three).abs().max() > 1e-4


class KnownBranches(nn.Module):
    """Outputs 2 + x with the music, -1 + x without it (``drop``): the two guidance branches are known."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config, self.has_music = config, True
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, z0, *, music=None, beats=None, known=None, known_mask=None, drop=None):
        dropped = torch.zeros(x.shape[0], dtype=torch.bool) if drop is None else drop.cpu()
        branch = torch.where(dropped, torch.tensor(-1.0), torch.tensor(2.0)).view(-1, 1, 1, 1, 1)
        return x + branch + self.dummy


def test_guidance_is_null_plus_scale_times_cond_minus_null():
    from dabfusion.diffusion.samplers import guided_output

    model, cond = KnownBranches(TINY), _cond(2)
    x = torch.randn(2, 3, TINY.n_frames, 8, 8)
    t = torch.tensor([500])
    for scale in (0.0, 1.0, 3.0):
        out = guided_output(model, x, t, z0=cond["z0"], music=cond["music"], beats=cond["beats"], known=None,
                            known_mask=None, guidance_scale=scale)
        # null + s (cond - null) = (x - 1) + s * 3; with the branches swapped it would be x + 2 - 3 s
        torch.testing.assert_close(out, x - 1.0 + 3.0 * scale)


@pytest.mark.parametrize("sampler", list(STEPS))
def test_known_frames_are_reproduced(sampler):
    model = _model()
    cond = _cond()
    known = torch.zeros(1, 3, TINY.n_frames, 8, 8)
    known[:, :, :3] = torch.linspace(-0.5, 0.5, 64).view(1, 1, 1, 8, 8)
    mask = torch.zeros(1, TINY.n_frames, dtype=torch.bool)
    mask[:, :3] = True
    x = sample_window(model, **cond, known=known, known_mask=mask, sampler=sampler,
                      num_inference_steps=STEPS[sampler], generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(x[:, :, :3], known[:, :, :3], atol=1e-5, rtol=0)
    assert (x[:, :, 3:] - known[:, :, 3:]).abs().max() > 1e-3


def test_v_prediction_and_progress_callback():
    config = TINY.replace(prediction_type="v_prediction")
    model = _model(config)
    calls = []
    x = sample_window(model, **_cond(), sampler="dpm++", num_inference_steps=4,
                      generator=torch.Generator().manual_seed(0), callback=lambda d, n: calls.append((d, n)))
    assert torch.isfinite(x).all() and make_scheduler(config, "ddim").config.prediction_type == "v_prediction"
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]

    class Stop(Exception):
        pass

    def interrupt(done, total):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        sample_window(model, **_cond(), sampler="ddim", num_inference_steps=4, callback=interrupt)


def test_model_space_round_trip():
    flow = torch.randn(2, 5, 2, 8, 8) * 0.1
    occ = torch.rand(2, 5, 1, 8, 8)
    x = to_model_space(flow, occ, 4.0)
    assert x.shape == (2, 5, 3, 8, 8) and x[:, :, 2].min() >= -1 and x[:, :, 2].max() <= 1
    f2, o2 = from_model_space(x, 4.0)
    torch.testing.assert_close(f2, flow)
    torch.testing.assert_close(o2, occ)


def test_companded_flows_round_trip_and_lift_small_motion():
    flow = torch.randn(2, 5, 2, 8, 8) * 0.05
    occ = torch.rand(2, 5, 1, 8, 8)
    lin = to_model_space(flow, occ, 4.0)
    comp = to_model_space(flow, occ, 4.0, 0.5)
    torch.testing.assert_close(comp[:, :, 2], lin[:, :, 2])  # occlusions untouched
    assert torch.equal(torch.sign(comp[:, :, :2]), torch.sign(lin[:, :, :2]))
    small = lin[:, :, :2].abs() < 1
    assert (comp[:, :, :2].abs()[small] >= lin[:, :, :2].abs()[small]).all()  # |m| ** 0.5 >= |m| below 1
    assert comp[:, :, :2].abs().median() > 2 * lin[:, :, :2].abs().median()
    f2, o2 = from_model_space(comp, 4.0, 0.5)
    torch.testing.assert_close(f2, flow, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(o2, occ)
    with pytest.raises(ValueError, match="flow_power"):
        from dabfusion.diffusion import PRESETS
        PRESETS["tiny"].replace(flow_power=1.5)


def test_half_precision_model():
    model = _model().to(torch.bfloat16)
    x = sample_window(model, **_cond(), sampler="ddim", num_inference_steps=4, guidance_scale=2.0,
                      generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and torch.isfinite(x).all()
