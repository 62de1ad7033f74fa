"""Files written whole or not at all: a temp file beside the target, renamed over it, so that a reader (or a
crash, or a full disk) never leaves half a file. A target that is not a regular file (`/dev/stdout`, a pipe, a
device) or is a symbolic link is written to directly: renaming over it would replace it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(path: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call `write(f)` on a binary file that becomes `path` only once it is complete. Raises OSError."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        with open(path, "wb") as f:
            write(f)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a leftover of a failed write (disk full, Ctrl-C)
