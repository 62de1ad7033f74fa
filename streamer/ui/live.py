"""A renderable kept on the terminal while a run goes: `rich.live.Live` pulls it from its own refresh thread
(4 Hz), so the data path never waits on the terminal. The dashboard and the progress bar are shown so."""

from __future__ import annotations

from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live

REFRESH_HZ = 4


class LiveScreen:
    """Context manager: `renderable` redrawn on stderr until the block ends; `transient` clears it then."""

    def __init__(self, renderable: RenderableType, transient: bool = False, console: Console | None = None) -> None:
        self.renderable = renderable
        self.transient = transient
        self.console = console or Console(stderr=True)
        self.live: Live | None = None

    def __enter__(self) -> LiveScreen:
        self.live = Live(get_renderable=lambda: self.renderable, console=self.console, refresh_per_second=REFRESH_HZ,
                         transient=self.transient, vertical_overflow="crop")
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None
