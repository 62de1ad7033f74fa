"""What an image stream returns: one event per image."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(slots=True)  # not frozen: creating frozen instances costs 4x, and there are many
class ImageEvent:
    """One denoised image, with its quality figures when a clean reference exists (else None)."""

    stream: Hashable
    index: int  # image number in the stream, from 0
    name: str  # the name it came with (a file's relative path), or frame_NNNNNN
    image: np.ndarray  # (h, w) float32 in [0, 1]: the denoised image, at the input's size
    noisy: np.ndarray  # (h, w): the input as it went in (with --add-noise: after the noise)
    clean: np.ndarray | None  # (h, w): the reference, if any
    psnr_db: float | None
    psnr_noisy_db: float | None
    ssim: float | None
    ssim_noisy: float | None
    resized: bool  # went through the model resized (not at the model's size)
    tiled: bool  # went through the model as tiles

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), 3)
        return {"stream": self.stream, "index": self.index, "image": self.name, "psnr_db": r(self.psnr_db),
                "psnr_noisy_db": r(self.psnr_noisy_db), "ssim": r(self.ssim), "ssim_noisy": r(self.ssim_noisy)}
