"""The Frechet distance between two Gaussians, and between two sets of feature vectors.

    FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

It is the squared 2-Wasserstein distance between N(mu1, S1) and N(mu2, S2); FVD (Unterthiner et
al. 2018) is this distance between Gaussians fitted to I3D features of real and generated videos,
FID the same with Inception image features.

``Tr((S1 S2)^(1/2))`` is computed as ``sum(sqrt(eig(A S2 A)))`` with ``A = S1^(1/2)``: ``A S2 A`` is
symmetric positive semi-definite and similar to ``S1 S2`` up to the square root, so the trace
is real and needs only symmetric eigen-decompositions (``numpy.linalg.eigh``), which stay stable
for the singular covariances that few samples in many dimensions give (a handful of videos in
I3D's 400 dimensions). This is the formulation of TF-GAN's ``trace_sqrt_product`` that the
original FVD code uses; ``scipy.linalg.sqrtm(S1 @ S2)`` (pytorch-fid) gives the same number on
well-conditioned inputs and can turn complex on singular ones. Everything runs in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _as_matrix(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{what} must be a square matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} has NaN or infinite entries")
    return a


def sqrtm_psd(mat: Any) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative eigenvalues clipped)."""
    m = _as_matrix(mat, "matrix")
    m = 0.5 * (m + m.T)
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: Any, sigma2: Any) -> float:
    """``Tr((S1 S2)^(1/2))`` for covariance matrices (see the module docstring)."""
    s1, s2 = _as_matrix(sigma1, "sigma1"), _as_matrix(sigma2, "sigma2")
    if s1.shape != s2.shape:
        raise ValueError(f"covariances differ in shape: {s1.shape} and {s2.shape}")
    a = sqrtm_psd(s1)
    inner = a @ (0.5 * (s2 + s2.T)) @ a
    w = np.linalg.eigvalsh(0.5 * (inner + inner.T))
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (>= 0 up to rounding)."""
    m1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    m2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1, s2 = _as_matrix(sigma1, "sigma1"), _as_matrix(sigma2, "sigma2")
    if m1.shape != m2.shape or s1.shape != (m1.size, m1.size) or s2.shape != s1.shape:
        raise ValueError(f"shapes do not fit: mu {m1.shape}/{m2.shape}, sigma {s1.shape}/{s2.shape}")
    diff = m1 - m2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))
    return max(fd, 0.0)


def gaussian_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` of ``features`` ``[N, D]`` (N >= 2)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {f.shape[0]}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance_from_features(a: Any, b: Any) -> float:
    """Frechet distance between Gaussians fitted to feature sets ``a`` ``[N, D]`` and ``b`` ``[M, D]``."""
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b)
    return frechet_distance(mu1, s1, mu2, s2)
