"""The training display (export/progress.py) and the end-of-training table (export/heldout.py), without
TensorFlow: the Keras callback only forwards to `EpochTask`, which is fed here by hand with an injected clock,
against a `Console(file=StringIO())` as rich tests its own widgets."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from export import heldout
from export.progress import HEARTBEAT_S, PLAIN_EVERY_S, TrainingProgress
from streamer.core import modelmeta
from streamer.core.model import load_model

MODELS = Path(__file__).resolve().parent.parent / "samples" / "models"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def plain(clock: Clock) -> tuple[TrainingProgress, StringIO]:
    out = StringIO()
    return TrainingProgress(Console(file=out, width=120), clock=clock), out


def run_epochs(progress: TrainingProgress, clock: Clock, epochs: int, seconds_per_epoch: float,
               ran: int | None = None, stop_requested: bool = False) -> None:
    with progress.fit("fit", epochs) as task:
        task.train_begin(steps=4)
        for epoch in range(ran or epochs):
            task.epoch_begin(epoch)
            for step in range(1, 5):
                clock.now += seconds_per_epoch / 4
                task.step(epoch, step, 0.5 / (epoch + 1))
            task.epoch_end(epoch, {"loss": 0.5 / (epoch + 1), "val_loss": 0.6 / (epoch + 1)})
        task.train_end(stop_requested)


def test_a_console_that_is_no_terminal_gets_plain_lines() -> None:
    progress, _ = plain(Clock())
    assert not progress.live
    assert TrainingProgress(Console(file=StringIO(), force_terminal=True)).live


def test_plain_epoch_lines_are_paced_but_first_and_last_always_shown() -> None:
    clock = Clock()
    progress, out = plain(clock)
    run_epochs(progress, clock, epochs=100, seconds_per_epoch=1.0)  # 100 s: a line every PLAIN_EVERY_S
    lines = [line for line in out.getvalue().splitlines() if re.match(r"fit: epoch \d+/100", line)]
    epochs = [int(re.match(r"fit: epoch (\d+)", line)[1]) for line in lines]  # type: ignore[index]
    assert epochs[0] == 1 and epochs[-1] == 100
    assert epochs == sorted(epochs) and len(epochs) == pytest.approx(100 / PLAIN_EVERY_S + 2, abs=1)
    assert "fit: epoch 100/100  loss 0.005  val_loss 0.006  (100.0 s)" in lines[-1]
    assert lines[1].startswith("fit: epoch 11/100") and lines[1].endswith("(11.0 s, ETA 89 s)")  # 10 s after 1
    assert out.getvalue().splitlines()[-1] == "fit: 100/100 epochs in 100.0 s; last epoch loss 0.005  val_loss 0.006"


def test_a_long_epoch_gets_step_lines() -> None:
    clock = Clock()
    progress, out = plain(clock)
    run_epochs(progress, clock, epochs=2, seconds_per_epoch=4 * HEARTBEAT_S)
    steps = [line for line in out.getvalue().splitlines() if " step " in line]
    assert steps and steps[0].startswith("fit: epoch 1/2 step 1/4  loss 0.5")
    assert len(steps) == 2 * 4  # every step of these very long epochs


def test_early_stop_is_said() -> None:
    clock = Clock()
    progress, out = plain(clock)
    run_epochs(progress, clock, epochs=300, seconds_per_epoch=0.1, ran=57, stop_requested=True)
    text = out.getvalue()
    assert "fit: epoch 57/300" in text  # the last epoch, even though not due by the pacing
    assert text.splitlines()[-1].startswith("fit: 57/300 epochs (stopped early) in 5.7 s")


def test_phases_say_what_runs_and_how_long_it_took() -> None:
    clock = Clock()
    progress, out = plain(clock)
    with progress.phase("reading records", total=3) as advance:
        for name in ("100", "105", "106"):
            clock.now += 7.0
            advance(name)
    assert out.getvalue().splitlines() == ["reading records ...", "reading records: 2/3 105",
                                           "reading records: 3 done in 21.0 s"]


def test_live_display_prints_no_epoch_lines(tmp_path: Path) -> None:
    """On a terminal the bar shows the epochs; only the closing line of each fit and phase stays."""
    clock = Clock()
    out = StringIO()
    with TrainingProgress(Console(file=out, force_terminal=True, width=120), clock=clock) as progress:
        run_epochs(progress, clock, epochs=50, seconds_per_epoch=1.0)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "fit: 50/50 epochs in 50.0 s" in text
    assert "fit: epoch 1/50" not in text


def test_silent_progress_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    progress = TrainingProgress.silent()
    with progress:
        run_epochs(progress, clock, epochs=3, seconds_per_epoch=1.0)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("name", ["ecg5000.onnx", "denoise.onnx", "music.onnx", "ecg.onnx"])
def test_result_table_quotes_the_model_card(name: str) -> None:
    """Each table cell is the model's own metadata value (rounded to 4 decimals), for every task."""
    meta = load_model(MODELS / name).meta
    out = StringIO()
    heldout.print_result(Console(file=out, width=140), meta, MODELS / name, MODELS / name.replace(".onnx", ".card.md"))
    text = out.getvalue()
    m = meta["metrics"]
    if name == "ecg5000.onnx":
        expected = [m["auc"], m["f1"], meta["threshold"]["value"]]
    elif name == "denoise.onnx":  # the any-size model: a table per evaluated size
        expected = [m[size][f"sigma_{s}"]["model"][k] for size in ("28x28", "32x32")
                    for s in ("0.1", "0.3", "0.5", "0.7") for k in ("psnr_db", "ssim")]
    elif name == "music.onnx":
        expected = [m["mean_frame_snr_db"], m["int8"]["mean_frame_snr_db"]]
    else:
        expected = [m["leave_records_out"]["auc_mean"], m["leave_records_out"]["auc_min"]]
    for value in expected:
        assert f" {value:.4f} " in text
    assert meta["task"] in (modelmeta.ECG_TASK, modelmeta.IMAGE_TASK, modelmeta.AUDIO_TASK)
    assert text.rstrip().splitlines()[-1].startswith(f"wrote {MODELS / name} (")


def test_a_failed_phase_is_not_reported_done() -> None:
    progress, out = plain(Clock())
    with pytest.raises(ValueError), progress.phase("reading records", total=2) as advance:
        advance("100")
        raise ValueError("record 105 is at 250 Hz, the others at 360 Hz")
    assert out.getvalue().splitlines() == ["reading records ..."]
    assert not progress.bars.tasks
