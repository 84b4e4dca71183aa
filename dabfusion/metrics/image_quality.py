"""PSNR and SSIM for batches of images, in torch (CPU or GPU), differentiable.

Both take ``[B, C, H, W]`` tensors in ``0..data_range`` and return one value per image ``[B]``.
SSIM is the standard Gaussian-window SSIM (Wang et al. 2004: 11x11 window, sigma 1.5,
K1 = 0.01, K2 = 0.03, "valid" windows only), computed per colour channel and averaged, like
``skimage.metrics.structural_similarity(..., channel_axis=-1, gaussian_weights=True,
use_sample_covariance=False)``. For images smaller than 11 pixels the window shrinks to the
image (sigma scaled with it), so the function also serves small pyramid levels of a loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image ``[B]`` (MSE over channels and pixels)."""
    _check(a, b)
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range ** 2 / (mse + eps))


def _gaussian_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).to(dtype)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM per image ``[B]`` (Gaussian window, valid positions, channels averaged).

    Always computed in float32 with autocast off: the variances are differences of nearly equal
    blurred moments, which half precision turns into noise (SSIM above 1).
    """
    _check(a, b)
    with torch.autocast(device_type=a.device.type, enabled=False):
        return _ssim(a, b, data_range, window_size, sigma, k1, k2)


def _ssim(a: torch.Tensor, b: torch.Tensor, data_range: float, window_size: int, sigma: float,
          k1: float, k2: float) -> torch.Tensor:
    a, b = a.float(), b.float()
    _, c, h, w = a.shape
    size = min(window_size, h, w)
    if size % 2 == 0:
        size -= 1
    size = max(size, 1)
    sig = sigma * size / window_size
    g = _gaussian_window(size, max(sig, 1e-3), a.device, a.dtype)
    kx = g.view(1, 1, 1, size).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, size, 1).repeat(c, 1, 1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    aa, bb, ab = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    num = (2 * mu_a * mu_b + c1) * (2 * ab + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (aa + bb + c2)
    return (num / den).flatten(1).mean(dim=1)


def mean_psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """PSNR of an aggregated MSE (dB); ``inf`` for a perfect match."""
    return float("inf") if mse <= 0 else 10.0 * math.log10(data_range ** 2 / mse)


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"expected two [B,C,H,W] tensors of the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
