"""Option values checked when a command starts, not when they are first used: every number is finite and within
the range the program can honour (a rate of 1e8 Hz, a speed of 1e-300, a NaN threshold or a negative camera
index would otherwise hang, crash or silently flag nothing, minutes into a run)."""

from __future__ import annotations

import math
from typing import Any

import click

from streamer.ecg.threshold import parse_method
from streamer.run.pacing import parse_speed


class Bounded(click.ParamType):
    """A finite number in [lo, hi] (`lo_open`: lo itself excluded)."""

    name = "number"

    def __init__(self, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                 integer: bool = False) -> None:
        self.lo, self.hi, self.lo_open, self.integer = lo, hi, lo_open, integer
        self.name = "integer" if integer else "number"

    def _range(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g} and <= {self.hi:g}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"<= {self.hi:g}" if self.hi is not None else "finite"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            x: float = value
        else:
            try:
                x = int(value) if self.integer else float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a{'n integer' if self.integer else ' number'}", param, ctx)
        if not math.isfinite(x):
            self.fail(f"{value} is not a finite number", param, ctx)
        low = self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo)
        if low or (self.hi is not None and x > self.hi):
            self.fail(f"{value} is out of range (expected {self._range()})", param, ctx)
        return x


MAX_SPEED_FACTOR = 1e6  # a replay faster than this is `max`
MIN_SPEED_FACTOR = 1e-3  # slower than a thousandth of real time is not a replay


def speed_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """`--speed`: `max` or a factor within [MIN_SPEED_FACTOR, MAX_SPEED_FACTOR]."""
    try:
        factor = parse_speed(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number or 'max'") from None
    if factor != math.inf and not MIN_SPEED_FACTOR <= factor <= MAX_SPEED_FACTOR:
        raise click.BadParameter(f"{value} is out of range (expected 'max' or a factor between "
                                 f"{MIN_SPEED_FACTOR:g} and {MAX_SPEED_FACTOR:g})")
    return value


def calibrate_method_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--calibrate-method`: checked when the command starts, not when the calibration ends."""
    if value is not None:
        try:
            parse_method(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value
