"""`streamer inspect`: what a model file carries.

By default one page: task, I/O shapes, framing, normalisation, threshold, training data, the key held-out
figures (4 significant digits), size. `--full`: every key, nested values indented, floats to 6 significant
digits. `--json`: the raw metadata. Lines are wrapped here, to the console's width, with a hanging indent.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from streamer.core import metaschema, modelmeta
from streamer.core.errors import ModelError
from streamer.core.modelmeta import AUDIO_TASK, ECG_TASK, IMAGE_TASK
from streamer.core.session import create_session
from streamer.core.text import printable

ORDER = ("name", "task", "part", "version", "aestream_format", "created", "inputs", "outputs", "sample_rate_hz",
         "frame", "latent", "companions", "image", "noise", "beat", "features", "normalisation", "score",
         "threshold", "training_data", "metrics", "parity")
LABEL_WIDTH = 14  # the compact view's label column
COMPACT_DIGITS = 4  # significant digits of the compact view's figures
FULL_DIGITS = 6  # ... and of --full
INDENT = "  "  # per nesting level in --full
HINT = "more: --full (every key), --json (the raw metadata)"
SHORT = 24  # characters: a dict whose values are all this short is written as one paragraph in --full
GLUE = "\x00"  # joins what wrapping must not split (`n_pvc 519`); metadata strings never hold it (clean())

Rows = list[tuple[str, str]]


def describe_model(path: Path, as_json: bool = False, console: Console | None = None, full: bool = False) -> int:
    """Print what the model carries; a model the engine would refuse is shown too, with its problems listed
    first and exit status 1 (so `inspect` is how one finds out what is wrong with a model)."""
    meta, found = read_metadata(path)
    console = console or Console(highlight=False)
    if as_json:
        console.print_json(json.dumps(meta))
        return 1 if found else 0
    title = f"{clean(str(path))} ({path.stat().st_size / 1024:,.1f} KiB)"
    lines = [f"this model cannot be used: {clean(problem)}" for problem in found]
    try:
        page = full_lines(meta, console.width) if full or found else compact_lines(meta, console.width)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):  # a value of the wrong kind
        page = full_lines(meta, console.width)
    for line in [title, *lines, *page]:
        console.print(Text(line), soft_wrap=True)  # Text: no markup; already wrapped to the width
    return 1 if found else 0


def read_metadata(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The model's metadata and every problem the engine would refuse it for (metadata too large to read, or
    no aestream metadata at all, is an error: there is nothing to show)."""
    if not path.is_file():
        raise ModelError(path, "no such model file")
    session = create_session(path)
    props = session.get_modelmeta().custom_metadata_map
    metaschema.check_size(path, props)
    meta = modelmeta.decode(props)
    if "task" not in meta:
        raise ModelError(path, "ONNX model without aestream metadata (not made by `streamer train`)")
    return meta, metaschema.problems(meta)


# --- numbers and strings ---------------------------------------------------------------------------------------

def num(x: Any, digits: int = COMPACT_DIGITS) -> str:
    """A number with `digits` significant digits, integers whole (1048576, not 1.049e+06)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return clean(str(x))
    if isinstance(x, int) or (x == x and abs(x) < 1e15 and float(x).is_integer()):
        return str(int(x))
    return f"{x:.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"


def clean(text: str) -> str:
    """Strings from a model file never reach the terminal with control characters (escapes, bells)."""
    return printable(text)


def _wrap(text: str, width: int, indent: str) -> list[str]:
    """Wrapped at spaces, never at a GLUE (a key and its value stay on one line), glue then shown as a space."""
    lines = textwrap.wrap(text, width=max(width, 20), subsequent_indent=indent, break_on_hyphens=False) or [text]
    return [line.replace(GLUE, " ") for line in lines]


# --- the compact page ------------------------------------------------------------------------------------------

def compact_lines(meta: Mapping[str, Any], width: int) -> list[str]:
    rows = compact_rows(meta)
    lines: list[str] = []
    for label, value in rows:
        lines += _wrap(f"{label:<{LABEL_WIDTH}}{value}", width, " " * LABEL_WIDTH)
    return [*lines, HINT]


def compact_rows(meta: Mapping[str, Any]) -> Rows:
    task = str(meta.get("task", "?"))
    part = meta.get("part")
    rows: Rows = [
        ("model", f"{clean(str(meta.get('name', '?')))} {clean(str(meta.get('version', '')))}, created "
                  f"{clean(str(meta.get('created', '?')))[:10]}"),
        ("task", clean(task) + (f" ({clean(str(part))})" if part else "")),
        ("input", _io(meta.get("inputs"))),
        ("output", _io(meta.get("outputs"))),
    ]
    rows += [(label, value) for label, value in TASK_ROWS.get(task, _no_rows)(meta) if value]
    metrics = meta.get("metrics")
    if isinstance(metrics, dict) and "measured_on" in metrics:  # a variant from export-edge: its own figures
        figures = ", ".join(f"{clean(str(k))} {num(v) if isinstance(v, (int, float)) else clean(str(v))}"
                            for k, v in metrics.items() if k != "measured_on" and not isinstance(v, (dict, list)))
        rows.append(("measured", f"{figures}; on {clean(str(metrics['measured_on']))}"))
    if "training_data" in meta:
        rows.append(("training data", _training_data(meta["training_data"])))
    if "parity" in meta:
        rows.append(("parity", _parity(meta["parity"])))
    return rows


def _no_rows(meta: Mapping[str, Any]) -> Rows:
    return []


def _dims(shape: list[Any]) -> list[str]:
    """The first free dimension is the batch; later free ones are any size (height, width of an image model)."""
    return ["batch" if d is None and i == 0 else "any" if d is None else str(d) for i, d in enumerate(shape)]


def _io(tensors: Any) -> str:
    if not isinstance(tensors, list):
        return "-"
    return "; ".join(f"{clean(str(t.get('name')))} ({', '.join(_dims(t['shape']))})"
                     for t in tensors if isinstance(t, dict) and isinstance(t.get("shape"), list)) or "-"


def _pairs(d: Mapping[str, Any], keys: tuple[str, ...] | None = None, digits: int = COMPACT_DIGITS) -> str:
    """`a 1, b 0.9949` of a dict's scalar entries (those of `keys`, in that order, when given)."""
    items = [(k, d[k]) for k in (keys or tuple(d)) if k in d and not isinstance(d[k], (dict, list))]
    return ", ".join(f"{clean(str(k))} {num(v, digits)}" for k, v in items)


def _training_data(data: Any) -> str:
    if not isinstance(data, dict):
        return clean(str(data))
    parts = [clean(str(data.get("name", "?")))]
    if isinstance(data.get("n_items"), int):
        parts.append(f"{data['n_items']:,} items")
    if isinstance(data.get("records"), list):
        parts.append(f"records {', '.join(clean(str(r)) for r in data['records'])}")
    if isinstance(data.get("sha256"), str):
        parts.append(f"sha256 {clean(data['sha256'][:12])}...")
    return ", ".join(parts)


def _parity(parity: Any) -> str:
    if not isinstance(parity, dict) or "max_abs_diff" not in parity:
        return clean(str(parity))
    return f"max |ONNX - Keras| {num(parity['max_abs_diff'], 2)} on {parity.get('n_inputs', '?')} held-out inputs"


def _threshold(t: Any) -> str:
    if not isinstance(t, dict):
        return clean(str(t))
    how = f"{clean(str(t.get('method', '?')))} {num(t.get('param', ''))}"
    on = f", from {t['n']:,} scores" if isinstance(t.get("n"), int) else ""
    return f"{num(t.get('value'))} ({how}{on})"


def _steps(norm: Any) -> str:
    """ECG: the steps' kinds in order; audio: `peak per piece, to 1`; images: `scale: / 255`."""
    if not isinstance(norm, dict):
        return clean(str(norm))
    if isinstance(norm.get("steps"), list):
        return " -> ".join(clean(str(s.get("kind"))) for s in norm["steps"] if isinstance(s, dict))
    if norm.get("kind") == "peak":
        return f"peak per {clean(str(norm.get('scope', '?')))}, to {num(norm.get('target', 1))}"
    if norm.get("kind") == "scale" and "divide_by" in norm:
        return f"scale: / {num(norm['divide_by'])}"
    return _pairs(norm)


def _ecg_rows(meta: Mapping[str, Any]) -> Rows:
    beat = meta.get("beat", {})
    window = beat.get("window", {})
    if window.get("kind") == "fixed":
        framing = f"{num(window.get('pre_s'))} s before R to {num(window.get('post_s'))} s after"
    else:
        framing = "one R-to-R cycle"
    if "highpass_hz" in beat:
        framing += f", high-pass {num(beat['highpass_hz'])} Hz"
    score = meta.get("score", {})
    scoring = clean(str(score.get("kind", "?")))
    weights = {k: v for k, v in score.get("weights", {}).items() if k != "beat"}
    if weights:
        scoring += ", RR weights " + _pairs(weights)
    if "adaptive" in score:
        scoring += f", adaptive ({clean(str(score['adaptive'].get('kind')))})"
    if "warmup_beats" in score:
        scoring += f", warm-up {score['warmup_beats']} beats"
    rows: Rows = [
        ("rate", f"{num(meta.get('sample_rate_hz'))} Hz"),
        ("beat", f"{beat.get('length', '?')} samples, {framing}"),
        ("features", ", ".join(f"{clean(str(f.get('name')))} {f.get('size')}" for f in meta.get("features", []))),
        ("normalisation", _steps(meta.get("normalisation"))),
        ("score", scoring),
        ("threshold", _threshold(meta.get("threshold"))),
    ]
    metrics = meta.get("metrics", {})
    lro = metrics.get("leave_records_out")
    if isinstance(lro, dict):
        n = len(lro.get("per_record", {}))
        rows.append(("held-out", f"leave-records-out PVC AUC mean {num(lro.get('auc_mean'))}, "
                                 f"min {num(lro.get('auc_min'))} ({n} records)"))
    elif metrics:
        rows.append(("held-out", _pairs(metrics, ("auc", "f1", "precision", "recall", "accuracy", "n_test"))))
    return rows


def _audio_rows(meta: Mapping[str, Any]) -> Rows:
    frame = meta.get("frame", {})
    latent = meta.get("latent", {})
    if latent.get("kind") == "topk":
        coding = (f"top-k: {latent.get('k')} values + {latent.get('k')} positions among "
                  f"{latent.get('coefficients')} coefficients ({latent.get('size')} numbers)")
    else:
        coding = f"{clean(str(latent.get('kind', 'dense')))}, {latent.get('size', '?')} numbers"
    rows: Rows = [
        ("framing", f"{num(meta.get('sample_rate_hz'))} Hz, frames of {frame.get('length', '?')} samples"),
        ("latent", coding),
        ("normalisation", _steps(meta.get("normalisation"))),
    ]
    companions = {k: v for k, v in meta.get("companions", {}).items() if k != meta.get("part", "autoencoder")}
    if companions:
        rows.append(("companions", ", ".join(f"{clean(str(k))} {clean(str(v))}" for k, v in companions.items())))
    if "params" in meta:
        rows.append(("parameters", f"{int(meta['params']):,}"))
    metrics = meta.get("metrics", {})
    if metrics:
        figures = ", ".join(f"{label} {num(metrics[key])}{unit}" for key, label, unit in (
            ("snr_db", "SNR", " dB"), ("median_frame_snr_db", "median frame SNR", " dB"),
            ("edge_jump_ratio", "edge-jump ratio", "")) if key in metrics)
        frames = f" ({metrics['n_frames']} test frames)" if "n_frames" in metrics else ""
        rows.append(("held-out", figures + frames))
    return rows


def _image_rows(meta: Mapping[str, Any]) -> Rows:
    image, noise = meta.get("image", {}), meta.get("noise", {})
    if image.get("size") == "any":
        size = f"any size (sides padded to multiples of {num(image.get('multiple_of'))}, tiles above " \
               f"{num(image.get('max_side'))} px)"
    else:
        size = f"{image.get('height', '?')}x{image.get('width', '?')}"
    if noise.get("blind"):
        sigma = f"blind: trained over sigma {' to '.join(num(g) for g in noise.get('sigma_range', []))}"
    else:
        sigma = f"sigma {num(noise.get('sigma'))} (trained for)"
    rows: Rows = [
        ("image", f"{size}, {image.get('channels', '?')} channel(s)"),
        ("noise", f"{clean(str(noise.get('kind', '?')))}, {sigma}"),
        ("normalisation", _steps(meta.get("normalisation"))),
    ]
    if isinstance(image.get("evaluated_sizes"), list):
        rows.append(("evaluated", f"sizes {', '.join(f'{num(h)}x{num(w)}' for h, w in image['evaluated_sizes'])}; "
                                  f"sigma {', '.join(num(g) for g in image.get('evaluated_sigmas', []))}"))
    if "quantisation" in meta:
        q = meta["quantisation"]
        rows.append(("quantisation", f"int8, max |diff| from the float model {num(q.get('max_abs_diff_vs_float'))}"
                     if isinstance(q, dict) else clean(str(q))))
    metrics = meta.get("metrics", {})
    sized = {size: metrics[size] for size in metrics.get("sizes", []) if isinstance(metrics.get(size), dict)}
    for size, by_sigma in (sized or {"": metrics}).items():
        for key, value in by_sigma.items():
            if key.startswith("sigma_") and isinstance(value, dict) and isinstance(value.get("model"), dict):
                model, noisy = value["model"], value.get("noisy_input", {})
                rows.append((f"{size}, {key[6:]}" if size else f"held-out {key[6:]}",  # the label column: 13
                             f"PSNR {num(model.get('psnr_db'))} dB (noisy input {num(noisy.get('psnr_db'))}), "
                             f"SSIM {num(model.get('ssim'))}"))
    return rows


TASK_ROWS: dict[str, Callable[[Mapping[str, Any]], Rows]] = {
    ECG_TASK: _ecg_rows, AUDIO_TASK: _audio_rows, IMAGE_TASK: _image_rows}


# --- every key ---------------------------------------------------------------------------------------------------

def full_lines(meta: Mapping[str, Any], width: int) -> list[str]:
    keys = [k for k in ORDER if k in meta] + sorted(k for k in meta if k not in ORDER)
    return [line for key in keys for line in _tree(key, meta[key], 0, width)]


def _scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list)) or (
        isinstance(value, list) and len(value) <= 8 and all(not isinstance(v, (dict, list)) for v in value))


def _inline(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if value is None:
        return "null"
    return num(value, FULL_DIGITS)


def _tree(key: str, value: Any, depth: int, width: int) -> Iterator[str]:
    """`key: value`; a dict of scalars as one paragraph (`key: a 1, b 2, ...`), other dicts and lists of dicts
    one entry per line, one level deeper."""
    indent = INDENT * depth
    head = f"{indent}{clean(str(key))}:"
    if isinstance(value, dict) and value:
        if all(_scalar(v) and len(_inline(v)) <= SHORT for v in value.values()):
            pairs = ", ".join(f"{clean(str(k))}{GLUE}{_inline(v)}" for k, v in value.items())
            yield from _wrap(f"{head} {pairs}", width, indent + INDENT * 2)
            return
        yield head
        for k, v in value.items():
            yield from _tree(str(k), v, depth + 1, width)
    elif isinstance(value, list) and not all(not isinstance(v, (dict, list)) for v in value):
        yield head
        for i, item in enumerate(value):
            yield from _tree(f"[{i}]", item, depth + 1, width)
    elif isinstance(value, list):
        yield from _wrap(f"{head} " + (", ".join(_inline(v) for v in value) or "[]"), width, indent + INDENT * 2)
    else:
        yield from _wrap(f"{head} {_inline(value)}", width, indent + INDENT * 2)
