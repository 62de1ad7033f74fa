"""CLI: inspect shows what a model carries; the demo path writes its outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streamer.cli.main import main


def test_inspect_shows_metadata(ecg5000_model: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(ecg5000_model)])
    assert result.exit_code == 0, result.output
    for needle in ("ecg-beat-anomaly", "threshold", "normalisation", "zscore -> minmax", "(batch, 140)", "sha256",
                   "auc 0.9965", "--full"):
        assert needle in result.output, needle
    full = CliRunner().invoke(main, ["inspect", "--full", str(ecg5000_model)])
    assert full.exit_code == 0 and "chosen_on:" in full.output and "max 4.88819" in full.output  # 6 digits
    as_json = CliRunner().invoke(main, ["inspect", "--json", str(ecg5000_model)])
    meta = json.loads(as_json.output)
    assert meta["beat"]["length"] == 140 and meta["inputs"][0]["shape"] == [None, 140]


def test_ecg_run_writes_events_and_summary(slice106: Path, ecg_model: Path, tmp_path: Path) -> None:
    events, summary = tmp_path / "beats.jsonl", tmp_path / "summary.json"
    result = CliRunner().invoke(main, ["ecg", str(slice106), "--model", str(ecg_model), "--speed", "max",
                                       "--no-dashboard", "--events", str(events), "--summary", str(summary)])
    assert result.exit_code == 0, result.stderr
    data = json.loads(summary.read_text())
    for key in ("beats", "anomalies", "duration_s", "realtime_factor", "latency_ms", "rpeaks", "anomaly"):
        assert key in data, key
    assert {"p50", "p99"} <= set(data["latency_ms"])
    assert {"sensitivity", "ppv", "tolerance_ms"} <= set(data["rpeaks"])
    assert {"auc", "precision", "recall", "false_alarms_per_min"} <= set(data["anomaly"])
    assert data["duration_s"] == 120.0
    assert data["lead"] == "MLII" and data["lead_index"] == 0  # the lead used, by name and 0-based index
    assert len(events.read_text().splitlines()) == data["beats"]
    assert "aestream summary" in result.stdout  # headless: the summary is printed


def test_ecg5000_model_runs_on_mitdb(slice106: Path, ecg5000_model: Path, tmp_path: Path) -> None:
    """The ECG5000 model's RR-cycle beat window works on a 360 Hz record too (rate-free window)."""
    summary = tmp_path / "s.json"
    result = CliRunner().invoke(main, ["ecg", str(slice106), "--model", str(ecg5000_model), "--speed", "max",
                                       "--summary", str(summary)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(summary.read_text())["beats"] > 100


def test_misfit_model_is_reported(slice106: Path, ecg5000_model: Path, tmp_path: Path) -> None:
    """ECG5000 (another lead and population) flags most MIT-BIH beats: the summary says so."""
    summary = tmp_path / "s.json"
    CliRunner().invoke(main, ["ecg", str(slice106), "--model", str(ecg5000_model), "--speed", "max",
                              "--summary", str(summary)])
    data = json.loads(summary.read_text())
    flagged_most = data["anomalies"] > 0.5 * data["beats_judged"]
    assert bool(data["warnings"]) == flagged_most


def test_train_ecg_cli_writes_a_model_the_engine_runs(tmp_path: Path, slice106: Path) -> None:
    """`streamer train ecg` end to end (1 epoch of real ECG5000 training), then the model is used."""
    import pytest

    pytest.importorskip("tensorflow")
    out = tmp_path / "models"
    result = CliRunner().invoke(main, ["train", "ecg", "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "ecg5000.onnx").is_file() and (out / "ecg5000.card.md").is_file()
    assert "auc" in result.output
    run = CliRunner().invoke(main, ["ecg", str(slice106), "--model", str(out / "ecg5000.onnx"), "--speed", "max"])
    assert run.exit_code == 0, run.stderr


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_sigint_ends_cleanly_with_outputs(tmp_path: Path, sig: str, code: int) -> None:
    """A real Ctrl-C (SIGINT) or `kill` (SIGTERM) mid-replay: exit 130 or 143, no traceback, events and summary
    kept and consistent."""
    import signal
    import subprocess
    import sys
    import time

    from .conftest import MODELS, SAMPLE_RECORD, in_foreground

    events, summary = tmp_path / "ev.jsonl", tmp_path / "s.json"
    proc = subprocess.Popen([sys.executable, "-m", "streamer.cli", "ecg", str(SAMPLE_RECORD), "--model",
                             str(MODELS / "ecg.onnx"), "--speed", "20", "--events", str(events),
                             "--summary", str(summary)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=in_foreground)
    deadline = time.monotonic() + 60
    while (not events.exists() or len(events.read_text().splitlines()) < 20) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert b"Traceback" not in err and b"aestream summary" in out
    data = json.loads(summary.read_text())
    assert data["interrupted"] is True and data["beats"] >= 20
    assert len(events.read_text().splitlines()) == data["beats"]


def test_ecg_help_shows_a_plain_percent_sign() -> None:
    result = CliRunner().invoke(main, ["ecg", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # help lines wrap anywhere
    assert "(a (100-Q)% false-alarm" in text and "%%" not in text
    assert "0-based index" in text  # --lead says how leads are counted


def test_summary_numbers_are_for_people() -> None:
    """The printed summary: thousands separators, a few decimals, no scientific notation for ordinary numbers."""
    from io import StringIO

    from rich.console import Console

    from streamer.ui.summary import print_summary

    out = StringIO()
    print_summary({"samples": 53940, "duration_s": 53940.25, "realtime_factor": 9.834e-05, "beats": 2027,
                   "latency_ms": {"p50": 2.3456, "p99": 123.456}, "auc": 0.987654, "tiny": 3e-9, "hop": 4096.0},
                  Console(file=out, width=100))
    text = out.getvalue()
    for needle in ("53,940 ", "0.00009834", "2027", "p50 2.35, p99 123.5", "0.9877", "4096 "):
        assert needle in text, needle
    assert "e+" not in text and "e-05" not in text and "3.00e-09" in text  # only the truly tiny is scientific


@pytest.mark.parametrize("name", ["music", "music.encoder", "music.decoder", "ecg", "ecg5000", "denoise",
                                  "denoise-dense", "denoise-unet"])
def test_inspect_fits_a_terminal(name: str) -> None:
    """Every shipped model: the default page fits 40 lines of 80 columns (wrapped with a hanging indent, never
    cut mid-figure), --full shows every key with floats to 6 significant digits and no JSON, --json is the
    whole raw metadata."""
    import re

    from .conftest import MODELS

    path = str(MODELS / f"{name}.onnx")
    runner = CliRunner(env={"COLUMNS": "80"})
    raw = json.loads(runner.invoke(main, ["inspect", "--json", path]).output)
    page = runner.invoke(main, ["inspect", path])
    lines = page.output.splitlines()
    assert page.exit_code == 0 and len(lines) <= 40 and max(map(len, lines)) <= 80, page.output
    assert raw["task"] in page.output and "(batch, " in page.output and "KiB" in lines[0]
    assert all(ln.startswith(" " * 14) or not ln.startswith(" ") for ln in lines)  # continuations align
    full = runner.invoke(main, ["inspect", "--full", path]).output
    assert max(map(len, full.splitlines())) <= 80
    assert all(f"\n{key}:" in full for key in raw), [k for k in raw if f"\n{k}:" not in full]
    decimals = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", full)
    significant = [len(re.sub(r"^[0.]+", "", d).replace(".", "")) for d in decimals]
    assert decimals and max(significant) <= 6 and '{"' not in full  # rounded; nested values not as JSON


def _fake_physionet(calls: list[str]) -> Any:
    """Stands in for `wfdb.dl_database` (the tests cannot reach PhysioNet): copies a real local MIT-BIH record
    (the shared data, or the copy of 106 in samples/ecg) where wfdb would write it."""
    import shutil

    from .conftest import mitdb_record

    def dl_database(db_dir: str, dl_dir: str, records: Any = "all", annotators: Any = "all",
                    keep_subdirs: bool = True, overwrite: bool = False) -> None:
        assert db_dir == "mitdb" and annotators == "all"
        calls.append(records[0])
        src = mitdb_record(records[0])
        for suffix in (".hea", ".dat", ".atr"):
            shutil.copy(src.parent / (src.name + suffix), Path(dl_dir) / (records[0] + suffix))
        print("Downloading files...")  # wfdb's chatter, kept off stdout

    return dl_database


def test_download_then_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ecg_model: Path) -> None:
    """`streamer download mitdb/106` fetches the record once into the folder and prints its path (only that on
    stdout), which `streamer ecg` replays; a second download is served from the folder."""
    import wfdb

    calls: list[str] = []
    monkeypatch.setattr(wfdb, "dl_database", _fake_physionet(calls))
    cache = tmp_path / "cache"
    first = CliRunner().invoke(main, ["download", "mitdb/106", "--out", str(cache)])
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == str(cache / "mitdb" / "106") and "downloaded from PhysioNet" in first.stderr
    assert sorted(p.name for p in (cache / "mitdb").iterdir()) == ["106.atr", "106.dat", "106.hea"]  # no leftovers
    again = CliRunner().invoke(main, ["download", "mitdb/106", "--out", str(cache)])
    assert again.exit_code == 0 and "already downloaded" in again.stderr and calls == ["106"]
    summary = tmp_path / "s.json"
    run = CliRunner().invoke(main, ["ecg", first.stdout.strip(), "--model", str(ecg_model), "--speed", "max",
                                    "--summary", str(summary)])
    assert run.exit_code == 0, run.stderr
    data = json.loads(summary.read_text())
    assert data["beats"] > 1500 and data["rpeaks"]["sensitivity"] > 99  # the annotations came along


def test_download_default_folder_is_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wfdb

    monkeypatch.setattr(wfdb, "dl_database", _fake_physionet([]))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("AESTREAM_CACHE", raising=False)
    r = CliRunner().invoke(main, ["download", "mitdb/106"])
    assert r.exit_code == 0
    assert r.stdout.strip() == str(tmp_path / ".cache" / "aestream" / "physionet" / "mitdb" / "106")
    monkeypatch.setenv("AESTREAM_CACHE", str(tmp_path / "elsewhere"))  # the cache the music data uses, too
    r = CliRunner().invoke(main, ["download", "mitdb/106"])
    assert r.exit_code == 0 and r.stdout.strip() == str(tmp_path / "elsewhere" / "physionet" / "mitdb" / "106")


@pytest.mark.parametrize("failure, needle", [
    ("network", "cannot reach physionet.org"), ("missing", "no such database or record on PhysioNet")])
def test_download_failures_are_one_line(failure: str, needle: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """No network (requests' ConnectionError, what wfdb raises) or a record PhysioNet does not have: one line,
    a non-zero exit, nothing left in the folder (not even a half-written record)."""
    import requests
    import wfdb
    from wfdb.io._url import NetFileNotFoundError

    def dl_database(db_dir: str, dl_dir: str, **kwargs: Any) -> None:
        (Path(dl_dir) / "208.dat").write_bytes(b"\0" * 100)  # a part arrived before it failed
        if failure == "network":
            raise requests.exceptions.ConnectionError("HTTPSConnectionPool(host='physionet.org', port=443)")
        raise NetFileNotFoundError("404 Not Found", url="https://physionet.org/content/mitdb/1.0.0/208.hea")

    monkeypatch.setattr(wfdb, "dl_database", dl_database)
    r = CliRunner().invoke(main, ["download", "mitdb/208", "--out", str(tmp_path)])
    lines = r.stderr.splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "Traceback" not in r.output and r.stdout == ""
    assert lines[0].startswith("streamer: error: mitdb/208: ") and needle in lines[0]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    bad = CliRunner().invoke(main, ["download", "../etc/passwd", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "expected DATABASE/RECORD" in bad.stderr


def test_summary_names_the_lead_of_every_format(tmp_path: Path, ecg_model: Path) -> None:
    """CSV and EDF (WFDB: above): the summary says which lead was replayed, by name and 0-based index."""
    import numpy as np
    import pyedflib

    from streamer.ecg.readers import read_recording

    from .conftest import mitdb_record

    x = read_recording(mitdb_record("106")).signal[: 360 * 20]
    csv = tmp_path / "two.csv"
    csv.write_text("time,MLII,inverted\n" + "\n".join(f"{i / 360:.6f},{v:.3f},{-v:.3f}" for i, v in enumerate(x)))
    edf = tmp_path / "two.edf"
    header = {"dimension": "uV", "sample_frequency": 360, "physical_max": 10000, "physical_min": -10000,
              "digital_max": 32767, "digital_min": -32768}
    with pyedflib.EdfWriter(str(edf), 2, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        w.setSignalHeaders([{**header, "label": "MLII"}, {**header, "label": "inverted"}])
        w.writeSamples([x * 1000.0, -x * 1000.0])
    for path, lead in ((csv, "1"), (csv, "inverted"), (edf, "1"), (edf, None)):
        summary = tmp_path / "s.json"
        args = ["ecg", str(path), "--model", str(ecg_model), "--speed", "max", "--summary", str(summary)]
        r = CliRunner().invoke(main, args + (["--lead", lead] if lead else []))
        assert r.exit_code == 0, r.stderr
        data = json.loads(summary.read_text())
        expected = ("MLII", 0) if lead is None else ("inverted", 1)
        assert (data["lead"], data["lead_index"]) == expected, (path, lead)
        assert "lead_index" in r.stdout and np.isfinite(data["duration_s"])
