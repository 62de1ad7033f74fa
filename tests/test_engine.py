"""Engine pieces: metrics, pacing, streaming == offline, summaries checked against annotations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from streamer.cli.ecg import plan_ecg
from streamer.cli.main import main
from streamer.cli.options import RunOptions
from streamer.ecg.readers import read_recording
from streamer.ecg.report import EcgReport
from streamer.run.engine import Engine, RunPlan
from streamer.run.metrics import BINS_PER_DECADE, LatencyHistogram, Metrics
from streamer.run.pacing import MAX_SPEED, Pacer, parse_speed
from streamer.run.sources import ArraySource, Block

from .conftest import mitdb_record, write_slice


def test_latency_histogram_matches_numpy_percentiles() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(mean=-6, sigma=1.0, size=20000)  # ~2.5 ms median, long tail
    hist = LatencyHistogram()
    for v in values:
        hist.add(float(v))
    tolerance = 10 ** (1 / BINS_PER_DECADE)  # one bin
    for q in (50, 95, 99):
        ratio = hist.percentile(q) / np.percentile(values, q)
        assert 1 / tolerance**2 < ratio < tolerance**2, (q, ratio)
    assert np.isnan(LatencyHistogram().percentile(50))


def test_latency_percentiles_never_above_the_maximum_nor_below_the_minimum() -> None:
    one = LatencyHistogram()
    one.add(8.515e-3, n=64)  # one batch: every item has the same latency
    assert one.summary_ms()["p50"] == one.summary_ms()["p99"] == one.summary_ms()["max"] == 8.515
    rng = np.random.default_rng(2)
    for _ in range(50):
        hist = LatencyHistogram()
        values = rng.lognormal(mean=-5, sigma=0.3, size=int(rng.integers(1, 40)))
        for v in values:
            hist.add(float(v))
        summary = hist.summary_ms()
        assert min(summary["p50"], summary["p95"], summary["p99"]) >= round(1e3 * values.min(), 4)
        assert max(summary["p50"], summary["p95"], summary["p99"]) <= summary["max"]


def test_pacer_waits_for_stream_time_with_injected_clock() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(speed=2.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait_until(0.0)
    pacer.wait_until(1.0)  # 1 s of signal at 2x is due 0.5 s after the start
    assert slept == [pytest.approx(0.5)]
    now[0] += 3.0  # processing fell behind: no sleep, no catch-up burst
    assert pacer.wait_until(2.0) == 0.0
    assert Pacer(parse_speed("max")).wait_until(1e9) == 0.0
    with pytest.raises(ValueError):
        parse_speed("0")


def _plan(record: Path, model: Path, block_s: float, events: Path | None = None, calibrate_s: float = 0.0,
          calibrate_method: str | None = None) -> RunPlan:
    run = RunOptions(model, MAX_SPEED, events, None, False, 1, "cpu")
    plan = plan_ecg(str(record), run, calibrate_s=calibrate_s, calibrate_method=calibrate_method)
    rec = read_recording(record)
    plan.source = ArraySource(rec.signal, rec.fs, str(record), block_s)
    return plan


def _run(record: Path, model: Path, block_s: float, events: Path | None = None, calibrate_s: float = 0.0,
         calibrate_method: str | None = None) -> tuple[dict, EcgReport]:  # type: ignore[type-arg]
    plan = _plan(record, model, block_s, events, calibrate_s, calibrate_method)
    assert isinstance(plan.report, EcgReport)
    return Engine(plan, Pacer(MAX_SPEED)).run(), plan.report


def test_streaming_equals_offline_scores(slice106: Path, ecg_model: Path) -> None:
    """Block size changes batching, never the beats or their scores."""
    _, whole = _run(slice106, ecg_model, block_s=1e6)
    for block_s in (0.05, 0.37, 3.0):
        _, streamed = _run(slice106, ecg_model, block_s=block_s)
        assert streamed.r_samples == whole.r_samples
        np.testing.assert_allclose(streamed.scores, whole.scores, rtol=0, atol=1e-6)


def test_summary_against_hand_countable_slice(tmp_path: Path, ecg_model: Path) -> None:
    """20 s of record 106: the annotation counts are small enough to check one by one."""
    import wfdb

    record = write_slice(mitdb_record("106"), tmp_path, "h106", 120.0, 20.0)
    ann = wfdb.rdann(str(record), "atr")
    symbols = list(ann.symbol)
    events = tmp_path / "beats.jsonl"
    summary, report = _run(record, ecg_model, block_s=0.1, events=events)
    lines = [json.loads(ln) for ln in events.read_text().splitlines()]
    # annotated beats up to the last scored one count (the stream's last beat has no successor to frame it)
    cutoff = lines[-1]["r_sample"] + int(summary["detector_lookahead_ms"] * 360 / 1000)
    counted = [sym for sample, sym in zip(ann.sample, symbols) if sample <= cutoff]
    assert len(symbols) - len(counted) <= 1 and len(counted) > 20
    assert summary["rpeaks"]["tp"] + summary["rpeaks"]["fn"] == len(counted)
    assert summary["anomaly"]["pvc_annotated"] == counted.count("V")
    assert summary["beats"] == len(lines) == len(report.scores)
    assert summary["anomalies"] == sum(e["anomaly"] for e in lines)
    tp = summary["rpeaks"]["tp"]
    assert summary["rpeaks"]["sensitivity"] == pytest.approx(100.0 * tp / len(counted))
    assert summary["rpeaks"]["ppv"] == pytest.approx(100.0 * tp / summary["beats"])
    # events are in time order and carry what a reader needs
    assert [e["r_sample"] for e in lines] == sorted(e["r_sample"] for e in lines)
    assert {"t", "r_sample", "score", "threshold", "anomaly"} <= set(lines[0])


def test_calibration_sets_patient_threshold(slice106: Path, ecg_model: Path, tmp_path: Path) -> None:
    events = tmp_path / "ev.jsonl"
    summary, _ = _run(slice106, ecg_model, block_s=0.5, events=events, calibrate_s=30.0)
    assert "calibrated" in summary["threshold"]["source"]
    lines = [json.loads(ln) for ln in events.read_text().splitlines()]
    calib = np.asarray([e["score"] for e in lines if e["state"] == "calibrating"])
    assert len(calib) > 10 and all(e["t"] < 30.0 for e in lines if e["state"] == "calibrating")
    threshold = summary["threshold"]["value"]
    assert calib.min() <= threshold <= calib.max() * 1.5
    assert not any(e["anomaly"] for e in lines if e["state"] != "judged")  # nothing flagged while calibrating
    assert all(e["threshold"] == threshold for e in lines if e["state"] == "judged")


class _InterruptingSource(ArraySource):
    def blocks(self):  # type: ignore[override]
        for i, block in enumerate(super().blocks()):
            if i == 40:
                raise KeyboardInterrupt
            yield block


def test_ctrl_c_keeps_events_and_summary(slice106: Path, ecg_model: Path, tmp_path: Path) -> None:
    events = tmp_path / "ev.jsonl"
    plan = _plan(slice106, ecg_model, 1.0, events=events)
    rec = read_recording(slice106)
    plan.source = _InterruptingSource(rec.signal, rec.fs, "s", 1.0)
    summary = Engine(plan, Pacer(MAX_SPEED)).run()
    assert summary["interrupted"] is True
    assert 30 < summary["duration_s"] <= 40.0
    # scored up to where the detector had decided: no false positives from the cut itself
    assert summary["rpeaks"]["ppv"] > 95.0 and summary["rpeaks"]["sensitivity"] > 95.0
    assert summary["beats"] == len(events.read_text().splitlines()) > 20


def test_stdin_equals_file(slice106: Path, ecg_model: Path, tmp_path: Path) -> None:
    """The same samples through stdin (live text) and from the file give the same beats."""
    rec = read_recording(slice106)
    text = "\n".join(repr(float(v)) for v in rec.signal) + "\n"
    out_a, out_b = tmp_path / "a.json", tmp_path / "b.json"
    runner = CliRunner()
    r1 = runner.invoke(main, ["ecg", "-", "--fs", "360", "--model", str(ecg_model), "--summary", str(out_a)],
                       input=text)
    r2 = runner.invoke(main, ["ecg", str(slice106), "--model", str(ecg_model), "--speed", "max",
                              "--summary", str(out_b)])
    assert r1.exit_code == 0, r1.stderr
    assert r2.exit_code == 0, r2.stderr
    a, b = json.loads(out_a.read_text()), json.loads(out_b.read_text())
    assert a["beats"] == b["beats"] and a["anomalies"] == b["anomalies"]


def test_metrics_snapshot_counts() -> None:
    m = Metrics()
    m.batch(4, 0.004)
    m.done_batch(0.01, 4)
    m.drop("queue full", 2)
    m.consumed(10.0, 0.5)
    snap = m.snapshot()
    assert snap["items_in"] == snap["items_out"] == 4
    assert snap["dropped"] == 2 and snap["drops"] == {"queue full": 2}
    assert snap["realtime_factor"] == pytest.approx(0.05)
    assert snap["model_ms"]["p50"] == pytest.approx(1.0, rel=0.03)


def test_block_positions_cover_the_signal() -> None:
    x = np.arange(1000.0)
    blocks = list(ArraySource(x, 100.0, "x", 0.37).blocks())
    assert np.array_equal(np.concatenate([b.samples for b in blocks]), x)
    assert [b.start for b in blocks] == list(range(0, 1000, 37))
    assert isinstance(blocks[0], Block)
    short_first = list(ArraySource(x, 100.0, "x", 3.0, first_block_s=0.5).blocks())
    assert [b.start for b in short_first] == [0, 50, 350, 650, 950]
    assert np.array_equal(np.concatenate([b.samples for b in short_first]), x)


def test_warmup_beats_are_scored_not_judged(slice106: Path, ecg_model: Path, tmp_path: Path) -> None:
    from streamer.core.model import Model
    from streamer.ecg.scoring import judged_from

    events = tmp_path / "ev.jsonl"
    _, report = _run(slice106, ecg_model, block_s=0.5, events=events)
    warm = judged_from(Model(ecg_model).meta["score"])
    assert warm > 0  # the shipped model's template and adaptive history need a few beats
    assert not any(report.judged[:warm]) and all(report.judged[warm:])
    lines = [json.loads(ln) for ln in events.read_text().splitlines()]
    assert all(e["state"] == "warmup" and not e["anomaly"] for e in lines[:warm])
    assert all(e["state"] == "judged" for e in lines[warm:])


def test_calibration_method_is_applied(slice106: Path, ecg_model: Path, tmp_path: Path) -> None:
    from streamer.ecg.threshold import parse_method

    events = tmp_path / "ev.jsonl"
    summary, _ = _run(slice106, ecg_model, block_s=1.0, events=events, calibrate_s=30.0,
                      calibrate_method="mean_std:2")
    calib = np.asarray([json.loads(ln)["score"] for ln in events.read_text().splitlines()
                        if json.loads(ln)["state"] == "calibrating"])
    assert summary["threshold"]["value"] == pytest.approx(calib.mean() + 2 * calib.std())
    assert "mean_std 2" in summary["threshold"]["source"]
    with pytest.raises(ValueError):
        parse_method("median:3")
