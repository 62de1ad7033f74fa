"""Helpers shared by every `streamer` command: one-line errors and finding the shipped models."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from streamer.cli.entry import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated
from streamer.core.errors import InputError, MissingExtraError, StreamerError

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
        except Terminated:
            click.echo("streamer: terminated", err=True)
            sys.exit(EXIT_TERMINATED)
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




def given(name: str) -> bool:
    """Whether the user gave the option whose parameter is `name` (on the command line or from the
    environment), as opposed to its default: an option with a default can still be one that does not apply."""
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source(name) if ctx is not None else None
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def refuse_given(names: Iterable[str], what: str) -> None:
    """An option given that does not apply to the source chosen is refused, never ignored silently:
    `--seconds: does not apply to a file (...)`."""
    ctx = click.get_current_context()
    for name in names:
        if given(name):
            flags = next(p.opts for p in ctx.command.params if p.name == name)
            raise InputError(max(flags, key=len), f"does not apply to {what}")


def need_training_extra(verbose: bool = False) -> None:
    """Training is the only command that uses TensorFlow; the runtime itself never imports it.

    Imports it now: quietly (its start-up log lines would bury the progress display) unless `verbose`."""
    missing = [name for name in ("tensorflow", "tf2onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError("training", "train", " and ".join(missing))
    from export.quiet import import_tensorflow

    import_tensorflow(verbose)


def check_preset(preset: str, presets: dict[str, Any]) -> None:
    if preset not in presets:
        raise StreamerError(f"--preset: unknown preset {preset!r} (choose from {', '.join(sorted(presets))})")
