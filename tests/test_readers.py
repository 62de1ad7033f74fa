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


def _real_digital(n: int = 3600 * 5) -> np.ndarray:
    """Record 100's two leads (ADC values) for `n` samples, moved into 10-bit range (formats 310/311)."""
    import wfdb

    d = wfdb.rdrecord(str(mitdb_record("100")), sampto=n, physical=False).d_signal.astype(np.int64)
    return np.clip(d - 1024, -512, 511)


@pytest.mark.parametrize("fmt", ["8", "310", "311"])
def test_wfdb_formats_the_numpy_reader_leaves_to_wfdb(tmp_path: Path, fmt: str) -> None:
    """Valid records in formats 8 (first differences), 310 and 311 (three 10-bit samples in 4 bytes): read as
    wfdb reads them. 310/311 were refused as "header disagrees with data" (their size counted at 10 bits per
    sample), format 8 ended in a traceback."""
    import wfdb

    from .wfdb_formats import write_record

    record = write_record(tmp_path, f"r{fmt}", _real_digital(), fmt)
    for lead in ("MLII", "V5"):
        rec = read_recording(record, lead=lead)
        want = wfdb.rdrecord(str(record), channel_names=[lead]).p_signal[:, 0]
        assert rec.fs == 360 and rec.lead == lead and np.allclose(rec.signal, want, atol=1e-9)
    if fmt != "8":  # the values written are the values read
        assert np.allclose(read_recording(record).signal * 200, _real_digital()[:, 0], atol=1e-6)


def test_a_multi_segment_record_is_read_joined(tmp_path: Path) -> None:
    """A multi-segment record (PhysioNet's long recordings): its segments joined, the lead picked by name. A
    segment header that is missing is named in one line."""
    import wfdb

    d = _real_digital()
    for i, part in enumerate((d[:9000], d[9000:])):
        wfdb.wrsamp(f"seg{i}", fs=360, units=["mV", "mV"], sig_name=["MLII", "V5"], d_signal=part, fmt=["16", "16"],
                    adc_gain=[200, 200], baseline=[0, 0], write_dir=str(tmp_path))
    (tmp_path / "long.hea").write_text(f"long/2 2 360 {len(d)}\nseg0 9000\nseg1 {len(d) - 9000}\n")
    rec = read_recording(tmp_path / "long", lead="V5")
    assert rec.lead == "V5" and rec.lead_index == 1 and np.allclose(rec.signal * 200, d[:, 1])
    (tmp_path / "seg1.hea").unlink()
    with pytest.raises(InputError, match="seg1.hea: segment header missing"):
        read_recording(tmp_path / "long")


@pytest.mark.parametrize(("record_line", "problem"), [
    ("x 2 360 1000", "header names 2 signals but describes 0"),
    ("x 0 360 1000", "names 0 signals"),
    ("x", "without a number of signals"),
    ("x 1 360 -5", "names -5 samples")])
def test_a_header_with_only_its_record_line(tmp_path: Path, record_line: str, problem: str) -> None:
    (tmp_path / "x.hea").write_text(record_line + "\n")
    with pytest.raises(InputError, match=problem):
        read_recording(tmp_path / "x")


def test_the_numpy_reader_equals_wfdb_on_every_shared_record(tmp_path: Path) -> None:
    """Every shared record (format 16), and record 100 rewritten in formats 212 and 80: the numpy reader gives
    wfdb.rdrecord's samples exactly."""
    import wfdb

    from .conftest import MITDB

    for hea in sorted(MITDB.glob("*.hea")):
        record = hea.with_suffix("")
        want = wfdb.rdrecord(str(record), channels=[0]).p_signal[:, 0]
        assert np.array_equal(read_recording(record).signal, want), record.name
    d = wfdb.rdrecord(str(mitdb_record("100")), sampto=360 * 60, physical=False).d_signal
    for fmt, digital in (("212", np.clip(d, -2048, 2047)), ("80", np.clip(d // 8, -127, 127))):
        wfdb.wrsamp(f"r{fmt}", fs=360, units=["mV"], sig_name=["MLII"], d_signal=digital[:, :1], fmt=[fmt],
                    adc_gain=[200], baseline=[0], write_dir=str(tmp_path))
        want = wfdb.rdrecord(str(tmp_path / f"r{fmt}")).p_signal[:, 0]
        assert np.array_equal(read_recording(tmp_path / f"r{fmt}").signal, want), fmt


def test_a_csv_whose_rows_are_wider_than_its_header(tmp_path: Path) -> None:
    """A decimal comma in a comma-separated file makes a row one cell wider than the header (found by the
    fuzzer: it was an IndexError)."""
    path = tmp_path / "ecg.csv"
    path.write_text("time,mlii\n0.000,1,5\n0.003,2.0\n")
    with pytest.raises(InputError, match=r"ecg.csv \(line 2\): the header names 2 columns, the first data row has 3"):
        read_recording(path)
