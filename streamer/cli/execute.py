"""Running a `RunPlan` for the command line: dashboard around the engine, Ctrl-C and SIGTERM, the summary
(printed, and written to `--summary`), the `--report` figures and page, the exit code."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from streamer.cli.entry import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated
from streamer.cli.options import RunOptions
from streamer.core.errors import StreamerError
from streamer.run.engine import Engine, RunPlan
from streamer.run.pacing import Pacer
from streamer.run.sinks import write_summary

EXIT_OK, EXIT_INPUT = 0, 2


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def use_dashboard(requested: bool) -> bool:
    """Live dashboard only on a terminal: headless runs (CI, pipes) print the final summary only."""
    return requested and sys.stderr.isatty()


def display(plan: RunPlan, engine: Engine, opts: RunOptions) -> AbstractContextManager[Any]:
    """What the terminal shows while the run goes: the dashboard; without it (`--no-dashboard`), a progress
    bar when the source's length is known; nothing when stderr is not a terminal (CI, pipes, services)."""
    if not sys.stderr.isatty():
        return nullcontext()
    if use_dashboard(opts.dashboard):
        from streamer.ui.dashboard import DashboardView  # rich's Live: only with a terminal
        from streamer.ui.live import LiveScreen

        return LiveScreen(DashboardView(engine.snapshot, plan.report.view, plan.title))
    total = plan.source.length()
    if total is None:
        return nullcontext()
    from streamer.ui.live import LiveScreen
    from streamer.ui.progress import ReplayProgress

    def outputs() -> str:
        return f"{engine.metrics.items_out:,} {plan.report.unit}"

    return LiveScreen(ReplayProgress(plan.source.name, total, lambda: engine.position, outputs), transient=True)


def execute(plan: RunPlan, opts: RunOptions) -> int:
    """Run the plan to its end; always write and print the summary; return the exit code."""
    engine = Engine(plan, Pacer(opts.speed))
    with sigterm_as_interrupt():
        try:
            with display(plan, engine, opts):
                engine.process()
        except KeyboardInterrupt as exc:  # arrived outside the engine's loop (dashboard teardown)
            engine.interruption = exc
    summary = engine.summary()
    summary_error = None
    if opts.summary is not None and opts.report is not None:  # kept even if drawing fails
        summary_error = save_summary(opts.summary, summary)
    with sigterm_as_interrupt():  # SIGTERM while drawing gives up the report, not the summary
        report_error = write_run_report(plan, opts, summary, engine)
    if opts.summary is not None:
        summary_error = save_summary(opts.summary, summary)
    from streamer.ui.summary import print_summary

    print_summary(summary)  # also when the summary file could not be written: the terminal still has it
    errors = [e for e in (engine.error, report_error, summary_error) if e is not None]
    if errors:
        print(f"streamer: error: {errors[0]}", file=sys.stderr)
        return EXIT_INPUT
    if engine.interruption is not None:
        return EXIT_TERMINATED if isinstance(engine.interruption, Terminated) else EXIT_INTERRUPTED
    return EXIT_OK


def save_summary(path: Path, summary: dict[str, Any]) -> StreamerError | None:
    try:
        write_summary(path, summary)
    except StreamerError as exc:
        return exc
    return None


def write_run_report(plan: RunPlan, opts: RunOptions, summary: dict[str, Any], engine: Engine
                     ) -> StreamerError | None:
    """`--report`: figures and page from what the run kept, also after an interruption or an input error;
    the summary says where they went (or why not). Ctrl-C while drawing gives up the report only."""
    if opts.report is None or plan.recorder is None:
        return None
    from streamer.ui.report_page import write_report

    try:
        index = write_report(opts.report, plan.title, dict(summary), plan.recorder.figures(summary))
    except StreamerError as exc:
        summary["report"] = f"not written: {exc}"
        return exc
    except KeyboardInterrupt as exc:
        summary["report"] = "not written: interrupted"
        engine.interruption = engine.interruption or exc
        return None
    summary["report"] = str(index)
    return None
