"""Losses: the VGG-19 loader with torchvision's real layout, the explicit fallback, equivariance."""

from __future__ import annotations

import time

import pytest
import torch

from dabfusion.errors import ModelFileError
from dabfusion.flow_ae import losses as L
from dabfusion.flow_ae.losses import (FlowAELoss, LossConfig, RandomTransform, VGG19Features,
                                      build_reconstruction_loss, equivariance_losses)
from dabfusion.flow_ae.model import FlowAutoEncoder
from dabfusion.flow_ae.config import PRESETS
from dabfusion.metrics.image_quality import psnr, ssim


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A genuinely constructed torchvision VGG-19 (random weights), features.* keys saved as torch does.

    The classifier is ~470 MB of the 550 MB; the loss needs only ``features`` (~80 MB, ~0.2 s to save).
    """
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.vgg19(weights=None)
    state = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    t = time.perf_counter()
    torch.save(state, path)
    assert time.perf_counter() - t < 5
    return path, state


@pytest.fixture(autouse=True)
def _no_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(L.VGG19_ENV, raising=False)


def test_vgg19_loads_torchvision_layout_from_file_and_folder(vgg_file):
    path, state = vgg_file
    vgg = VGG19Features.from_file(path)
    for key, value in vgg.features.state_dict().items():
        assert torch.equal(value, state["features." + key])
    assert VGG19Features.from_file(path.parent).source == str(path)  # a folder holding the file
    assert not any(p.requires_grad for p in vgg.parameters())
    feats = vgg(torch.rand(1, 3, 32, 32))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]


def test_vgg_loss_is_zero_for_identical_images_and_positive_otherwise(vgg_file):
    loss = build_reconstruction_loss(LossConfig(perceptual="vgg19"), vgg_file[0])
    x = torch.rand(2, 3, 32, 32)
    assert float(loss(x, x)["perceptual"]) == 0.0
    y = torch.rand(2, 3, 32, 32, requires_grad=True)
    val = loss(y, x)["perceptual"]
    val.backward()
    assert val > 0 and torch.isfinite(y.grad).all()


def test_missing_vgg_file_raises_model_file_error_naming_the_folder(tmp_path):
    missing = tmp_path / "models" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(ModelFileError, match=str(tmp_path / "models")):
        VGG19Features.from_file(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError) as e:
        build_reconstruction_loss(LossConfig(perceptual="vgg19"), empty)
    assert str(empty) in str(e.value) and "--perceptual l1ssim" in str(e.value)


def test_wrong_file_is_rejected(tmp_path):
    bad = tmp_path / "vgg19.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, bad)
    with pytest.raises(ModelFileError, match="not a torchvision VGG-19"):
        VGG19Features.from_file(bad)


def test_fallback_only_when_chosen(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("VGG must not be touched by the l1ssim loss")

    monkeypatch.setattr(VGG19Features, "from_file", classmethod(boom))
    loss = build_reconstruction_loss(LossConfig(perceptual="l1ssim"))
    assert loss.name == "l1ssim" and "no VGG" in loss.describe()
    x = torch.rand(2, 3, 32, 32)
    assert all(float(v) < 1e-4 for v in loss(x, x).values())
    with pytest.raises(ValueError, match="perceptual"):
        build_reconstruction_loss(LossConfig(perceptual="vgg"))


def test_psnr_and_ssim_known_values():
    a = torch.full((1, 3, 16, 16), 0.5)
    assert abs(float(psnr(a, a + 0.1)) - 20.0) < 1e-3
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    s = ssim(x, noisy)
    assert (s < 0.9).all() and (s > 0).all()
    torch.testing.assert_close(ssim(noisy, x), s)


def test_random_transform_jacobian_matches_autograd():
    g = torch.Generator().manual_seed(0)
    tr = RandomTransform(3, sigma_affine=0.1, sigma_tps=0.02, points_tps=5, generator=g)
    pts = torch.rand(3, 7, 2) * 2 - 1
    jac = tr.jacobian(pts)
    auto = torch.autograd.functional.jacobian(lambda q: tr.warp_coordinates(q).sum(dim=(0, 1)), pts)
    torch.testing.assert_close(jac, auto.permute(1, 2, 0, 3), atol=1e-5, rtol=1e-4)


def test_equivariance_is_zero_for_the_identity_transform_and_positive_otherwise():
    torch.manual_seed(0)
    model = FlowAutoEncoder(PRESETS["tiny"])
    x = torch.rand(2, 3, 32, 32)
    ident = RandomTransform(2, sigma_affine=0.0, sigma_tps=0.0, points_tps=5)
    assert torch.equal(ident.transform_frame(x), x)
    with torch.no_grad():
        regions = model.regions(torch.cat([x, ident.transform_frame(x)]))
        d = {k: v[:2] for k, v in regions.items()}
        t = {k: v[2:] for k, v in regions.items()}
        eq = equivariance_losses(d, t, ident)
        assert float(eq["equivariance_shift"]) < 1e-6 and float(eq["equivariance_affine"]) < 1e-4
        g = torch.Generator().manual_seed(1)
        tr = RandomTransform(2, sigma_affine=0.2, sigma_tps=0.01, points_tps=5, generator=g)
        t2 = model.regions(tr.transform_frame(x))
        assert float(equivariance_losses(d, t2, tr)["equivariance_shift"]) > 1e-4


def test_total_loss_has_all_terms_and_backpropagates():
    torch.manual_seed(0)
    model = FlowAutoEncoder(PRESETS["tiny"])
    cfg = LossConfig(perceptual="l1ssim")
    loss_fn = FlowAELoss(cfg, build_reconstruction_loss(cfg))
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    tr = loss_fn.make_transform(2, torch.Generator().manual_seed(0), "cpu")
    total, terms = loss_fn(model(x, y, tr.transform_frame(y)), y, tr)
    assert set(terms) == {"l1", "dssim", "equivariance_shift", "equivariance_affine"}
    total.backward()
    grads = [p.grad for p in model.region_predictor.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_losses_keep_float32_precision_under_bf16_autocast():
    """Mixed precision must not turn SSIM variances or region coordinates into bf16 noise."""
    torch.manual_seed(0)
    model = FlowAutoEncoder(PRESETS["tiny"])
    cfg = LossConfig(perceptual="l1ssim")
    loss_fn = FlowAELoss(cfg, build_reconstruction_loss(cfg))
    x = torch.rand(2, 3, 32, 32)
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    plain = loss_fn.reconstruction(y, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss_fn.reconstruction(y, x)
        tr = loss_fn.make_transform(2, torch.Generator().manual_seed(0), "cpu")
        out = model(x, y, tr.transform_frame(y))
        _, terms = loss_fn(out, y, tr)
    for k in plain:
        torch.testing.assert_close(mixed[k], plain[k], rtol=1e-5, atol=1e-6)
    assert 0 < float(terms["dssim"].detach()) and all(torch.isfinite(v) for v in terms.values())
    assert out["flow"].dtype == torch.float32 and out["regions_driving"]["shift"].dtype == torch.float32


def test_vgg19_found_in_torch_hub_cache_and_env_folder(vgg_file, tmp_path, monkeypatch):
    path, _ = vgg_file
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / path.name).symlink_to(path)
    assert VGG19Features.from_file().source == str(hub / path.name)
    env_dir = tmp_path / "models_vgg"
    env_dir.mkdir()
    (env_dir / "vgg19.safetensors").write_bytes(b"not a safetensors file")
    monkeypatch.setenv(L.VGG19_ENV, str(env_dir))
    with pytest.raises(ModelFileError, match="Cannot read VGG-19 weights"):
        VGG19Features.from_file()  # the env folder comes first, and a broken file is an error
