"""Tests of the causal streaming R-peak detector on MIT-BIH slices (skipped when the data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from streamer.ecg.detector import OnlineRPeakDetector, detect_rpeaks
from streamer.ecg.evaluate import BEAT_SYMBOLS, rpeak_scores

MITDB = Path("/work/shared/data/mitdb")
FS = 360.0
SLICE_S = 180.0  # s, long enough for the adaptive levels to matter, short enough to keep the suite fast
MIN_SCORE = 99.0  # %, honest floor for Se and PPV on a few minutes of a hard record

wfdb = pytest.importorskip("wfdb")


def _load(record: str, start_s: float = 0.0, duration_s: float = SLICE_S) -> tuple[np.ndarray, np.ndarray]:
    """Channel 0 of a record slice and its reference beats (sample indices relative to the slice)."""
    path = MITDB / record
    if not path.with_suffix(".dat").exists():
        pytest.skip(f"MIT-BIH record {record} not available")
    a, b = int(start_s * FS), int((start_s + duration_s) * FS)
    signal = wfdb.rdrecord(str(path), sampfrom=a, sampto=b).p_signal[:, 0]
    ann = wfdb.rdann(str(path), "atr", sampfrom=a, sampto=b)
    ref = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in BEAT_SYMBOLS], dtype=np.int64) - a
    return signal, ref


def _stream(signal: np.ndarray, fs: float, sizes: list[int]) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Feed `signal` in blocks of the given sizes (cycled).

    Returns all peaks, and for each peak returned by `feed`: (peak, first, last sample index of its block).
    """
    det = OnlineRPeakDetector(fs)
    peaks: list[int] = []
    emitted: list[tuple[int, int, int]] = []
    pos, k = 0, 0
    while pos < len(signal):
        block = signal[pos:pos + sizes[k % len(sizes)]]
        new = det.feed(block)
        peaks += new
        emitted += [(p, pos, pos + len(block) - 1) for p in new]
        pos += len(block)
        k += 1
    peaks += det.flush()
    return peaks, emitted


@pytest.fixture(scope="module")
def slice_106() -> tuple[np.ndarray, np.ndarray]:
    return _load("106", start_s=0.0, duration_s=SLICE_S)


def test_streaming_equals_offline_for_any_block_size(slice_106: tuple[np.ndarray, np.ndarray]) -> None:
    signal, _ = slice_106
    offline = detect_rpeaks(signal, FS).tolist()
    assert len(offline) > 100
    rng = np.random.default_rng(0)
    for sizes in ([7], [100], [360], [len(signal)], rng.integers(1, 2000, size=50).tolist()):
        peaks, _ = _stream(signal, FS, sizes)
        assert peaks == offline, f"block sizes {sizes[:5]}..."


def test_features_are_bit_identical_across_partitions(slice_106: tuple[np.ndarray, np.ndarray]) -> None:
    """Stronger than equal peaks: the per-sample features (integrator, |slope|, running sum, locator) and the
    decision state after every block equal those after feeding the same prefix in one call, bit for bit."""
    from streamer.ecg.detector import DetectorBank

    signal = slice_106[0][: int(20 * FS)]
    cuts = np.cumsum(np.random.default_rng(2).integers(1, 700, size=60))
    cuts = cuts[cuts < len(signal)]
    parts = DetectorBank(FS)
    parts.clear(0)
    for end, block in zip(np.r_[cuts, len(signal)], np.split(signal, cuts)):
        parts.feed([0], block[None, :])
        whole = DetectorBank(FS)
        whole.clear(0)
        whole.feed([0], signal[None, :end])
        a, b = parts.state(0), whole.state(0)
        for name, row in a["rows"].items():
            assert np.array_equal(row, b["rows"][name]), (name, end)
        assert a["rules"] == b["rules"]


def test_many_streams_in_one_bank_equal_each_alone() -> None:
    """Streams of one rate share every array operation; each gets exactly the peaks it gets alone."""
    from streamer.ecg.detector import DetectorBank

    signals = [_load(r, 60.0, 120.0)[0] for r in ("106", "100", "116")]
    signals.append(-signals[0] * 3 + 0.5)  # another polarity, gain and offset
    bank = DetectorBank(FS)
    for slot in range(len(signals)):
        bank.clear(slot)
    got: list[list[int]] = [[] for _ in signals]
    order = [3, 0, 2, 1]  # slots need not come in order
    for start in range(0, len(signals[0]), 360):
        blocks = np.stack([signals[i][start:start + 360] for i in order])
        for slot, peaks in bank.feed(order, blocks).items():
            got[slot] += peaks
    for slot, peaks in bank.flush(order).items():
        got[slot] += peaks
    for i, x in enumerate(signals):
        assert got[i] == detect_rpeaks(x, FS).tolist()


def test_streaming_sample_by_sample_equals_offline(slice_106: tuple[np.ndarray, np.ndarray]) -> None:
    signal = slice_106[0][: int(30 * FS)]  # block size 1 is slow by nature: 30 s is enough
    peaks, _ = _stream(signal, FS, [1])
    assert peaks == detect_rpeaks(signal, FS).tolist()


def test_peaks_are_increasing_absolute_indices(slice_106: tuple[np.ndarray, np.ndarray]) -> None:
    peaks, _ = _stream(slice_106[0], FS, [333])
    assert all(isinstance(p, int) for p in peaks)
    assert all(b > a for a, b in zip(peaks, peaks[1:]))
    assert 0 <= peaks[0] and peaks[-1] < len(slice_106[0])


@pytest.mark.parametrize("sizes", [[1], [7], [360], [1, 50, 3, 999]])
def test_decision_delay_is_bounded(slice_106: tuple[np.ndarray, np.ndarray], sizes: list[int]) -> None:
    """Every peak p comes out of the feed call delivering sample p + LOOKAHEAD_S * fs, or an earlier one."""
    assert OnlineRPeakDetector.LOOKAHEAD_S <= 0.300
    bound = int(np.floor(OnlineRPeakDetector.LOOKAHEAD_S * FS))
    signal = slice_106[0][: int(30 * FS)]  # block size 1 is slow by nature: 30 s (~40 beats) is enough
    _, emitted = _stream(signal, FS, sizes)
    assert len(emitted) > 25
    for p, first, last in emitted:
        assert first <= p + bound, (p, first, last)  # not held back beyond the bound
        assert p <= last  # and never a peak from the future
    if sizes == [1]:
        # Sample by sample the delay is exact: it must stay within the bound and use most of it.
        delays = [last - p for p, _, last in emitted]
        assert max(delays) <= bound
        assert min(delays) >= int(0.1 * FS)  # at least the confirmation wait


def test_reset_restores_initial_state(slice_106: tuple[np.ndarray, np.ndarray]) -> None:
    signal = slice_106[0][: int(60 * FS)]
    det = OnlineRPeakDetector(FS)
    first = det.feed(signal) + det.flush()
    det.reset()
    assert det.feed(signal) + det.flush() == first


@pytest.mark.parametrize("record,start_s", [("106", 0.0), ("105", 0.0), ("116", 600.0), ("104", 0.0)])
def test_accuracy_on_hard_records(record: str, start_s: float) -> None:
    signal, ref = _load(record, start_s=start_s)
    scores = rpeak_scores(detect_rpeaks(signal, FS), ref, FS)
    assert scores["sensitivity"] >= MIN_SCORE, scores
    assert scores["ppv"] >= MIN_SCORE, scores


def test_peaks_sit_on_the_r_peak(slice_106: tuple[np.ndarray, np.ndarray]) -> None:
    """Matched detections are within a few samples of the annotated R peak for most beats."""
    signal, ref = slice_106
    peaks = detect_rpeaks(signal, FS)
    nearest = np.abs(peaks[np.clip(np.searchsorted(peaks, ref), 0, len(peaks) - 1)] - ref)
    assert np.median(nearest) <= 0.02 * FS


@pytest.mark.parametrize("new_fs", [250, 500])
def test_other_sampling_rates(new_fs: int) -> None:
    signal, ref = _load("105", start_s=0.0)
    resampled = resample_poly(signal, new_fs, int(FS))
    ref_new = np.round(ref * new_fs / FS).astype(np.int64)
    scores = rpeak_scores(detect_rpeaks(resampled, new_fs), ref_new, new_fs)
    assert scores["sensitivity"] >= MIN_SCORE, scores
    assert scores["ppv"] >= MIN_SCORE, scores


def test_polarity_and_units_do_not_matter(slice_106: tuple[np.ndarray, np.ndarray]) -> None:
    signal, ref = slice_106
    for transformed in (-signal, 1000.0 * signal + 5.0):
        scores = rpeak_scores(detect_rpeaks(transformed, FS), ref, FS)
        assert scores["sensitivity"] >= MIN_SCORE and scores["ppv"] >= MIN_SCORE, scores


def _scores_outside(peaks: np.ndarray, ref: np.ndarray, lo_s: float, hi_s: float) -> dict[str, float]:
    """Se/PPV ignoring [lo_s, hi_s): the time the detector is allowed to need to re-adapt."""
    lo, hi = int(lo_s * FS), int(hi_s * FS)
    keep_p = (peaks < lo) | (peaks >= hi)
    keep_r = (ref < lo) | (ref >= hi)
    return rpeak_scores(peaks[keep_p], ref[keep_r], FS)


def test_recovers_from_a_huge_artefact_at_stream_start(slice_106: tuple[np.ndarray, np.ndarray]) -> None:
    signal, ref = slice_106
    spoiled = signal.copy()
    spoiled[100:140] += 50.0 * np.ptp(signal[: int(10 * FS)]) * np.hanning(40)  # taken as the first "beat"
    scores = _scores_outside(detect_rpeaks(spoiled, FS), ref, 0.0, 15.0)
    assert scores["sensitivity"] >= MIN_SCORE and scores["ppv"] >= MIN_SCORE, scores


@pytest.mark.parametrize("gain", [0.05, 20.0])
def test_adapts_to_a_sudden_gain_change(slice_106: tuple[np.ndarray, np.ndarray], gain: float) -> None:
    signal, ref = slice_106
    changed = signal.copy()
    changed[int(60 * FS):] *= gain
    scores = _scores_outside(detect_rpeaks(changed, FS), ref, 60.0, 65.0)
    assert scores["sensitivity"] >= MIN_SCORE and scores["ppv"] >= MIN_SCORE, scores


@pytest.mark.parametrize("level", [0.0, 3.7, -1e6])
def test_flat_line_gives_no_peaks(level: float) -> None:
    flat = np.full(int(20 * FS), level)
    assert detect_rpeaks(flat, FS).size == 0
    det = OnlineRPeakDetector(FS)
    assert [p for k in range(0, flat.size, 100) for p in det.feed(flat[k:k + 100])] + det.flush() == []


def test_garbage_does_not_crash() -> None:
    rng = np.random.default_rng(1)
    det = OnlineRPeakDetector(FS)
    blocks = [rng.normal(size=500), np.zeros(0), np.array([np.nan, np.inf, -np.inf, 1.0]),
              rng.uniform(-1e9, 1e9, size=1000), np.zeros(3000)]
    peaks = [p for b in blocks for p in det.feed(b)] + det.flush()
    assert all(isinstance(p, int) for p in peaks)
    assert all(b > a for a, b in zip(peaks, peaks[1:]))


def test_rejects_too_low_sampling_rate() -> None:
    with pytest.raises(ValueError):
        OnlineRPeakDetector(50.0)
