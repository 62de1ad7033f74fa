"""PhysioNet records fetched once into a local cache, then read like any WFDB record.

`mitdb/208` -> `~/.cache/aestream/physionet/mitdb/208` (`.hea`, `.dat`, `.atr`), downloaded by wfdb's
`dl_database` into a hidden folder beside it and moved into place header last: a record whose `.hea` is in
the cache is complete, and a failed download leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path

from streamer.core.errors import InputError, StreamerError, need

# one part of a database or record name: `mitdb`, `208`, `p00` (never `..` or an absolute path)
NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ANNOTATORS = "all"  # every annotation file the database lists (MIT-BIH: `.atr`, the reference beats)


def cache_dir() -> Path:
    """`~/.cache/aestream/physionet`, or `$AESTREAM_CACHE/physionet` (the cache the music training data uses)."""
    root = os.environ.get("AESTREAM_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "aestream") / "physionet"


def parse_name(spec: str) -> tuple[str, str]:
    """`mitdb/208` -> (`mitdb`, `208`); a record may sit in sub-folders (`db/p00/r1`)."""
    parts = spec.strip().split("/")
    if len(parts) < 2 or not all(NAME_PART.fullmatch(p) and p != ".." for p in parts):
        raise InputError(spec, "not a PhysioNet record name: expected DATABASE/RECORD, e.g. mitdb/208")
    return parts[0], "/".join(parts[1:])


def fetch_record(spec: str, root: Path | None = None) -> tuple[Path, bool]:
    """(the local record path, whether it was downloaded now); a record already in the cache is not fetched."""
    database, record = parse_name(spec)
    folder = (root or cache_dir()) / database
    target = folder / record
    if _header(target).is_file():
        return target, False
    wfdb = need("wfdb", "downloading PhysioNet records", "ecg")
    partial = folder / f".partial-{record.replace('/', '_')}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        with contextlib.redirect_stdout(io.StringIO()):  # wfdb prints its progress on stdout
            wfdb.dl_database(database, str(partial), records=[record], annotators=ANNOTATORS, keep_subdirs=True)
        _move_into_place(spec, partial, folder, record)
    except FileNotFoundError:
        raise InputError(spec, "no such database or record on PhysioNet") from None
    except (OSError, ValueError) as exc:  # requests' connection errors are OSErrors; wfdb raises ValueError too
        raise StreamerError(f"{spec}: download from PhysioNet failed ({_reason(exc)}); nothing was kept") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target, True


def _header(record: Path) -> Path:
    return record.parent / (record.name + ".hea")


def _move_into_place(spec: str, partial: Path, folder: Path, record: str) -> None:
    files = sorted((f for f in partial.rglob("*") if f.is_file()), key=lambda f: f.suffix == ".hea")
    if not _header(partial / record).is_file():
        raise InputError(spec, "PhysioNet sent no header for this record")
    for f in files:  # headers last: a header in the cache means its record is complete
        dest = folder / f.relative_to(partial)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, dest)


def _reason(exc: BaseException) -> str:
    import requests  # wfdb's HTTP client: imported with wfdb

    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError,
                        TimeoutError)):
        return "cannot reach physionet.org: no network, or the site is down"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:120]}" if text else type(exc).__name__
