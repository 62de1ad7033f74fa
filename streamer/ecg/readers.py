"""ECG readers: WFDB, CSV, EDF files -> one `Recording`; stdin is streamed by `StdinSource`.

Every problem becomes an `InputError` naming the file and what is wrong, checked before the stream
starts, so a replay never dies half-way on a bad file.
"""

from __future__ import annotations

import csv
import itertools
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamer.core.cstderr import silence_c_stderr
from streamer.core.errors import InputError, need
from streamer.core.limits import MAX_FS
from streamer.ecg import wfdb_format
from streamer.ecg.evaluate import BEAT_SYMBOLS

MIN_FS = 100.0  # Hz: below this QRS complexes (~80 ms) are not resolved
FLAT_MV = 1e-6  # a signal whose range is below this is a flat line (lead off)
CSV_BLOCK = 65536  # rows converted to numbers at once
FS_TOLERANCE = 0.01  # --fs and a CSV's time column may differ by this fraction (rounded time stamps)
# file suffixes of each format (a WFDB record is also named without one: `106`)
FORMAT_SUFFIXES = {"csv": (".csv", ".txt", ".tsv"), "edf": (".edf", ".bdf"), "wfdb": (".hea", ".dat", ".atr", "")}
# WFDB storage formats -> bytes per sample on disk (https://physionet.org/physiotools/wag/signal-5.htm): 212
# packs two 12-bit samples in 3 bytes, 310 and 311 three 10-bit samples in 4; FLAC formats (508...) vary
WFDB_BYTES = {"8": 1.0, "16": 2.0, "24": 3.0, "32": 4.0, "61": 2.0, "80": 1.0, "160": 2.0, "212": 1.5,
              "310": 4 / 3, "311": 4 / 3}
# the digital value WFDB writes for "no sample" in each format (format 8 stores differences: none)
WFDB_INVALID = {"16": -32768, "24": -(2 ** 23), "32": -(2 ** 31), "61": -32768, "80": -128, "160": -32768,
                "212": -2048, "310": -512, "311": -512}


@dataclass
class Recording:
    """A whole recorded ECG lead, in its native rate, plus reference beats when annotated."""

    name: str
    signal: np.ndarray  # float64, physical units (mV for WFDB/EDF)
    fs: float
    lead: str
    annotations: Path | None = None  # a WFDB .atr file: reference beats, read (with wfdb) when first asked
    lead_index: int = 0  # the lead's 0-based index among the file's leads (what --lead N picks)
    _beats: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def ref_samples(self) -> np.ndarray | None:
        """Annotated beats (R peaks), sample indices; None without annotations."""
        beats = self.reference_beats()
        return None if beats is None else beats[0]

    @property
    def ref_symbols(self) -> np.ndarray | None:
        beats = self.reference_beats()
        return None if beats is None else beats[1]

    def reference_beats(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.annotations is None:
            return None
        if self._beats is None:
            self._beats = _read_beats(self.annotations)
        return self._beats


def check_signal(source: str | Path, x: np.ndarray, fs: float | None) -> None:
    """Checks every reader applies: rate, length, finite values, not a flat line."""
    if fs is None:
        raise InputError(source, "sampling rate unknown: give --fs HZ")
    if not fs >= MIN_FS:
        raise InputError(source, f"sampling rate {fs:g} Hz is below {MIN_FS:g} Hz, too low to find QRS complexes")
    if not fs <= MAX_FS:
        raise InputError(source, f"sampling rate {fs:g} Hz is above {MAX_FS:g} Hz: a corrupt header or a typo?")
    if len(x) == 0:
        raise InputError(source, "no samples")
    bad = np.flatnonzero(np.isinf(x))  # NaN is a missing sample (a gap: judged poor, skipped); inf is broken
    if len(bad):
        raise InputError(source, f"infinite value at sample {bad[0]}")
    valid = x[~np.isnan(x)]
    if len(valid) == 0:
        raise InputError(source, "no valid samples (all missing)")
    if float(np.ptp(valid)) < FLAT_MV:
        raise InputError(source, "flat-line signal (no variation): lead off or empty channel?")


def file_format(path: str | Path) -> str | None:
    """`wfdb`, `csv` or `edf` by the name (a WFDB record may be named without a suffix); None if unknown."""
    suffix = Path(path).suffix.lower()
    return next((fmt for fmt, suffixes in FORMAT_SUFFIXES.items() if suffix in suffixes), None)


def read_recording(path: str | Path, lead: str | None = None, fs: float | None = None) -> Recording:
    """Dispatch on the file type: WFDB record (name, .hea or .dat), .csv/.txt, .edf."""
    p = Path(path)
    fmt = file_format(p)
    if fmt == "csv":
        return read_csv(p, lead, fs)
    if fmt == "edf":
        return read_edf(p, lead)
    if fmt == "wfdb":
        return read_wfdb(p.with_suffix("") if p.suffix else p, lead)
    raise InputError(p, f"unknown file type {p.suffix.lower()!r} (expected a WFDB record, .csv or .edf)")


# --- WFDB -----------------------------------------------------------------------------------------

def read_ecg(path: str | Path, lead: str | None = None, fs: float | None = None) -> Recording:
    """An ECG file for the library: WFDB (`record`, `record.hea`), CSV (`fs` if it has no time column) or EDF;
    one lead (`lead`: name or 0-based index; default the first). Errors are one-line `InputError`s."""
    return read_recording(path, lead=lead, fs=fs)


def _pick_channel(source: str | Path, names: list[str], lead: str | None) -> int:
    """`lead` by name, else as a 0-based index; None: the first."""
    if lead is None:
        return 0
    if lead in names:
        return names.index(lead)
    if lead.isdigit() and int(lead) < len(names):
        return int(lead)
    listed = ", ".join(f"{i}: {name}" for i, name in enumerate(names))
    raise InputError(source, f"no lead {lead!r}; leads are {listed} (--lead takes a name or a 0-based index)")


def _check_dat_sizes(record: Path, files: dict[str, tuple[float, int]], n_samples: int | None) -> None:
    """Each .dat must hold exactly what the header says: catches truncated or mismatched files.

    `files`: file name -> (bytes per frame of the signals it holds, byte offset); 0 bytes: not checked."""
    for fname, (frame_bytes, offset) in files.items():
        dat = record.parent / fname
        if not dat.is_file():
            raise InputError(dat, f"signal file missing (named by {record.name}.hea)")
        if frame_bytes == 0 or n_samples is None:
            continue
        expected = int(np.ceil(n_samples * frame_bytes)) + offset
        actual = dat.stat().st_size
        if actual < expected:
            raise InputError(dat, f"truncated: header says {n_samples} samples ({expected} bytes), "
                                  f"file has {actual} bytes")
        if actual > expected + 4:  # a few padding bytes are allowed by some writers
            raise InputError(dat, f"header disagrees with data: header says {n_samples} samples "
                                  f"({expected} bytes), file has {actual} bytes")


def _check_checksum(dat: Path, digital: np.ndarray, checksum: int | None) -> None:
    """WFDB headers carry a 16-bit checksum of each signal: a mismatch means header and data disagree."""
    if checksum is None:
        return
    got = int(digital.sum()) & 0xFFFF
    want = int(checksum) & 0xFFFF
    if got != want:
        raise InputError(dat, f"header disagrees with data: checksum {got} != {want} in header")


def read_wfdb(record: Path, lead: str | None = None) -> Recording:
    """A WFDB record: the MIT-BIH storage formats with numpy (`wfdb_format`), anything else with wfdb."""
    hea = record.with_suffix(".hea")
    if not hea.is_file():
        raise InputError(hea, "no such WFDB header")
    try:
        header = wfdb_format.parse_header(hea.read_text(errors="replace"))
    except wfdb_format.Unsupported:
        return _read_wfdb_package(record, lead)
    except (ValueError, IndexError) as exc:
        raise InputError(hea, f"unreadable WFDB header ({exc})") from None
    names = [s.name or str(i) for i, s in enumerate(header.signals)]
    channel = _pick_channel(hea, names, lead)
    if not header.fs or not MIN_FS <= header.fs <= MAX_FS:  # the rate is the header's: name it
        check_signal(hea, np.zeros(2), header.fs or None)
    fs = float(header.fs or 0.0)  # checked above
    files: dict[str, tuple[float, int]] = {}
    for s in header.signals:
        files.setdefault(s.file, (wfdb_format.bytes_per_frame(tuple(x for x in header.signals if x.file == s.file)),
                                  s.offset))
    _check_dat_sizes(record, files, header.n_samples)
    sig = header.signals[channel]
    dat = record.parent / sig.file
    try:
        digital = wfdb_format.read_digital(record.parent, header, channel)
    except wfdb_format.Unsupported:
        return _read_wfdb_package(record, lead)
    _check_checksum(dat, digital, sig.checksum)
    x = wfdb_format.physical(digital, sig)
    check_signal(dat, x, fs)
    atr = record.with_suffix(".atr")
    return Recording(record.name, x, fs, names[channel], atr if atr.is_file() else None, channel)


def _read_wfdb_package(record: Path, lead: str | None) -> Recording:
    """Everything the numpy reader leaves out, with the wfdb package (the `wfdb` extra): other storage formats
    (8, 24, 32, 160, 310, 311, ...) and multi-segment records."""
    wfdb = need("wfdb", f"{record}: this WFDB record (format or layout)", "ecg")
    hea = record.with_suffix(".hea")
    try:
        header = wfdb.rdheader(str(record))
    except Exception as exc:  # wfdb raises several types for malformed headers
        raise InputError(hea, f"unreadable WFDB header ({_first_line(exc)})") from None
    if getattr(header, "seg_name", None):
        return _read_multi_segment(wfdb, record, header, lead)
    channel = _pick_channel(hea, list(header.sig_name or []), lead)
    if not header.fs or not MIN_FS <= header.fs <= MAX_FS:  # the rate is the header's: name it
        check_signal(hea, np.zeros(2), header.fs or None)
    offsets = dict(zip(header.file_name, header.byte_offset or [0] * len(header.file_name)))
    formats: dict[str, list[str]] = {}
    for fname, fmt in zip(header.file_name, header.fmt):
        formats.setdefault(fname, []).append(str(fmt))
    files = {f: (sum(WFDB_BYTES[x] for x in fmts) if all(x in WFDB_BYTES for x in fmts) else 0.0,
                 int(offsets.get(f) or 0)) for f, fmts in formats.items()}
    _check_dat_sizes(record, files, header.sig_len)
    dat = record.parent / header.file_name[channel]
    try:
        rec = wfdb.rdrecord(str(record), channels=[channel], physical=False, return_res=64)
    except Exception as exc:
        raise InputError(dat, f"header disagrees with data ({_first_line(exc)})") from None
    digital = np.asarray(rec.d_signal[:, 0], dtype=np.int64)
    _check_checksum(dat, digital, header.checksum[channel] if header.checksum else None)
    x = (digital - float(rec.baseline[0])) / (float(rec.adc_gain[0]) or wfdb_format.DEFAULT_GAIN)
    invalid = WFDB_INVALID.get(str(rec.fmt[0]))
    if invalid is not None:
        x[digital == invalid] = np.nan  # WFDB's "no sample here": a gap
    check_signal(dat, x, float(rec.fs))
    atr = record.with_suffix(".atr")
    return Recording(record.name, x, float(rec.fs), rec.sig_name[0], atr if atr.is_file() else None, channel)


def _read_multi_segment(wfdb: Any, record: Path, header: Any, lead: str | None) -> Recording:
    """A multi-segment record (common on PhysioNet): its segments joined by wfdb, the lead picked by name among
    the record's signals; a segment without that lead (a variable layout) becomes a gap (NaN)."""
    hea = record.with_suffix(".hea")
    if not header.fs or not MIN_FS <= header.fs <= MAX_FS:
        check_signal(hea, np.zeros(2), header.fs or None)
    for segment in header.seg_name:
        if segment != "~" and not (record.parent / f"{segment}.hea").is_file():
            raise InputError(record.parent / f"{segment}.hea", f"segment header missing (named by {hea.name})")
    try:
        rec = wfdb.rdrecord(str(record), m2s=True, return_res=64)
    except Exception as exc:
        raise InputError(hea, f"segments disagree with the header ({_first_line(exc)})") from None
    names = [str(n) for n in rec.sig_name]
    channel = _pick_channel(hea, names, lead)
    x = np.asarray(rec.p_signal[:, channel], dtype=np.float64)
    check_signal(hea, x, float(rec.fs))
    atr = record.with_suffix(".atr")
    return Recording(record.name, x, float(rec.fs), names[channel], atr if atr.is_file() else None, channel)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def _read_beats(atr: Path) -> tuple[np.ndarray, np.ndarray]:
    """Beat annotations (sample, symbol) of a WFDB .atr file (non-beat marks dropped), with wfdb."""
    wfdb = need("wfdb", f"{atr}: reading annotations", "ecg")
    try:
        ann = wfdb.rdann(str(atr.with_suffix("")), "atr")
    except Exception as exc:
        raise InputError(atr, f"unreadable annotation file ({exc})") from None
    symbols = np.asarray(ann.symbol)
    is_beat = np.isin(symbols, list(BEAT_SYMBOLS))
    return np.asarray(ann.sample)[is_beat].astype(np.int64), symbols[is_beat]


# --- CSV ------------------------------------------------------------------------------------------

def _parse_float(path: Path, text: str, line: int, column: str, missing_ok: bool = False) -> float:
    """A cell as a number; `missing_ok`: `nan` (a missing sample, a gap) is allowed."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, f"not a number: {text.strip()[:30]!r} in column {column!r}", f"line {line}") from None
    if np.isinf(value) or (np.isnan(value) and not missing_ok):
        raise InputError(path, f"{text.strip()} value in column {column!r}", f"line {line}")
    return value


def _blocks(rows: Iterator[tuple[int, list[str]]]) -> Iterator[list[tuple[int, list[str]]]]:
    """Rows in blocks of CSV_BLOCK: each block's cells are converted in one numpy call."""
    while block := list(itertools.islice(rows, CSV_BLOCK)):
        yield block


def _parse_column(path: Path, block: list[tuple[int, list[str]]], col: int, name: str,
                  missing_ok: bool = False) -> np.ndarray:
    """One column of a block of rows as numbers; a bad cell is found again cell by cell, to name its line."""
    try:
        x = np.array([row[col] for _, row in block], dtype=np.float64)
        if not np.isinf(x).any() and (missing_ok or not np.isnan(x).any()):
            return x
    except ValueError:
        pass
    return np.array([_parse_float(path, row[col], line, name, missing_ok) for line, row in block])


def _delimiter(path: Path, sample: str) -> str:
    """Tab (a .tsv, or tabs and no commas), semicolon (semicolons on every line: decimal commas likely), or
    comma."""
    lines = [ln for ln in sample.splitlines()[:20] if ln.strip()]
    if path.suffix.lower() == ".tsv" or ("\t" in sample and "," not in sample):
        return "\t"
    if lines and all(";" in ln for ln in lines):
        return ";"
    return ","


def _is_header(row: list[str]) -> bool:
    try:
        [float(c) for c in row if c.strip()]
        return False
    except ValueError:
        return True


def read_csv(path: Path, lead: str | None = None, fs: float | None = None) -> Recording:
    """CSV with one value column (or several: --lead picks by name or index) and an optional time column.

    A header row is optional. A column named `time`/`t`/`seconds` (or, with no header, a first column
    of 2+ columns when --fs is absent) gives the rate from its median step. Read row by row into compact
    arrays: memory is 8 bytes per sample (16 with a time column), not Python lists of every row (a 24-hour
    CSV took 8.3 GB that way).
    """
    if not path.is_file():
        raise InputError(path, "no such file")
    # utf-8-sig: a byte-order mark (as spreadsheet programs write) is not part of the first column's name
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        sample = f.read(4096)
        f.seek(0)
        delimiter = _delimiter(path, sample)
        reader = csv.reader(f, delimiter=delimiter)
        try:
            return _read_csv_rows(path, reader, delimiter, lead, fs)
        except csv.Error as exc:  # a NUL byte, a cell past the csv module's field size limit
            raise InputError(path, f"not a readable CSV file ({exc})", f"line {reader.line_num}") from None


def _read_csv_rows(path: Path, reader: Any, delimiter: str, lead: str | None, fs: float | None) -> Recording:
    """The rows of an open `csv.reader` (whose `line_num` gives the line of each row, for the messages)."""

    def rows() -> Iterator[tuple[int, list[str]]]:
        for row in reader:
            if row and (row[0].strip() or any(c.strip() for c in row)):  # blank rows skipped
                # the European convention: `;` between cells, a decimal comma inside them
                yield reader.line_num, ([c.replace(",", ".") for c in row] if delimiter == ";" else row)

    it = rows()
    first = next(it, None)
    if first is None:
        raise InputError(path, "empty file")
    has_header = _is_header(first[1])
    names = [c.strip() for c in first[1]] if has_header else None
    head = next(it, None) if names else first
    if head is None:
        raise InputError(path, "no data rows")
    width = len(head[1])
    if names is not None and len(names) != width:
        raise InputError(path, f"the header names {len(names)} columns, the first data row has {width}",
                         f"line {head[0]}")
    names = names or [str(i) for i in range(width)]
    time_col = next((i for i, n in enumerate(names) if n.lower() in ("time", "t", "seconds", "time_s")), None)
    if time_col is None and width >= 2 and fs is None and names[0] == "0":
        time_col = 0
    value_cols = [i for i in range(width) if i != time_col]
    if not value_cols:
        raise InputError(path, "no value column")
    # the leads are the value columns (a time column is not one): --lead 0 is the first of them
    leads = [names[i] for i in value_cols] if has_header else [str(k) for k in range(len(value_cols))]
    lead_index = _pick_channel(path, leads, lead)
    col = value_cols[lead_index]
    values, times, lines = array("d"), array("d"), array("q")
    for block in _blocks(itertools.chain([head], it)):
        for line, row in block:
            if len(row) != width:
                raise InputError(path, f"expected {width} columns, found {len(row)}", f"line {line}")
        values.extend(_parse_column(path, block, col, names[col], missing_ok=True))
        if time_col is not None:
            times.extend(_parse_column(path, block, time_col, names[time_col]))
            lines.extend(line for line, _ in block)
    x = np.frombuffer(values, dtype=np.float64)
    if time_col is not None and len(times) > 1:
        t = np.frombuffer(times, dtype=np.float64)
        if fs is None:
            fs = _rate_from_times(path, t, lines)
        else:
            _check_fs_against_times(path, fs, t, names[time_col])
    check_signal(path, x, fs)
    return Recording(path.stem, x, float(fs), leads[lead_index], lead_index=lead_index)  # type: ignore[arg-type]


def _check_fs_against_times(path: Path, fs: float, times: np.ndarray, column: str) -> None:
    """--fs given for a file whose time column gives a rate: they must agree, or one of them is wrong."""
    span = float(times[-1] - times[0])
    from_times = (len(times) - 1) / span if span > 0 else float("nan")
    if not abs(fs - from_times) <= FS_TOLERANCE * from_times:
        raise InputError(path, f"--fs {fs:g} Hz disagrees with the time column {column!r} ({from_times:.6g} Hz): "
                               "leave --fs out, the time column gives the rate")


def _rate_from_times(path: Path, times: np.ndarray, lines: Sequence[int]) -> float:
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
    pyedflib = need("pyedflib", f"{path}: EDF files", "ecg")

    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        with silence_c_stderr(stdout=True):  # pyedflib prints its complaints on stdout
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
    return Recording(path.stem, x, fs, labels[channel], lead_index=channel)



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
