"""The size rule: any image to the model's input size (h, w) and back, never cropping.

- **Resize**: an image no larger than twice the model size in both dimensions (MNIST's 28x28, 48x40,
  64x64, down to 1x1) is resized to (h, w), and the model's output resized back to the image's own size.
  Each axis on its own: one that must grow (28 -> 32) is enlarged bilinearly (`cv2.INTER_LINEAR`) and
  comes back through the least-squares inverse of that enlargement, so the round trip is exact; one that
  must shrink (48 -> 32) is area-averaged (`cv2.INTER_AREA`) and comes back bilinearly, which loses
  detail finer than the model's grid. Both are applied as matrices (OpenCV's own 1-D resize weights), so
  a batch of same-size images is two matrix products.
- **Tile**: a larger image is cut into overlapping (h, w) tiles at a stride of `STRIDE_FRACTION` of the
  tile (24 px for 32x32 tiles: 8 px overlap), the last tile of each row and column aligned to the image
  edge, so every pixel is inside at least one tile and nothing is cropped. A dimension shorter than the
  tile (e.g. 20x500) is first extended by mirroring to the tile size, and the mirrored part is dropped
  again on the way back. The model's tiles are blended back with a sine window (largest at the tile
  centre, small but non-zero at its edges, where a convolutional model sees least context), the weights
  normalised per pixel: an identity model gives back the image exactly (to float rounding).

An any-size model (metadata `image.size: "any"`) takes images at their own size: `pad_to_multiple` mirror-
extends the bottom and right to the model's side multiple (28x28 stays 28x28 for a multiple of 4) and the
output is cropped back; only images with a side above the model's `max_side` are tiled, with `plan(shape,
(max_side, max_side), resize=False)` (tiles of max_side, never resized).

`plan(shape, model_hw)` decides once per image size (cached); `to_model` / `from_model` apply it to one
image, `to_model_many` / `from_model_many` to a batch of images of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np

from streamer.images.opencv import opencv

RESIZE_LIMIT = 2  # images up to this many times the model size (both dims) are resized, larger are tiled
STRIDE_FRACTION = 0.75  # tile stride / tile size: 24 px for 32 px tiles

Kind = Literal["resize", "tiles"]


@dataclass(frozen=True, eq=False)
class Plan:
    """How images of one size reach the model. Tile origins are in the (mirror-extended) padded image."""

    shape: tuple[int, int]  # (H, W) of the image
    model_hw: tuple[int, int]  # (h, w) the model takes
    kind: Kind  # "resize" or "tiles"
    padded: tuple[int, int] = (0, 0)  # tiles: (H, W) after mirror-extending short dimensions
    ys: tuple[int, ...] = ()  # tiles: row origins
    xs: tuple[int, ...] = ()  # tiles: column origins
    window: np.ndarray = field(default_factory=lambda: np.ones((0, 0), np.float32))  # tiles: (h, w) weights
    resize: tuple[np.ndarray, ...] = ()  # resize: row and column matrices in, then out
    inv_weight: np.ndarray = field(default_factory=lambda: np.ones((0, 0), np.float32))  # 1 / sum per pixel

    @property
    def n_tiles(self) -> int:
        return 1 if self.kind == "resize" else len(self.ys) * len(self.xs)


def tile_origins(length: int, tile: int, stride: int) -> tuple[int, ...]:
    """Start of each tile along one axis of `length >= tile` pixels: every `stride`, last one at the edge."""
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return tuple(starts)


def sine_window(h: int, w: int) -> np.ndarray:
    """Separable sine window sin(pi (i + 1/2) / n): > 0 everywhere (sin(pi / 2n) at the borders)."""
    wy = np.sin(np.pi * (np.arange(h) + 0.5) / h)
    wx = np.sin(np.pi * (np.arange(w) + 0.5) / w)
    return np.outer(wy, wx)


@lru_cache(maxsize=64)
def plan(shape: tuple[int, int], model_hw: tuple[int, int] = (32, 32), resize: bool = True) -> Plan:
    """The rule above for an image of `shape` (H, W) and a model taking (h, w); `resize=False` tiles every
    image (an any-size model's large images)."""
    H, W = (int(v) for v in shape)
    h, w = (int(v) for v in model_hw)
    if H < 1 or W < 1 or h < 1 or w < 1:
        raise ValueError(f"image {shape} or model size {model_hw} has an empty dimension")
    if resize and H <= RESIZE_LIMIT * h and W <= RESIZE_LIMIT * w:
        return Plan((H, W), (h, w), "resize", resize=(resize_matrix(H, h), resize_matrix(W, w),
                                                      back_matrix(H, h), back_matrix(W, w)))
    ph, pw = max(H, h), max(W, w)
    ys = tile_origins(ph, h, max(1, int(round(h * STRIDE_FRACTION))))
    xs = tile_origins(pw, w, max(1, int(round(w * STRIDE_FRACTION))))
    window = sine_window(h, w)
    total = np.zeros((ph, pw))
    for y in ys:
        for x in xs:
            total[y:y + h, x:x + w] += window
    return Plan((H, W), (h, w), "tiles", padded=(ph, pw), ys=ys, xs=xs, window=window.astype(np.float32),
                inv_weight=(1.0 / total).astype(np.float32))


def padded_shape(shape: tuple[int, int], multiple: int) -> tuple[int, int]:
    """(H, W) rounded up to multiples of `multiple` (an any-size model's input)."""
    return tuple(-(-int(v) // multiple) * multiple for v in shape)  # type: ignore[return-value]


def pad_to_multiple(images: np.ndarray, multiple: int) -> np.ndarray:
    """(n, H, W) mirror-extended at the bottom and right to `padded_shape`; the images themselves if they fit."""
    return _extend(np.asarray(images, np.float32), padded_shape(images.shape[1:], multiple))


def _check(images: np.ndarray, p: Plan) -> None:
    if tuple(images.shape[-2:]) != p.shape:
        raise ValueError(f"images of shape {images.shape[-2:]} do not fit the plan for {p.shape}")


def resize_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix of OpenCV's 1-D resize: area averaging to shrink, bilinear to enlarge.

    OpenCV's float resize is separable, so column j of the matrix is the resize of the unit vector e_j:
    resizing the identity gives the whole matrix, and `Ry @ image @ Rx.T` equals `cv2.resize` with that
    interpolation on each axis (to float rounding), for a whole batch in two matrix products.
    """
    cv2 = opencv()

    interp = cv2.INTER_AREA if dst < src else cv2.INTER_LINEAR
    eye = np.eye(src, dtype=np.float32)
    return np.asarray(cv2.resize(eye, (src, dst), interpolation=interp), np.float32).reshape(dst, src)


def back_matrix(size: int, model: int) -> np.ndarray:
    """(size, model) matrix taking one axis of a model output back to the image's `size`.

    An axis enlarged on the way in (size <= model) comes back through the least-squares inverse of that
    enlargement, so the round trip is exact; an axis shrunk on the way in is enlarged back bilinearly.
    """
    if size <= model:
        return np.linalg.pinv(resize_matrix(size, model).astype(np.float64)).astype(np.float32)
    return resize_matrix(model, size)


def _resize_many(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(n, H, W) -> (n, h, w) float32 through the (h, H) row and (w, W) column resize matrices."""
    return np.ascontiguousarray(rows @ images.astype(np.float32, copy=False) @ cols.T, dtype=np.float32)


def _extend(images: np.ndarray, padded: tuple[int, int]) -> np.ndarray:
    """Mirror-extend (n, H, W) at the bottom and right to `padded` (only dimensions shorter than a tile)."""
    n, H, W = images.shape
    if (H, W) == padded:
        return images
    ih = np.arange(padded[0]) % (2 * H)  # symmetric reflection, repeated for dims much shorter than a tile
    iw = np.arange(padded[1]) % (2 * W)
    ih = np.where(ih < H, ih, 2 * H - 1 - ih)
    iw = np.where(iw < W, iw, 2 * W - 1 - iw)
    return images[:, ih][:, :, iw]


def to_model_many(images: np.ndarray, p: Plan) -> np.ndarray:
    """(n, H, W) images -> (n * n_tiles, h, w) float32 model inputs, image by image, tiles row-major."""
    images = np.asarray(images)
    _check(images, p)
    if p.kind == "resize":
        return _resize_many(images, p.resize[0], p.resize[1])
    h, w = p.model_hw
    ext = _extend(images.astype(np.float32, copy=False), p.padded)
    views = np.lib.stride_tricks.sliding_window_view(ext, (h, w), axis=(1, 2))  # (n, ph-h+1, pw-w+1, h, w)
    # both axes indexed at once: indexing rows first would copy every column position's tile (20 GB for 4000x4000)
    tiles = views[:, np.asarray(p.ys)[:, None], np.asarray(p.xs)[None, :]]  # (n, len(ys), len(xs), h, w)
    return np.ascontiguousarray(tiles.reshape(-1, h, w), dtype=np.float32)


def from_model_many(outputs: np.ndarray, p: Plan) -> np.ndarray:
    """(n * n_tiles, h, w) model outputs -> (n, H, W) float32 images of the planned size."""
    out = np.asarray(outputs, dtype=np.float32)
    h, w = p.model_hw
    out = out.reshape(-1, p.n_tiles, h, w)
    if p.kind == "resize":
        return _resize_many(out[:, 0], p.resize[2], p.resize[3])
    n = out.shape[0]
    acc = np.zeros((n, *p.padded), np.float32)
    k = 0
    for y in p.ys:
        for x in p.xs:
            acc[:, y:y + h, x:x + w] += out[:, k] * p.window
            k += 1
    acc *= p.inv_weight
    H, W = p.shape
    return np.ascontiguousarray(acc[:, :H, :W])


def to_model(image: np.ndarray, p: Plan) -> np.ndarray:
    """One (H, W) image -> (n_tiles, h, w) float32 model inputs."""
    return to_model_many(np.asarray(image)[None], p)


def from_model(outputs: np.ndarray, p: Plan) -> np.ndarray:
    """(n_tiles, h, w) model outputs of one image -> the (H, W) float32 image."""
    return from_model_many(outputs, p)[0]
