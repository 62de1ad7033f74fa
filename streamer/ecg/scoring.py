"""Beat anomaly score from the autoencoder's reconstruction, as the model's metadata `score` defines it.

``{"kind": "mae"|"mse", "weights": {"beat": 1.0, "rr_prev_ratio": w, ...}}``: the score is the weighted
sum over the input's named features of each feature's mean absolute (or squared) reconstruction error.
Features without a weight count 0, except "beat" which defaults to 1. Training, calibration and the
live engine all call `beat_scores`, so a threshold means the same thing everywhere.

Optional patient-adaptive part, ``score.adaptive``:
``{"kind": "quantile_ratio", "beats": K, "quantile": q, "min_history": m, "reference": r}``: the score is
the raw score above divided by ``max(P, reference)``, where P is the q-th percentile of the raw scores of
the previous K beats of the same stream (ignored until m beats have been seen) and `reference` is the
training normals' median raw score. A low percentile of the patient's own recent scores is their typical
normal beat's error as long as fewer than (100 - q)% of recent beats are abnormal, so the ratio discounts
patient-wide misfit (unusual lead, noisy stretch) while surviving frequent PVCs; the reference floor keeps
it from amplifying the small deviations of very clean recordings. It is stateful: use `ScoreBank`
(many streams) or `StreamingScorer` (one), which equal `beat_scores` when there is no `adaptive` entry.

Optional shape gate, ``score.morphology`` with ``threshold.morphology`` (`morphology_spec`): the same score
of the beat's shape alone must also pass its own threshold for an alarm.

``score.warmup_beats`` (optional, default 0): the first beats of a stream are scored but not judged, since
the running template and the adaptive history are still filling; training, evaluation and the engine all
skip them (`judged_from`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamer.core.history import History


def morphology_spec(score: Mapping[str, Any]) -> dict[str, Any] | None:
    """The score of the beat's shape alone, when the model has one (`score.morphology`: `weights`, usually the
    beat alone, and `reference`, its training normals' level): the same kind and patient-adaptive level as the
    score, without the RR features. An alarm needs it above the model's `threshold.morphology` too, so a
    normally shaped beat that is only early or late (an atrial premature beat, sinus arrhythmia) is no PVC."""
    m = score.get("morphology")
    if not m:
        return None
    spec = {k: v for k, v in score.items() if k not in ("morphology", "weights")}
    spec["weights"] = dict(m.get("weights") or {"beat": 1.0})
    if spec.get("adaptive"):
        spec["adaptive"] = {**spec["adaptive"], "reference": float(m["reference"])}
    return spec


def judged_from(score: Mapping[str, Any]) -> int:
    """Index of the first beat of a stream whose score is judged against the threshold."""
    return int(score.get("warmup_beats", 0))


def column_weights(names: Sequence[str], beat_length: int, score: Mapping[str, Any]) -> np.ndarray:
    """Weight of each input column: a feature's weight spread over its columns (so it weighs its mean)."""
    weights = dict(score.get("weights") or {})
    weights.setdefault("beat", 1.0)
    parts = []
    for name in names:
        size = beat_length if name == "beat" else 1
        parts.append(np.full(size, float(weights.get(name, 0.0)) / size))
    return np.concatenate(parts)


def beat_scores(inputs: np.ndarray, recon: np.ndarray, names: Sequence[str], beat_length: int,
                score: Mapping[str, Any], weights: np.ndarray | None = None) -> np.ndarray:
    """Per-beat anomaly scores for a batch (rows are beats); `weights` from `column_weights`, if cached."""
    diff = np.asarray(inputs, dtype=np.float64) - recon
    err = np.abs(diff) if score.get("kind", "mae") == "mae" else diff * diff
    if weights is None:
        weights = column_weights(names, beat_length, score)
    return (err * weights).sum(axis=1)  # not `err @ weights`: BLAS rounding would depend on the batch size


def percentile_rows(sorted_rows: np.ndarray, q: float) -> np.ndarray:
    """np.percentile(row, q) (linear method, numpy's two-sided lerp) of every row of an already sorted array."""
    n = sorted_rows.shape[1]
    pos = q / 100.0 * (n - 1)
    lo = int(pos)
    t = pos - lo
    if lo + 1 >= n:
        return sorted_rows[:, -1].astype(np.float64)
    a, b = sorted_rows[:, lo], sorted_rows[:, lo + 1]
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def percentile_last(sets: np.ndarray, q: float) -> np.ndarray:
    """np.percentile(sets, q, axis=-1) (linear method) via a sort of the last axis."""
    s = np.sort(sets, axis=-1)
    return percentile_rows(s.reshape(-1, s.shape[-1]), q).reshape(s.shape[:-1])


ADAPTIVE_KIND = "quantile_ratio"
MIN_DENOMINATOR = 1e-9  # guards the ratio against an all-zero history


class ScoreBank:
    """Per-stream scorer for many streams at once: `beat_scores`, then, if the metadata asks for it, the
    adaptive ratio to a percentile of the stream's own recent raw scores.

    `score(slots, inputs, recon)` takes beats grouped by slot, in time order within each slot, in batches of
    any size, and returns their scores; splitting a stream into batches does not change them, nor does
    sharing a batch with other streams. `clear(slot)` starts a new stream.
    """

    def __init__(self, names: Sequence[str], beat_length: int, score: Mapping[str, Any]) -> None:
        self.names = list(names)
        self.beat_length = int(beat_length)
        self.spec = dict(score)
        self.weights = column_weights(self.names, self.beat_length, self.spec)  # once, not per beat
        adaptive = score.get("adaptive")
        self.adaptive = dict(adaptive) if adaptive else None
        if self.adaptive is not None and self.adaptive.get("kind") != ADAPTIVE_KIND:
            raise ValueError(f"unknown adaptive score kind {self.adaptive.get('kind')!r}")
        self.history = History(int(self.adaptive["beats"])) if self.adaptive else None

    def clear(self, slot: int) -> None:
        if self.history is not None:
            self.history.clear(slot)

    def state(self, slot: int) -> dict[str, Any]:
        return self.history.state(slot) if self.history is not None else {}

    def set_state(self, slot: int, values: Mapping[str, Any]) -> None:
        if self.history is not None:
            self.history.set_state(slot, dict(values))

    def raw(self, inputs: np.ndarray, recon: np.ndarray) -> np.ndarray:
        return beat_scores(inputs, recon, self.names, self.beat_length, self.spec, self.weights)

    def score(self, slots: np.ndarray, inputs: np.ndarray, recon: np.ndarray) -> np.ndarray:
        raw = self.raw(np.asarray(inputs), np.asarray(recon))
        if self.adaptive is None or self.history is None:
            return raw
        a = self.adaptive
        den = np.full(len(raw), float(a["reference"]))
        everything = np.ones(len(raw), dtype=bool)  # every beat's raw score enters the history
        q = float(a["quantile"])
        level, k = self.history.reduce(slots, raw, everything, lambda sets: percentile_last(sets, q))
        known = k >= int(a["min_history"])
        den[known] = np.maximum(den[known], level[known])
        return raw / np.maximum(den, MIN_DENOMINATOR)


class StreamingScorer:
    """One stream's scorer (a `ScoreBank` of one): `score(inputs, recon)` for its beats in order."""

    def __init__(self, names: Sequence[str], beat_length: int, score: Mapping[str, Any]) -> None:
        self.bank = ScoreBank(names, beat_length, score)
        self.reset()

    def reset(self) -> None:
        self.bank.clear(0)

    def raw(self, inputs: np.ndarray, recon: np.ndarray) -> np.ndarray:
        return self.bank.raw(inputs, recon)

    def score(self, inputs: np.ndarray, recon: np.ndarray) -> np.ndarray:
        return self.bank.score(np.zeros(len(inputs), dtype=np.int64), inputs, recon)
