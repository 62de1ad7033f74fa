"""ECG readers: WFDB, CSV, EDF files -> one `Recording`; stdin is streamed by `StdinSource`.

Every problem becomes an `InputError` naming the file and what is wrong, checked before the stream
starts, so a replay never dies half-way on a bad file.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamer.ecg.evaluate import BEAT_SYMBOLS
from streamer.core.errors import InputError

MIN_FS = 100.0  # Hz: below this QRS complexes (~80 ms) are not resolved
FLAT_MV = 1e-6  # a signal whose range is below this is a flat line (lead off)
# WFDB storage formats -> bits per sample (https://physionet.org/physiotools/wag/signal-5.htm)
WFDB_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12, "310": 10, "311": 10}


@dataclass
class Recording:
    """A whole recorded ECG lead, in its native rate, plus reference beats when annotated."""

    name: str
    signal: np.ndarray  # float64, physical units (mV for WFDB/EDF)
    fs: float
    lead: str
    ref_samples: np.ndarray | None = None  # annotated beats (R peaks), sample indices
    ref_symbols: np.ndarray | None = None  # their beat symbols


def check_signal(source: str | Path, x: np.ndarray, fs: float | None) -> None:
    """Checks every reader applies: rate, length, finite values, not a flat line."""
    if fs is None:
        raise InputError(source, "sampling rate unknown: give --fs HZ")
    if not fs >= MIN_FS:
        raise InputError(source, f"sampling rate {fs:g} Hz is below {MIN_FS:g} Hz, too low to find QRS complexes")
    if len(x) == 0:
        raise InputError(source, "no samples")
    bad = np.flatnonzero(~np.isfinite(x))
    if len(bad):
        raise InputError(source, f"non-finite value (NaN or inf) at sample {bad[0]}")
    if float(np.ptp(x)) < FLAT_MV:
        raise InputError(source, "flat-line signal (no variation): lead off or empty channel?")


def read_recording(path: str | Path, lead: str | None = None, fs: float | None = None) -> Recording:
    """Dispatch on the file type: WFDB record (name, .hea or .dat), .csv/.txt, .edf."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return read_csv(p, lead, fs)
    if suffix in (".edf", ".bdf"):
        return read_edf(p, lead)
    if suffix in (".hea", ".dat", ".atr", ""):
        return read_wfdb(p.with_suffix("") if suffix else p, lead)
    raise InputError(p, f"unknown file type {suffix!r} (expected a WFDB record, .csv or .edf)")


# --- WFDB -----------------------------------------------------------------------------------------

def _pick_channel(source: str | Path, names: list[str], lead: str | None) -> int:
    if lead is None:
        return 0
    if lead in names:
        return names.index(lead)
    if lead.isdigit() and int(lead) < len(names):
        return int(lead)
    raise InputError(source, f"no lead {lead!r}; leads are {', '.join(names)}")


def _check_dat_sizes(record: Path, header: object) -> None:
    """Each .dat must hold exactly what the header says: catches truncated or mismatched files."""
    files: dict[str, list[str]] = {}
    for fname, fmt in zip(header.file_name, header.fmt):  # type: ignore[attr-defined]
        files.setdefault(fname, []).append(str(fmt))
    offsets = dict(zip(header.file_name, header.byte_offset or [0] * len(header.file_name)))  # type: ignore[attr-defined]
    for fname, fmts in files.items():
        dat = record.parent / fname
        if not dat.is_file():
            raise InputError(dat, f"signal file missing (named by {record.name}.hea)")
        bits = sum(WFDB_BITS.get(f, 0) for f in fmts)
        if bits == 0 or header.sig_len is None:  # type: ignore[attr-defined]
            continue
        expected = int(np.ceil(header.sig_len * bits / 8)) + int(offsets.get(fname) or 0)  # type: ignore[attr-defined]
        actual = dat.stat().st_size
        if actual < expected:
            raise InputError(dat, f"truncated: header says {header.sig_len} samples ({expected} bytes), "  # type: ignore[attr-defined]
                                  f"file has {actual} bytes")
        if actual > expected + 4:  # a few padding bytes are allowed by some writers
            raise InputError(dat, f"header disagrees with data: header says {header.sig_len} samples "  # type: ignore[attr-defined]
                                  f"({expected} bytes), file has {actual} bytes")


def read_wfdb(record: Path, lead: str | None = None) -> Recording:
    import wfdb

    hea = record.with_suffix(".hea")
    if not hea.is_file():
        raise InputError(hea, "no such WFDB header")
    try:
        header = wfdb.rdheader(str(record))
    except Exception as exc:  # wfdb raises several types for malformed headers
        raise InputError(hea, f"unreadable WFDB header ({exc})") from None
    channel = _pick_channel(hea, list(header.sig_name or []), lead)
    if not header.fs or header.fs < MIN_FS:
        check_signal(hea, np.zeros(2), header.fs or None)
    _check_dat_sizes(record, header)
    try:
        rec = wfdb.rdrecord(str(record), channels=[channel], return_res=64)
    except Exception as exc:
        raise InputError(record.with_suffix(".dat"), f"header disagrees with data ({exc})") from None
    _check_checksum(record, rec, header, channel)
    x = rec.p_signal[:, 0].astype(np.float64)
    check_signal(record.with_suffix(".dat"), x, float(rec.fs))
    ref_samples, ref_symbols = _read_beats(record)
    return Recording(record.name, x, float(rec.fs), rec.sig_name[0], ref_samples, ref_symbols)


def _check_checksum(record: Path, rec: object, header: object, channel: int) -> None:
    """WFDB headers carry a 16-bit checksum of each signal: a mismatch means header and data disagree."""
    checksums = getattr(header, "checksum", None)
    if not checksums or checksums[channel] is None:
        return
    d = rec.adc()[:, 0].astype(np.int64)  # type: ignore[attr-defined]
    got = int(d.sum()) & 0xFFFF
    want = int(checksums[channel]) & 0xFFFF
    if got != want:
        raise InputError(record.with_suffix(".dat"), f"header disagrees with data: checksum {got} != {want} in header")


def _read_beats(record: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    import wfdb

    if not record.with_suffix(".atr").is_file():
        return None, None
    try:
        ann = wfdb.rdann(str(record), "atr")
    except Exception as exc:
        raise InputError(record.with_suffix(".atr"), f"unreadable annotation file ({exc})") from None
    symbols = np.asarray(ann.symbol)
    is_beat = np.isin(symbols, list(BEAT_SYMBOLS))
    return np.asarray(ann.sample)[is_beat].astype(np.int64), symbols[is_beat]


# --- CSV ------------------------------------------------------------------------------------------

def _parse_float(path: Path, text: str, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, f"not a number: {text.strip()[:30]!r} in column {column!r}", f"line {line}") from None
    if not np.isfinite(value):
        raise InputError(path, f"{text.strip()} value in column {column!r}", f"line {line}")
    return value


def _is_header(row: list[str]) -> bool:
    try:
        [float(c) for c in row if c.strip()]
        return False
    except ValueError:
        return True


def read_csv(path: Path, lead: str | None = None, fs: float | None = None) -> Recording:
    """CSV with one value column (or several: --lead picks by name or index) and an optional time column.

    A header row is optional. A column named `time`/`t`/`seconds` (or, with no header, a first column
    of 2+ columns when --fs is absent) gives the rate from its median step.
    """
    if not path.is_file():
        raise InputError(path, "no such file")
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        sample = f.read(4096)
        f.seek(0)
        delimiter = "\t" if path.suffix.lower() == ".tsv" or ("\t" in sample and "," not in sample) else ","
        rows = [(i + 1, r) for i, r in enumerate(csv.reader(f, delimiter=delimiter)) if any(c.strip() for c in r)]
    if not rows:
        raise InputError(path, "empty file")
    names = [c.strip() for c in rows[0][1]] if _is_header(rows[0][1]) else None
    data = rows[1:] if names else rows
    if not data:
        raise InputError(path, "no data rows")
    width = len(data[0][1])
    names = names or [str(i) for i in range(width)]
    time_col = next((i for i, n in enumerate(names) if n.lower() in ("time", "t", "seconds", "time_s")), None)
    if time_col is None and width >= 2 and fs is None and names[0] == "0":
        time_col = 0
    value_cols = [i for i in range(width) if i != time_col]
    if not value_cols:
        raise InputError(path, "no value column")
    col = value_cols[0] if lead is None else _pick_channel(path, names, lead)
    values = np.empty(len(data))
    times = np.empty(len(data)) if time_col is not None else None
    for k, (line, row) in enumerate(data):
        if len(row) != width:
            raise InputError(path, f"expected {width} columns, found {len(row)}", f"line {line}")
        values[k] = _parse_float(path, row[col], line, names[col])
        if times is not None:
            times[k] = _parse_float(path, row[time_col], line, names[time_col])  # type: ignore[index]
    if fs is None and times is not None and len(times) > 1:
        fs = _rate_from_times(path, times, [line for line, _ in data])
    check_signal(path, values, fs)
    return Recording(path.stem, values, float(fs), names[col])  # type: ignore[arg-type]


def _rate_from_times(path: Path, times: np.ndarray, lines: list[int]) -> float:
    """Sampling rate from a time column, which must be increasing and evenly spaced (within 50%)."""
    steps = np.diff(times)
    mean_step = (times[-1] - times[0]) / (len(times) - 1)
    bad = np.flatnonzero((steps <= 0) | (np.abs(steps - mean_step) > 0.5 * mean_step))
    if len(bad) or mean_step <= 0:
        line = lines[bad[0] + 1] if len(bad) else lines[-1]
        raise InputError(path, "time column is not increasing at an even step (a gap or jump)", f"line {line}")
    return 1.0 / mean_step


# --- EDF ------------------------------------------------------------------------------------------

def read_edf(path: Path, lead: str | None = None) -> Recording:
    import pyedflib

    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        reader = pyedflib.EdfReader(str(path))
    except OSError as exc:
        raise InputError(path, f"not a readable EDF file ({exc})") from None
    try:
        labels = [s.strip() for s in reader.getSignalLabels()]
        if not labels:
            raise InputError(path, "EDF file has no signals")
        channel = _pick_channel(path, labels, lead)
        fs = float(reader.getSampleFrequency(channel))
        x = reader.readSignal(channel).astype(np.float64)
        unit = reader.getPhysicalDimension(channel).strip().lower()
    finally:
        reader.close()
    if unit in ("uv", "µv"):  # the engine works in mV like WFDB
        x = x / 1000.0
    check_signal(path, x, fs)
    return Recording(path.stem, x, fs, labels[channel])



def find_records(paths: Sequence[Path]) -> list[Path]:
    """WFDB record paths (without suffix) from folders (every .hea inside) or record paths."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            heads = sorted(p.glob("*.hea"))
            if not heads:
                raise InputError(p, "folder holds no WFDB records (.hea files)")
            found += [h.with_suffix("") for h in heads]
        else:
            record = p.with_suffix("") if p.suffix in (".hea", ".dat", ".atr") else p
            if not record.with_suffix(".hea").is_file():
                raise InputError(record.with_suffix(".hea"), "no such WFDB header")
            found.append(record)
    return found
