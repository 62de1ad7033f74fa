"""aestream: streams through autoencoders on onnxruntime. Never imports TensorFlow.

The library in five names::

    import streamer
    model = streamer.load_model("samples/models/ecg.onnx")   # the model's metadata configures everything
    stream = model.stream(rate=250)                           # one stream: feed / flush / reset / save
    events = stream.feed(samples)                             # typed events, as they become ready
    pool = model.pool()                                       # many streams, one batched model call per tick

Events: `BeatEvent` (ECG), `AudioFrameEvent` (audio), `ImageEvent` (images). Errors: `StreamerError` and its
kinds `StreamError` (a stream's bad chunk or option), `ModelError`, `InputError`, each one line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:  # for type checkers and editors; at run time names are imported on first use
    from streamer.audio.events import AudioFrameEvent  # noqa: F401
    from streamer.core.errors import InputError, ModelError, StreamerError, StreamError  # noqa: F401
    from streamer.core.kind import Chunk  # noqa: F401
    from streamer.core.model import Model, load_model  # noqa: F401
    from streamer.core.pool import FeedResult, Pool, Stream  # noqa: F401
    from streamer.ecg.events import BeatEvent  # noqa: F401
    from streamer.ecg.readers import read_ecg  # noqa: F401
    from streamer.images.events import ImageEvent  # noqa: F401

# public name -> module; imported on first use, so `import streamer` is cheap and pulls in only what is used
_EXPORTS = {
    "load_model": "streamer.core.model", "Model": "streamer.core.model",
    "Stream": "streamer.core.pool", "Pool": "streamer.core.pool", "FeedResult": "streamer.core.pool",
    "Chunk": "streamer.core.kind", "read_ecg": "streamer.ecg.readers",
    "BeatEvent": "streamer.ecg.events", "AudioFrameEvent": "streamer.audio.events",
    "ImageEvent": "streamer.images.events",
    "StreamerError": "streamer.core.errors", "StreamError": "streamer.core.errors",
    "ModelError": "streamer.core.errors", "InputError": "streamer.core.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streamer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
