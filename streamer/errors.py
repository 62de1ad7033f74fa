"""User-facing errors. The CLI prints each as one line on stderr and exits non-zero."""

from __future__ import annotations

from pathlib import Path


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


class MissingExtraError(StreamerError):
    """A command needs an optional extra (e.g. training needs TensorFlow)."""
