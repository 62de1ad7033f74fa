"""Readers on real data: CSV and EDF copies of a WFDB record read back the same; leads are picked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamer.core.errors import InputError
from streamer.ecg.readers import find_records, read_recording

from .conftest import mitdb_record


def test_wfdb_reads_beats_without_rhythm_marks() -> None:
    rec = read_recording(mitdb_record("100"))
    assert rec.fs == 360 and rec.lead == "MLII" and len(rec.signal) == 650000
    assert rec.ref_symbols is not None and "+" not in set(rec.ref_symbols)
    assert len(rec.ref_samples) == 2273  # the shared data README's beat count for record 100


def test_lead_by_name_and_index() -> None:
    v5 = read_recording(mitdb_record("100"), lead="V5")
    assert v5.lead == "V5"
    assert np.array_equal(read_recording(mitdb_record("100"), lead="1").signal, v5.signal)
    assert v5.lead_index == 1 and read_recording(mitdb_record("100")).lead_index == 0
    # the error lists the leads with the 0-based indices --lead takes
    with pytest.raises(InputError, match=r"no lead 'V1'; leads are 0: MLII, 1: V5 \(.*0-based index\)"):
        read_recording(mitdb_record("100"), lead="V1")
    with pytest.raises(InputError, match="no lead '2'; leads are 0: MLII, 1: V5"):
        read_recording(mitdb_record("100"), lead="2")


def test_csv_with_time_column_matches_wfdb(tmp_path: Path) -> None:
    rec = read_recording(mitdb_record("106"))
    x = rec.signal[:3600]
    path = tmp_path / "two.csv"
    path.write_text("time,MLII,other\n" + "\n".join(f"{i / 360:.6f},{v:.3f},{-v:.3f}" for i, v in enumerate(x)))
    got = read_recording(path)
    assert got.fs == pytest.approx(360.0, rel=1e-6) and got.lead == "MLII"
    assert np.allclose(got.signal, x, atol=1e-3)
    assert np.allclose(read_recording(path, lead="other").signal, -x, atol=1e-3)
    # leads are the value columns, counted from 0 without the time column
    assert got.lead_index == 0
    by_index = read_recording(path, lead="1")
    assert by_index.lead == "other" and by_index.lead_index == 1 and np.allclose(by_index.signal, -x, atol=1e-3)
    with pytest.raises(InputError, match="leads are 0: MLII, 1: other"):
        read_recording(path, lead="2")


def test_fs_disagreeing_with_the_time_column_is_refused(tmp_path: Path) -> None:
    """A CSV's time column gives its rate: an --fs that agrees is fine, one that does not is an error."""
    x = read_recording(mitdb_record("106")).signal[:3600]
    path = tmp_path / "timed.csv"
    path.write_text("time,MLII\n" + "\n".join(f"{i / 360:.6f},{v:.3f}" for i, v in enumerate(x)))
    assert read_recording(path, fs=360.0).fs == 360.0
    with pytest.raises(InputError, match=r"--fs 250 Hz disagrees with the time column 'time' \(360 Hz\)"):
        read_recording(path, fs=250.0)


def test_csv_without_header_needs_fs(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    x = read_recording(mitdb_record("106")).signal[:3600]
    path.write_text("\n".join(f"{v:.3f}" for v in x) + "\n")
    assert read_recording(path, fs=360.0).fs == 360.0
    with pytest.raises(InputError, match="--fs"):
        read_recording(path)


def test_find_records_in_folder_and_by_name(tmp_path: Path) -> None:
    folder = mitdb_record("106").parent
    found = find_records([folder])
    assert any(p.name == "106" for p in found) and all(p.with_suffix(".hea").is_file() for p in found)
    assert find_records([folder / "106.hea"]) == [folder / "106"]
    with pytest.raises(InputError, match="no WFDB records"):
        find_records([tmp_path])
