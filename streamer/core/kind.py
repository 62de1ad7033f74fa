"""What a stream kind (ECG, audio, images) supplies to the shared pool: its framing and its judge.

Everything else (streams by id, one batched model call per tick, bad chunks isolated per stream, saving
and restoring, the run path, sinks, metrics, dashboard) is shared. A new kind implements `Kind` and adds
its task to `KINDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from streamer.core.model import Model

Key = Hashable

# task (model metadata) -> "module:class" of its kind; imported on first use, so a kind costs nothing unused
KINDS = {
    "ecg-beat-anomaly": "streamer.ecg.kind:EcgKind",
    "audio-codec": "streamer.audio.kind:AudioKind",
    "image-denoise": "streamer.images.kind:ImageKind",
}


@dataclass
class Chunk:
    """What one stream gives in one tick.

    `samples`: ECG a 1-D array at the stream's rate; audio (n,) or (n, channels) at its rate; images one
    (h, w) image, an (n, h, w) stack or a list of images. `start` (optional) is the stream index of
    `samples[0]`: when given it must continue the stream (a gap or an overlap is refused). `rate`
    (optional) must equal the stream's rate. `extras` carry per-kind fields (images: `clean`, `names`).
    """

    samples: Any
    start: int | None = None
    rate: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Work(Protocol):
    """The model inputs framed in one tick (rows), plus whatever the kind needs to judge them."""

    inputs: np.ndarray


@runtime_checkable
class GroupedWork(Protocol):
    """Work whose rows differ in shape from group to group (an any-size image model: images of different sizes
    in one tick). The pool makes one model call per group and hands the kind's judge the outputs of all groups,
    each flattened, concatenated in group order."""

    inputs: np.ndarray  # unused for grouped work: empty
    groups: list[np.ndarray]


class Kind(Protocol):
    """A stream kind bound to one model: opens streams by key, frames their chunks, judges model outputs."""

    task: str

    def open(self, key: Key, options: Mapping[str, Any]) -> None: ...
    def close(self, key: Key) -> None: ...
    def reset(self, key: Key) -> None: ...
    def save(self, key: Key) -> dict[str, Any]: ...
    def restore(self, key: Key, state: Mapping[str, Any]) -> None: ...
    def check(self, key: Key, chunk: Chunk) -> Any: ...
    def frame(self, prepared: Mapping[Key, Any]) -> Work: ...
    def frame_end(self, keys: Iterable[Key]) -> Work: ...
    def judge(self, work: Work, outputs: np.ndarray) -> dict[Key, list[Any]]: ...
    def counters(self, key: Key) -> dict[str, int]: ...
    def describe(self, key: Key) -> dict[str, Any]: ...


def kind_for(model: Model) -> Kind:
    """The kind of stream a model runs, from its task."""
    from streamer.core.errors import ModelError

    target = KINDS.get(model.task)
    if target is None:
        raise ModelError(model.path, f"no stream kind for task {model.task!r} (known: {', '.join(KINDS)})")
    module, name = target.split(":")
    cls = getattr(importlib.import_module(module), name)
    kind: Kind = cls(model)
    return kind
