"""The project's evaluation code, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.ecg.evaluate import anomaly_scores, match_peaks, roc_auc, rpeak_scores


def test_match_is_one_to_one_within_tolerance() -> None:
    rng = np.random.default_rng(3)
    reference = np.cumsum(rng.integers(150, 450, size=500))
    detected = np.sort(np.concatenate([reference + rng.integers(-60, 60, size=500),  # jittered hits
                                       rng.integers(0, reference[-1], size=40)]))  # false detections
    detected = detected[rng.random(len(detected)) > 0.05]  # some misses
    match = match_peaks(detected, reference, 54)
    hit = match >= 0
    assert len(set(match[hit].tolist())) == hit.sum()  # no detection used twice
    assert np.all(np.abs(detected[match[hit]] - reference[hit]) <= 54)
    # every unmatched reference really has no free detection within tolerance
    free = np.ones(len(detected), dtype=bool)
    free[match[hit]] = False
    for r in reference[~hit]:
        assert not np.any(free & (np.abs(detected - r) <= 54))


def test_rpeak_scores_by_hand() -> None:
    reference = np.array([100, 400, 700, 1000])
    detected = np.array([110, 390, 560, 1090])  # 560 is 140 samples from 700: outside 0.15 s at 360 Hz (54)
    s = rpeak_scores(detected, reference, fs=360.0)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 2)
    assert s["sensitivity"] == pytest.approx(50.0) and s["ppv"] == pytest.approx(50.0)


def test_auc_equals_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.2
    scores = np.round(rng.normal(labels * 1.0, 1.0), 1)  # rounding makes ties
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    assert np.isnan(roc_auc(scores, np.zeros(300, dtype=bool)))


def test_anomaly_scores_by_hand() -> None:
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7])
    positive = np.array([False, False, True, False, True, True])
    s = anomaly_scores(scores, positive, threshold=0.5, duration_s=120.0)
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (2, 1, 1, 2)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["false_alarms_per_min"] == pytest.approx(0.5)
