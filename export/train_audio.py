"""Train a music autoencoder on rendered music21 works (or your own audio), evaluate it on held-out pieces,
export full / encoder / decoder / int8 ONNX files and a model card.

    python -m export.train_audio --preset default --out samples/models/
    python -m export.train_audio --preset lecture --out /work/cache/models/ --epochs 20
    python -m export.train_audio --data ~/music/classical --out models/     # your own audio files

Pieces are split by piece (train / validation / test). Early stopping and every design choice look at the
validation pieces only; the test pieces give the reported figures. Baselines (DCT, PCA) are computed on
the same test frames by `export.audio_baselines`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from export import music_data, music_eval, recorded_music
from export.audio_baselines import baseline_figures, codec_figures
from export.audio_models import FRAME, Preset, build, get_preset, latent_meta
from export.heldout import print_result
from export.onnx_export import (
    QUANTISATION,
    epochs_meta,
    export_keras,
    onnx_runner,
    quantise_int8,
    read_metadata,
    set_metadata,
    sha256_of_arrays,
    write_card,
)
from export.progress import TrainingProgress
from export.quiet import import_tensorflow, import_tensorflow_as_parent_did
from streamer.core import modelmeta
from streamer.core.session import create_session

VERSION = "1.0.0"
N_PARITY = 64  # held-out test frames for each ONNX parity check
N_TRAIN_EVAL = 1500  # training frames scored to show over/underfitting (a fixed, evenly spaced subset)
N_CALIBRATION = 512  # training frames (evenly spaced) that fix the int8 activation scales
PATIENCE = 6  # epochs without validation improvement before stopping (topk presets)
PARTS = ("autoencoder", "encoder", "decoder")
DESCRIPTION = {
    "lecture": "the lecture's conv + dense autoencoder (Conv1D 32,32,64,64 -> Dense 1024 -> Dense 256*64 -> "
               "Conv1DTranspose 64,64,32,32 -> Conv1D 1 tanh), waveform MSE",
    "topk": "k-sparse autoencoder over a learned lapped filterbank: Conv1D analysis (kernel 2 hop, stride hop, "
            "MDCT-initialised) -> keep the k largest |coefficients| -> latent = k values + k positions -> "
            "scatter -> Conv1DTranspose synthesis. The latent is NOT 1024 free numbers: half are integer "
            "positions (< coefficients), stored as float32",
}


def part_file(name: str, part: str) -> str:
    return f"{name}.onnx" if part == "autoencoder" else f"{name}.{part}.onnx"


def normalisation_meta() -> dict[str, Any]:
    return {"kind": "peak", "scope": "piece", "target": 1.0,
            "note": "training divided every piece (or file) by its own peak |x| so it spans [-1, 1]; "
                    "a stream should be scaled alike (e.g. by its peak so far or a known peak) and "
                    "the reconstruction scaled back"}


def fit(preset: Preset, train: np.ndarray, validation: np.ndarray, epochs: int,
        max_seconds: float | None, progress: TrainingProgress | None = None) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Train the autoencoder; topk presets keep the weights of the best validation epoch."""
    import keras

    encoder, decoder, model = build(preset)
    callbacks: list[Any] = [TimeBudget(max_seconds)] if max_seconds else []
    stopping = None
    if preset.kind != "lecture" and len(validation):
        stopping = keras.callbacks.EarlyStopping(patience=PATIENCE, restore_best_weights=True)
        callbacks.append(stopping)
    start = time.perf_counter()
    with (progress or TrainingProgress.silent()).fit("fit", epochs, "val_loss" if len(validation) else None) as task:
        history = model.fit(train, train, epochs=epochs, batch_size=preset.batch_size, shuffle=True,
                            validation_data=(validation, validation) if len(validation) else None,
                            callbacks=[task.callback(), *callbacks], verbose=0)
    losses = {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()}
    run = len(losses["loss"])
    if run == epochs:
        why = "epoch budget"
    elif stopping is not None and stopping.stopped_epoch > 0:
        why = f"early stopping (val_loss of the validation pieces, patience {PATIENCE})"
    else:
        why = f"time budget ({max_seconds:g} s of training)"
    best = stopping.best_epoch + 1 if stopping is not None else None
    return encoder, decoder, model, {**epochs_meta(preset.epochs, epochs, run, why, weights_from_epoch=best),
                                     "seconds": round(time.perf_counter() - start, 1), "history": losses}


def _time_budget_class() -> type:
    import keras

    class _TimeBudget(keras.callbacks.Callback):
        """Stop after the first epoch that ends past `seconds` of training (wall time)."""

        def __init__(self, seconds: float) -> None:
            super().__init__()
            self.seconds = seconds

        def on_train_begin(self, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if time.perf_counter() - self.start > self.seconds:
                self.model.stop_training = True

    return _TimeBudget


def TimeBudget(seconds: float) -> Any:  # noqa: N802 (a class made lazily, so importing needs no TF)
    return _time_budget_class()(seconds)


def reconstruct(model: Any, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.asarray(model.predict(frames, batch_size=batch, verbose=0)) if len(frames) else frames


def evenly(frames: np.ndarray, n: int) -> np.ndarray:
    return frames if len(frames) <= n else frames[np.linspace(0, len(frames) - 1, n).astype(int)]


def training_data_meta(split: music_data.Split, train: np.ndarray, validation: np.ndarray,
                       test: np.ndarray) -> dict[str, Any]:
    seconds = {role: round(sum(len(p.audio) for p in getattr(split, role)) / music_data.SAMPLE_RATE_HZ, 1)
               for role in ("train", "validation", "test")}
    return {
        "name": "music21 corpus rendered with fluidsynth" if "music21" in split.rendering.get("source", "")
        else split.rendering.get("source"),
        "pieces": split.names(), "skipped": split.skipped,
        "split": f"by piece: seeded permutation (seed {split.seed}) of the loaded pieces; test pieces never "
                 "used for any choice, validation pieces for early stopping and design choices",
        "sha256": sha256_of_arrays(train, validation, test),
        "sha256_of": "float32 train, validation, test frames (n, 4096), in piece order",
        "n_items": int(len(train) + len(validation) + len(test)),
        "n_frames": {"train": int(len(train)), "validation": int(len(validation)), "test": int(len(test))},
        "seconds": seconds, "peaks": {p.name: round(p.peak, 6) for p in split.train + split.validation + split.test},
        "rendering": split.rendering,
    }


def with_more_data(split: music_data.Split, recordings: bool | Sequence[recorded_music.Track],
                   second_soundfont: bool, progress: TrainingProgress) -> music_data.Split:
    """`split` plus the training pieces rendered again with the second soundfont (training only) and the
    recorded tracks, each in the role its name gives it (`recordings`: True for every installed track, or
    the tracks to use)."""
    train, validation, test = list(split.train), list(split.validation), list(split.test)
    rendering = dict(split.rendering)
    if second_soundfont:
        font = music_data.SECOND_SOUNDFONT
        names = [p.name for p in split.train]
        with progress.phase(f"training works rendered again with {font.name}", total=len(names)) as advance:
            pieces, skipped = music_data.load_works(names, soundfont=font, on_piece=advance)
        train += [replace(p, name=f"{p.name} [{font.stem}]") for p in pieces]
        rendering["second_soundfont"] = {"soundfont": font.name, "licence": music_data.SECOND_SOUNDFONT_LICENCE,
                                         "used_for": "the training pieces only", "skipped": skipped}
    if recordings:
        tracks = recorded_music.installed_tracks() if recordings is True else list(recordings)
        with progress.phase("recorded music: decoding the installed tracks (cached)"):
            rec = recorded_music.load_recorded(tracks)
        train, validation, test = train + rec["train"], validation + rec["validation"], test + rec["test"]
        rendering["recordings"] = recorded_music.split_meta(rec, tracks)
    return music_data.Split(train, validation, test, split.skipped, split.seed, rendering)


def recordings_figures(model_path: Path, test: Sequence[music_data.Piece]) -> dict[str, Any]:
    """The exported model and the equal-budget baselines on the held-out recorded tracks, at hop 4096 and
    2048: mean per-frame SNR, log-spectral and mel distance (`export.music_eval`)."""
    recorded = {p.name: p.audio for p in test}
    codecs: dict[str, music_eval.Codec] = {"model": onnx_runner(model_path, 256), **music_eval.baselines()}
    figures = music_eval.evaluate_tracks(codecs, recorded)
    return {"on": "held-out recorded tracks (first 120 s each), the ONNX autoencoder through the runtime's "
                  "framer at each hop; definitions in export/music_eval.py", "codecs": list(codecs),
            "figures": figures, "smallest_snr_margin_db": music_eval.margins(figures, "model", list(codecs)[1:])}


def evaluate(model: Any, train: np.ndarray, validation: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    """Test figures at the top level, then validation, a training subset and the baselines on test."""
    metrics: dict[str, Any] = {**codec_figures(test, reconstruct(model, test)),
                               "on": "test pieces (held out), frames back to back at hop 4096"}
    if len(validation):
        metrics["validation"] = codec_figures(validation, reconstruct(model, validation))
    sub = evenly(train, N_TRAIN_EVAL)
    metrics["train"] = {**codec_figures(sub, reconstruct(model, sub)),
                        "note": f"{len(sub)} evenly spaced training frames"}
    metrics["baselines"] = baseline_figures(train, test)
    linear = [v["mean_frame_snr_db"] for k, v in metrics["baselines"].items() if k.startswith(("dct_first", "pca"))]
    metrics["margin_db_over_linear_baselines"] = round(metrics["mean_frame_snr_db"] - max(linear), 3)
    return metrics


def reference_figures(paths: Sequence[str | Path], sha256: str) -> dict[str, dict[str, Any]]:
    """Held-out figures of other models trained on the very same split (checked by the data hash)."""
    out = {}
    for path in paths:
        meta = read_metadata(path)
        if meta.get("training_data", {}).get("sha256") != sha256:
            raise ValueError(f"{path}: trained on other data than this model; its figures are not comparable")
        m = meta["metrics"]
        out[meta["name"]] = {k: m[k] for k in ("mean_frame_snr_db", "median_frame_snr_db", "snr_db",
                                               "edge_jump_ratio", "n_frames")}
        out[meta["name"]].update(params=meta.get("params"), train_mean_frame_snr_db=m["train"]["mean_frame_snr_db"],
                                 file=Path(path).name)
    return out


def with_references(meta: dict[str, Any], references: Sequence[str | Path]) -> dict[str, Any]:
    """`meta` with the reference models' held-out figures and our margin over the best of them."""
    metrics = dict(meta["metrics"])
    metrics["reference_models"] = reference_figures(references, meta["training_data"]["sha256"])
    others = [r["mean_frame_snr_db"] for r in metrics["reference_models"].values()]
    metrics["margin_db_over_reference_models"] = round(metrics["mean_frame_snr_db"] - max(others), 3)
    return {**meta, "metrics": metrics}


def attach_references(model_path: str | Path, references: Sequence[str | Path]) -> dict[str, Any]:
    """Re-quote reference models (e.g. a lecture model trained later on the same split) in an exported model:
    rewrites the metadata of the model, its companions and its card. Returns the new metadata."""
    model_path = Path(model_path)
    meta = read_metadata(model_path)
    for name in {model_path.name, *meta.get("companions", {}).values()}:
        path = model_path.parent / name
        set_metadata(path, with_references(read_metadata(path), references))
    new = with_references(meta, references)
    companions = {"autoencoder": model_path.name, **meta.get("companions", {})}
    new["sizes_bytes"] = {part: (model_path.parent / name).stat().st_size for part, name in companions.items()}
    write_audio_card(new, model_path.parent / f"{meta['name']}.card.md")
    return new


def attach_recordings(model_path: str | Path) -> dict[str, Any]:
    """Score an exported model on the held-out recorded tracks installed here and write the figures into its
    metadata (`metrics.recordings`) and its card. Returns the new metadata."""
    model_path = Path(model_path)
    tracks = [t for t in recorded_music.installed_tracks() if t.role == "test"]
    pieces = [p for p in (recorded_music.load_track(t) for t in tracks) if p is not None]
    if not pieces:
        raise ValueError("no held-out recorded track installed (export/recorded_music.py names the packages)")
    meta = read_metadata(model_path)
    meta["metrics"] = {**meta["metrics"], "recordings": recordings_figures(model_path, pieces)}
    set_metadata(model_path, meta)
    companions = {"autoencoder": model_path.name, **meta.get("companions", {})}
    meta["sizes_bytes"] = {part: (model_path.parent / name).stat().st_size for part, name in companions.items()}
    write_audio_card(meta, model_path.parent / f"{meta['name']}.card.md")
    return meta


def export_all(preset: Preset, models: dict[str, Any], out_dir: Path, meta: dict[str, Any],
               test: np.ndarray, isolate: bool) -> dict[str, dict[str, Any]]:
    """Write NAME.onnx, NAME.encoder.onnx, NAME.decoder.onnx (each parity-checked) and return their metadata."""
    codes = reconstruct(models["encoder"], test[:N_PARITY])
    written = {}
    for part in PARTS:
        inputs = codes if part == "decoder" else test[:N_PARITY]
        part_meta = {**meta, "part": part}
        path = out_dir / part_file(preset.name, part)
        if isolate:  # the lecture model peaks at ~11 GB while converting: one conversion per process
            written[part] = _export_in_child(preset, models["autoencoder"], part, path, part_meta, inputs)
        else:
            written[part] = export_keras(models[part], path, part_meta, inputs)
    return written


def _export_in_child(preset: Preset, model: Any, part: str, path: Path, meta: dict[str, Any],
                     inputs: np.ndarray) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        weights, data, result = Path(tmp) / "w.weights.h5", Path(tmp) / "x.npy", Path(tmp) / "meta.json"
        model.save_weights(str(weights))
        np.save(data, inputs)
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=_child_export, args=(preset, str(weights), part, str(path), meta, str(data),
                                                       str(result)))
        proc.start()
        proc.join()
        if proc.exitcode != 0 or not result.exists():
            raise RuntimeError(f"exporting {part} of {preset.name} failed in its child process "
                               f"(exit code {proc.exitcode})")
        return json.loads(result.read_text())


def _child_export(preset: Preset, weights: str, part: str, path: str, meta: dict[str, Any], data: str,
                  result: str) -> None:
    import_tensorflow_as_parent_did()
    encoder, decoder, model = build(preset)
    model.load_weights(weights)
    chosen = {"autoencoder": model, "encoder": encoder, "decoder": decoder}[part]
    full = export_keras(chosen, path, meta, np.load(data))
    Path(result).write_text(json.dumps(full))


def batch1_ms(path: Path, frame: np.ndarray, n: int = 200) -> float:
    """Median onnxruntime time of one frame at batch 1 on 1 thread (a rough figure: the machine may be busy)."""
    sess = create_session(path, threads=1)
    feed = {sess.get_inputs()[0].name: frame[None, :].astype(np.float32)}
    times = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        sess.run(None, feed)
        if i >= 10:  # warm-up calls excluded
            times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e3, 3)


def quantise(fp32_path: Path, int8_path: Path, test: np.ndarray, meta: dict[str, Any],
             calibration: np.ndarray) -> dict[str, Any]:
    """The project's int8 recipe (`quantise_int8`, calibrated on training frames), scored on the held-out test
    frames against the fp32 model."""
    quantise_int8(fp32_path, int8_path, calibration)
    fp32, int8 = onnx_runner(fp32_path, 256)(test), onnx_runner(int8_path, 256)(test)
    figures = {**codec_figures(test, int8), "on": "test pieces (held out)",
               "max_abs_diff_vs_fp32": round(float(np.max(np.abs(int8 - fp32))), 6),
               "snr_db_vs_fp32_output": round(codec_figures(fp32, int8)["snr_db"], 3),
               "fp32_mean_frame_snr_db": meta["metrics"]["mean_frame_snr_db"],
               "bytes": int8_path.stat().st_size, "fp32_bytes": fp32_path.stat().st_size,
               "ms_per_frame_batch1_1thread": {"int8": batch1_ms(int8_path, test[0]),
                                               "fp32": batch1_ms(fp32_path, test[0])}}
    int8_meta = {**meta, "name": meta["name"] + "-int8", "part": "autoencoder",
                 "quantisation": {"method": QUANTISATION, "calibration": f"{len(calibration)} training frames",
                                  **figures}}
    set_metadata(int8_path, int8_meta)
    return figures


def train_audio(preset: str | Preset = "default", out_dir: str | Path = "models", epochs: int | None = None,
                seed: int = 0, data_dir: str | Path | None = None, pieces: Sequence[str] | None = None,
                int8: bool | str = True, max_train_seconds: float | None = None,
                split_seed: int = music_data.SPLIT_SEED, n_test: int = music_data.N_TEST,
                n_validation: int = music_data.N_VALIDATION,
                keras_weights: str | Path | None = None,
                references: Sequence[str | Path] = (), progress: TrainingProgress | None = None,
                recordings: bool | Sequence[recorded_music.Track] = False,
                second_soundfont: bool = False) -> dict[str, Any]:
    """Train, evaluate on held-out pieces, export. `pieces` = music21 work names (default: the shipped list).

    `recordings` adds recorded music (`export.recorded_music`: True for every installed track) to every role
    of the split, by track, and scores the exported model on the held-out tracks (`metrics.recordings`);
    `second_soundfont` adds the training works rendered with a second General MIDI soundfont.

    `int8`: True (or "ship") writes NAME.int8.onnx and names it in `companions`; "evaluate" scores an int8
    variant (figures in `metrics.int8`) without shipping it; False skips it.
    Returns {"meta", "paths" (part -> Path, plus "int8" when shipped, "card"), "models" (Keras encoder/decoder/
    autoencoder), "split", "frames" {"train","validation","test"}, "seconds"}. `progress` shows the phases
    and epochs (default: nothing).
    """
    import keras

    progress = progress or TrainingProgress.silent()
    recipe = get_preset(preset) if isinstance(preset, str) else preset
    keras.utils.set_random_seed(seed)
    if data_dir is None:
        label = "music21 works: rendered with fluidsynth (cached after the first run)"
        n_pieces: int | None = len(pieces or music_data.DEFAULT_WORKS)
    else:
        label, n_pieces = f"reading audio files under {data_dir}", None
    with progress.phase(label, total=n_pieces) as advance:
        split = music_data.music_split(pieces, data_dir, split_seed, n_test, n_validation, on_piece=advance)
    if recordings or second_soundfont:
        split = with_more_data(split, recordings, second_soundfont, progress)
    train, validation, test = (music_data.frames(getattr(split, r)) for r in ("train", "validation", "test"))
    budget = max_train_seconds if max_train_seconds is not None else recipe.max_train_seconds
    n_epochs = epochs or recipe.epochs
    encoder, decoder, model, run = fit(recipe, train, validation, n_epochs, budget, progress)
    with progress.phase("test figures and baselines"):
        metrics = evaluate(model, train, validation, test)
    out_dir = Path(out_dir)
    companions = {part: part_file(recipe.name, part) for part in ("encoder", "decoder")}
    ship_int8 = int8 is True or int8 == "ship"
    if ship_int8:
        companions["int8"] = f"{recipe.name}.int8.onnx"
    meta: dict[str, Any] = {
        "task": modelmeta.AUDIO_TASK, "name": recipe.name, "version": VERSION,
        "sample_rate_hz": music_data.SAMPLE_RATE_HZ,
        "frame": {"length": FRAME, "hop": FRAME, "note": "trained on non-overlapping frames"},
        "normalisation": normalisation_meta(), "latent": latent_meta(recipe),
        "companions": {"autoencoder": part_file(recipe.name, "autoencoder"), **companions},
        "training_data": training_data_meta(split, train, validation, test),
        "metrics": metrics,
        "params": int(model.count_params()),
        "description": DESCRIPTION.get(recipe.kind, ""),
        "training": {"preset": recipe.name if isinstance(preset, Preset) else preset, "seed": seed,
                     "recipe": asdict(replace(recipe, epochs=n_epochs)), **run},
    }
    if references:
        meta = with_references(meta, references)
    models = {"autoencoder": model, "encoder": encoder, "decoder": decoder}
    if keras_weights:  # for benchmarks that time Keras against onnxruntime on the same weights
        model.save_weights(str(keras_weights))
    with progress.phase("ONNX export (autoencoder, encoder, decoder) and parity checks"):
        written = export_all(recipe, models, out_dir, meta, test, isolate=recipe.kind == "lecture")
    paths: dict[str, Path] = {part: out_dir / part_file(recipe.name, part) for part in PARTS}
    full_meta = written["autoencoder"]
    if ship_int8:
        paths["int8"] = out_dir / companions["int8"]
        with progress.phase("int8 quantisation, scored on the test frames"):
            full_meta["metrics"]["int8"] = quantise(paths["autoencoder"], paths["int8"], test, full_meta,
                                                   evenly(train, N_CALIBRATION))
    elif int8 == "evaluate":
        with tempfile.TemporaryDirectory() as tmp, progress.phase("int8 variant, scored on the test frames"):
            figures = quantise(paths["autoencoder"], Path(tmp) / "int8.onnx", test, full_meta,
                               evenly(train, N_CALIBRATION))
        full_meta["metrics"]["int8"] = {**figures, "shipped": False}
    recorded_test = [p for p in split.test if p.source != "music21"] if recordings else []
    if recorded_test:
        with progress.phase("held-out recordings: model and baselines at hop 4096 and 2048"):
            full_meta["metrics"]["recordings"] = recordings_figures(paths["autoencoder"], recorded_test)
    if int8 or recorded_test:
        set_metadata(paths["autoencoder"], full_meta)  # the fp32 model quotes its int8 variant too
    full_meta["sizes_bytes"] = {part: p.stat().st_size for part, p in paths.items()}
    paths["card"] = write_audio_card(full_meta, out_dir / f"{recipe.name}.card.md")
    return {"meta": full_meta, "parts": written, "paths": paths, "models": models, "split": split,
            "frames": {"train": train, "validation": validation, "test": test}, "seconds": run["seconds"]}


def card_table(meta: dict[str, Any]) -> list[str]:
    """Markdown: this model, its reference models and the baselines on the same held-out test frames."""
    m = meta["metrics"]
    rows = [(f"**{meta['name']}** (this model)", m)]
    if "int8" in m:
        shipped = "" if m["int8"].get("shipped", True) else ", evaluated, not shipped"
        rows.append((f"{meta['name']} with int8 weights ({m['int8']['bytes'] / 1e6:.2f} MB, "
                     f"{m['int8']['ms_per_frame_batch1_1thread']['int8']} ms/frame vs "
                     f"{m['int8']['ms_per_frame_batch1_1thread']['fp32']} fp32{shipped})", m["int8"]))
    rows += [(f"{name} ({figs.get('params')} params)", figs) for name, figs in m.get("reference_models", {}).items()]
    rows += [(name, figs) for name, figs in m["baselines"].items() if name != "original"]
    lines = ["| codec | mean frame SNR (dB) | median frame SNR (dB) | overall SNR (dB) | edge jump ratio |",
             "|---|---|---|---|---|"]
    lines += [f"| {label} | {f['mean_frame_snr_db']} | {f['median_frame_snr_db']} | {f['snr_db']} | "
              f"{f['edge_jump_ratio']} |" for label, f in rows]
    return lines


def write_audio_card(meta: dict[str, Any], path: Path) -> Path:
    """The generic card (export.onnx_export.write_card) with a readable summary first."""
    write_card(meta, path)
    m, data = meta["metrics"], meta["training_data"]
    n_pieces = {role: len(names) for role, names in data["pieces"].items()}
    summary = [
        "## Summary", "", meta.get("description", ""), "",
        f"- latent: `{json.dumps(meta['latent'])}`",
        f"- parameters: {meta['params']}; files: " + ", ".join(f"{k} {v / 1e6:.2f} MB"
                                                             for k, v in meta.get("sizes_bytes", {}).items()),
        f"- data: {n_pieces['train']} training, {n_pieces['validation']} validation and {n_pieces['test']} test "
        f"pieces (split by piece), {data['n_frames']} frames of 4096 samples at 8 kHz",
        f"- training: {meta['training']['epochs_run']} epochs, {meta['training']['seconds']} s on CPU; "
        f"training-frame mean SNR {m['train']['mean_frame_snr_db']} dB vs test {m['mean_frame_snr_db']} dB",
        "- normalisation: " + meta["normalisation"]["note"], "",
        "Held-out test pieces, frames back to back (hop 4096); every figure by `streamer.audio.quality`:", "",
        *card_table(meta), "",
        f"Original audio's own edge jump ratio on these frames: {m['baselines']['original']['edge_jump_ratio']}.",
        "", *recordings_section(m.get("recordings")),
    ]
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:6] + summary + lines[6:]) + "\n")
    return path


def recordings_section(rec: dict[str, Any] | None) -> list[str]:
    """Markdown: the held-out recordings table (SNR and both spectral measures, every codec, both hops)."""
    if not rec:
        return []
    margins = "; ".join(f"hop {hop}: " + ", ".join(f"{k} {v:+.2f} dB" for k, v in m.items())
                        for hop, m in rec["smallest_snr_margin_db"].items())
    return ["## Held-out real recordings", "",
            f"{rec['on']}. Each cell: mean per-frame SNR (dB, higher is better) / log-spectral distance (dB) / "
            "mel distance (dB) (lower is better), 1024 numbers per 4096 samples for every codec:", "",
            *music_eval.table(rec["figures"], rec["codecs"]), "",
            f"Smallest per-track SNR margin of this model over each baseline: {margins}.", ""]


def summary_lines(result: dict[str, Any]) -> list[str]:
    m = result["meta"]["metrics"]
    lines = [f"{result['paths']['autoencoder']} ({result['paths']['autoencoder'].stat().st_size / 1e6:.2f} MB, "
             f"{result['meta']['params']} params), trained {result['seconds']:.0f} s, "
             f"{result['meta']['training']['epochs_run']} epochs",
             f"test: mean frame SNR {m['mean_frame_snr_db']:.2f} dB, median {m['median_frame_snr_db']:.2f}, "
             f"overall {m['snr_db']:.2f}, edge ratio {m['edge_jump_ratio']:.2f}; "
             f"train {m['train']['mean_frame_snr_db']:.2f}"]
    lines += [f"  {name}: {f}" for name, f in m["baselines"].items()]
    if "int8" in m:
        lines.append(f"  int8: {m['int8']}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=["default", "lecture"])
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--data", type=Path, default=None, help="folder of your own audio files")
    parser.add_argument("--recordings", action="store_true",
                        help="add the installed recorded music (export/recorded_music.py), split by track")
    parser.add_argument("--second-soundfont", action="store_true",
                        help="add the training works rendered with TimGM6mb too")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None, help="training wall-time budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--int8", choices=["ship", "evaluate", "no"], default="ship",
                        help="write NAME.int8.onnx, only score an int8 variant, or skip it")
    parser.add_argument("--reference", type=Path, action="append", default=[],
                        help="ONNX of a model trained on the same split, quoted side by side (e.g. the lecture's)")
    parser.add_argument("--keras-weights", type=Path, default=None, help="also save the Keras weights (.weights.h5)")
    parser.add_argument("--attach-to", type=Path, default=None,
                        help="no training: re-quote the --reference models in this exported model and its card")
    parser.add_argument("--attach-recordings", type=Path, default=None,
                        help="no training: score this exported model on the held-out recorded tracks and write "
                             "the figures into its metadata and card")
    args = parser.parse_args(argv)
    if args.attach_recordings:
        rec = attach_recordings(args.attach_recordings)["metrics"]["recordings"]
        print(f"{args.attach_recordings}: smallest per-track SNR margins {rec['smallest_snr_margin_db']}")
        return
    import_tensorflow()  # quietly, as `streamer train` does
    if args.attach_to:
        margin = attach_references(args.attach_to, args.reference)["metrics"]["margin_db_over_reference_models"]
        print(f"{args.attach_to}: margin over reference models {margin} dB")
        return
    budget = args.max_minutes * 60 if args.max_minutes else None
    int8 = False if args.int8 == "no" else args.int8
    with TrainingProgress() as progress:
        result = train_audio(args.preset, args.out, args.epochs, args.seed, args.data, int8=int8,
                             max_train_seconds=budget, keras_weights=args.keras_weights,
                             references=args.reference, progress=progress, recordings=args.recordings,
                             second_soundfont=args.second_soundfont)
    print("\n".join(summary_lines(result)))
    print_result(progress.console, result["meta"], result["paths"]["autoencoder"], result["paths"]["card"],
                 companion_paths(result["paths"]))


def companion_paths(paths: dict[str, Path]) -> list[Path]:
    """The encoder, decoder and int8 files written beside the autoencoder."""
    return [p for part, p in paths.items() if part not in ("autoencoder", "card")]


if __name__ == "__main__":
    main()

