"""Writers for the WFDB storage formats the wfdb package reads but cannot write (8, 310, 311), so that tests
can make valid records of those formats from real MIT-BIH samples (https://physionet.org/physiotools/wag/
signal-5.htm). Each writes `name.dat` and `name.hea` for a (n, k) array of ADC values (k signals)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pack_310(v: np.ndarray) -> bytes:
    """Three 10-bit samples in four bytes: sample 0 in bits 1-7 of byte 0 and 0-2 of byte 1, sample 1 likewise
    in bytes 2 and 3, sample 2 in bits 3-7 of bytes 1 and 3 (wfdb's reader, inverted)."""
    u = (np.asarray(v, np.int64) & 0x3FF).reshape(-1, 3)
    out = np.zeros((len(u), 4), np.uint8)
    out[:, 0] = (u[:, 0] & 0x7F) << 1
    out[:, 1] = ((u[:, 0] >> 7) & 0x07) | ((u[:, 2] & 0x1F) << 3)
    out[:, 2] = (u[:, 1] & 0x7F) << 1
    out[:, 3] = ((u[:, 1] >> 7) & 0x07) | (((u[:, 2] >> 5) & 0x1F) << 3)
    return out.tobytes()


def _pack_311(v: np.ndarray) -> bytes:
    """Three 10-bit samples in one little-endian 32-bit word: bits 0-9, 10-19, 20-29."""
    u = (np.asarray(v, np.int64) & 0x3FF).reshape(-1, 3)
    return (u[:, 0] | (u[:, 1] << 10) | (u[:, 2] << 20)).astype("<u4").tobytes()


def write_record(folder: Path, name: str, digital: np.ndarray, fmt: str, fs: float = 360.0,
                 gain: float = 200.0, names: tuple[str, ...] = ("MLII", "V5")) -> Path:
    """A WFDB record of `digital` (n, k) in format 8, 310 or 311; returns the record path (no suffix).
    Format 8 stores first differences (each within int8: larger steps are clipped, and the values the record
    then holds are returned by the reader); 310/311 need values in [-512, 511] and n * k a multiple of 3."""
    d = np.asarray(digital, np.int64)
    n, k = d.shape
    init = [0] * k
    if fmt == "8":
        diffs = np.clip(np.diff(d, axis=0, prepend=d[:1]), -128, 127)
        init = [int(x) for x in d[0]]
        d = np.cumsum(diffs, axis=0) + d[0]
        data = diffs.astype(np.int8).tobytes()
    elif fmt in ("310", "311"):
        if d.min() < -512 or d.max() > 511 or (n * k) % 3:
            raise ValueError("format 310/311 needs values in [-512, 511] and n * k a multiple of 3")
        data = (_pack_310 if fmt == "310" else _pack_311)(d.reshape(-1))
    else:
        raise ValueError(f"format {fmt} is written by wfdb.wrsamp")
    (folder / f"{name}.dat").write_bytes(data)
    checks = [int(d[:, i].sum()) & 0xFFFF for i in range(k)]
    checks = [c - 0x10000 if c > 0x7FFF else c for c in checks]
    lines = [f"{name} {k} {fs:g} {n}"]
    lines += [f"{name}.dat {fmt} {gain:g}(0)/mV 10 0 {init[i] if fmt == '8' else int(d[0, i])} {checks[i]} 0 "
              f"{names[i]}" for i in range(k)]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / name
