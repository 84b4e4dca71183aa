"""Model shapes per configuration, occlusion range, region maths on the device, the API in bf16."""

from __future__ import annotations

import json

import pytest
import torch

from dabfusion.flow_ae import PRESETS, FlowAE, FlowAEConfig, FlowAutoEncoder, get_config, parameter_table
from dabfusion.flow_ae.region_predictor import covariance_to_affine, symmetric_eig2x2


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_training_forward_shapes_and_ranges(name):
    torch.manual_seed(0)
    cfg = PRESETS[name]
    model = FlowAutoEncoder(cfg)
    s, h, c, k = cfg.image_size, cfg.latent_size, cfg.latent_channels, cfg.num_regions
    ref, drv = torch.rand(2, 3, s, s), torch.rand(2, 3, s, s)
    out = model(ref, drv, drv.flip(-1))
    assert out["reconstruction"].shape == (2, 3, s, s)
    assert out["flow"].shape == (2, 2, h, h) and out["occlusion"].shape == (2, 1, h, h)
    assert out["regions_driving"]["shift"].shape == (2, k, 2)
    assert out["regions_transformed"]["affine"].shape == (2, k, 2, 2)
    assert 0 <= out["occlusion"].min() and out["occlusion"].max() <= 1
    assert 0 <= out["reconstruction"].min() and out["reconstruction"].max() <= 1
    assert torch.isfinite(out["flow"]).all()
    assert model.encode(ref).shape == (2, c, h, h)
    out["reconstruction"].mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_parameter_counts():
    assert parameter_table(FlowAutoEncoder(PRESETS["tiny"]))["total"] < 1_000_000
    small = parameter_table(FlowAutoEncoder(PRESETS["small"]))["total"]
    assert 500_000 < small < 5_000_000
    paper = FlowAutoEncoder(PRESETS["paper"])
    total = parameter_table(paper)["total"]
    assert 60e6 < total < 72e6  # LFDM's flow AE: ~66M
    cfg = PRESETS["paper"]
    assert (cfg.image_size, cfg.latent_size, cfg.latent_channels, cfg.num_regions) == (128, 32, 256, 10)
    with torch.no_grad():
        x = torch.rand(1, 3, 128, 128)
        flow, occ = paper.predict_flow(x, x)
        assert flow.shape == (1, 2, 32, 32) and occ.shape == (1, 1, 32, 32)
        assert paper.encode(x).shape == (1, 256, 32, 32)


def test_config_is_data(tmp_path):
    cfg = PRESETS["small"]
    again = FlowAEConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    p = tmp_path / "c.json"
    p.write_text(cfg.to_json())
    assert get_config(p) == cfg
    assert get_config("small").with_image_size(128).latent_size == 32
    with pytest.raises(ValueError, match="image_size"):
        FlowAEConfig(image_size=30)
    with pytest.raises(ValueError, match="unknown|Unknown"):
        get_config("huge")


def test_closed_form_eigen_matches_lapack_and_affine_squares_to_covariance():
    torch.manual_seed(0)
    a = torch.randn(500, 2, 2) * 0.3
    covar = a @ a.transpose(-1, -2) + 1e-3 * torch.eye(2)
    vals, vecs = symmetric_eig2x2(covar)
    ref_vals = torch.linalg.eigvalsh(covar).flip(-1)
    torch.testing.assert_close(vals, ref_vals, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(vecs @ torch.diag_embed(vals) @ vecs.transpose(-1, -2), covar, atol=1e-5, rtol=1e-4)
    assert (vecs[..., 0, 0] >= 0).all()  # sign convention: principal axis points right
    affine, inv = covariance_to_affine(covar)
    torch.testing.assert_close(affine @ affine.transpose(-1, -2), covar, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(affine @ inv, torch.eye(2).expand(500, 2, 2), atol=1e-4, rtol=1e-4)


def test_eigen_gradients_stay_finite_for_isotropic_regions():
    covar = (0.01 * torch.eye(2)).expand(4, 2, 2).clone().requires_grad_(True)
    affine, inv = covariance_to_affine(covar)
    (affine.sum() + inv.sum()).backward()
    assert torch.isfinite(covar.grad).all()


def test_api_batches_broadcast_and_bfloat16_on_cpu():
    torch.manual_seed(0)
    model = FlowAutoEncoder(PRESETS["tiny"])
    ae = FlowAE(model, chunk_size=3)
    ref, drv = torch.rand(1, 3, 32, 32), torch.rand(5, 3, 32, 32)
    z = ae.encode(ref)
    flow, occ = ae.predict_flow(ref, drv)  # one reference, five driving frames
    assert z.shape == (1, 16, 8, 8) and flow.shape == (5, 2, 8, 8) and occ.shape == (5, 1, 8, 8)
    frames = ae.decode(ae.warp(z, flow, occ))
    assert frames.shape == (5, 3, 32, 32) and frames.dtype == torch.float32
    torch.testing.assert_close(ae.reconstruct(ref, drv), frames)

    ae.to(dtype=torch.bfloat16)
    z16 = ae.encode(ref)
    assert z16.dtype == torch.bfloat16
    f16, o16 = ae.predict_flow(ref, drv)
    assert f16.dtype == torch.float32 and torch.isfinite(f16).all()
    out16 = ae.decode(ae.warp(z16, f16, o16))
    assert out16.dtype == torch.float32 and out16.shape == frames.shape
    assert (out16 - frames).abs().mean() < 0.05
    with pytest.raises(ValueError, match="32x32"):
        ae.encode(torch.rand(1, 3, 64, 64))
