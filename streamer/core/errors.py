"""User-facing errors: each is one line naming the file, stream or option, the problem, and where useful
what was expected and what arrived. The CLI prints `str(error)` on stderr and exits with `exit_code`; the
library raises the same exceptions, so an embedding program sees the same line."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class StreamerError(Exception):
    """An error the user can act on. `str()` is the whole one-line message."""

    exit_code = 2


class InputError(StreamerError):
    """Bad input data: names the file (or `-` for stdin), where, and what is wrong."""

    def __init__(self, source: str | Path, problem: str, where: str | None = None) -> None:
        self.source = str(source)
        self.problem = problem
        self.where = where
        at = f" ({where})" if where else ""
        super().__init__(f"{self.source}{at}: {problem}")


class ModelError(StreamerError):
    """A model file that is not ONNX, lacks aestream metadata, or does not fit the task."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class StreamError(StreamerError):
    """A chunk (or an option) a stream cannot take: names the stream, the problem, expected and got.

    In a pool, only that stream's chunk is refused; the other streams go on."""

    def __init__(self, stream: Any, problem: str, expected: Any = None, got: Any = None,
                 reason: str | None = None) -> None:
        self.stream = stream
        self.problem = problem
        self.reason = reason or problem  # short and stable: what a pool counts refusals by
        self.expected = expected
        self.got = got
        detail = f" (expected {expected}, got {got})" if expected is not None or got is not None else ""
        super().__init__(f"stream {stream}: {problem}{detail}")


class MissingExtraError(StreamerError):
    """A command needs an optional extra (e.g. training needs TensorFlow, WFDB files need wfdb)."""

    def __init__(self, what: str, extra: str, package: str | None = None) -> None:
        self.extra = extra
        need = f" ({package})" if package else ""
        super().__init__(f"{what} needs the '{extra}' extra{need}: pip install 'aestream[{extra}]'")


def need(module: str, what: str, extra: str) -> Any:
    """Import an optional module, or fail with one line naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        interruption = interruption_of(exc)
        if interruption is not None:  # Ctrl-C while it was importing: not a missing extra
            raise interruption from None
        raise MissingExtraError(what, extra, module) from None


def interruption_of(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM an exception was raised from, if any (its causes and contexts, followed): some
    libraries catch the interruption while they import and raise their own error from it (onnxruntime:
    `ImportError: initialization failed`)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None
