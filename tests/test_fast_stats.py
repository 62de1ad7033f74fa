"""The hot-path statistics equal numpy's, value for value, so thresholds fitted with numpy still hold."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.ecg.beats import median_rows
from streamer.ecg.scoring import percentile_rows


@pytest.mark.parametrize("n", [1, 2, 7, 8, 16, 33, 140])
def test_medians_equal_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    rows = rng.normal(size=(n, 140))
    assert np.array_equal(median_rows(rows), np.median(rows, axis=0))
    assert np.array_equal(median_rows(rows.T, axis=1), np.median(rows.T, axis=1))


@pytest.mark.parametrize("q", [0.0, 5.0, 25.0, 50.0, 62.5, 99.5, 100.0])
def test_percentile_equals_numpy(q: float) -> None:
    rng = np.random.default_rng(int(q))
    for n in (1, 2, 8, 31, 32):
        values = rng.lognormal(size=(5, n))
        assert np.array_equal(percentile_rows(np.sort(values, axis=1), q), np.percentile(values, q, axis=1))
