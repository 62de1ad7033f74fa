"""Text from outside the program (model metadata, file names) made safe for a terminal."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with every control or otherwise unprintable character (escape sequences, bells, carriage returns)
    shown as `?`: a model file or a file name never clears the screen or sets the window title."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))
