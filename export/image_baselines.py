"""Classical denoisers, run side by side with the autoencoder on the same noisy images.

median 5x5, Gaussian blur, OpenCV non-local means and total variation (Chambolle). Each free parameter
(blur sigma, NLM h, TV weight) is chosen per noise level by the best mean PSNR on `N_CHOOSE` validation
images; the test images are never used for a choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

from streamer.images import quality

MEDIAN_SIZE = 5  # pixels (the "median 5x5"; no free parameter)
N_CHOOSE = 1000  # validation images the parameters are chosen on
GRIDS: dict[str, tuple[float, ...]] = {
    "gaussian_blur": (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5),  # sigma, pixels
    "nl_means": (20.0, 40.0, 60.0, 80.0, 100.0, 130.0),  # h on the 0..255 scale
    "tv_chambolle": (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6),  # weight
}
NAMES = ("median_5x5", "gaussian_blur", "nl_means", "tv_chambolle")


def median(noisy: np.ndarray) -> np.ndarray:
    return ndimage.median_filter(noisy, size=(1, MEDIAN_SIZE, MEDIAN_SIZE), mode="reflect")


def gaussian_blur(noisy: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(noisy, sigma=(0.0, sigma, sigma), mode="reflect")


def nl_means(noisy: np.ndarray, h: float) -> np.ndarray:
    """cv2.fastNlMeansDenoising per image on 8-bit values (7x7 patches, 21x21 search: OpenCV's defaults)."""
    import cv2

    as_u8 = np.round(np.clip(noisy, 0.0, 1.0) * 255).astype(np.uint8)
    out = np.stack([cv2.fastNlMeansDenoising(img, None, h=float(h)) for img in as_u8])
    return out.astype(np.float32) / 255.0


def tv_chambolle(noisy: np.ndarray, weight: float) -> np.ndarray:
    """2-D TV per image (channel_axis=0 keeps the images of the batch apart)."""
    from skimage.restoration import denoise_tv_chambolle

    return np.asarray(denoise_tv_chambolle(noisy, weight=weight, channel_axis=0), dtype=np.float32)


def apply(name: str, noisy: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Denoise a (n, h, w) batch in [0, 1] with baseline `name` and its parameters."""
    if name == "median_5x5":
        return median(noisy)
    if name == "gaussian_blur":
        return gaussian_blur(noisy, params["sigma"])
    if name == "nl_means":
        return nl_means(noisy, params["h"])
    if name == "tv_chambolle":
        return tv_chambolle(noisy, params["weight"])
    raise ValueError(f"unknown baseline {name!r}; choose from {NAMES}")


PARAM_NAME = {"gaussian_blur": "sigma", "nl_means": "h", "tv_chambolle": "weight"}


def choose(name: str, clean: np.ndarray, noisy: np.ndarray) -> dict[str, Any]:
    """Parameters of baseline `name` with the best mean PSNR on (clean, noisy); {"validation_psnr_db": ...}."""
    if name not in PARAM_NAME:
        return {"validation_psnr_db": round(quality.mean_psnr_db(clean, apply(name, noisy, {})), 4)}
    key = PARAM_NAME[name]
    scores = {v: quality.mean_psnr_db(clean, apply(name, noisy, {key: v})) for v in GRIDS[name]}
    best = max(scores, key=lambda v: scores[v])
    return {key: best, "validation_psnr_db": round(scores[best], 4)}


def choose_all(validation: np.ndarray, sigmas: tuple[float, ...],
               on_done: Callable[[str], None] | None = None) -> dict[float, dict[str, dict[str, Any]]]:
    """{sigma: {baseline: params}} chosen on the first N_CHOOSE validation images at each noise level.

    `on_done("sigma 0.5 nl_means")` is called after each of the len(sigmas) * len(NAMES) choices."""
    from export import mnist

    clean = validation[:N_CHOOSE]
    out: dict[float, dict[str, dict[str, Any]]] = {}
    for sigma in sigmas:
        noisy = mnist.add_noise(clean, sigma, mnist.noise_seed("validation", sigma))
        out[sigma] = {}
        for name in NAMES:
            out[sigma][name] = choose(name, clean, noisy)
            if on_done:
                on_done(f"sigma {sigma:g} {name}")
    return out
