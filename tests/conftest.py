"""Shared fixtures. All data is real: MIT-BIH records from ../shared/data/mitdb (or the copy of record 106
shipped in samples/ecg), and the shipped models in samples/models."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
SAMPLE_RECORD = ROOT / "samples" / "ecg" / "106"
MODELS = ROOT / "samples" / "models"


def in_foreground() -> None:
    """`preexec_fn` for a child that a test interrupts with SIGINT, as Ctrl-C in a terminal does: Ctrl-C
    reaches a foreground program, whose SIGINT is the default. A test run started in the background
    (`nohup ... &`) would otherwise pass on an ignored SIGINT, and Python would never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def mitdb_record(name: str) -> Path:
    path = MITDB / name
    if not path.with_suffix(".hea").is_file():
        if name == "106":
            return SAMPLE_RECORD
        pytest.skip(f"shared MIT-BIH record {name} not available at {MITDB}")
    return path


@pytest.fixture(scope="session")
def ecg_model() -> Path:
    return MODELS / "ecg.onnx"


@pytest.fixture(scope="session")
def ecg5000_model() -> Path:
    return MODELS / "ecg5000.onnx"


def write_slice(src: Path, dest_dir: Path, name: str, start_s: float, seconds: float,
                with_annotations: bool = True) -> Path:
    """Write seconds [start_s, start_s + seconds) of a real WFDB record as a new WFDB record (via wfdb)."""
    import wfdb

    rec = wfdb.rdrecord(str(src), channels=[0], physical=False)
    fs = rec.fs
    a, b = int(start_s * fs), int((start_s + seconds) * fs)
    d = rec.d_signal[a:b].astype(np.int16)
    wfdb.wrsamp(name, fs=fs, units=rec.units, sig_name=rec.sig_name, d_signal=d, fmt=["16"],
                adc_gain=rec.adc_gain, baseline=rec.baseline, write_dir=str(dest_dir))
    if with_annotations:
        ann = wfdb.rdann(str(src), "atr", sampfrom=a, sampto=b - 1, shift_samps=True)
        wfdb.wrann(name, "atr", np.asarray(ann.sample), symbol=list(ann.symbol), write_dir=str(dest_dir))
    return dest_dir / name


@pytest.fixture()
def slice106(tmp_path: Path) -> Path:
    """Two minutes of record 106 (frequent PVCs), written as its own WFDB record."""
    return write_slice(mitdb_record("106"), tmp_path, "s106", 60.0, 120.0)


SAMPLE_AUDIO = ROOT / "samples" / "audio"


@pytest.fixture(scope="session")
def music_wav() -> Path:
    """A real music recording: the shipped sample clip (or the file named by $AESTREAM_TEST_AUDIO)."""
    import os

    override = os.environ.get("AESTREAM_TEST_AUDIO")
    candidates = [Path(override)] if override else sorted(SAMPLE_AUDIO.glob("*.wav"))
    if not candidates or not candidates[0].is_file():
        pytest.skip("no sample audio clip in samples/audio")
    return candidates[0]


@pytest.fixture(scope="session")
def music_8k(music_wav: Path) -> np.ndarray:
    """The clip as the models see it: mono, 8 kHz, float64."""
    import soundfile as sf
    import soxr

    x, rate = sf.read(str(music_wav), dtype="float64", always_2d=True)
    mono = x.mean(axis=1)
    return mono if rate == 8000 else soxr.resample(mono, rate, 8000).astype(np.float64)
