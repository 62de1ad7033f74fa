"""Options every stream command shares, declared once: the model and how it runs, pacing, outputs, display."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from streamer.cli.ranges import Bounded, speed_option
from streamer.run.pacing import parse_speed

F = TypeVar("F", bound=Callable[..., Any])

MAX_THREADS = 256  # onnxruntime intra-op threads: more than any machine's cores only costs start-up


@dataclass
class RunOptions:
    model: Path
    speed: float  # replay speed factor (inf: as fast as possible)
    events: Path | None
    summary: Path | None
    dashboard: bool
    threads: int
    provider: str
    report: Path | None = None  # folder for the figures and the HTML page (--report)


def run_options(model_file: str, threads: int = 1, speed: str = "1",
                speed_help: str = "replay speed") -> Callable[[F], F]:
    """Click options of a stream command; the command receives them as one `RunOptions` named `run`."""

    def decorate(func: F) -> F:
        options = [
            click.option("--model", "model_path", type=click.Path(path_type=Path),
                         help=f"ONNX model (default: samples/models/{model_file})."),
            click.option("--speed", default=speed, show_default=True, callback=speed_option,
                         help=f"The {speed_help}: 1 = real time, N = N times, max = as fast as possible."),
            click.option("--events", type=click.Path(path_type=Path), help="Write one JSON line per event here."),
            click.option("--summary", type=click.Path(path_type=Path), help="Write the final summary JSON here."),
            click.option("--report", type=click.Path(path_type=Path), metavar="DIR",
                         help="Write the run's figures (PNG) and one HTML page with them to this folder "
                              "(needs the 'report' extra)."),
            click.option("--no-dashboard", is_flag=True, help="Print only the final summary."),
            click.option("--threads", type=Bounded(1, MAX_THREADS, integer=True), default=threads, show_default=True,
                         help="onnxruntime intra-op threads."),
            click.option("--provider", default="cpu", show_default=True,
                         help="onnxruntime execution provider: cpu, cuda, openvino, coreml, ... (if installed)."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def collect(model_file: str, kwargs: dict[str, Any], inputs: Iterable[str | Path | None] = (),
            outputs: Mapping[str, Path | None] | None = None) -> RunOptions:
    """Pop the shared options out of a command's keyword arguments. `inputs` (and the model) are never written
    over by `--events`, `--summary` or the command's own `outputs`."""
    from streamer.cli.common import default_model
    from streamer.cli.outputs import refuse_overwriting_inputs

    speed = parse_speed(kwargs.pop("speed"))  # checked by the option's callback (`speed_option`)
    model = kwargs.pop("model_path") or default_model(model_file)
    refuse_overwriting_inputs({"--events": kwargs.get("events"), "--summary": kwargs.get("summary"),
                               **(outputs or {})}, [*inputs, model])
    report = kwargs.pop("report")
    if report is not None:  # before the run: a missing extra or an unwritable folder is not found at its end
        from streamer.ui.report_page import need_report_extra, prepare

        need_report_extra()
        prepare(report)
    return RunOptions(model, speed, kwargs.pop("events"), kwargs.pop("summary"), not kwargs.pop("no_dashboard"),
                      kwargs.pop("threads"), kwargs.pop("provider"), report)
