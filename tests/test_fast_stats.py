"""The hot-path statistics equal numpy's, value for value, so thresholds fitted with numpy still hold."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.ecg.beats import median, median_rows
from streamer.ecg.scoring import percentile


@pytest.mark.parametrize("n", [1, 2, 7, 8, 16, 33, 140])
def test_medians_equal_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    assert median(x) == np.median(x)
    rows = rng.normal(size=(n, 140))
    assert np.array_equal(median_rows(rows), np.median(rows, axis=0))


@pytest.mark.parametrize("q", [0.0, 5.0, 25.0, 50.0, 62.5, 99.5, 100.0])
def test_percentile_equals_numpy(q: float) -> None:
    rng = np.random.default_rng(int(q))
    for n in (1, 2, 8, 31, 32):
        values = list(rng.lognormal(size=n))
        assert percentile(values, q) == np.percentile(values, q)
