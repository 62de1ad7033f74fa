"""Small statistics on the per-item hot paths, equal to the standard library's value for value."""

from __future__ import annotations

from collections.abc import Sequence


def small_median(values: Sequence[float]) -> float:
    """`statistics.median` of a short list (a few RR intervals), without its per-call overhead."""
    s = sorted(values)
    n = len(s)
    k = n // 2
    return float(s[k]) if n % 2 else (s[k - 1] + s[k]) / 2
