"""Signal quality verdicts (streamer/ecg/quality.py) on real MIT-BIH records: clean stretches good, real
saturation and flat lines named, agreement falling in noise, the same verdicts however the stream is cut,
and the engine keeping poor beats out of its alarms and its summary saying how much was good."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamer.ecg.detector import OnlineRPeakDetector
from streamer.ecg.quality import BSQI_GOOD, StreamQuality, Verdict, bsqi_window
from streamer.ecg.readers import read_recording
from streamer.ecg.second_opinion import SecondOpinion
from tests.conftest import MODELS, mitdb_record


def record(name: str, start_s: float = 0.0, seconds: float | None = None) -> tuple[np.ndarray, float]:
    rec = read_recording(mitdb_record(name))
    a = int(start_s * rec.fs)
    b = len(rec.signal) if seconds is None else a + int(seconds * rec.fs)
    return rec.signal[a:b], rec.fs


def verdicts(x: np.ndarray, fs: float, step: int) -> list[tuple[int, Verdict]]:
    """The stream fed in blocks of `step` samples; each beat's verdict asked as the engine asks it: once the
    beat can be framed (its successor found), after the block that brought it (with big blocks, long after)."""
    det, quality, out, pending = OnlineRPeakDetector(fs), StreamQuality(fs), [], []
    for k in range(0, len(x), step):
        block = x[k:k + step]
        peaks = det.feed(block)
        quality.feed(block, peaks)
        pending += peaks
        while len(pending) > 1 and quality.ready(pending[0]):  # framed (a successor) and its verdict taken
            out.append((pending[0], quality.verdict(pending.pop(0))))
    return out


def key(v: list[tuple[int, Verdict]]) -> list[tuple[int, bool, str, float | None]]:
    return [(p, x.good, x.reason, None if x.bsqi != x.bsqi else round(x.bsqi, 12)) for p, x in v]


def test_clean_record_is_good_and_the_second_opinion_finds_its_beats() -> None:
    """Record 100, 5 min: both detectors find the annotated beats, so nearly every beat is judged good."""
    from streamer.ecg.evaluate import rpeak_scores

    x, fs = record("100", seconds=300)
    ref = read_recording(mitdb_record("100")).ref_samples
    ref = ref[ref < len(x)]
    second = SecondOpinion(fs)
    peaks = [p for k in range(0, len(x), 360) for p in second.feed(x[k:k + 360])]
    scores = rpeak_scores(np.asarray(peaks), ref, fs)
    assert scores["sensitivity"] > 98 and scores["ppv"] > 98
    v = verdicts(x, fs, int(fs))
    assert np.mean([x.good for _, x in v]) >= 0.98
    assert np.nanmedian([x.bsqi for _, x in v]) == 1.0


def test_same_verdicts_whatever_the_blocks() -> None:
    x, fs = record("116", start_s=980, seconds=60)  # includes real saturation and a flat stretch
    one_second, odd, whole = verdicts(x, fs, int(fs)), verdicts(x, fs, 2617), verdicts(x, fs, len(x))
    assert key(one_second) == key(odd) == key(whole)


def test_real_saturation_and_flat_line_are_named() -> None:
    """Record 116 sits at its converter's rail around 1001-1003 s: the beats there are poor, for saturation
    or a flat line, and beats 20 s away are good."""
    x, fs = record("116", start_s=980, seconds=60)
    v = verdicts(x, fs, int(fs))
    t = np.array([p / fs + 980 for p, _ in v])
    near = [x.reason for (_, x), ti in zip(v, t) if 1000.5 <= ti <= 1004]
    assert {"saturated", "flat line"} & set(near)
    far = [x for (_, x), ti in zip(v, t) if 1010 <= ti <= 1030]
    assert far and all(x.good for x in far)


def test_flat_line_inserted_in_a_clean_record() -> None:
    """Leads off for 3 s in the middle of record 100: the beats around it are `flat line`, the rest good."""
    x, fs = record("100", seconds=120)
    x = x.copy()
    a, b = int(60 * fs), int(63 * fs)
    x[a:b] = x[a]
    v = verdicts(x, fs, int(fs))
    bad = [p for p, x in v if x.reason == "flat line"]
    assert bad and all(a - 0.6 * fs <= p <= b + 0.6 * fs for p in bad)
    assert all(x.good for p, x in v if 10 * fs <= p < a - fs)


def test_agreement_falls_in_muscle_noise() -> None:
    """EMG-like noise (NeuroKit2's signal_distort, Laplace noise at 20 Hz and up) added to record 100 at 0 dB:
    the detectors disagree and many beats are judged poor; at 24 dB nearly none."""
    nk = pytest.importorskip("neurokit2")
    x, fs = record("100", seconds=120)
    noise = nk.signal_distort(np.zeros_like(x), sampling_rate=int(fs), noise_amplitude=1.0,
                              noise_frequency=[20, 30], noise_shape="laplace", random_state=1, silent=True)

    def good_fraction(snr_db: float) -> float:
        scaled = noise * np.sqrt(np.var(x) / 10 ** (snr_db / 10) / np.var(noise))
        return float(np.mean([v.good for _, v in verdicts(x + scaled, fs, int(fs))]))

    assert good_fraction(24) >= 0.98
    assert good_fraction(0) < 0.9


def test_bsqi_counts_matches_within_the_tolerance() -> None:
    main = np.array([100, 200, 300, 400])
    other = np.array([95, 210, 350, 500])  # 100 and 200 matched (within 10), 300 not; 500 outside the window
    assert bsqi_window(main, other, 10, 0, 450) == pytest.approx(2 / (4 + 3 - 2))
    assert bsqi_window(main, main, 10, 0, 450) == 1.0
    assert BSQI_GOOD == 0.8


def test_engine_keeps_noise_beats_out_of_alarms(tmp_path: Path) -> None:
    """`streamer ecg` on a real record with its middest minute buried in EMG-like noise (0 dB): the events
    of beats judged poor carry state `noise` and are never anomalies, and the summary's quality figures add
    up with the events."""
    nk = pytest.importorskip("neurokit2")
    x, fs = record("100", seconds=180)
    noise = nk.signal_distort(np.zeros(int(60 * fs)), sampling_rate=int(fs), noise_amplitude=1.0,
                              noise_frequency=[20, 30], noise_shape="laplace", random_state=2, silent=True)
    x = x.copy()
    x[int(60 * fs):int(120 * fs)] += noise * np.sqrt(np.var(x) / np.var(noise))
    csv = tmp_path / "noisy.csv"
    np.savetxt(csv, x, fmt="%.5f")
    events, summary = tmp_path / "e.jsonl", tmp_path / "s.json"
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "ecg", str(csv), "--fs", str(fs), "--speed", "max",
                           "--no-dashboard", "--events", str(events), "--summary", str(summary)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    beats = [json.loads(line) for line in events.read_text().splitlines()]
    noisy = [b for b in beats if b["state"] == "noise"]
    assert noisy and not any(b["anomaly"] for b in noisy)
    assert all(b["quality"] != "good" for b in noisy)
    assert all(60 <= b["t"] <= 131 for b in noisy)  # the noisy minute, and the 10-s window after it
    q = json.loads(summary.read_text())["quality"]
    assert q["unjudged_noise"] == len(noisy)
    known = [b for b in beats if b["quality"] != "not yet known"]
    assert 0 < q["beats_before_quality_known"] == len(beats) - len(known)
    assert q["percent_beats_good"] == pytest.approx(100 * sum(b["quality"] == "good" for b in known) / len(known),
                                                    abs=0.01)
    assert 40 < q["percent_time_good"] < 99


def test_a_stream_of_noise_alone_ends_with_zero_percent_good_and_no_alarm(tmp_path: Path) -> None:
    """Two minutes of NeuroKit2's noise and motion artefact with no ECG under it: the run ends normally (exit 0),
    no alarm, and the summary says 0 % good, the first seconds (quality not yet known) left out of it."""
    nk = pytest.importorskip("neurokit2")
    fs = 360
    noise = nk.signal_distort(np.zeros(fs * 120), sampling_rate=fs, noise_amplitude=0.3,
                              noise_frequency=[5, 10, 20, 30], noise_shape="laplace", artifacts_amplitude=0.5,
                              artifacts_frequency=5, artifacts_number=12, random_state=3, silent=True)
    csv, summary = tmp_path / "noise.csv", tmp_path / "s.json"
    np.savetxt(csv, noise, fmt="%.5f")
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "ecg", str(csv), "--fs", str(fs), "--speed", "max",
                           "--no-dashboard", "--summary", str(summary)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(summary.read_text())
    assert s["beats"] > 50 and s["anomalies"] == 0
    assert s["quality"]["percent_time_good"] == 0 and s["quality"]["percent_beats_good"] == 0
    assert 0 < s["quality"]["beats_before_quality_known"] <= 10


def engine_beats(x: np.ndarray, fs: float, step: int) -> list[Any]:
    """Record `x` through a pool of the shipped model in blocks of `step` samples: its beat events."""
    import streamer

    pool = streamer.load_model(MODELS / "ecg.onnx").pool(rate=fs)
    pool.add("p")
    events = [e for k in range(0, len(x), step) for e in pool.feed({"p": x[k:k + step]})["p"]]
    return events + pool.flush()["p"]


@pytest.mark.parametrize("step", [360, 4001])
def test_a_gap_of_missing_samples_is_skipped_and_its_beats_unjudged(step: int) -> None:
    """3.4 s of record 100 lost (NaN, as WFDB and CSV give missing samples): no beat is found in the gap and
    none is made up where the signal resumes (the filters re-primed there); the beats whose RR intervals span
    the gap say `signal missing` and raise no alarm; the beats 3 s after it are those of the whole record."""
    x, fs = record("100", seconds=120)
    clean = engine_beats(x, fs, step)
    a, b = int(60.3 * fs), int(63.7 * fs)
    gapped = x.copy()
    gapped[a:b] = np.nan
    beats = engine_beats(gapped, fs, step)
    r = np.array([e.r_sample for e in beats])
    assert not ((r >= a) & (r < b)).any()
    assert set(r[r < a - fs]) == {e.r_sample for e in clean if e.r_sample < a - fs}
    assert set(r[r > b + 3 * fs]) == {e.r_sample for e in clean if e.r_sample > b + 3 * fs}
    assert set(r) <= {e.r_sample for e in clean}  # nothing made up at the edges
    missing = [e for e in beats if e.quality == "signal missing"]
    assert [e.r_sample for e in missing] == [r[r < a].max(), r[r >= b].min()]
    assert all(e.state == "noise" and not e.anomaly for e in missing)


def test_a_saturated_stretch_is_skipped_and_the_signal_resumes_without_a_false_beat() -> None:
    """Record 100 held at a rail (above its largest value) for 2.4 s: the beats there are `saturated`, and where
    the signal comes back the filters are re-primed, so the step down is not taken for a beat."""
    x, fs = record("100", seconds=120)
    clean = {e.r_sample for e in engine_beats(x, fs, 360)}
    a, b = int(80.2 * fs), int(82.6 * fs)
    railed = x.copy()
    railed[a:b] = x.max() + 0.5
    beats = engine_beats(railed, fs, 360)
    after = [e for e in beats if e.r_sample >= b]
    assert after and after[0].r_sample in clean and all(e.r_sample in clean for e in after)
    assert any(e.quality == "saturated" for e in beats if a - fs / 2 <= e.r_sample < b)
    assert not any(e.anomaly for e in beats if a - fs <= e.r_sample <= b + fs)


def test_a_csv_with_missing_samples_runs_to_the_end(tmp_path: Path) -> None:
    """`nan` cells of a CSV are missing samples: the run goes on (exit 0), the summary names them."""
    x, fs = record("100", seconds=60)
    cells = [f"{v:.4f}" for v in x]
    cells[int(30 * fs):int(32 * fs)] = ["nan"] * (int(32 * fs) - int(30 * fs))
    csv, summary = tmp_path / "gap.csv", tmp_path / "s.json"
    csv.write_text("\n".join(cells) + "\n")
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "ecg", str(csv), "--fs", str(fs), "--speed", "max",
                           "--no-dashboard", "--summary", str(summary)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    q = json.loads(summary.read_text())["quality"]
    assert q["poor_beats_by_reason"].get("signal missing", 0) >= 2 and q["percent_time_good"] < 97


def test_an_alarm_needs_the_beats_shape_past_the_models_shape_gate() -> None:
    """Record 100 (sinus rhythm with atrial premature beats: early, normally shaped): every alarm has both its
    score above the threshold and its shape score above the shipped model's shape gate, and some early beats
    scored above the threshold raise none because their shape is normal."""
    import streamer

    model = streamer.load_model(MODELS / "ecg.onnx")
    gate = float(model.meta["threshold"]["morphology"]["value"])
    x, fs = record("100")
    beats = engine_beats(x, fs, int(fs))
    alarms = [e for e in beats if e.anomaly]
    assert all(e.score > e.threshold and e.morphology > gate for e in alarms)
    held_back = [e for e in beats if e.state == "judged" and e.score > e.threshold and not e.anomaly]
    assert held_back and all(e.morphology <= gate for e in held_back)
