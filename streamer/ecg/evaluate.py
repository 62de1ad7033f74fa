"""Scoring against reference annotations: R-peak matching (Se/PPV) and anomaly figures (AUC, P/R)."""

from __future__ import annotations

import numpy as np

# MIT-BIH beat annotation symbols (wfdb's table); everything else ('+', '~', '|', ...) is not a beat.
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
TOLERANCE_S = 0.150  # R-peak match window, the usual 150 ms
PVC_SYMBOL = "V"  # the anomaly task's positive class


def label_peaks(peaks: np.ndarray, ref_samples: np.ndarray, ref_symbols: np.ndarray, fs: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """(pvc, annotated) per detected peak: matched within TOLERANCE_S to an annotated `V` beat, or to any
    annotated beat. A detection with no annotated beat is a false detection (annotated False)."""
    match = match_peaks(peaks, ref_samples, int(round(TOLERANCE_S * fs)))
    pvc = np.zeros(len(peaks), bool)
    annotated = np.zeros(len(peaks), bool)
    hit = match >= 0
    annotated[match[hit]] = True
    pvc[match[hit]] = np.asarray(ref_symbols)[hit] == PVC_SYMBOL
    return pvc, annotated


def match_peaks(detected: np.ndarray, reference: np.ndarray, tolerance: int) -> np.ndarray:
    """For each reference peak, the index into `detected` of its match, or -1.

    Greedy one-to-one matching in time order: a reference peak takes the nearest unused detection within
    `tolerance` samples. Both inputs are sorted sample indices.
    """
    detected = np.asarray(detected, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    match = np.full(len(reference), -1, dtype=np.int64)
    used = np.zeros(len(detected), dtype=bool)
    if len(detected) == 0:
        return match
    # fast path: each reference's nearest detection; keep it where no two references want the same one
    right = np.clip(np.searchsorted(detected, reference), 1, len(detected) - 1) if len(detected) > 1 else \
        np.zeros(len(reference), dtype=np.int64)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(detected[left] - reference) <= np.abs(detected[right] - reference), left, right)
    ok = np.abs(detected[nearest] - reference) <= tolerance
    counts = np.bincount(nearest[ok], minlength=len(detected))
    unique = ok & (counts[nearest] == 1)
    match[unique] = nearest[unique]
    used[nearest[unique]] = True
    for i in np.flatnonzero(ok & ~unique):  # contested detections: greedy in time order
        r = reference[i]
        lo = np.searchsorted(detected, r - tolerance, side="left")
        hi = np.searchsorted(detected, r + tolerance, side="right")
        best, best_dist = -1, tolerance + 1
        for j in range(lo, hi):
            dist = abs(int(detected[j]) - int(r))
            if not used[j] and dist < best_dist:
                best, best_dist = j, dist
        if best >= 0:
            used[best] = True
            match[i] = best
    return match


def rpeak_scores(detected: np.ndarray, reference: np.ndarray, fs: float,
                 tolerance_s: float = TOLERANCE_S) -> dict[str, float]:
    """Sensitivity and positive predictivity (percent) of detected R peaks against reference beats."""
    match = match_peaks(detected, reference, int(round(tolerance_s * fs)))
    tp = int((match >= 0).sum())
    fn = len(reference) - tp
    fp = len(detected) - tp
    return {
        "sensitivity": 100.0 * tp / max(tp + fn, 1),
        "ppv": 100.0 * tp / max(tp + fp, 1),
        "tp": tp, "fp": fp, "fn": fn,
        "tolerance_ms": 1000.0 * tolerance_s,
    }


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties averaged); NaN if one class is absent."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) of the decision `score >= threshold` at every
    distinct score, strictest first, from (0, 0) to (1, 1); its trapezoid area is `roc_auc`. Both classes
    must be present."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("a ROC curve needs positive and negative examples")
    order = np.argsort(-scores, kind="mergesort")
    s, p = scores[order], positive[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last of each run of equal scores: ties move together
    tp, fp = np.cumsum(p)[last], np.cumsum(~p)[last]
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos], np.r_[np.inf, s[last]]


def anomaly_scores(scores: np.ndarray, positive: np.ndarray, threshold: float,
                   duration_s: float | None = None) -> dict[str, float]:
    """Detection figures with `score > threshold` as the anomaly decision; `positive` is the true class."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    flagged = scores > threshold
    tp = int((flagged & positive).sum())
    fp = int((flagged & ~positive).sum())
    fn = int((~flagged & positive).sum())
    tn = int((~flagged & ~positive).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    out = {"auc": roc_auc(scores, positive), "precision": precision, "recall": recall, "f1": f1,
           "accuracy": (tp + tn) / max(len(scores), 1), "tp": tp, "fp": fp, "fn": fn, "tn": tn}
    if duration_s:
        out["false_alarms_per_min"] = fp / (duration_s / 60.0)
    return out
