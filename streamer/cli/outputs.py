"""Outputs never written over inputs: a command's output paths are checked against its inputs before anything
is read or written (`--out` naming the input WAV, `-o` onto the source, `--events` onto the record, an image
folder written into itself)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from streamer.core.errors import InputError

WFDB_PARTS = (".hea", ".dat", ".atr")  # a record named without its suffix is these files


def input_files(inputs: Iterable[str | Path | None]) -> list[Path]:
    """The files (and folders) the inputs name, as they exist: a WFDB record named without a suffix is its
    parts; stdin (`-`) and inputs that do not exist name nothing."""
    out = []
    for item in inputs:
        if item is None or str(item) == "-":
            continue
        path = Path(item)
        candidates = [path] + ([path.with_name(path.name + s) for s in WFDB_PARTS] if not path.suffix else [])
        if path.suffix.lower() in WFDB_PARTS:
            candidates += [path.with_suffix(s) for s in WFDB_PARTS]
        out += [c for c in candidates if c.exists()]
    return out


def _same(a: Path, b: Path) -> bool:
    """The same file or folder, by any name or link."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting_inputs(outputs: Mapping[str, Path | None], inputs: Iterable[str | Path | None]) -> None:
    """Raise `InputError` naming the option when an output path is one of the inputs (the same file, by any
    name or link), or an output folder is an input folder."""
    sources = input_files(inputs)
    for option, out in outputs.items():
        if out is None:
            continue
        for source in sources:
            if _same(Path(out), source):
                raise InputError(option, f"{out} is an input of this run ({source}): it would be overwritten; "
                                         "write the output elsewhere")
