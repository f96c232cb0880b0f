"""Fréchet distance, streaming feature statistics, FID and KID against direct numpy/scipy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from labelsynth.metrics import FeatureStatistics, compute_fid, compute_kid, frechet_distance, mmd2_unbiased


def scipy_reference_fid(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula with scipy.linalg.sqrtm, written independently of labelsynth."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 24)) @ rng.normal(size=(24, 24)) * 0.5 + 1.0
    y = rng.normal(size=(250, 24)) @ rng.normal(size=(24, 24)) * 0.4 + rng.normal(size=24)
    return x, y


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_distance_matches_scipy_reference(features, method):
    x, y = features
    expected = scipy_reference_fid(x, y)
    got = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False), method=method)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert compute_fid(x, y, method=method) == pytest.approx(expected, rel=1e-9)
    assert compute_fid(torch.from_numpy(x).float(), torch.from_numpy(y).float()) == pytest.approx(expected, rel=1e-5)


def test_frechet_distance_of_diagonal_gaussians_by_hand():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    # ||mu1 - mu2||^2 + sum (sqrt(v1) - sqrt(v2))^2 = (1 + 0 + 4) + (1 + 0 + 4)
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(10.0, abs=1e-12)
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2), method="sqrtm") == pytest.approx(10.0, abs=1e-10)


def test_fid_of_identical_sets_is_zero_also_with_singular_covariances():
    rng = np.random.default_rng(1)
    well_conditioned = rng.normal(size=(200, 16))
    assert compute_fid(well_conditioned, well_conditioned.copy()) == pytest.approx(0.0, abs=1e-9)
    few_images = np.abs(rng.normal(size=(10, 64)))  # 10 images, 64-d features: rank-9 covariance
    assert compute_fid(few_images, few_images[::-1]) == pytest.approx(0.0, abs=1e-9)
    assert compute_fid(few_images, few_images, method="sqrtm") == pytest.approx(0.0, abs=1e-4)


def test_frechet_distance_validates_inputs():
    with pytest.raises(ValueError, match="same length"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"\[3, 3\] covariance"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan]), np.eye(1), np.zeros(1), np.eye(1))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(np.zeros(1), np.eye(1), np.zeros(1), np.eye(1), method="svd")


def test_feature_statistics_stream_in_float64(features, tmp_path):
    x, y = features
    stats = FeatureStatistics()
    for start, stop in ((0, 1), (1, 50), (50, 51), (51, 300)):
        stats.update(torch.from_numpy(x[start:stop]) if start == 50 else x[start:stop])
    stats.update(np.zeros((0, 24)))
    assert stats.count == 300
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)
    assert stats.covariance.dtype == np.float64

    other = FeatureStatistics().update(y)
    merged = FeatureStatistics().update(x).merge(other)
    both = np.concatenate([x, y])
    np.testing.assert_allclose(merged.covariance, np.cov(both, rowvar=False), rtol=1e-10, atol=1e-12)
    assert compute_fid(stats, other) == pytest.approx(scipy_reference_fid(x, y), rel=1e-9)
    assert compute_fid((x.mean(0), np.cov(x, rowvar=False)), y) == pytest.approx(scipy_reference_fid(x, y), rel=1e-9)

    path = tmp_path / "stats.npz"
    stats.save(path)
    loaded = FeatureStatistics.load(path)
    assert loaded.count == 300
    np.testing.assert_allclose(loaded.covariance, stats.covariance, rtol=1e-12)
    loaded.update(y)  # a saved count allows extending
    np.testing.assert_allclose(loaded.mean, both.mean(0), rtol=1e-12)

    # pytorch-fid / TTUR reference files have mu and sigma only: usable for FID, not extendable.
    np.savez(tmp_path / "ref.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    reference = FeatureStatistics.load(tmp_path / "ref.npz")
    assert compute_fid(reference, y) == pytest.approx(scipy_reference_fid(x, y), rel=1e-9)
    with pytest.raises(ValueError, match="without num_samples"):
        reference.update(y)


def test_feature_statistics_errors():
    stats = FeatureStatistics()
    with pytest.raises(ValueError, match="no features"):
        _ = stats.mean
    stats.update(np.ones((1, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        _ = stats.covariance
    with pytest.raises(ValueError, match="dimension 3, expected 4"):
        stats.update(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\[num_images, feature_dim\]"):
        stats.update(np.ones(4))


def direct_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 (Binkowski et al., eq. for the U-statistic) with explicit loops and k = (x.y/d + 1)^3."""
    d = x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_unbiased_estimator_matches_direct_computation():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, 5))
    y = rng.normal(loc=0.5, size=(9, 5))
    expected = direct_mmd2(x, y)
    assert mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)
    # subset_size capped at the smaller set (9): every real subset differs, so compare against replayed draws.
    mean, std = compute_kid(x, y, subsets=4, subset_size=1000, seed=7)
    replay = np.random.default_rng(7)
    values = []
    for _ in range(4):
        xs = x[replay.choice(12, 9, replace=False)]
        ys = y[replay.choice(9, 9, replace=False)]
        values.append(direct_mmd2(xs, ys))
    assert mean == pytest.approx(np.mean(values), rel=1e-12)
    assert std == pytest.approx(np.std(values), rel=1e-9)
    # Whole equal-size sets in every subset: the estimate is permutation invariant, so std is 0.
    mean_all, std_all = compute_kid(x[:9], y, subsets=3, subset_size=9)
    assert mean_all == pytest.approx(direct_mmd2(x[:9], y), rel=1e-12) and std_all == pytest.approx(0.0, abs=1e-12)


def test_kid_is_deterministic_and_near_zero_for_one_distribution():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    first = compute_kid(x, y, subsets=20, subset_size=100, seed=0)
    assert first == compute_kid(x, y, subsets=20, subset_size=100, seed=0)
    assert abs(first[0]) < 3 * first[1] + 1e-3
    far = compute_kid(x, y + 2.0, subsets=20, subset_size=100)
    assert far[0] > 10 * abs(first[0])
    with pytest.raises(ValueError, match="at least 2"):
        compute_kid(x[:1], y)
    with pytest.raises(ValueError, match="dimensions differ"):
        compute_kid(x, y[:, :4])
