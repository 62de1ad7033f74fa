"""Placing a dashboard's sections in the rows a terminal has, by importance.

Each section says how many rows it needs at least, would like, and can use at most. Rows go out in three
rounds: every section its minimum, most important first (a section whose minimum no longer fits is
dropped: in a short terminal the least important go); then each its preferred height, most important
first; then what is left to the sections that can grow (the signal traces), least important first, so
a tall terminal gets taller traces rather than longer tables. Sections keep their order on screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Section:
    name: str
    priority: int  # higher is more important: kept longer, served first
    min_rows: int
    want_rows: int
    max_rows: int
    draw: Callable[[int], list[Any]]  # rows given -> renderables taking exactly that many lines (or fewer)


def allocate(sections: Sequence[Section], rows: int) -> list[tuple[Section, int]]:
    """The sections that fit in `rows` lines, in their order, each with the lines it gets."""
    given: dict[int, int] = {}
    left = rows
    by_importance = sorted(range(len(sections)), key=lambda i: -sections[i].priority)
    for i in by_importance:
        if sections[i].min_rows <= left:
            given[i] = sections[i].min_rows
            left -= given[i]
    for i in by_importance:
        if i in given:
            more = min(left, max(0, sections[i].want_rows - given[i]))
            given[i] += more
            left -= more
    for i in reversed(by_importance):
        if i in given:
            more = min(left, max(0, sections[i].max_rows - given[i]))
            given[i] += more
            left -= more
    return [(sections[i], given[i]) for i in range(len(sections)) if i in given]
