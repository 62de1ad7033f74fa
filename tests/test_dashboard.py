"""Dashboard rendering against a Console writing to a string (no terminal needed)."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from streamer.ui.dashboard import render, sparkline, trace_rows


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
    for needle in ("-30.0 dBFS", "budget 512 ms", "SNR dB", "last 8", "overflow: 2", "input", "denoised"):
        assert needle in text, needle
    art = pixel_art(np.eye(32))  # 32 px averaged down to 16 columns, two pixel rows per text row
    assert art.plain.split("\n") == ["▀" * 16] * 8
    assert pixel_art(np.ones((3, 5))).plain.count("\n") == 1  # odd heights get a padding row
