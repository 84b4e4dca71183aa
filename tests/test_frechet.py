"""The Frechet distance against Gaussians whose distance is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from dabfusion.evaluation.frechet import (frechet_distance, frechet_distance_from_features, gaussian_stats,
                                          sqrtm_psd, trace_sqrt_product)


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d) * 0.1


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(0)
    s = _spd(rng, 6)
    mu = rng.normal(size=6)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_one_dimension_is_mean_gap_plus_std_gap_squared():
    # N(1, 4) vs N(-2, 9): (1+2)^2 + (2-3)^2 = 10
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(10.0, rel=1e-12)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 5, size=8), rng.uniform(0.1, 5, size=8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_scaled_full_covariance_closed_form():
    # S2 = c^2 S1 commutes with S1: Tr(S1 + S2 - 2 c S1) = (1 - c)^2 Tr(S1), for any full S1
    rng = np.random.default_rng(2)
    s = _spd(rng, 5)
    c = 2.5
    mu = rng.normal(size=5)
    got = frechet_distance(mu, s, mu + 1.0, c * c * s)
    assert got == pytest.approx(5.0 + (1 - c) ** 2 * np.trace(s), rel=1e-10)


def test_non_commuting_covariances_match_the_matrix_square_root_formula():
    rng = np.random.default_rng(3)
    s1, s2 = _spd(rng, 7), _spd(rng, 7)
    assert not np.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-10)
    assert trace_sqrt_product(s1, s2) == pytest.approx(np.trace(covmean), rel=1e-8)
    r = sqrtm_psd(s1)
    np.testing.assert_allclose(r @ r, s1, atol=1e-9)


def test_sample_estimate_converges_to_the_exact_distance():
    rng = np.random.default_rng(4)
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.0, -1.5])
    s1 = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    s2 = np.array([[1.0, -0.2, 0.1], [-0.2, 2.0, 0.0], [0.1, 0.0, 1.5]])
    exact = frechet_distance(mu1, s1, mu2, s2)
    errs = []
    for n in (200, 50_000):
        a = rng.multivariate_normal(mu1, s1, size=n)
        b = rng.multivariate_normal(mu2, s2, size=n)
        errs.append(abs(frechet_distance_from_features(a, b) - exact))
    assert errs[1] < 0.02 * exact
    assert errs[1] < errs[0]


def test_few_samples_in_many_dimensions_stay_finite():
    # 5 videos of 400-d features: singular covariances (rank 4) - what a small FVD run sees
    rng = np.random.default_rng(5)
    a = rng.normal(size=(5, 400))
    b = rng.normal(size=(5, 400)) + 0.5
    d_ab = frechet_distance_from_features(a, b)
    assert np.isfinite(d_ab) and d_ab > 0
    assert frechet_distance_from_features(a, a) == pytest.approx(0.0, abs=1e-6)


def test_gaussian_stats_and_input_checks():
    f = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 2.0]])
    mu, s = gaussian_stats(f)
    np.testing.assert_allclose(mu, [2.0, 2.0])
    np.testing.assert_allclose(s, np.cov(f.T))
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(f[:1])
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance([0, 0], np.eye(2), [0, 0, 0], np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance([0.0], [[np.nan]], [0.0], [[1.0]])
