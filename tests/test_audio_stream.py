"""The audio stream through the engine, with closed-form ONNX models on real music."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamer.audio.task import AudioTask
from streamer.run.engine import Engine
from streamer.core.errors import ModelError
from streamer.core.model import Model
from streamer.core.modelmeta import ECG_TASK
from streamer.run.pacing import MAX_SPEED, Pacer
from streamer.run_audio import open_autoencoder
from streamer.run.sources import ArraySource
from tests.onnx_models import dct_codec, gain_model


def _run(model_path: Path, x: np.ndarray, hop: int | None = None, block_s: float = 0.3,
         known_peak: float | None = None) -> tuple[np.ndarray, dict]:  # type: ignore[type-arg]
    model = Model(model_path)
    got: list[np.ndarray] = []
    peak = float(np.abs(x).max()) if known_peak is None else known_peak
    task = AudioTask(model, hop=hop, known_peak=peak, outputs=[got.append])
    engine = Engine(ArraySource(x, 8000, "clip", block_s), task, model, Pacer(MAX_SPEED))
    summary = engine.run()
    return (np.concatenate(got) if got else np.zeros(0)), summary


@pytest.mark.parametrize("hop", [4096, 2048])
def test_gain_model_gives_exact_snr(tmp_path: Path, music_8k: np.ndarray, hop: int) -> None:
    x = music_8k[: 8000 * 7 + 11]
    y, s = _run(gain_model(tmp_path / "half.onnx", 0.5), x, hop=hop)
    assert len(y) == len(x)
    np.testing.assert_allclose(y, 0.5 * x, atol=1e-6)  # the peak normalisation is undone on output
    assert s["snr_db"] == pytest.approx(20 * np.log10(2), abs=1e-3)
    assert s["snr_db_median_frame"] == pytest.approx(20 * np.log10(2), abs=1e-3)
    frames = -(-len(x) // 4096) if hop == 4096 else -(-(len(x) + 2048) // 2048)
    assert s["frames"] == frames and s["samples_out"] == len(x) and s["dropped"] == 0
    assert s["latency_ms"]["p50"] > 0 and s["realtime_factor"] > 0


def test_identity_through_the_engine_with_any_block_size(tmp_path: Path, music_8k: np.ndarray) -> None:
    x = music_8k[: 8000 * 5]
    model = gain_model(tmp_path / "identity.onnx", 1.0)
    a, _ = _run(model, x, hop=1024, block_s=0.0131)
    b, s = _run(model, x, hop=1024, block_s=3.0)
    np.testing.assert_allclose(a, x, atol=1e-6)
    np.testing.assert_array_equal(a, b)
    assert s["snr_db"] is None or s["snr_db"] > 100  # exact up to float32


def test_codec_figures_and_edges(tmp_path: Path, music_8k: np.ndarray) -> None:
    """The DCT low-pass codec: per-frame SNR equals a direct computation; overlap-add removes its clicks."""
    from scipy.fft import dct, idct

    x = music_8k[: 8000 * 20]
    model = dct_codec(tmp_path)
    y, plain = _run(model, x)
    frames = np.zeros(-(-len(x) // 4096) * 4096)
    frames[:len(x)] = x
    frames = frames.reshape(-1, 4096)
    c = dct(frames, norm="ortho", axis=1)
    c[:, 1024:] = 0
    expected = idct(c, norm="ortho", axis=1).reshape(-1)[:len(x)]
    np.testing.assert_allclose(y, expected, atol=1e-5)
    _, ola = _run(model, x, hop=2048)
    assert plain["edge_jump_ratio"] > 1.5 * plain["edge_jump_ratio_input"]
    assert abs(ola["edge_jump_ratio"] / ola["edge_jump_ratio_input"] - 1) < 0.1


def test_silent_input_reports_snr_undefined(tmp_path: Path) -> None:
    y, s = _run(gain_model(tmp_path / "identity.onnx"), np.zeros(8000 * 2), hop=2048)
    assert len(y) == 16000 and not y.any()
    assert s["snr_db"] is None and s["snr_db_median_frame"] is None
    assert s["silent_frames"] == s["frames"] > 0 and "silent" in s["snr_note"]


def test_live_normalisation_is_undone(tmp_path: Path, music_8k: np.ndarray) -> None:
    """With a running (live) peak the gain changes between frames; the output level must not."""
    x = music_8k[: 8000 * 6] * 0.2
    model = Model(gain_model(tmp_path / "half.onnx", 0.5))
    got: list[np.ndarray] = []
    task = AudioTask(model, hop=2048, known_peak=None, outputs=[got.append])
    Engine(ArraySource(x, 8000, "live", 0.064), task, model, Pacer(MAX_SPEED)).run()
    np.testing.assert_allclose(np.concatenate(got), 0.5 * x, atol=1e-6)


def test_wrong_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="needs 'audio-codec'"):
        Model(gain_model(tmp_path / "ecg.onnx", task=ECG_TASK), task="audio-codec")
    dct_codec(tmp_path)
    with pytest.raises(ModelError, match="encoder alone"):
        open_autoencoder(tmp_path / "dct.encoder.onnx", 1)
