"""Signal processing shared by the streams: Butterworth designs and causal IIR filtering of many rows at once.

The filtering is scipy's own compiled `lfilter` core, which runs the recursion sample by sample along each
row with the state carried in `zi`: a row's output does not depend on how its stream was cut into blocks,
nor on which other rows share the call (both tested). That is what makes streaming equal offline and a
pool of streams equal each stream alone.

Start-up. `import scipy.signal` costs 1-1.5 s here (it imports scipy.stats, scipy.interpolate, ...), more
than the rest of a run's start-up together, for two small functions. So:
- the filter core is loaded straight from scipy's compiled `scipy/signal/_sigtools` module (what
  `scipy.signal.lfilter` calls after checking its arguments), checked against a known answer on load, with
  `scipy.signal.lfilter` as the fallback;
- the designs the detector and the shipped models use at common ECG rates come from a table made by
  `scipy.signal.butter` / `lfilter_zi` (`iir_designs.json`, rebuilt by `python -m streamer.core.dsp`; a test
  checks it against scipy); any other design imports scipy.signal once.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TABLE = Path(__file__).with_name("iir_designs.json")
TABLE_RATES = (100, 125, 128, 200, 250, 256, 300, 360, 400, 500, 512, 1000, 1024, 2000)  # Hz, common ECG rates


def _key(order: int, cutoff_hz: float | tuple[float, float], kind: str, fs: float) -> str:
    cut = cutoff_hz if isinstance(cutoff_hz, tuple) else (cutoff_hz,)
    return f"{kind} {order} {' '.join(repr(float(c)) for c in cut)} @ {float(fs)!r}"


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, list[float]]]:
    try:
        table: dict[str, dict[str, list[float]]] = json.loads(TABLE.read_text())
        return table
    except (OSError, ValueError):
        return {}


def butter_design(order: int, cutoff_hz: float | tuple[float, float], kind: str, fs: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(b, a, zi_unit) of `scipy.signal.butter(order, cutoff_hz, kind, fs=fs)`: from the table when it holds
    that design, else from scipy."""
    row = _table().get(_key(order, cutoff_hz, kind, fs))
    if row is not None:
        return np.array(row["b"]), np.array(row["a"]), np.array(row["zi"])
    from scipy.signal import butter, lfilter_zi

    b, a = butter(order, cutoff_hz, btype=kind, fs=fs)
    return np.asarray(b, np.float64), np.asarray(a, np.float64), np.asarray(lfilter_zi(b, a), np.float64)


def build_table() -> dict[str, dict[str, list[float]]]:
    """The designs used at the common rates: the detector's two band-passes, the quality check's second
    detector's band-pass and the 0.5 Hz high-pass of the shipped ECG models."""
    from scipy.signal import butter, lfilter_zi

    from streamer.ecg.detector import detector_designs
    from streamer.ecg.second_opinion import quality_designs

    out = {}
    for fs in TABLE_RATES:
        designs: list[tuple[int, float | tuple[float, float], str]] = [*detector_designs(fs), *quality_designs(fs),
                                                                       (2, 0.5, "highpass")]
        for order, cutoff, kind in designs:
            b, a = butter(order, cutoff, btype=kind, fs=fs)
            out[_key(order, cutoff, kind, fs)] = {"b": list(map(float, b)), "a": list(map(float, a)),
                                                  "zi": list(map(float, lfilter_zi(b, a)))}
    return out


def _compiled_lfilter() -> Callable[..., Any] | None:
    """scipy's compiled `_linear_filter(b, a, x, axis, zi) -> (y, zf)`, loaded without `import scipy.signal`;
    None if this scipy has it elsewhere or it does not give the known answer."""
    try:
        found = importlib.util.find_spec("scipy")  # where scipy is, without running its __init__ (~35 ms)
        if found is None or not found.submodule_search_locations:
            return None
        folder = os.path.join(list(found.submodule_search_locations)[0], "signal")
        paths = glob.glob(os.path.join(folder, "_sigtools.*"))
        spec = importlib.util.spec_from_file_location("scipy.signal._sigtools", paths[0]) if paths else None
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        run: Callable[..., Any] = module._linear_filter
        # y[n] = x[n] + 0.5 y[n-1] (transposed direct form, state z = 0.5 y[n-1]), from z = 1, x = 1, 0, 0
        y, zf = run(np.array([1.0, 0.0]), np.array([1.0, -0.5]), np.array([[1.0, 0.0, 0.0]]), 1, np.ones((1, 1)))
        if np.allclose(y, [[2.0, 1.0, 0.5]]) and np.allclose(zf, [[0.25]]):
            return run
    except Exception:  # noqa: BLE001  (any surprise here only means: use the public function)
        pass
    return None


@functools.lru_cache(maxsize=1)
def _lfilter() -> Callable[..., Any]:
    compiled = _compiled_lfilter()
    if compiled is not None:
        return compiled
    from scipy.signal import lfilter

    return lambda b, a, x, axis, zi: lfilter(b, a, x, axis=axis, zi=zi)


class IirDesign:
    """A Butterworth filter in transfer-function form (orders used here are <= 4, where that form is exact
    enough), with the state that makes a constant input give a constant output (no start-up transient)."""

    def __init__(self, order: int, cutoff_hz: float | tuple[float, float], kind: str, fs: float) -> None:
        self.b, self.a, self.zi_unit = butter_design(order, cutoff_hz, kind, fs)

    @property
    def order(self) -> int:
        return len(self.zi_unit)

    def run(self, x: np.ndarray, zi: np.ndarray, started: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter rows `x` (n, L) from states `zi` (n, order); rows not `started` begin in steady state
        for their first sample. Returns (y, new states)."""
        zi = np.array(zi, dtype=np.float64)  # a copy: the caller stores the new states itself
        fresh = ~started
        if fresh.any():
            zi[fresh] = self.zi_unit[None, :] * x[fresh, :1]
        y, zf = _lfilter()(self.b, self.a, np.ascontiguousarray(x, dtype=np.float64), 1, zi)
        return y, zf


def windows_ending_at(a: np.ndarray, rows: np.ndarray, ends: np.ndarray, width: int) -> np.ndarray:
    """a[rows[i], ends[i] - width + 1 : ends[i] + 1] for every i, as an (n, width) array.

    A strided view of all windows of the (C-contiguous) array, indexed: one copy of just the rows wanted
    (numpy's sliding_window_view does the same with ~50 us of checks per call, which the 1 s ticks of a
    single stream feel)."""
    a = np.ascontiguousarray(a)
    view = np.ndarray((a.shape[0], a.shape[1] - width + 1, width), dtype=a.dtype, buffer=a,
                      strides=(a.strides[0], a.strides[1], a.strides[1]))
    return view[rows, ends - width + 1]


if __name__ == "__main__":
    TABLE.write_text(json.dumps(build_table(), indent=0, sort_keys=True) + "\n")
    print(f"wrote {TABLE}")
