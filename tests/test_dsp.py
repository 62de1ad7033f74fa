"""The filter designs shipped in streamer/core/iir_designs.json (so that a run never imports scipy.signal) are
scipy's own, and cover every filter the ECG path builds at the common rates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamer.core.dsp import TABLE, TABLE_RATES, _key
from streamer.ecg.detector import detector_designs
from streamer.ecg.second_opinion import quality_designs


def test_table_equals_scipy_and_covers_every_design() -> None:
    from scipy.signal import butter, lfilter_zi

    table = json.loads(TABLE.read_text())
    for fs in TABLE_RATES:
        for order, cutoff, kind in [*detector_designs(fs), *quality_designs(fs), (2, 0.5, "highpass")]:
            row = table.get(_key(order, cutoff, kind, fs))
            assert row is not None, (order, cutoff, kind, fs)
            b, a = butter(order, cutoff, btype=kind, fs=fs)
            assert np.asarray(row["b"]) == pytest.approx(b, rel=1e-9, abs=1e-12)
            assert np.asarray(row["a"]) == pytest.approx(a, rel=1e-9, abs=1e-12)
            assert np.asarray(row["zi"]) == pytest.approx(lfilter_zi(b, a), rel=1e-9, abs=1e-9)
