"""Music autoencoder: a short real training run exported and parity-checked, the split, the baselines, and the
shipped model's metadata and quality on the shipped held-out clip (samples/audio/)."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("music21")
pytest.importorskip("soxr")


from export import music_data  # noqa: E402
from export.audio_baselines import Pca, dct_lowpass, dct_topk  # noqa: E402
from export.audio_models import get_preset  # noqa: E402
from export.train_audio import train_audio  # noqa: E402
from streamer.audio import quality  # noqa: E402
from streamer.core import metaschema, modelmeta  # noqa: E402
from streamer.core.session import create_session  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "samples" / "models" / "music.onnx"
CLIP_DIR = ROOT / "samples" / "audio"
# three short Bach chorales: enough for a train / validation / test split by piece
SHORT_WORKS = ("bach/bwv1.6", "bach/bwv10.7", "bach/bwv101.7")


def session(path: Path) -> tuple[Any, dict[str, Any]]:
    sess = create_session(path)
    return sess, modelmeta.decode(sess.get_modelmeta().custom_metadata_map)


def run(sess: Any, x: np.ndarray) -> np.ndarray:
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def clip_frames() -> np.ndarray:
    import soundfile as sf

    wav = next(CLIP_DIR.glob("*.wav"))
    audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    x, _ = music_data.peak_normalise(music_data.to_model_rate(audio, rate))
    return music_data.frames([music_data.Piece(wav.name, x, 1.0, str(wav))])


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import shutil

    if shutil.which("fluidsynth") is None or not music_data.SOUNDFONT.is_file():
        pytest.skip("rendering needs Debian's fluidsynth and fluid-soundfont-gm")
    from rich.console import Console

    from export.heldout import print_result
    from export.progress import TrainingProgress
    from export.train_audio import companion_paths

    printed = StringIO()  # no terminal: the plain lines a CI log gets
    progress = TrainingProgress(Console(file=printed, width=120))
    with progress:
        result = train_audio("default", tmp_path_factory.mktemp("music"), epochs=2, pieces=SHORT_WORKS,
                             n_test=1, n_validation=1, progress=progress)
    paths = result["paths"]
    print_result(progress.console, result["meta"], paths["autoencoder"], paths["card"], companion_paths(paths))
    return {**result, "printed": printed.getvalue()}


def test_short_run_shows_phases_epochs_and_the_card_figures(short_run: dict[str, Any]) -> None:
    """What `streamer train audio` prints without a terminal: the rendering phase, epoch lines with both
    losses, and the held-out figures, each equal to the written model's metadata."""
    printed = short_run["printed"]
    _, meta = session(short_run["paths"]["autoencoder"])
    assert re.search(r"^music21 works: rendered with fluidsynth [^\n]*: 3 done in \d+\.\d s$", printed, re.M)
    epochs = re.findall(r"^fit: epoch (\d)/2  loss (\S+)  val_loss (\S+)", printed, re.M)
    assert epochs[0][0] == "1" and epochs[-1][0] == "2"
    assert float(epochs[-1][1]) == pytest.approx(meta["training"]["history"]["loss"][-1], abs=5e-6)
    table = printed[printed.index("Held-out figures written into the model card"):]
    m = meta["metrics"]
    for label, value in (("mean frame SNR dB", m["mean_frame_snr_db"]), ("overall SNR dB", m["snr_db"]),
                         ("margin over linear baselines dB", m["margin_db_over_linear_baselines"]),
                         ("int8: mean frame SNR dB", m["int8"]["mean_frame_snr_db"])):
        cell = re.search(rf"^│ {re.escape(label)} +│ +(-?\d+\.\d{{4}}) │$", table, re.M)
        assert cell is not None, label
        assert float(cell[1]) == pytest.approx(value, abs=5e-5), label
    assert "music.encoder.onnx" in table and "music.int8.onnx" in table


def test_short_run_says_which_epochs_ran(short_run: dict[str, Any]) -> None:
    _, meta = session(short_run["paths"]["autoencoder"])
    training = meta["training"]
    assert training["epochs_budget"] == training["epochs_run"] == training["recipe"]["epochs"] == 2
    assert training["preset_epochs"] == get_preset("default").epochs
    assert training["stopped_by"] == "epoch budget" and training["weights_from_epoch"] in (1, 2)


def test_short_run_writes_every_file(short_run: dict[str, Any]) -> None:
    for key in ("autoencoder", "encoder", "decoder", "int8", "card"):
        assert short_run["paths"][key].is_file() and short_run["paths"][key].stat().st_size > 0
    assert short_run["paths"]["card"].read_text().startswith("# Model card: music")


def test_split_is_by_piece(short_run: dict[str, Any]) -> None:
    names = short_run["split"].names()
    assert sorted(sum(names.values(), [])) == sorted(SHORT_WORKS)
    assert all(len(v) == 1 for v in names.values())
    frames = short_run["frames"]
    assert len(frames["train"]) + len(frames["validation"]) + len(frames["test"]) == sum(
        len(p.audio) // 4096 for p in short_run["split"].train + short_run["split"].validation
        + short_run["split"].test)


@pytest.mark.parametrize("part", ["autoencoder", "encoder", "decoder"])
def test_onnx_parts_match_keras(short_run: dict[str, Any], part: str) -> None:
    held_out = short_run["frames"]["test"][-32:]  # test frames, not the exporter's own parity inputs
    keras_models = short_run["models"]
    x = np.asarray(keras_models["encoder"](held_out)) if part == "decoder" else held_out
    sess, meta = session(short_run["paths"][part])
    assert meta["part"] == part
    assert np.max(np.abs(run(sess, x) - np.asarray(keras_models[part](x)))) <= 1e-5


def test_encoder_then_decoder_is_the_autoencoder(short_run: dict[str, Any]) -> None:
    x = short_run["frames"]["test"][-32:]
    enc, _ = session(short_run["paths"]["encoder"])
    dec, _ = session(short_run["paths"]["decoder"])
    full, _ = session(short_run["paths"]["autoencoder"])
    codes = run(enc, x)
    assert codes.shape == (len(x), 1024)
    assert np.max(np.abs(run(dec, codes) - run(full, x))) <= 1e-5


def test_metadata_complete(short_run: dict[str, Any]) -> None:
    _, meta = session(short_run["paths"]["autoencoder"])
    assert metaschema.problems(meta) == [] and meta["task"] == modelmeta.AUDIO_TASK
    assert meta["sample_rate_hz"] == 8000 and meta["frame"]["length"] == 4096
    assert meta["inputs"][0]["shape"] == [None, 4096] and meta["outputs"][0]["shape"] == [None, 4096]
    assert meta["normalisation"]["kind"] == "peak" and meta["normalisation"]["scope"] == "piece"
    assert meta["latent"]["kind"] == "topk" and meta["latent"]["size"] == 1024
    assert meta["parity"]["max_abs_diff"] <= 1e-5
    out_dir = short_run["paths"]["autoencoder"].parent
    assert all((out_dir / f).is_file() for f in meta["companions"].values())
    assert {"dct_first_1024", "pca_1024", "dct_top_512_with_indices"} <= set(meta["metrics"]["baselines"])
    _, int8 = session(short_run["paths"]["int8"])
    assert np.isfinite(int8["quantisation"]["mean_frame_snr_db"])


def test_topk_codes_are_values_then_positions(short_run: dict[str, Any]) -> None:
    sess, meta = session(short_run["paths"]["encoder"])
    codes = run(sess, short_run["frames"]["test"][-8:])
    k, n = meta["latent"]["k"], meta["latent"]["coefficients"]
    positions = codes[:, k:]
    assert np.all(positions == np.round(positions)) and positions.min() >= 0 and positions.max() < n
    assert np.all(np.diff(positions, axis=1) > 0)  # ascending, no duplicates


def test_split_pieces_deterministic_and_disjoint() -> None:
    pieces = [music_data.Piece(f"p{i}", np.zeros(4096, np.float32), 1.0, "x") for i in range(20)]
    a = music_data.split_pieces(pieces, seed=3, n_test=4, n_validation=3)
    b = music_data.split_pieces(pieces, seed=3, n_test=4, n_validation=3)
    c = music_data.split_pieces(pieces, seed=4, n_test=4, n_validation=3)
    names = [{p.name for p in part} for part in a]
    assert [len(s) for s in names] == [13, 3, 4]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert [[p.name for p in part] for part in a] == [[p.name for p in part] for part in b]
    assert [[p.name for p in part] for part in a] != [[p.name for p in part] for part in c]


def test_baselines_are_correct() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4096)).astype(np.float32)
    assert np.max(np.abs(dct_lowpass(x, 4096) - x)) < 1e-5  # keeping every coefficient is exact
    assert np.max(np.abs(dct_topk(x, 4096) - x)) < 1e-5
    from scipy.fft import dct

    kept = dct(dct_topk(x, 512).astype(np.float64), norm="ortho", axis=-1)
    assert np.all(np.sum(np.abs(kept) > 1e-4, axis=1) == 512)
    assert quality.snr_db(x, dct_topk(x, 512)) > quality.snr_db(x, dct_lowpass(x, 512))


def test_pca_is_fitted_on_training_frames_only() -> None:
    rng = np.random.default_rng(1)
    train, test = rng.standard_normal((40, 4096)), rng.standard_normal((10, 4096))
    pca = Pca.fit(train, 40)
    assert np.allclose(pca.components @ pca.components.T, np.eye(40), atol=1e-8)
    assert np.max(np.abs(pca(train) - train)) < 1e-4  # 40 components span the 40 centred training frames
    assert quality.snr_db(test, pca(test)) < 1.0  # ... and nearly nothing of frames it never saw


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown audio preset"):
        get_preset("huge")


@pytest.fixture(scope="module")
def shipped() -> tuple[Any, dict[str, Any]]:
    if not SHIPPED.is_file():
        pytest.skip("samples/models/music.onnx not shipped")
    return session(SHIPPED)


def test_shipped_metadata(shipped: tuple[Any, dict[str, Any]]) -> None:
    _, meta = shipped
    assert metaschema.problems(meta) == [] and meta["task"] == modelmeta.AUDIO_TASK
    assert meta["part"] == "autoencoder" and meta["latent"]["size"] == 1024
    assert SHIPPED.stat().st_size < 5e6
    for name in (meta["companions"]["encoder"], meta["companions"]["decoder"]):
        assert (SHIPPED.parent / name).is_file()
    test_pieces = set(meta["training_data"]["pieces"]["test"])
    assert not test_pieces & set(meta["training_data"]["pieces"]["train"])
    m = meta["metrics"]
    linear = [m["baselines"]["dct_first_1024"], m["baselines"]["pca_1024"]]
    references = [b["mean_frame_snr_db"] for b in linear]
    references += [r["mean_frame_snr_db"] for r in m.get("reference_models", {}).values()]
    assert m["mean_frame_snr_db"] >= max(references) + 3.0


def test_shipped_model_on_held_out_clip(shipped: tuple[Any, dict[str, Any]]) -> None:
    """The shipped clip is a test piece: the model beats the DCT low-pass codec there by >= 3 dB."""
    sess, meta = shipped
    clip_names = (CLIP_DIR / "README.md").read_text()
    assert any(name in clip_names for name in meta["training_data"]["pieces"]["test"])
    x = clip_frames()
    model_snr = quality.mean_frame_snr_db(x, run(sess, x))
    assert model_snr >= quality.mean_frame_snr_db(x, dct_lowpass(x)) + 3.0
    enc, _ = session(SHIPPED.parent / meta["companions"]["encoder"])
    dec, _ = session(SHIPPED.parent / meta["companions"]["decoder"])
    assert np.max(np.abs(run(dec, run(enc, x)) - run(sess, x))) <= 1e-5


def test_own_audio_folder_is_resampled_normalised_and_split_by_file(tmp_path: Path) -> None:
    """--data DIR: three real clips written at other rates and channel counts (cut from the shipped clip)."""
    import soundfile as sf
    import soxr

    audio, rate = sf.read(str(CLIP_DIR / "bach.wav"), dtype="float32")
    thirds = np.array_split(audio, 3)
    sf.write(str(tmp_path / "a.wav"), np.stack([thirds[0], thirds[0]], 1) * 0.3, rate)  # stereo, quiet
    sf.write(str(tmp_path / "b.flac"), soxr.resample(thirds[1], rate, 44100) * 0.5, 44100)
    (tmp_path / "sub").mkdir()
    sf.write(str(tmp_path / "sub" / "c.wav"), soxr.resample(thirds[2], rate, 16000), 16000)
    (tmp_path / "notes.txt").write_text("not audio")
    pieces = music_data.load_folder(tmp_path)
    assert [p.name for p in pieces] == ["a.wav", "b.flac", "sub/c.wav"]
    for piece, third in zip(pieces, thirds):
        assert np.max(np.abs(piece.audio)) == pytest.approx(1.0)
        assert abs(len(piece.audio) - len(third)) <= 2  # back at 8 kHz
    assert pieces[0].peak == pytest.approx(0.3 * np.max(np.abs(thirds[0])), rel=1e-3)
    split = music_data.music_split(data_dir=tmp_path)
    names = split.names()
    assert sorted(sum(names.values(), [])) == ["a.wav", "b.flac", "sub/c.wav"]
    assert all(len(v) == 1 for v in names.values())
