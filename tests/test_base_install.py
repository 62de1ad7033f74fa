"""The base install (`pip install aestream`, no extras) in a fresh virtualenv: only what the engine and the
library need (no pandas, matplotlib, aiohttp, OpenCV, TensorFlow), small enough for an edge device, and it
runs the API on a real ECG record and a real music clip. A format whose extra is missing is one line."""

from __future__ import annotations

import subprocess
import textwrap
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAX_VENV_MB = 350  # the bound: numpy, scipy and onnxruntime alone are ~330 MB
FORBIDDEN = {"pandas", "matplotlib", "aiohttp", "opencv-python", "opencv-python-headless", "tensorflow",
             "tensorflow-cpu", "wfdb", "soundfile", "sounddevice"}


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("base") / "venv"
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"base install failed: {result.stderr[-2000:]}")
    return folder


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def test_base_install_is_small_and_has_no_heavy_packages(base_venv: Path) -> None:
    listed = subprocess.run([str(base_venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout
    installed = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"numpy", "onnxruntime", "aestream"} <= installed
    assert not installed & FORBIDDEN, installed & FORBIDDEN
    assert _size_mb(base_venv) <= MAX_VENV_MB


def test_base_install_runs_the_library_on_real_signals(base_venv: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, wave
        import numpy as np
        import streamer
        from streamer.ecg.readers import read_recording

        rec = read_recording({str(ROOT / "samples" / "ecg" / "106")!r})  # the built-in WFDB reader
        ecg = streamer.load_model({str(ROOT / "samples" / "models" / "ecg.onnx")!r}).stream(rate=rec.fs)
        beats = ecg.feed(rec.signal) + ecg.flush()
        with wave.open({str(ROOT / "samples" / "audio" / "bach.wav")!r}) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
            rate = w.getframerate()
        music = streamer.load_model({str(ROOT / "samples" / "models" / "music.onnx")!r}).stream(rate=rate)
        frames = music.feed(pcm) + music.flush()
        out = np.concatenate([f.samples for f in frames])
        ref = np.concatenate([f.reference for f in frames])
        snr = 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - out) ** 2))
        print(len(beats), sum(b.anomaly for b in beats), len(out), len(pcm), round(float(snr), 2),
              "scipy.signal" in sys.modules, "pandas" in sys.modules)
    """)
    out = subprocess.run([str(base_venv / "bin" / "python"), "-c", script], capture_output=True, text=True,
                         cwd=base_venv)
    assert out.returncode == 0, out.stderr[-3000:]
    n_beats, n_anomalies, n_out, n_in, snr, signal_imported, pandas_imported = out.stdout.split()
    assert int(n_beats) > 2000 and int(n_anomalies) > 300  # record 106: ~2027 beats, ~520 PVCs
    assert int(n_out) == int(n_in) and float(snr) > 10
    assert signal_imported == "False" and pandas_imported == "False"


@pytest.mark.parametrize("args, extra", [
    (["images", "{root}/samples/images", "--model", "{root}/samples/models/denoise.onnx"], "images"),
    (["audio", "--file", "{root}/samples/audio/bach.wav", "--model", "{root}/samples/models/music.onnx"], "audio"),
    (["ecg", "{root}/samples/ecg/106", "--speed", "max", "--model", "{root}/samples/models/ecg.onnx"], "ecg"),
    (["ecg", "{root}/samples/ecg/106", "--speed", "max", "--model", "{root}/samples/models/ecg.onnx",
      "--report", "report-out"], "report"),  # refused before the run, not after it
])
def test_missing_extra_is_one_line(base_venv: Path, args: list[str], extra: str) -> None:
    cmd = [str(base_venv / "bin" / "streamer"), *[a.format(root=ROOT) for a in args], "--no-dashboard"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=base_venv)
    if extra == "ecg":  # the replay works (built-in WFDB reader); only the annotations need wfdb
        assert result.returncode == 0, result.stderr
        assert f"aestream[{extra}]" in result.stdout and "Traceback" not in result.stderr
        return
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'aestream[{extra}]'" in lines[0], result.stderr
