"""MIT-BIH PVC model: a real short training run (`streamer train ecg --records`, as a user runs it) exported
to ONNX, its held-out figures, and the runtime pieces it relies on (template framing and the streaming
adaptive scorer) giving the same results streamed and offline."""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from export import train_records as tr
from export.mitdb import labelled_beats, load_record
from export.progress import TrainingProgress
from streamer.cli.main import main
from streamer.core.model import Model
from streamer.ecg.beats import BeatSpec, FramerBank, extract_beats
from streamer.ecg.scoring import StreamingScorer, beat_scores
from tests.conftest import mitdb_record, write_slice

SLICE_S = 300.0  # s of each record used for the training run: keeps the test well under a minute
BLOCK = 357  # samples per streamed block: not a divisor of anything, so blocks cut beats at random places


@pytest.fixture(scope="module")
def short_records(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Five minutes of a record with frequent PVCs (106) and one with a clean rhythm (100)."""
    out = tmp_path_factory.mktemp("mitdb")
    return [write_slice(mitdb_record(name), out, f"s{name}", 0.0, SLICE_S) for name in ("106", "100")]


EPOCHS, SEED = 3, 0


@pytest.fixture(scope="module")
def cli_run(short_records: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(what the command printed without a terminal, the model it wrote)."""
    if importlib.util.find_spec("tensorflow") is None:  # not imported here: the command imports it quietly
        pytest.skip("training needs TensorFlow")
    out = tmp_path_factory.mktemp("model")
    args = ["train", "ecg", "--records", str(short_records[0]), "--records", str(short_records[1]),
            "--preset", "fast", "--epochs", str(EPOCHS), "--seed", str(SEED), "--out", str(out)]
    result = CliRunner().invoke(main, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return result.output, out / "ecg.onnx"


@pytest.mark.slow
def test_cli_loro_shows_each_fold_and_its_table(short_records: list[Path], tmp_path: Path) -> None:
    """--loro: one bar (here: lines) per fold, each record's LORO line, and the leave-records-out table whose
    mean and min AUC are the card's."""
    args = ["train", "ecg", "--records", str(short_records[0]), "--records", str(short_records[1]), "--loro",
            "--preset", "fast", "--epochs", "1", "--out", str(tmp_path)]
    result = CliRunner().invoke(main, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    output = result.output
    assert "fold 1/2 (without s106): 1/1 epochs" in output and "fold 2/2 (without s100): 1/1 epochs" in output
    assert re.search(r"^LORO s106: auc \d\.\d{4}, precision", output, re.M)
    loro = Model(tmp_path / "ecg.onnx").meta["metrics"]["leave_records_out"]
    table = output[output.index("leave-records-out: each record scored by a model fitted without it"):]
    for label, key in (("mean AUC", "auc_mean"), ("min AUC", "auc_min")):
        cell = re.search(rf"^│ {label} +│ +│ +│ +(\d\.\d{{4}}) │", table, re.M)
        assert cell is not None, label
        assert float(cell[1]) == pytest.approx(loro[key], abs=5e-5)


def default_spec() -> BeatSpec:
    return tr.beat_spec(tr.PRESETS["default"])


def test_streaming_framer_with_template_equals_offline(short_records: list[Path]) -> None:
    rec = load_record(short_records[0])
    peaks = rec.ann_samples
    spec = default_spec()
    offline = extract_beats(rec.signal, rec.fs, peaks, spec)
    framer = FramerBank(spec, rec.fs)
    framer.clear(0)
    streamed = []
    for start in range(0, len(rec.signal), BLOCK):
        end = start + BLOCK
        # peaks are given to the framer only once the detector could know them (after their sample)
        new = peaks[(peaks >= start) & (peaks < end)]
        streamed.append(framer.feed([0], rec.signal[None, start:end], {0: new.tolist()} if len(new) else {}))
    streamed.append(framer.flush([0]))
    features = np.concatenate([f.features for f in streamed])
    assert len(features) == len(offline) > 100
    np.testing.assert_array_equal(features, np.stack([b.features for b in offline]))


def test_template_keeps_premature_beats_out() -> None:
    """A premature beat is scored against the template of the regular beats but does not enter it."""
    spec = BeatSpec({"length": 20, "window": {"kind": "fixed", "pre_s": 0.1, "post_s": 0.1}},
                    [{"name": "beat", "size": 20}],
                    {"steps": [{"kind": "template", "beats": 4, "min_rr_prev_ratio": 0.9, "min_scale": 0.05}]})
    framer = FramerBank(spec, 100.0)
    framer.clear(0)
    normal = np.sin(np.linspace(0, np.pi, 20))
    odd = -2.0 * normal
    out = framer._apply_template(np.zeros(1, np.int64), normal[None], np.array([1.0]))
    assert np.allclose(out, 0.0)  # the first beat is its own template
    dev = framer._apply_template(np.zeros(1, np.int64), odd[None], np.array([0.6]))  # premature
    assert np.abs(dev).mean() > 1.0
    assert framer.template is not None and int(framer.template.rows["count"][0]) == 1  # not learned
    assert np.allclose(framer._apply_template(np.zeros(1, np.int64), normal[None], np.array([1.0])), 0.0)


def test_streaming_scorer_batches_equal_one_pass() -> None:
    rng = np.random.default_rng(1)
    names, length = ["beat", "rr_prematurity", "rr_pause"], 140
    x = rng.normal(size=(300, length + 2))
    recon = x + rng.normal(scale=rng.uniform(0.01, 1.0, size=(300, 1)), size=x.shape)
    score = copy.deepcopy(tr.PRESETS["default"]["score"])
    score["adaptive"]["reference"] = 0.5
    whole = StreamingScorer(names, length, score).score(x, recon)
    scorer = StreamingScorer(names, length, score)
    cuts = [0, 1, 7, 8, 50, 123, 300]
    parts = np.concatenate([scorer.score(x[a:b], recon[a:b]) for a, b in zip(cuts, cuts[1:])])
    np.testing.assert_array_equal(parts, whole)
    raw = beat_scores(x, recon, names, length, score)
    assert not np.allclose(whole, raw)  # the adaptive part does something ...
    plain = {k: v for k, v in score.items() if k != "adaptive"}
    np.testing.assert_array_equal(StreamingScorer(names, length, plain).score(x, recon), raw)  # ... or nothing
    scorer.reset()
    np.testing.assert_array_equal(scorer.score(x, recon), whole)


def test_cli_shows_epochs_and_ends_with_the_held_out_figures(cli_run: tuple[str, Path]) -> None:
    """Without a terminal: epoch lines (loss, and the held-out beats' loss; the first and last epoch always),
    the data phase, then the held-out table whose every number is the written model's own metadata."""
    output, path = cli_run
    meta = Model(path).meta
    epochs = re.findall(r"^fit: epoch (\d)/3  loss (\d\.\d+)  val_loss (\d\.\d+)", output, re.M)
    assert epochs[0][0] == "1" and epochs[-1][0] == "3"
    assert "reading records, R peaks from the detector: 2 done in" in output
    held = meta["metrics"]["held_out"]
    table = output[output.index("Held-out figures written into the model card"):]
    for name, figures in [*held["per_record"].items(), ("all", held["pooled"])]:
        row = re.search(rf"^│ {name} +│([^\n]+)│$", table, re.M)
        assert row is not None, name
        cells = [c.strip() for c in row[1].split("│")]
        assert [int(cells[0]), int(cells[1])] == [figures["n_beats"], figures["n_pvc"]]
        for cell, key in zip(cells[2:], ("auc", "precision", "recall", "false_alarms_per_min")):
            if figures[key] is None:  # e.g. the AUC of a held-out part without PVCs
                assert cell == "n/a", (name, key)
            else:
                assert float(cell) == pytest.approx(figures[key], abs=5e-5), (name, key)
    assert held["pooled"]["auc"] > 0.8  # the PVCs of the held-out minute of 106, ranked by a 3-epoch model
    assert table.rstrip().splitlines()[-1].startswith(f"wrote {path} (")


def test_held_out_beats_were_not_fitted(cli_run: tuple[str, Path], short_records: list[Path]) -> None:
    """The fit saw the normal beats of each record's first 80 % only; the card scores the last 20 %."""
    meta = Model(cli_run[1]).meta
    cfg = tr.PRESETS["fast"]
    beats = tr.load_beats(short_records, cfg, tr.peak_source(cfg))
    fitted = tr.fitted_parts(beats)
    assert meta["training_data"]["n_beats"] == sum(int(tr.training_rows(lb).sum()) for lb in fitted)
    for lb, part in zip(beats, fitted):
        assert 0.75 * len(lb.pvc) < len(part.pvc) < 0.85 * len(lb.pvc)
        assert meta["metrics"]["held_out"]["per_record"][lb.record]["n_beats"] == len(lb.pvc) - len(part.pvc)
    training = meta["training"]
    assert training["epochs_budget"] == training["epochs_run"] == meta["train"]["epochs"] == EPOCHS
    assert "preset_epochs" not in training  # the preset's own epochs ran (3 in `fast`)


def test_short_training_run_exports_a_faithful_model(cli_run: tuple[str, Path], short_records: list[Path]) -> None:
    path = cli_run[1]
    assert path.is_file() and path.with_suffix(".card.md").is_file()
    model = Model(path)
    meta = model.meta
    assert meta["parity"]["max_abs_diff"] <= 1e-5
    assert meta["training_data"]["records"] == ["s106", "s100"]
    assert meta["threshold"]["value"] > 0 and meta["score"]["adaptive"]["reference"] > 0
    spec = BeatSpec.from_meta(model.meta)
    model.check_input_size(spec.n_inputs)

    # Same data, same seed: the Keras model is refitted deterministically, then compared with ONNX.
    epochs, seed = EPOCHS, SEED
    cfg = tr.PRESETS["fast"]
    beats = tr.load_beats(short_records, cfg, tr.peak_source(cfg))
    keras_model, score, threshold, _ = tr.fit_on(tr.fitted_parts(beats), cfg, epochs, seed,
                                                 TrainingProgress.silent(), validation=tr.held_out_normals(beats))
    assert threshold["value"] == pytest.approx(meta["threshold"]["value"], rel=1e-6)
    test = labelled_beats(load_record(short_records[0]), spec, tr.peak_source(cfg))
    recon_ort = model.run(test.inputs)
    recon_keras = tr.reconstruct(keras_model, test.inputs)
    assert np.max(np.abs(recon_ort - recon_keras)) <= 1e-5

    ort_scores = StreamingScorer(spec.feature_names, spec.length, model.meta["score"]).score(test.inputs, recon_ort)
    keras_scores = tr.record_scores(keras_model, test, spec, score)
    np.testing.assert_allclose(ort_scores, keras_scores, rtol=1e-4, atol=1e-6)
    # PVCs are what the score is for: even this tiny model ranks them above normal beats
    assert test.pvc.sum() > 10
    assert ort_scores[test.pvc].mean() > 2 * ort_scores[~test.pvc].mean()


def test_figures_judge_only_beats_of_good_signal_quality() -> None:
    """Record 105 (heavy real noise), framed as for training, with the engine's quality verdicts: a beat of
    poor quality raises no alarm, and a PVC among them counts as missed, as the engine would report it."""
    lb = labelled_beats(load_record(mitdb_record("105")), tr.beat_spec(tr.PRESETS["default"]))
    poor = ~lb.judged
    assert 0.02 < poor.mean() < 0.2  # its noisy stretches, not the whole record
    perfect = np.where(lb.pvc, 2.0, 0.0)  # a score that ranks perfectly: only the gate can cost recall
    fig = tr.record_figures(perfect, lb, threshold=1.0)
    assert fig["fp"] == 0 and fig["pvc_unjudged_noise"] == int((lb.pvc & poor).sum()) > 0
    assert fig["recall"] == pytest.approx(1 - fig["pvc_unjudged_noise"] / lb.pvc.sum())
    everything = tr.record_figures(np.full(len(lb.pvc), 2.0), lb, threshold=1.0)  # every beat above it
    assert everything["fp"] == int((~lb.pvc & lb.judged).sum()) and everything["n_unjudged_noise"] == poor.sum()
