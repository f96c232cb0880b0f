"""Fréchet Inception Distance (Heusel et al., 2017) and Kernel Inception Distance (Bińkowski et al., 2018).

Both compare two sets of image features (2048-d Inception pool features for the published numbers, see
`labelsynth.metrics.inception`); everything here is plain float64 numpy on feature arrays, so it works with any
feature extractor.

* FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2}), with the feature means mu and covariances S
  (unbiased, ``1 / (n - 1)``) of each set.
* KID = unbiased estimate of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets; reported as mean and standard deviation over subsets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FeatureStatistics", "compute_fid", "compute_kid", "frechet_distance"]


def _as_float64(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().double().numpy()
    array = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _features_2d(x: Any, name: str) -> np.ndarray:
    array = _as_float64(x, name)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a [num_images, feature_dim] array, got shape {array.shape}")
    return array


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1 S2)^{1/2}) for symmetric PSD S1, S2 via symmetric eigendecompositions.

    S1 S2 is similar to the symmetric PSD matrix A = S1^{1/2} S2 S1^{1/2}, so the eigenvalues of (S1 S2)^{1/2} are the
    square roots of A's (non-negative) eigenvalues. Round-off makes tiny eigenvalues slightly negative; they are
    clipped to 0. No complex arithmetic, no regularising offset needed, and singular covariances (fewer images than
    feature dimensions) are handled exactly.
    """
    eigvals, eigvecs = np.linalg.eigh(sigma1)
    root1 = (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T
    inner = root1 @ sigma2 @ root1
    inner = (inner + inner.T) / 2.0
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0.0, None)).sum())


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """Tr((S1 S2)^{1/2}) with `scipy.linalg.sqrtm`, the route of the reference FID implementations.

    If the product is (numerically) singular so that the square root is not finite, ``eps * I`` is added to both
    covariances. A small imaginary part (round-off) is dropped; a large one raises.
    """
    from scipy import linalg

    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        diagonal_imag = np.abs(np.diagonal(covmean).imag).max()
        if not np.allclose(np.diagonal(covmean).imag, 0.0, atol=1e-3):
            raise ValueError(f"the matrix square root has a significant imaginary component ({diagonal_imag:.3g})")
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, method: str = "eigh", eps: float = 1e-6) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``d^2 = ||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^{1/2})``

    Args:
        mu1, mu2: mean vectors ``[d]``.
        sigma1, sigma2: covariance matrices ``[d, d]`` (symmetric positive semi-definite).
        method: how to get ``Tr((sigma1 sigma2)^{1/2})``: ``"eigh"`` (default; symmetric eigendecompositions, exact
            for singular covariances, faster) or ``"sqrtm"`` (`scipy.linalg.sqrtm` of the product with the usual
            ``eps * I`` fallback and imaginary-part check, as the reference implementations do). Both agree to
            round-off on well-conditioned covariances.
        eps: diagonal offset of the ``"sqrtm"`` fallback.

    Returns:
        The distance as a Python float (tiny negative round-off is clipped to 0).
    """
    mu1, mu2 = np.atleast_1d(_as_float64(mu1, "mu1")), np.atleast_1d(_as_float64(mu2, "mu2"))
    sigma1, sigma2 = np.atleast_2d(_as_float64(sigma1, "sigma1")), np.atleast_2d(_as_float64(sigma2, "sigma2"))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"mu1 and mu2 must be vectors of the same length, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if sigma.shape != (d, d):
            raise ValueError(f"{name} must be a [{d}, {d}] covariance matrix, got shape {sigma.shape}")
    if method == "eigh":
        tr_covmean = _trace_sqrt_product_eigh((sigma1 + sigma1.T) / 2.0, (sigma2 + sigma2.T) / 2.0)
    elif method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps)
    else:
        raise ValueError(f"method must be 'eigh' or 'sqrtm', got {method!r}")
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(value, 0.0)


class FeatureStatistics:
    """Streaming mean and covariance of feature vectors, in float64.

    Batches are merged with the pairwise (Chan et al.) update, so the result does not depend on how the features
    were split into batches (up to round-off) and stays accurate for large counts.

    ```python
    stats = FeatureStatistics()
    for batch in loader:
        stats.update(extractor(batch))     # [B, 2048]
    mu, sigma = stats.mean, stats.covariance
    ```

    Statistics can be saved to / loaded from ``.npz`` files with arrays ``mu`` and ``sigma`` (the layout of the
    precomputed reference statistics of pytorch-fid and TTUR), plus ``num_samples``.
    """

    def __init__(self, num_features: int | None = None) -> None:
        self.num_features = num_features
        self.count = 0
        self._mean: np.ndarray | None = None
        self._comoment: np.ndarray | None = None  # sum of outer products of deviations from the mean
        self._fixed: tuple[np.ndarray, np.ndarray] | None = None  # loaded (mu, sigma) without a sample count

    def _check_extendable(self) -> None:
        if self._fixed is not None:
            raise ValueError("these statistics were loaded without num_samples, so they cannot be updated or merged")

    def update(self, features: Any) -> FeatureStatistics:
        """Add a batch ``[B, d]`` of features (numpy array or torch tensor). Returns self."""
        self._check_extendable()
        batch = _features_2d(features, "features")
        if batch.shape[0] == 0:
            return self
        if self.num_features is None:
            self.num_features = batch.shape[1]
        if batch.shape[1] != self.num_features:
            raise ValueError(f"features have dimension {batch.shape[1]}, expected {self.num_features}")
        n_b = batch.shape[0]
        mean_b = batch.mean(axis=0)
        centred = batch - mean_b
        comoment_b = centred.T @ centred
        self._merge(n_b, mean_b, comoment_b)
        return self

    def _merge(self, n_b: int, mean_b: np.ndarray, comoment_b: np.ndarray) -> None:
        if self.count == 0:
            self.count, self._mean, self._comoment = n_b, mean_b.copy(), comoment_b.copy()
            return
        n_a, n = self.count, self.count + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._comoment = self._comoment + comoment_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    def merge(self, other: FeatureStatistics) -> FeatureStatistics:
        """Add the features counted by `other` (e.g. from another process). Returns self."""
        self._check_extendable()
        other._check_extendable()
        if other.count == 0:
            return self
        if self.num_features is not None and other.num_features != self.num_features:
            raise ValueError(f"cannot merge statistics of dimension {other.num_features} into {self.num_features}")
        self.num_features = other.num_features
        self._merge(other.count, other._mean, other._comoment)
        return self

    @property
    def mean(self) -> np.ndarray:
        """Feature mean ``[d]`` (float64)."""
        if self._fixed is not None:
            return self._fixed[0].copy()
        if self.count == 0:
            raise ValueError("no features were added")
        return self._mean.copy()

    @property
    def covariance(self) -> np.ndarray:
        """Unbiased feature covariance ``[d, d]`` (float64, ``1 / (n - 1)``); needs at least 2 features."""
        if self._fixed is not None:
            return self._fixed[1].copy()
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        return self._comoment / (self.count - 1)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``mu``, ``sigma`` and ``num_samples`` to an ``.npz`` file."""
        np.savez(Path(path), mu=self.mean, sigma=self.covariance, num_samples=np.int64(self.count))

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStatistics:
        """Read an ``.npz`` with ``mu`` and ``sigma`` and optionally ``num_samples``. Statistics without
        ``num_samples`` (e.g. pytorch-fid's precomputed files) serve for FID but cannot be updated or merged."""
        with np.load(Path(path)) as data:
            if "mu" not in data or "sigma" not in data:
                raise ValueError(f"{path}: expected arrays 'mu' and 'sigma', found {sorted(data.files)}")
            mu, sigma = data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
            count = int(data["num_samples"]) if "num_samples" in data else 0
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise ValueError(f"{path}: 'mu' must be [d] and 'sigma' [d, d], got {mu.shape} and {sigma.shape}")
        stats = cls(num_features=mu.shape[0])
        if count >= 2:
            stats.count, stats._mean, stats._comoment = count, mu, sigma * (count - 1)
        else:
            stats._fixed = (mu, sigma)
        return stats

    def __repr__(self) -> str:
        return f"FeatureStatistics(num_features={self.num_features}, count={self.count})"


def _statistics(x: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(x, FeatureStatistics):
        return x.mean, x.covariance
    if isinstance(x, tuple) and len(x) == 2:
        return _as_float64(x[0], f"{name} mean"), _as_float64(x[1], f"{name} covariance")
    stats = FeatureStatistics().update(_features_2d(x, name))
    return stats.mean, stats.covariance


def compute_fid(real_features: Any, fake_features: Any, method: str = "eigh") -> float:
    """FID between two feature sets.

    Args:
        real_features, fake_features: each a ``[N, d]`` array/tensor of features, a `FeatureStatistics`, or a
            ``(mu, sigma)`` tuple (e.g. precomputed reference statistics).
        method: see `frechet_distance`.
    """
    mu1, sigma1 = _statistics(real_features, "real_features")
    mu2, sigma2 = _statistics(fake_features, "fake_features")
    return frechet_distance(mu1, sigma1, mu2, sigma2, method=method)


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    """``(gamma * x @ y.T + coef0) ** degree`` with ``gamma = 1 / d`` by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                  coef0: float = 1.0) -> float:
    """Unbiased squared MMD between two samples ``x [m, d]`` and ``y [n, d]`` with the polynomial kernel:
    ``sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (n(n-1)) - 2 sum_{i,j} k(x_i, y_j) / (m n)``."""
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    term_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(term_xx + term_yy - 2.0 * k_xy.mean())


def compute_kid(real_features: Any, fake_features: Any, subsets: int = 100, subset_size: int = 1000,
                degree: int = 3, gamma: float | None = None, coef0: float = 1.0,
                seed: int | np.random.Generator | None = 0) -> tuple[float, float]:
    """Kernel Inception Distance: the unbiased MMD^2 estimate averaged over random subsets.

    Each of `subsets` rounds draws `subset_size` real and `subset_size` fake features without replacement (fresh
    draws every round) and computes `mmd2_unbiased` with the kernel ``(x.y / d + 1)^degree``.

    Args:
        real_features, fake_features: ``[N, d]`` arrays/tensors (the sets may differ in size).
        subsets: number of subsets (100 in the KID paper's code and in torchmetrics' default).
        subset_size: samples per subset; capped at the smaller set's size (with fewer than 1000 images the usual
            1000 cannot be used; the cap is what makes small evaluations possible, and numbers from different
            subset sizes have the same expectation but different variance).
        degree, gamma, coef0: polynomial kernel ``(gamma x.y + coef0)^degree``; gamma defaults to ``1 / d``.
        seed: seed or `numpy.random.Generator` of the subset draws (deterministic by default).

    Returns:
        ``(kid_mean, kid_std)`` over the subsets (std is 0 with one subset).
    """
    real = _features_2d(real_features, "real_features")
    fake = _features_2d(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} (real) vs {fake.shape[1]} (fake)")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    size = min(int(subset_size), real.shape[0], fake.shape[0])
    if size < 2:
        raise ValueError(f"KID needs at least 2 real and 2 fake feature vectors, got {real.shape[0]} and "
                         f"{fake.shape[0]}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    values = np.empty(subsets, dtype=np.float64)
    for i in range(subsets):
        x = real[rng.choice(real.shape[0], size, replace=False)]
        y = fake[rng.choice(fake.shape[0], size, replace=False)]
        values[i] = mmd2_unbiased(x, y, degree, gamma, coef0)
    return float(values.mean()), float(values.std())


def kid_subset_size(num_real: int, num_fake: int, subset_size: int = 1000) -> int:
    """The subset size `compute_kid` uses for these set sizes."""
    return min(int(subset_size), int(num_real), int(num_fake))
