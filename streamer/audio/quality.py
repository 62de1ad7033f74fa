"""Reconstruction quality of audio: SNR (whole signal and per frame) and clicks at frame edges.

Shared by the runtime (live figures on the dashboard and in the summary) and by `export/` (held-out
evaluation), so the README's figures and the live ones are computed by the same code.
"""

from __future__ import annotations

import numpy as np

SILENCE = 1e-12  # reference energy per sample below which a frame is silent: SNR undefined


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(signal energy / error energy); NaN when the reference is silent, inf when exact."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    est = np.asarray(estimate, dtype=np.float64).ravel()
    signal = float(np.sum(ref * ref))
    if len(ref) == 0 or signal <= SILENCE * len(ref):
        return float("nan")
    error = float(np.sum((ref - est) ** 2))
    return float("inf") if error == 0.0 else 10.0 * np.log10(signal / error)


def frame_snr_db(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """SNR per row of (n_frames, frame) arrays; NaN for silent frames."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    ref = ref.reshape(len(ref), -1)
    est = est.reshape(len(est), -1)
    signal = np.sum(ref * ref, axis=1)
    error = np.sum((ref - est) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(signal / error)
    out[signal <= SILENCE * ref.shape[1]] = np.nan
    return out


def mean_frame_snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean of the per-frame SNRs over non-silent frames (the figure the model cards quote)."""
    snrs = frame_snr_db(reference, estimate)
    snrs = snrs[np.isfinite(snrs)]
    return float(np.mean(snrs)) if len(snrs) else float("nan")


def edge_jump_ratio(signal: np.ndarray, frame: int, offset: int = 0) -> float:
    """Mean |x[n+1] - x[n]| across frame boundaries over the mean elsewhere (1.0 for natural audio).

    Boundaries sit between samples `offset + k*frame - 1` and `offset + k*frame`. A codec that treats
    frames independently leaves steps there (clicks); overlap-add should bring the ratio back near 1.
    """
    x = np.asarray(signal, dtype=np.float64).ravel()
    jumps = np.abs(np.diff(x))
    if len(jumps) < 2 * frame:
        return float("nan")
    at_edge = np.zeros(len(jumps), dtype=bool)
    at_edge[np.arange(offset + frame - 1, len(jumps), frame)] = True
    inside = float(np.mean(jumps[~at_edge]))
    if inside == 0.0:
        return float("nan")
    return float(np.mean(jumps[at_edge])) / inside


class StreamingEdgeRatio:
    """`edge_jump_ratio` computed block by block on a stream whose frames start at `residues` mod `period`."""

    def __init__(self, period: int, residues: tuple[int, ...]) -> None:
        self.period = period
        self.residues = sorted({r % period for r in residues})
        self.position = 0  # stream index of the next sample
        self.last: float | None = None
        self.edge_sum = self.edge_n = 0.0
        self.inside_sum = self.inside_n = 0.0

    def update(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float64).ravel()
        if len(x) == 0:
            return
        jumps = np.abs(np.diff(x))  # jump k is between samples position+k and position+k+1
        edge_sum, edge_n = 0.0, 0
        for r in self.residues:  # edges: jumps into a sample that starts a frame (index = r mod period)
            idx = jumps[(r - self.position - 1) % self.period::self.period]
            edge_sum += float(idx.sum())
            edge_n += len(idx)
        inside_sum, inside_n = float(jumps.sum()) - edge_sum, len(jumps) - edge_n
        if self.last is not None:  # the jump from the previous block's last sample into this block
            jump = abs(float(x[0]) - self.last)
            if self.position % self.period in self.residues:
                edge_sum, edge_n = edge_sum + jump, edge_n + 1
            else:
                inside_sum, inside_n = inside_sum + jump, inside_n + 1
        self.edge_sum += edge_sum
        self.edge_n += edge_n
        self.inside_sum += inside_sum
        self.inside_n += inside_n
        self.position += len(x)
        self.last = float(x[-1])

    @property
    def ratio(self) -> float:
        if self.edge_n == 0 or self.inside_n == 0 or self.inside_sum == 0.0:
            return float("nan")
        return (self.edge_sum / self.edge_n) / (self.inside_sum / self.inside_n)
