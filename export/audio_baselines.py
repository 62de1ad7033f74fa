"""Linear codecs with the same 1024-number budget per 4096-sample frame, and the figures every codec is scored by.

- `dct_lowpass`: orthonormal DCT-II of the frame, keep the first 1024 coefficients (a low-pass codec).
- `Pca`: 1024 principal components fitted on the TRAINING frames only (mean removed).
- `dct_topk`: keep the 512 largest DCT coefficients; their 512 positions are the other half of the budget.

All figures come from `streamer.audio.quality`, the code the runtime reports live SNR with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.fft import dct, idct

from streamer.audio import quality

FRAME = 4096  # samples, 512 ms at 8 kHz
BUDGET = 1024  # latent numbers per frame (4x fewer than samples)


def dct_lowpass(frames: np.ndarray, keep: int = BUDGET) -> np.ndarray:
    """Reconstruction from the first `keep` orthonormal DCT-II coefficients of each frame."""
    c = dct(np.asarray(frames, np.float64), type=2, norm="ortho", axis=-1)
    c[..., keep:] = 0.0
    return idct(c, type=2, norm="ortho", axis=-1).astype(np.float32)


def dct_topk(frames: np.ndarray, k: int = BUDGET // 2) -> np.ndarray:
    """Reconstruction from the `k` largest-magnitude DCT coefficients of each frame (k values + k indices)."""
    c = dct(np.asarray(frames, np.float64), type=2, norm="ortho", axis=-1)
    small = np.argsort(np.abs(c), axis=-1)[..., : c.shape[-1] - k]
    np.put_along_axis(c, small, 0.0, axis=-1)
    return idct(c, type=2, norm="ortho", axis=-1).astype(np.float32)


@dataclass(frozen=True)
class Pca:
    """Mean and the leading principal directions (rows, orthonormal) of a set of training frames."""

    mean: np.ndarray  # (frame,)
    components: np.ndarray  # (n_components, frame)

    @classmethod
    def fit(cls, train_frames: np.ndarray, n_components: int = BUDGET) -> Pca:
        x = np.asarray(train_frames, np.float64)
        mean = x.mean(axis=0)
        # SVD of the centred data: rows of vt are the principal directions, by decreasing variance
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        return cls(mean, vt[:n_components])

    def encode(self, frames: np.ndarray) -> np.ndarray:
        return (np.asarray(frames, np.float64) - self.mean) @ self.components.T

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return (codes @ self.components + self.mean).astype(np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(frames))


def codec_figures(reference: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
    """Per-frame SNR (mean, median), overall SNR and frame-edge jump ratio (frames played back to back)."""
    per_frame = quality.frame_snr_db(reference, reconstruction)
    finite = per_frame[np.isfinite(per_frame)]
    return {
        "mean_frame_snr_db": round(quality.mean_frame_snr_db(reference, reconstruction), 3),
        "median_frame_snr_db": round(float(np.median(finite)) if len(finite) else float("nan"), 3),
        "snr_db": round(float(quality.snr_db(reference, reconstruction)), 3),
        "edge_jump_ratio": round(quality.edge_jump_ratio(np.ravel(reconstruction), reference.shape[-1]), 3),
        "n_frames": int(len(reference)),
    }


def baselines(train_frames: np.ndarray, budget: int = BUDGET) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The reference codecs by name; PCA is fitted here, on `train_frames` only."""
    pca = Pca.fit(train_frames, budget)
    return {
        f"dct_first_{budget}": lambda x: dct_lowpass(x, budget),
        f"pca_{budget}": pca,
        f"dct_top_{budget // 2}_with_indices": lambda x: dct_topk(x, budget // 2),
    }


def baseline_figures(train_frames: np.ndarray, test_frames: np.ndarray,
                     budget: int = BUDGET) -> dict[str, dict[str, float]]:
    """Every baseline's figures on `test_frames`, plus the original audio's own edge ratio for reference."""
    out = {name: codec_figures(test_frames, codec(test_frames))
           for name, codec in baselines(train_frames, budget).items()}
    out["original"] = {"edge_jump_ratio": round(quality.edge_jump_ratio(np.ravel(test_frames),
                                                                         test_frames.shape[-1]), 3)}
    return out
