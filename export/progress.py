"""What a training run shows while it runs: data phases and fits, live on a terminal, plain lines elsewhere.

On a terminal a Rich `Progress` shows one task per data phase (a spinner, or a bar when the number of items
is known) and one bar per fit:

    ⠼ fit  ━━━━━━━━━━━━━━╺━━━━━━━━━━━  epoch 12/40  loss 0.11902  val_loss 0.11951  0:04:31 0:10:12

Without a terminal (CI, pipes, a log file) Rich would print the bars only once, when they stop, so plain
lines are printed instead: a phase's start and end, and one line per epoch, at most one every
`PLAIN_EVERY_S` (the first and last epoch always), plus a step line inside an epoch longer than `HEARTBEAT_S`:

    fit: epoch 1/3  loss 0.05423  val_loss 0.04877  (4.1 s, ETA 8 s)

Keras's own output stays off (`verbose=0`); `EpochTask.callback()` is the one Keras callback every training
path passes to `model.fit`. Time comes from an injected clock, so the plain-line pacing is testable.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY_S = 10.0  # s: at most one plain epoch line this often (first and last epoch always printed)
HEARTBEAT_S = 30.0  # s inside one epoch before a plain step line ("epoch 3/50: step 120/196 ...")
PHASE_EVERY_S = 10.0  # s between plain item lines of a long data phase

Clock = Callable[[], float]


class TrainingProgress:
    """The display of one training command: `phase()` for data preparation, `fit()` for each Keras fit.

    Use it as a context manager around the run (it starts and stops the live display); `note()` prints a
    line above it. `live=None` chooses by the console: live on a terminal, plain lines otherwise.
    """

    def __init__(self, console: Console | None = None, live: bool | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.console = console or Console()
        self.live = self.console.is_terminal if live is None else live
        self.clock = clock
        # markup off: labels and details carry record and file names, shown as they are
        self.bars = Progress(SpinnerColumn(), TextColumn("{task.description}", style="bold", markup=False),
                             BarColumn(), TextColumn("{task.fields[detail]}", markup=False), TimeElapsedColumn(),
                             TimeRemainingColumn(), console=self.console, disable=not self.live)

    @classmethod
    def silent(cls) -> TrainingProgress:
        """Shows nothing: the default of the training functions when called from Python."""
        return cls(Console(quiet=True), live=False)

    def __enter__(self) -> TrainingProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def note(self, text: str) -> None:
        """One line of text (above the live display on a terminal)."""
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    @contextlib.contextmanager
    def phase(self, label: str, total: int | None = None) -> Iterator[Callable[[str], None]]:
        """A data preparation step; yields `advance(item_name)` to call once per item when `total` is given.

        Ends with one line: `label: done in 12.3 s` (none when the phase raised: the error says what happened).
        """
        phase = _Phase(self, label, total)
        try:
            yield phase.advance
        except BaseException:
            self.bars.remove_task(phase.task)
            raise
        phase.close()

    def fit(self, label: str, epochs: int, figure: str | None = "val_loss") -> EpochTask:
        """A bar for one fit of at most `epochs` epochs; `figure` is the logged validation figure to show."""
        return EpochTask(self, label, epochs, figure)


class _Phase:
    """One data phase: a Rich task (spinner or bar) or its plain lines."""

    def __init__(self, owner: TrainingProgress, label: str, total: int | None) -> None:
        self.owner, self.label, self.total = owner, label, total
        self.done = 0
        self.start = self.last_line = owner.clock()
        self.task = owner.bars.add_task(label, total=total, detail=self._detail(""))
        if not owner.live:
            owner.note(f"{label} ...")

    def _detail(self, item: str) -> str:
        count = f"{self.done}/{self.total}" if self.total is not None else ""
        return f"{count} {item}".strip()

    def advance(self, item: str = "") -> None:
        self.done += 1
        self.owner.bars.update(self.task, advance=1, detail=self._detail(item))
        now = self.owner.clock()
        if not self.owner.live and now - self.last_line >= PHASE_EVERY_S and self.done != self.total:
            self.last_line = now
            self.owner.note(f"{self.label}: {self._detail(item)}")

    def close(self) -> None:
        self.owner.bars.remove_task(self.task)
        count = f"{self.done} " if self.total is not None else ""
        self.owner.note(f"{self.label}: {count}done in {self.owner.clock() - self.start:.1f} s")


class EpochTask:
    """The progress of one fit (epoch i/N, loss, the validation figure, ETA), fed by `callback()`.

    A context manager: its bar is replaced at the end by one line saying how many epochs ran. Works with
    one `model.fit` over all epochs and with one `model.fit(initial_epoch=i, epochs=i + 1)` per epoch.
    """

    def __init__(self, owner: TrainingProgress, label: str, epochs: int, figure: str | None) -> None:
        self.owner, self.label, self.epochs, self.figure = owner, label, max(int(epochs), 1), figure
        self.steps = 1  # per epoch, known once Keras starts
        self.epochs_run = 0
        self.stopped_early = False
        self.last: dict[str, float] = {}
        self.start = self.last_line = self.epoch_start = owner.clock()
        self.task: TaskID | None = None

    def __enter__(self) -> EpochTask:
        self.start = self.last_line = self.owner.clock()
        self.task = self.owner.bars.add_task(self.label, total=self.epochs, detail=self._detail(0))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.owner.bars.remove_task(self.task)  # the summary line below replaces the bar
        if exc[0] is None:
            self.owner.note(self.summary())

    def callback(self) -> Any:
        """The Keras callback that feeds this task (Keras is imported only here)."""
        return _callback_class()(self)

    # --- what the callback reports --------------------------------------------------------------------
    def train_begin(self, steps: int | None) -> None:
        self.steps = max(int(steps or 1), 1)
        if self.task is not None:
            self.owner.bars.update(self.task, total=self.epochs * self.steps)

    def epoch_begin(self, epoch: int) -> None:
        self.epoch_start = self.owner.clock()
        if self.task is not None:
            self.owner.bars.update(self.task, completed=epoch * self.steps, detail=self._detail(epoch + 1))

    def step(self, epoch: int, step: int, loss: float | None) -> None:
        """Batch `step` (from 1) of epoch `epoch` (from 0) is done; `loss`: the epoch's running mean."""
        if loss is not None:
            self.last["loss"] = loss
        if self.task is not None:
            self.owner.bars.update(self.task, completed=epoch * self.steps + step, detail=self._detail(epoch + 1))
        now = self.owner.clock()
        if not self.owner.live and now - max(self.last_line, self.epoch_start) >= HEARTBEAT_S:
            self.last_line = now
            running = f"  loss {loss:.5g}" if loss is not None else ""
            self.owner.note(f"{self.label}: epoch {epoch + 1}/{self.epochs} step {step}/{self.steps}{running}")

    def epoch_end(self, epoch: int, logs: Mapping[str, Any]) -> None:
        self.epochs_run = epoch + 1
        self.last = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float))}
        if self.task is not None:
            self.owner.bars.update(self.task, completed=self.epochs_run * self.steps,
                                   detail=self._detail(self.epochs_run))
        now = self.owner.clock()
        edge = self.epochs_run in (1, self.epochs)
        if not self.owner.live and (edge or now - self.last_line >= PLAIN_EVERY_S):
            self.last_line = now
            self.owner.note(f"{self.label}: {self._detail(self.epochs_run)}  ({self._timing(now)})")

    def train_end(self, stop_requested: bool) -> None:
        """Keras ended a fit; `stop_requested`: a callback (early stopping, a time budget) ended it."""
        if stop_requested and self.epochs_run < self.epochs:
            self.stopped_early = True
            if not self.owner.live:
                self.owner.note(f"{self.label}: {self._detail(self.epochs_run)}  (last epoch)")

    # --- text ---------------------------------------------------------------------------------------------
    def _detail(self, epoch: int) -> str:
        parts = [f"epoch {epoch}/{self.epochs}"]
        if "loss" in self.last:
            parts.append(f"loss {self.last['loss']:.5g}")
        if self.figure and self.figure in self.last:
            parts.append(f"{self.figure} {self.last[self.figure]:.5g}")
        return "  ".join(parts)

    def _timing(self, now: float) -> str:
        elapsed = now - self.start
        left = elapsed / self.epochs_run * (self.epochs - self.epochs_run)
        return f"{elapsed:.1f} s, ETA {left:.0f} s" if self.epochs_run < self.epochs else f"{elapsed:.1f} s"

    def summary(self) -> str:
        """`fit: 40/40 epochs in 61.2 s; last epoch loss 0.1181  val_loss 0.1188` (and why it stopped early)."""
        ran = f"{self.label}: {self.epochs_run}/{self.epochs} epochs"
        if self.stopped_early:
            ran += " (stopped early)"
        text = f"{ran} in {self.owner.clock() - self.start:.1f} s"
        figures = "  ".join(f"{k} {v:.5g}" for k, v in self.last.items() if k in ("loss", self.figure))
        return f"{text}; last epoch {figures}" if figures else text


@lru_cache(maxsize=1)
def _callback_class() -> type:
    """The Keras callback class, made on first use so that importing this module needs no TensorFlow."""
    import keras

    class EpochProgress(keras.callbacks.Callback):  # type: ignore[misc]
        """Forwards Keras's fit events to an `EpochTask`."""

        async_safe = True  # the batch hook only updates counters (thread-safe): Keras need not wait for it

        def __init__(self, task: EpochTask) -> None:
            super().__init__()
            self.task = task
            self.epoch = 0

        def on_train_begin(self, logs: Any = None) -> None:
            self.task.train_begin(self.params.get("steps"))

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch
            self.task.epoch_begin(epoch)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            self.task.step(self.epoch, batch + 1, float(loss) if loss is not None else None)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.task.epoch_end(epoch, logs or {})

        def on_train_end(self, logs: Any = None) -> None:
            self.task.train_end(bool(self.model.stop_training))

    return EpochProgress
