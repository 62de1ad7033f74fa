"""The held-out figures a model card carries, as the short table a training command ends with.

Every number is read from the metadata written into the model (the same dict `export_keras` /
`set_metadata` stored), never recomputed, so the table and the card cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from streamer.core import modelmeta

Rows = list[list[Any]]
SIGMA_PREFIX = "sigma_"  # image metrics are keyed sigma_0.3, sigma_0.5, ...


def fmt(value: Any) -> str:
    """A figure as the table prints it: floats to 4 decimals, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def tables(meta: dict[str, Any]) -> list[tuple[str, list[str], Rows]]:
    """(title, header, rows) of each table for this model's task."""
    task, metrics = meta.get("task"), meta.get("metrics", {})
    if task == modelmeta.ECG_TASK and ("held_out" in metrics or "leave_records_out" in metrics):
        return _records_tables(metrics)
    if task == modelmeta.ECG_TASK and "auc" in metrics:
        return [(f"test split ({metrics.get('n_test')} beats, {metrics.get('positive', 'anomalies')} positive)",
                 ["figure", "value"],
                 [[k, metrics.get(k)] for k in ("auc", "f1", "precision", "recall", "accuracy")]
                 + [["threshold", meta["threshold"]["value"]]]
                 + ([["reconstruction spread", metrics["reconstruction_spread"]]]
                    if "reconstruction_spread" in metrics else []))]
    if task == modelmeta.IMAGE_TASK:
        sized = {size: metrics[size] for size in metrics.get("sizes", [])}  # any-size models: a table per size
        return [(f"test images ({metrics.get('n_test')}{', ' + size if size else ''}), mean per image",
                 ["sigma", "PSNR dB", "SSIM", "noisy PSNR dB", "noisy SSIM"], _sigma_rows(by_sigma))
                for size, by_sigma in (sized or {"": metrics}).items()]
    if task == modelmeta.AUDIO_TASK:
        rows = [[label, metrics.get(key)] for label, key in (
            ("mean frame SNR dB", "mean_frame_snr_db"), ("median frame SNR dB", "median_frame_snr_db"),
            ("overall SNR dB", "snr_db"), ("margin over linear baselines dB", "margin_db_over_linear_baselines"))]
        if "int8" in metrics:
            rows.append(["int8: mean frame SNR dB", metrics["int8"]["mean_frame_snr_db"]])
        n = meta.get("training_data", {}).get("n_frames", {}).get("test")
        return [(f"test pieces ({n} frames of 4096 samples)", ["figure", "value"], rows)]
    return []


def _sigma_rows(by_sigma: dict[str, Any]) -> Rows:
    return [[key[len(SIGMA_PREFIX):], row["model"]["psnr_db"], row["model"]["ssim"],
             row["noisy_input"]["psnr_db"], row["noisy_input"]["ssim"]]
            for key, row in by_sigma.items() if key.startswith(SIGMA_PREFIX)]


def _records_tables(metrics: dict[str, Any]) -> list[tuple[str, list[str], Rows]]:
    """The held-out beats of each record, then (with --loro) leave-records-out; PVCs positive."""
    header = ["record", "beats", "PVCs", "AUC", "precision", "recall", "false alarms/min"]
    keys = ("n_beats", "n_pvc", "auc", "precision", "recall", "false_alarms_per_min")
    out = []
    held = metrics.get("held_out")
    if held:
        rows = [[name, *(fig.get(k) for k in keys)] for name, fig in held["per_record"].items()]
        rows.append(["all", *(held["pooled"].get(k) for k in keys)])
        out.append((f"held-out beats: {held['part']}", header, rows))
    loro = metrics.get("leave_records_out")
    if loro:
        rows = [[name, *(fig.get(k) for k in keys)] for name, fig in loro["per_record"].items()]
        rows.append(["mean AUC", "", "", loro["auc_mean"], "", "", ""])
        rows.append(["min AUC", "", "", loro["auc_min"], "", "", ""])
        out.append(("leave-records-out: each record scored by a model fitted without it", header, rows))
    return out


def render(meta: dict[str, Any]) -> list[tuple[str, Table]]:
    """(caption, table) of each table."""
    out = []
    for title, header, rows in tables(meta):
        table = Table()
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*(Text(fmt(v)) for v in row))  # Text: record names are not markup
        out.append((title, table))
    return out


def print_result(console: Console, meta: dict[str, Any], model: Path, card: Path,
                 others: Sequence[Path] = ()) -> None:
    """The held-out figures of the model card, then the files written."""
    def line(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    line(f"Held-out figures written into the model card {card}:")
    for caption, table in render(meta):
        line(caption)
        console.print(table)
    if meta.get("metrics", {}).get("warning"):
        console.print(Text("warning: " + meta["metrics"]["warning"], style="yellow"), soft_wrap=True)
    line("wrote " + ", ".join(f"{p} ({_size(p)})" for p in [model, *others, card]))


def _size(path: Path) -> str:
    n = path.stat().st_size if path.is_file() else 0
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"
