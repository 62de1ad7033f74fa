"""Helpers shared by every `streamer` command: one-line errors and finding the shipped models."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from streamer.core.errors import MissingExtraError, StreamerError

EXIT_INTERRUPTED = 130
F = TypeVar("F", bound=Callable[..., Any])
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def one_line_errors(func: F) -> F:
    """Turn StreamerError (and a broken pipe) into one line on stderr and an exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StreamerError as exc:
            click.echo(f"streamer: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("streamer: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def default_model(filename: str) -> Path:
    """The shipped model: ./samples/models/ first, then the one next to this package (source checkout)."""
    for base in (Path("samples"), SAMPLES):
        if (base / "models" / filename).is_file():
            return base / "models" / filename
    raise StreamerError(f"no model given and no samples/models/{filename} found: pass --model PATH")




def need_training_extra() -> None:
    """Training is the only command that uses TensorFlow; the runtime itself never imports it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    missing = [name for name in ("tensorflow", "tf2onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError("training", "train", " and ".join(missing))


def check_preset(preset: str, presets: dict[str, Any]) -> None:
    if preset not in presets:
        raise StreamerError(f"--preset: unknown preset {preset!r} (choose from {', '.join(sorted(presets))})")
