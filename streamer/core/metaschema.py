"""What an aestream model's metadata may hold: each task's keys with their types and ranges, checked once when
the model is loaded, before any input is read.

A model file is untrusted input: its metadata sets sampling rates, frame lengths, window sizes and image
sizes, which become buffer sizes and loop counts. A value out of range (a rate of 1e30 Hz, a frame of 0
samples, a threshold of NaN) is refused here with one line naming the key, instead of crashing or hanging
somewhere deep in the engine. Only what the engine reads is checked strictly; descriptive keys (metrics,
training, notes) need only be of the right kind and the whole metadata is bounded in size.

`problems(meta)` lists every problem found (what `streamer inspect` shows); `check(path, meta)` raises a
`ModelError` on the first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer.core.errors import ModelError
from streamer.core.limits import MAX_FS
from streamer.core.modelmeta import AUDIO_TASK, COMMON_KEYS, ECG_TASK, FORMAT_VERSION, IMAGE_TASK, TASK_KEYS

MAX_METADATA_BYTES = 1 << 20  # all values' JSON text together: real models carry ~10 kB
MAX_TEXT = 4096  # characters in one metadata string that the engine shows or reads


class Spec:
    """One value's rule; `check` yields problems as `(path, what is wrong)`."""

    def check(self, value: Any, path: str) -> list[tuple[str, str]]:
        raise NotImplementedError


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Num(Spec):
    lo: float
    hi: float
    integer: bool = False
    null: bool = False  # None allowed

    def check(self, value: Any, path: str) -> list[tuple[str, str]]:
        if value is None and self.null:
            return []
        kind = "a whole number" if self.integer else "a number"
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and self.integer and isinstance(value, float):
            ok = value.is_integer()
        if not ok or not math.isfinite(value) or not self.lo <= value <= self.hi:
            return [(path, f"must be {kind} in [{self.lo:g}, {self.hi:g}], not {_shown(value)}")]
        return []


@dataclass(frozen=True)
class Text(Spec):
    choices: tuple[str, ...] = ()
    max_len: int = MAX_TEXT

    def check(self, value: Any, path: str) -> list[tuple[str, str]]:
        if not isinstance(value, str):
            return [(path, f"must be text, not {_shown(value)}")]
        if self.choices and value not in self.choices:
            return [(path, f"must be one of {', '.join(self.choices)}, not {_shown(value)}")]
        if len(value) > self.max_len:
            return [(path, f"is {len(value)} characters long, at most {self.max_len}")]
        return []


KIND_NAMES: dict[type, str] = {dict: "an object", list: "a list", str: "text"}


@dataclass(frozen=True)
class Kind(Spec):
    """Any value of the given JSON kinds (dict, list, str, ...): descriptive keys the engine does not compute with."""

    kinds: tuple[type, ...]

    def check(self, value: Any, path: str) -> list[tuple[str, str]]:
        if not isinstance(value, self.kinds):
            names = " or ".join(KIND_NAMES.get(k, k.__name__) for k in self.kinds)
            return [(path, f"must be {names}, not {_shown(value)}")]
        return []


@dataclass(frozen=True)
class Obj(Spec):
    """An object with these keys (`required` must be present; others in `fields` may be); unknown keys allowed."""

    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()

    def check(self, value: Any, path: str) -> list[tuple[str, str]]:
        if not isinstance(value, dict):
            return [(path, f"must be an object, not {_shown(value)}")]
        found = [(f"{path}.{key}", "is missing") for key in self.required if key not in value]
        for key, spec in self.fields.items():
            if key in value:
                found += spec.check(value[key], f"{path}.{key}")
        return found


@dataclass(frozen=True)
class Seq(Spec):
    item: Spec
    min_len: int = 0
    max_len: int = 64

    def check(self, value: Any, path: str) -> list[tuple[str, str]]:
        if not isinstance(value, list):
            return [(path, f"must be a list, not {_shown(value)}")]
        if not self.min_len <= len(value) <= self.max_len:
            return [(path, f"must hold {self.min_len} to {self.max_len} items, not {len(value)}")]
        return [p for i, v in enumerate(value) for p in self.item.check(v, f"{path}[{i}]")]


@dataclass(frozen=True)
class Map(Spec):
    """An object whose keys are free text and whose values all follow `value`."""

    value: Spec
    max_len: int = 64

    def check(self, value: Any, path: str) -> list[tuple[str, str]]:
        if not isinstance(value, dict):
            return [(path, f"must be an object, not {_shown(value)}")]
        if len(value) > self.max_len:
            return [(path, f"must hold at most {self.max_len} entries, not {len(value)}")]
        return [p for k, v in value.items() for p in self.value.check(v, f"{path}.{k}")]


@dataclass(frozen=True)
class OneOf(Spec):
    """The first of `options` whose `when(value)` holds applies (e.g. by a `kind` key); else `otherwise`."""

    options: Sequence[tuple[Any, Spec]]
    otherwise: str
    key: str = "kind"

    def check(self, value: Any, path: str) -> list[tuple[str, str]]:
        if not isinstance(value, dict):
            return [(path, f"must be an object, not {_shown(value)}")]
        for tag, spec in self.options:
            if value.get(self.key) == tag:
                return spec.check(value, path)
        return [(f"{path}.{self.key}", f"{self.otherwise}, not {_shown(value.get(self.key))}")]


@dataclass(frozen=True)
class Either(Spec):
    """An any-size or a fixed-size description, told apart by `key` having the value `tag`."""

    key: str
    tag: Any
    when: Spec
    otherwise: Spec = field(default_factory=lambda: Kind((dict,)))

    def check(self, value: Any, path: str) -> list[tuple[str, str]]:
        if isinstance(value, dict) and value.get(self.key) == self.tag:
            return self.when.check(value, path)
        return self.otherwise.check(value, path)


FINITE = Num(-1e30, 1e30)
POSITIVE = Num(1e-30, 1e30)
RATIO = Num(0.0, 1.0)
PERCENT = Num(0.0, 100.0)
WEIGHTS = Map(Num(-1e6, 1e6), max_len=16)
BEAT_FEATURES = ("beat", "rr_prev_ratio", "rr_next_ratio", "rr_prev_s", "rr_next_s", "rr_prematurity", "rr_pause")
SIDE = 4096  # pixels: an image model's tile or fixed size

COMMON = Obj({
    "aestream_format": Num(FORMAT_VERSION, FORMAT_VERSION, integer=True),
    "task": Text((ECG_TASK, AUDIO_TASK, IMAGE_TASK)),
    "name": Text(max_len=200),
    "version": Kind((str, int, float)),
    "created": Text(max_len=100),
    "inputs": Kind((list,)),
    "outputs": Kind((list,)),
    "training_data": Kind((dict,)),
    "metrics": Kind((dict,)),
}, required=COMMON_KEYS)

ECG = Obj({
    "sample_rate_hz": Num(1.0, MAX_FS),
    "beat": Obj({
        "length": Num(2, 4096, integer=True),
        "highpass_hz": Num(0.0, 100.0, null=True),
        "polarity": Num(-1, 1, integer=True),
        "window": OneOf([
            ("rr", Obj({"pre_fraction": RATIO}, required=("pre_fraction",))),
            ("fixed", Obj({"pre_s": Num(0.0, 2.0), "post_s": Num(0.0, 2.0)}, required=("pre_s", "post_s"))),
        ], otherwise="must be rr or fixed"),
    }, required=("length", "window")),
    "features": Seq(Obj({"name": Text(BEAT_FEATURES), "size": Num(1, 4096, integer=True)}, required=("name",)),
                    min_len=1, max_len=len(BEAT_FEATURES)),
    "normalisation": Obj({"steps": Seq(OneOf([
        ("zscore", Kind((dict,))),
        ("center", Kind((dict,))),
        ("minmax", Obj({"min": FINITE, "max": FINITE}, required=("min", "max"))),
        ("scale", Obj({"factor": FINITE}, required=("factor",))),
        ("template", Obj({"beats": Num(1, 1024, integer=True), "min_rr_prev_ratio": Num(0.0, 10.0),
                          "min_scale": POSITIVE}, required=("beats", "min_rr_prev_ratio", "min_scale"))),
    ], otherwise="must be zscore, center, minmax, scale or template"), max_len=16)}),
    "score": Obj({
        "kind": Text(("mae", "mse")),
        "weights": WEIGHTS,
        "warmup_beats": Num(0, 100_000, integer=True),
        "adaptive": Obj({"kind": Text(max_len=100), "beats": Num(1, 4096, integer=True),
                         "min_history": Num(0, 4096, integer=True), "quantile": PERCENT,
                         "reference": POSITIVE}, required=("beats", "quantile", "reference")),
        "morphology": Obj({"reference": POSITIVE, "weights": WEIGHTS}, required=("reference",)),
    }),
    "threshold": Obj({
        "value": FINITE,
        "method": Text(max_len=100),
        "param": FINITE,
        "morphology": Obj({"value": FINITE, "method": Text(max_len=100), "param": FINITE}, required=("value",)),
    }, required=("value",)),
})

AUDIO = Obj({
    "sample_rate_hz": Num(100.0, MAX_FS),
    "frame": Obj({"length": Num(16, 1 << 16, integer=True), "hop": Num(1, 1 << 16, integer=True)},
                 required=("length",)),
    "normalisation": Obj({"kind": Text(("peak",)), "target": Num(1e-6, 1e6)}, required=("kind",)),
    "part": Text(("autoencoder", "encoder", "decoder")),
    "companions": Map(Text(max_len=255), max_len=8),
    "latent": Obj({"kind": Text(("dense", "topk")), "k": Num(1, 1 << 20, integer=True),
                   "coefficients": Num(1, 1 << 24, integer=True)}),
})

EVALUATED = {"evaluated_sizes": Seq(Seq(Num(1, SIDE, integer=True), min_len=2, max_len=2)),
             "evaluated_sigmas": Seq(Num(0.0, 10.0))}  # what the card's figures cover
IMAGE = Obj({
    "image": Either("size", "any",
                    when=Obj({"max_side": Num(4, SIDE, integer=True), "multiple_of": Num(1, 256, integer=True),
                              **EVALUATED}, required=("max_side", "multiple_of")),
                    otherwise=Obj({"height": Num(1, SIDE, integer=True), "width": Num(1, SIDE, integer=True),
                                   **EVALUATED}, required=("height", "width"))),
    "noise": Obj({"sigma": Num(0.0, 10.0, null=True),
                  "sigma_range": Seq(Num(0.0, 10.0), min_len=2, max_len=2)}),
    "normalisation": Kind((dict,)),
})

TASKS: dict[str, Spec] = {ECG_TASK: ECG, AUDIO_TASK: AUDIO, IMAGE_TASK: IMAGE}


def problems(meta: Mapping[str, Any]) -> list[str]:
    """Every problem with `meta` as `key: what is wrong` (empty: the engine may use it)."""
    found = COMMON.check(dict(meta), "")
    task = meta.get("task")
    if isinstance(task, str) and task in TASKS:
        missing = [k for k in TASK_KEYS[task] if k not in meta]
        found += [(f".{k}", "is missing") for k in missing]
        found += TASKS[task].check(dict(meta), "")
    return [f"metadata {path.lstrip('.')} {what}" for path, what in found]


def check(path: str | Path, meta: Mapping[str, Any]) -> None:
    """Refuse a model whose metadata the engine cannot use safely: one line naming the first bad key."""
    found = problems(meta)
    if found:
        more = f" (and {len(found) - 1} more: streamer inspect shows them)" if len(found) > 1 else ""
        raise ModelError(path, found[0] + more)


def check_size(path: str | Path, props: Mapping[str, str]) -> None:
    """Refuse metadata too large to be an aestream model's, before it is parsed."""
    total = sum(len(k) + len(v) for k, v in props.items())
    if total > MAX_METADATA_BYTES:
        raise ModelError(path, f"metadata is {total / 1e6:.1f} MB of text, more than the "
                               f"{MAX_METADATA_BYTES / 1e6:.1f} MB an aestream model may carry")
