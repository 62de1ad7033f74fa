"""The aestream model format: one .onnx file whose `metadata_props` describe everything the engine needs.

Every value is stored as JSON text under its own key, so generic tools (Netron, `onnx.load`) show them
readably and the engine parses them with `json.loads`. Keys common to all tasks are in `COMMON_KEYS`;
each task adds its own (`TASK_KEYS`). Writing needs the `onnx` package (training extra); reading uses
onnxruntime's `custom_metadata_map`, so the runtime never needs `onnx`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

FORMAT_VERSION = 1

# task names
ECG_TASK = "ecg-beat-anomaly"
AUDIO_TASK = "audio-codec"
IMAGE_TASK = "image-denoise"

COMMON_KEYS = (
    "aestream_format",  # int, FORMAT_VERSION
    "task",  # one of the task names above
    "name",  # short model name, e.g. "ecg-mitdb"
    "version",  # model version string
    "created",  # ISO 8601 UTC
    "inputs",  # [{"name": str, "shape": [None|int, ...]}]
    "outputs",  # [{"name": str, "shape": [...]}]
    "training_data",  # {"name", "sha256", "n_items", "split", ...}
    "metrics",  # {held-out figures}
)

TASK_KEYS: dict[str, tuple[str, ...]] = {
    ECG_TASK: (
        "sample_rate_hz",  # rate the beat window is defined at (the framer resamples input to it)
        "beat",  # {"length": 140, "window": {...how a beat is cut and aligned...}}
        "features",  # [{"name": ..., "size": ...}] in input order (beat samples, RR features...)
        "normalisation",  # {"kind": "minmax"|"zscore", ...constants}
        "score",  # {"kind": "mae"|"mse", "weights": {...}, ...}: see streamer/ecg/scoring.py
        "threshold",  # {"value": float, "method": str, ...}
    ),
    AUDIO_TASK: ("sample_rate_hz", "frame", "normalisation"),
    IMAGE_TASK: ("image", "noise", "normalisation"),
}


def encode(meta: Mapping[str, Any]) -> dict[str, str]:
    """Metadata dict -> string map for ONNX `metadata_props`."""
    return {key: json.dumps(value, sort_keys=True) for key, value in meta.items()}


def decode(props: Mapping[str, str]) -> dict[str, Any]:
    """ONNX `metadata_props` string map -> metadata dict. Values that are not JSON stay strings."""
    meta: dict[str, Any] = {}
    for key, text in props.items():
        try:
            meta[key] = json.loads(text)
        except json.JSONDecodeError:
            meta[key] = text
    return meta

