"""Dashboard rendering against a Console writing to a string (no terminal needed)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console

from streamer.cli.options import RunOptions
from streamer.run.engine import Engine
from streamer.run.pacing import MAX_SPEED, Pacer
from streamer.ui.dashboard import DashboardView, render, sparkline, trace_rows

from .conftest import MODELS, SAMPLE_RECORD, write_slice


def _text(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_sparkline_levels() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7], 0, 7) == "▁▂▃▄▅▆▇█"
    assert sparkline([]) == ""


def test_trace_shows_the_peak_in_its_column() -> None:
    x = np.zeros(400)
    x[200] = 1.0  # one spike in the middle
    rows = trace_rows(x, width=40, rows=4)
    assert len(rows) == 4 and all(len(r) == 40 for r in rows)
    top = rows[0]
    assert top.strip() and abs(top.index(top.strip()[0]) - 20) <= 1


def test_render_has_fields_scores_and_events() -> None:
    snapshot = {"latency_ms": {"p50": 1.5, "p95": 2.0, "p99": 3.0}, "model_ms": {"p50": 0.01},
                "realtime_factor": 0.002, "drops": {"no following beat at end of stream": 1}}
    view = {"trace": np.sin(np.linspace(0, 20, 1800)), "trace_label": "ECG (5 s)",
            "scores": [0.1, 0.2, 0.9], "threshold": 0.5,
            "events": [{"t": 12.5, "beat": 14, "score": 0.9, "rr_ms": 430.0}],
            "fields": {"heart rate": "72 bpm", "threshold": "0.5 (model)"}}
    view["traces"] = [{"label": view.pop("trace_label"), "signal": view.pop("trace")}]
    text = _text(render(snapshot, view, "aestream ecg · test"))
    for needle in ("ECG (5 s)", "72 bpm", "p50 1.5", "0.002", "no following beat", "threshold 0.5", "12.50"):
        assert needle in text, needle


def test_audio_and_image_views_render() -> None:
    from streamer.ui.dashboard import pixel_art

    snapshot = {"latency_ms": {"p50": 3.1, "p99": 5.0}, "model_ms": {"p50": 1.1}, "realtime_factor": 0.004,
                "drops": {"overflow": 2}}
    view = {"meters": [{"label": "input level", "value": 0.5, "text": "-30.0 dBFS"}],
            "series": [{"label": "SNR dB", "values": [5.0, 6.0, float("nan"), 8.0], "lo": 0.0}],
            "budget_ms": 512, "images": [("input", np.eye(32)), ("denoised", np.zeros((28, 28)))]}
    text = _text(render(snapshot, view, "aestream audio"))
    for needle in ("-30.0 dBFS", "(budget 512)", "SNR dB", "last 8", "overflow: 2", "input", "denoised"):
        assert needle in text, needle
    art = pixel_art(np.eye(32))  # 32 px averaged down to 16 columns, two pixel rows per text row
    assert art.plain.split("\n") == ["▀" * 16] * 8
    assert pixel_art(np.ones((3, 5))).plain.count("\n") == 1  # odd heights get a padding row


# --- each stream's real dashboard, laid out for the terminals people have -------------------------------------
SIZES = [(80, 24), (100, 30), (160, 50)]


def _screen(snapshot: dict, view: dict, title: str, width: int, height: int) -> list[str]:
    """The dashboard as a terminal of width x height shows it (rich's own wrapping would show as extra
    lines or lines of another width)."""
    console = Console(file=io.StringIO(), width=width, height=height, color_system=None, legacy_windows=False)
    console.print(DashboardView(lambda: snapshot, lambda: view, title))
    return console.file.getvalue().rstrip("\n").split("\n")  # type: ignore[attr-defined]


def _fits(lines: list[str], width: int, height: int) -> None:
    assert len(lines) <= height, f"{len(lines)} lines in a terminal of {height}"
    assert lines[0].startswith("╭") and lines[-1].startswith("╰"), "the panel is cut"
    for line in lines:
        assert cell_len(line) == width and line[-1] in "╮│╯", f"a line wraps or is cut: {line!r}"


def _run(plan) -> tuple[dict, dict, str, dict]:  # type: ignore[no-untyped-def]
    """(metrics snapshot, the report's view, title, summary) of a whole run at --speed max."""
    engine = Engine(plan, Pacer(MAX_SPEED))
    engine.process()
    assert engine.error is None
    return engine.snapshot(), plan.report.view(), plan.title, engine.summary()


def _laid_out(screen: tuple, width: int, height: int, needles: tuple[str, ...]) -> list[str]:
    """The screen at width x height: it fits, and every needle is on it."""
    snapshot, view, title, _ = screen
    lines = _screen(snapshot, view, title, width, height)
    _fits(lines, width, height)
    text = "\n".join(lines)
    for needle in needles:
        assert needle in text, (needle, width, height)
    return lines


def _options(model: str) -> RunOptions:
    return RunOptions(MODELS / model, MAX_SPEED, None, None, False, 1, "cpu")


@pytest.fixture(scope="module")
def ecg_screen(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, str, dict]:
    from streamer.cli.ecg import plan_ecg

    folder = tmp_path_factory.mktemp("ecg")
    write_slice(SAMPLE_RECORD, folder, "106", 0, 180)  # 3 min of record 106: PVCs flagged
    return _run(plan_ecg(str(folder / "106"), _options("ecg.onnx")))


@pytest.mark.parametrize("width, height", SIZES)
def test_ecg_dashboard_fits_and_keeps_the_anomalies(ecg_screen: tuple, width: int, height: int) -> None:
    lines = _laid_out(ecg_screen, width, height,
                      ("state", "monitoring", "heart rate", "threshold", "ECG, last 5 s", "scores", "recent anomalies"))
    listed = [ln for ln in lines if re.match(r"^│\s+\d+\.\d\d\s+\d+\s+[\d.]+\s+\d+\s", ln)]
    assert len(listed) >= 3  # the clinician's table is there with rows, even at 80x24
    trace = [ln for ln in lines if set(ln[2:-2]) <= set(" ▀▄█") and set(ln[2:-2]) - {" "}]
    assert len(trace) >= 2  # the ECG trace too
    marks = [ln for ln in lines if "▲" in ln and "anomaly" not in ln]
    assert marks, "the flagged beats are marked under the trace"


def test_ecg_dashboard_drops_the_trace_before_the_anomalies() -> None:
    """A very short terminal: the engine's timings and the trace go, the anomalies stay."""
    snapshot = {"latency_ms": {"p50": 1.0}, "model_ms": {"p50": 0.1}, "drops": {}}
    view = {"state": ("monitoring", "green"), "fields": {"heart rate": "70 bpm"},
            "traces": [{"label": "ECG", "signal": np.sin(np.linspace(0, 30, 1800))}],
            "scores": [1.0, 9.0], "threshold": 5.0, "anomalies_total": 1,
            "events": [{"t": 1.0, "beat": 1, "score": 9.0, "rr_ms": 500.0}]}
    lines = _screen(snapshot, view, "ecg", 80, 10)
    _fits(lines, 80, 10)
    text = "\n".join(lines)
    assert "recent anomalies" in text and "9" in text and "latency" not in text


def test_ecg_warmup_is_a_state_not_an_alarm() -> None:
    """Warm-up beats are drawn dim in the score line (not red, even above the threshold), and the state says so."""
    view = {"state": ("warming up: beat 3 of 32 (not judged yet)", "yellow"), "fields": {},
            "scores": [9.0, 9.0, 9.0], "score_states": ["warmup"] * 3, "threshold": 5.0, "events": []}
    console = Console(file=io.StringIO(), width=80, height=24, color_system="truecolor")
    console.print(DashboardView(lambda: {}, lambda: view, "ecg"))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "warming up" in out and "\x1b[1;31m" not in out  # no bold red anywhere


@pytest.fixture(scope="module")
def audio_screen() -> tuple[dict, dict, str, dict]:
    from streamer.cli.audio import plan_audio

    from .conftest import SAMPLE_AUDIO

    return _run(plan_audio(str(SAMPLE_AUDIO / "bach.wav"), None, _options("music.onnx")))


@pytest.mark.parametrize("width, height", SIZES)
def test_audio_dashboard_fits_with_input_against_reconstruction(audio_screen: tuple, width: int, height: int) -> None:
    lines = _laid_out(audio_screen, width, height,
                      ("input, last 2 s", "reconstruction", "input level", "dBFS", "SNR dB", "last"))
    spectrogram = [ln for ln in lines if ln[2:-2].strip() and set(ln[2:-2].strip()) == {"▀"}]
    assert len(spectrogram) >= 4  # two spectrograms of at least two rows


@pytest.fixture(scope="module")
def image_screen() -> tuple[dict, dict, str, dict]:
    from streamer.cli.images import plan_images

    from .conftest import ROOT

    return _run(plan_images(str(ROOT / "samples" / "images"), _options("denoise.onnx"), add_noise=0.3))


@pytest.mark.parametrize("width, height", SIZES)
def test_image_dashboard_fits_and_shows_what_means_something(image_screen: tuple, width: int, height: int) -> None:
    lines = _laid_out(image_screen, width, height, ("images", "throughput", "images/s", "input", "denoised", "PSNR"))
    text = "\n".join(lines)
    assert "RTF" not in text and "signal" not in text  # a folder has no signal time


def test_image_throughput_on_the_dashboard_is_the_summarys(image_screen: tuple) -> None:
    from streamer.images.report import ImageReport

    _, view, _, summary = image_screen
    shown = float(re.search(r"([\d,.]+) images/s", view["fields"]["throughput"]).group(1).replace(",", ""))
    assert summary["images"] == 16 and "engine_images_per_s" not in summary
    assert shown == pytest.approx(summary["images_per_s"], abs=0.51)  # one figure, rounded for each
    assert ImageReport().throughput() is None  # nothing yet: no figure rather than a made-up one


def test_replay_progress_line_shows_the_fraction_outputs_and_time_left() -> None:
    from streamer.ui.progress import ReplayProgress

    now = [100.0]
    position = [0]
    bar = ReplayProgress("samples/ecg/106", 650_000, lambda: position[0], lambda: "1,022 beats", clock=lambda: now[0])
    position[0], now[0] = 162_500, 105.0  # a quarter in 5 s: 15 s left
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(bar)
    line = console.file.getvalue().rstrip("\n")  # type: ignore[attr-defined]
    assert "\n" not in line and cell_len(line) <= 80
    assert "25%" in line and "1,022 beats" in line and "ETA 0:15" in line and "samples/ecg/106" in line
