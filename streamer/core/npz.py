"""The shapes an .npy or .npz file declares, read from its headers without loading (or decompressing) the
arrays: a small file can declare an array of any size, so the size is checked before the data is read."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

import numpy as np


def npy_shape(f: IO[bytes]) -> tuple[int, ...]:
    """The shape in an .npy stream's header (raises ValueError if it is not one)."""
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return tuple(int(d) for d in read(f)[0])
    except ValueError:
        raise
    except Exception as exc:  # numpy parses old headers with `tokenize`: a damaged one raises its errors
        raise ValueError(f"unreadable array header ({type(exc).__name__})") from None


def npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each array's declared shape in an .npz, by its key (raises ValueError, or OSError if it cannot be read)."""
    shapes = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                with archive.open(member) as f:
                    shapes[member.removesuffix(".npy")] = npy_shape(f)
    except (OSError, ValueError):
        raise
    except Exception as exc:  # zipfile's own: BadZipFile, NotImplementedError (an unknown zip version), ...
        raise ValueError(f"not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    return shapes
