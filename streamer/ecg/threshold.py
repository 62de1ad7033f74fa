"""Anomaly thresholds from scores of normal beats: the lecture's mean + k std, or a percentile.

A percentile `q` is a target false-alarm rate of (100 - q)% on beats like the ones it was set on.
Used at training time (scores of training normals) and at run time by `--calibrate SECONDS`
(scores of the first seconds of a patient).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def mean_std_threshold(scores: np.ndarray, k: float = 1.0) -> float:
    return float(np.mean(scores) + k * np.std(scores))


def percentile_threshold(scores: np.ndarray, q: float) -> float:
    return float(np.percentile(scores, q))


METHODS = ("mean_std", "percentile")


def parse_method(text: str) -> tuple[str, float]:
    """'mean_std:1' or 'percentile:99.5' -> (method, param): K a finite number, Q a percentile in [0, 100]."""
    method, _, param = text.partition(":")
    if method not in METHODS or not param:
        raise ValueError(f"{text!r} is not METHOD:PARAM with METHOD one of {', '.join(METHODS)}")
    try:
        value = float(param)
    except ValueError:
        raise ValueError(f"{text!r}: {param!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r}: the parameter must be a finite number")
    if method == "percentile" and not 0.0 <= value <= 100.0:
        raise ValueError(f"{text!r}: a percentile is between 0 and 100 (99.5, not 995)")
    return method, value


def threshold_from(scores: np.ndarray, method: str, param: float) -> dict[str, Any]:
    """Threshold record for model metadata: {"value", "method", "param", "n"}."""
    scores = np.asarray(scores, dtype=np.float64)
    if method == "mean_std":
        value = mean_std_threshold(scores, param)
    elif method == "percentile":
        value = percentile_threshold(scores, param)
    else:
        raise ValueError(f"unknown threshold method {method!r} (mean_std or percentile)")
    return {"value": value, "method": method, "param": float(param), "n": int(len(scores))}
