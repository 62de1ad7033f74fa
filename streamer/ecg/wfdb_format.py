"""WFDB records in the storage formats of the MIT-BIH family, read with numpy alone.

Why not only the `wfdb` package: importing it takes ~0.6 s here (it imports pandas and matplotlib), more than
a whole `streamer ecg` start-up should, and an edge device should not need pandas to read a heart signal.
So the formats most ECG archives use are read here: 212 (two 12-bit samples in 3 bytes: MIT-BIH), 16
(little-endian int16), 61 (big-endian int16), 80 (8-bit offset binary). Anything else (multi-segment
records, other formats, several samples per frame, skew) is left to `wfdb` (the `ecg` extra), and so are
annotation files. `tests/test_readers.py` checks this reader against `wfdb.rdrecord` on every shared record.

Header lines (https://physionet.org/physiotools/wag/header-5.htm), e.g. for record 100:

    100 2 360 650000                                          name, signals, rate (Hz), samples per signal
    100.dat 212 200 11 1024 995 -22131 0 MLII                 file, format[+offset], gain[(baseline)][/units],
                                                              ADC bits, ADC zero, first value, checksum,
                                                              block size, description
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = ("212", "16", "61", "80")  # read here; others go to the wfdb package
DEFAULT_GAIN = 200.0  # ADC units per physical unit when the header gives 0 (WFDB's rule)
MAX_SIGNALS = 1024  # signals in one record: far above any recorder's leads
INVALID = {"212": -2048, "16": -32768, "61": -32768, "80": -128}  # WFDB's "no sample" value per format

# "212+512" -> format 212, byte offset 512; "16x2" (samples per frame) or "16:3" (skew) are not matched
_FORMAT = re.compile(r"^(?P<fmt>\d+)(?:\+(?P<offset>\d+))?$")
# "200(0)/mV", "200/mV", "200": gain, optional baseline, optional units
_GAIN = re.compile(r"^(?P<gain>[-+0-9.eE]+)(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>\S+))?$")


class Unsupported(Exception):
    """This record needs the wfdb package (a format or layout not read here)."""


@dataclass(frozen=True)
class Signal:
    file: str
    fmt: str
    offset: int  # bytes before the first sample in the file
    gain: float
    baseline: int
    units: str
    checksum: int | None
    name: str


@dataclass(frozen=True)
class Header:
    record: str
    fs: float | None
    n_samples: int | None
    signals: tuple[Signal, ...]


def parse_header(text: str) -> Header:
    """A single-segment header; raises `Unsupported` for what this module does not read, ValueError if malformed."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError("empty header")
    fields = lines[0].split()
    if "/" in fields[0]:
        raise Unsupported("multi-segment record")
    if len(fields) < 2:
        raise ValueError("record line without a number of signals")
    n_sig = int(fields[1])
    if not 1 <= n_sig <= MAX_SIGNALS:
        raise ValueError(f"record line names {n_sig} signals (1 to {MAX_SIGNALS} expected)")
    fs = float(fields[2].split("/")[0].split("(")[0]) if len(fields) > 2 else None
    n_samples = int(fields[3]) if len(fields) > 3 else None
    if n_samples is not None and n_samples < 0:
        raise ValueError(f"record line names {n_samples} samples")
    if len(lines) < 1 + n_sig:
        raise ValueError(f"header names {n_sig} signals but describes {len(lines) - 1}")
    return Header(fields[0], fs, n_samples, tuple(_signal(line) for line in lines[1:1 + n_sig]))


def _signal(line: str) -> Signal:
    f = line.split(maxsplit=8)
    if len(f) < 3:
        raise Unsupported("signal line without a gain")
    fmt = _FORMAT.match(f[1])
    if fmt is None or fmt["fmt"] not in FORMATS:
        raise Unsupported(f"storage format {f[1]}")
    gain = _GAIN.match(f[2])
    if gain is None:
        raise ValueError(f"unreadable gain {f[2]!r}")
    adc_zero = int(f[4]) if len(f) > 4 else 0
    baseline = int(gain["baseline"]) if gain["baseline"] is not None else adc_zero
    g = float(gain["gain"]) or DEFAULT_GAIN
    checksum = int(f[6]) if len(f) > 6 else None
    return Signal(f[0], fmt["fmt"], int(fmt["offset"] or 0), g, baseline, gain["units"] or "mV", checksum,
                  f[8] if len(f) > 8 else "")


def bytes_per_frame(signals: tuple[Signal, ...]) -> float:
    bits = {"212": 12, "16": 16, "61": 16, "80": 8}
    return sum(bits[s.fmt] for s in signals) / 8


def read_digital(folder: Path, header: Header, channel: int) -> np.ndarray:
    """The ADC values of one signal (int16: every format here fits), from its file (signals sharing a file are
    interleaved). Decoded in 16-bit arithmetic: a 24-hour record peaked at 0.8 GB in int64."""
    sig = header.signals[channel]
    sharing = [s for s in header.signals if s.file == sig.file]
    if len({s.fmt for s in sharing}) != 1:
        raise Unsupported("signals of different formats in one file")
    k, position = len(sharing), sharing.index(sig)
    raw = np.fromfile(folder / sig.file, dtype=np.uint8, offset=sig.offset)
    n = header.n_samples
    if sig.fmt == "212":  # two 12-bit samples in 3 bytes: low byte, then the high nibbles of both, then low byte
        r = raw[:len(raw) // 3 * 3].reshape(-1, 3)
        values = np.empty(2 * len(r), dtype=np.int16)
        values[0::2] = r[:, 0] | ((r[:, 1] & 0x0F).astype(np.int16) << 8)
        values[1::2] = r[:, 2] | ((r[:, 1] & 0xF0).astype(np.int16) << 4)
        values[values > 2047] -= 4096
    elif sig.fmt in ("16", "61"):
        values = raw[:len(raw) // 2 * 2].view("<i2" if sig.fmt == "16" else ">i2").astype(np.int16)
    else:  # 80: offset binary
        values = (raw.astype(np.int16) - 128)
    frames = values[:len(values) // k * k].reshape(-1, k)[:, position]
    return frames[:n] if n is not None else frames


def physical(digital: np.ndarray, sig: Signal) -> np.ndarray:
    """Physical units as wfdb computes them, (d - baseline) / gain; WFDB's invalid-sample value -> NaN."""
    out = digital.astype(np.float64)  # float first: int16 - baseline may overflow; then in place (no copies)
    out -= sig.baseline
    out /= sig.gain
    out[digital == INVALID[sig.fmt]] = np.nan
    return out
