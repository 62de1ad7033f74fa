"""Image reconstruction quality: PSNR and SSIM, numpy/scipy only.

Shared by the runtime (live figures when a clean reference exists) and by `export/` (held-out evaluation),
so the model cards' figures and the live ones come from the same code. Images are (h, w) or batches
(n, h, w) of floats; `data_range` is the span of valid values (1.0 for images in [0, 1]).

SSIM follows Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
structural similarity", IEEE TIP 13(4), 2004 (K1 = 0.01, K2 = 0.03), averaged over the positions where the
whole window fits in the image. Two windows:
- `"uniform"` (the default): 7x7 box, sample covariances, i.e. `skimage.metrics.structural_similarity`'s
  defaults; the figures quoted in the issue and in the model cards (noisy MNIST at sigma 0.5: 0.310);
- `"gaussian"`: Wang's 11x11 Gaussian window (sigma 1.5) with population covariances, i.e. skimage with
  `gaussian_weights=True, sigma=1.5, use_sample_covariance=False`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

K1, K2 = 0.01, 0.03  # Wang et al. 2004 stabilising constants
GAUSS_SIGMA = 1.5  # pixels
GAUSS_TRUNCATE = 3.5  # 11x11 window at sigma 1.5 (radius int(3.5 * 1.5 + 0.5) = 5)
UNIFORM_SIZE = 7  # pixels

Window = Literal["gaussian", "uniform"]


def _batch(images: np.ndarray) -> np.ndarray:
    """(h, w) or (n, h, w) -> float64 (n, h, w)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2:
        return x[None]
    if x.ndim != 3:
        raise ValueError(f"expected (h, w) or (n, h, w) images, got shape {x.shape}")
    return x


def _pair(clean: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = _batch(clean), _batch(estimate)
    if ref.shape != est.shape:
        raise ValueError(f"clean {ref.shape} and estimate {est.shape} differ in shape")
    return ref, est


def psnr_db(clean: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """PSNR per image, 10 log10(data_range^2 / MSE), shape (n,); inf where the estimate is exact."""
    ref, est = _pair(clean, estimate)
    mse = np.mean((ref - est) ** 2, axis=(1, 2))
    with np.errstate(divide="ignore"):
        return np.asarray(10.0 * np.log10(data_range**2 / mse))


def mean_psnr_db(clean: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> float:
    """Mean of the per-image PSNRs (the figure the model cards quote), exact images left out."""
    values = psnr_db(clean, estimate, data_range)
    values = values[np.isfinite(values)]
    return float(np.mean(values)) if len(values) else float("inf")


def _gaussian_kernel() -> np.ndarray:
    radius = int(GAUSS_TRUNCATE * GAUSS_SIGMA + 0.5)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / GAUSS_SIGMA) ** 2)
    return np.asarray(k / k.sum())


def _window_size(window: Window) -> int:
    if window not in ("gaussian", "uniform"):
        raise ValueError(f"unknown SSIM window {window!r}; use 'gaussian' or 'uniform'")
    return 2 * int(GAUSS_TRUNCATE * GAUSS_SIGMA + 0.5) + 1 if window == "gaussian" else UNIFORM_SIZE


def _local_mean(x: np.ndarray, window: Window) -> np.ndarray:
    """Windowed mean of every image of a (n, h, w) batch, only where the whole window fits ("valid")."""
    k = _gaussian_kernel() if window == "gaussian" else np.full(UNIFORM_SIZE, 1.0 / UNIFORM_SIZE)
    rows = sliding_window_view(x, len(k), axis=2) @ k  # separable: along rows, then along columns
    return np.asarray(sliding_window_view(rows, len(k), axis=1) @ k)


def ssim(clean: np.ndarray, estimate: np.ndarray, data_range: float = 1.0,
         window: Window = "uniform") -> np.ndarray:
    """Mean SSIM per image, shape (n,), for (h, w) or (n, h, w) inputs of at least the window's size."""
    ref, est = _pair(clean, estimate)
    size = _window_size(window)
    if min(ref.shape[1:]) < size:
        raise ValueError(f"images of {ref.shape[1:]} are smaller than the {size}x{size} SSIM window")
    # population statistics for the Gaussian window (Wang 2004); sample ones for the box (as skimage)
    n_px = size * size
    cov_norm = 1.0 if window == "gaussian" else n_px / (n_px - 1.0)
    mu_x, mu_y = _local_mean(ref, window), _local_mean(est, window)
    var_x = cov_norm * (_local_mean(ref * ref, window) - mu_x * mu_x)
    var_y = cov_norm * (_local_mean(est * est, window) - mu_y * mu_y)
    cov = cov_norm * (_local_mean(ref * est, window) - mu_x * mu_y)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    smap = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return np.asarray(smap.mean(axis=(1, 2)))


def mean_ssim(clean: np.ndarray, estimate: np.ndarray, data_range: float = 1.0,
              window: Window = "uniform") -> float:
    """Mean of the per-image SSIMs."""
    return float(np.mean(ssim(clean, estimate, data_range, window)))
