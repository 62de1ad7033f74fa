"""The shapes an .npy or .npz file declares, read from its headers without loading (or decompressing) the
arrays: a small file can declare an array of any size, so the size is checked before the data is read."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

import numpy as np


def npy_shape(f: IO[bytes]) -> tuple[int, ...]:
    """The shape in an .npy stream's header (raises ValueError if it is not one)."""
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return tuple(int(d) for d in read(f)[0])


def npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each array's declared shape in an .npz, by its key (raises zipfile.BadZipFile or ValueError)."""
    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with archive.open(member) as f:
                shapes[member.removesuffix(".npy")] = npy_shape(f)
    return shapes
