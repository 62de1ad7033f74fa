"""The audio stream through the engine, with closed-form ONNX models on real music."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamer.audio.levels import dbfs
from streamer.audio.outputs import ReconstructionSink
from streamer.audio.report import AudioReport
from streamer.core.errors import ModelError
from streamer.core.model import load_model
from streamer.core.modelmeta import AUDIO_TASK, ECG_TASK
from streamer.run.engine import Engine, RunPlan
from streamer.run.pacing import MAX_SPEED, Pacer
from streamer.run.sources import ArraySource
from tests.audio_fixtures import bach_fixture, load_stereo
from tests.onnx_models import dct_codec, gain_model


class Collect:
    """A sample writer (as WavSink and Player are) that keeps what it is given."""

    def __init__(self) -> None:
        self.got: list[np.ndarray] = []
        self.closed = False

    def write(self, samples: np.ndarray) -> None:
        self.got.append(np.asarray(samples).copy())

    def drops(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        self.closed = True

    def samples(self) -> np.ndarray:
        return np.concatenate(self.got) if self.got else np.zeros(0)


def _engine(model_path: Path, x: np.ndarray, name: str, block_s: float, **options: object
            ) -> tuple[np.ndarray, dict]:  # type: ignore[type-arg]
    """The run path of `streamer audio`: ArraySource -> model.stream(...) -> reconstruction sink + report."""
    stream = load_model(model_path, task=AUDIO_TASK).stream(rate=8000, **options)
    writer = Collect()
    plan = RunPlan(name, ArraySource(x, 8000, name, block_s), stream, [ReconstructionSink(writer)],
                   AudioReport(stream))
    summary = Engine(plan, Pacer(MAX_SPEED)).run()
    assert writer.closed  # the engine closes its sinks
    return writer.samples(), summary


def _run(model_path: Path, x: np.ndarray, hop: int | None = None, block_s: float = 0.3,
         known_peak: float | None = None) -> tuple[np.ndarray, dict]:  # type: ignore[type-arg]
    peak = float(np.abs(x).max()) if known_peak is None else known_peak
    return _engine(model_path, x, "clip", block_s, hop=hop, peak=peak)


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
    y, s = _engine(gain_model(tmp_path / "half.onnx", 0.5), x, "live", 0.064, hop=2048)  # no peak: running
    assert s["peak_gain"].startswith("running peak")
    np.testing.assert_allclose(y, 0.5 * x, atol=1e-6)


def test_wrong_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="needs 'audio-codec'"):
        load_model(gain_model(tmp_path / "ecg.onnx", task=ECG_TASK), task=AUDIO_TASK)
    dct_codec(tmp_path)
    with pytest.raises(ModelError, match="encoder alone"):
        load_model(tmp_path / "dct.encoder.onnx", task=AUDIO_TASK).stream()


def test_stereo_at_its_own_rate_is_converted_at_the_stream_edge(tmp_path: Path,
                                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """A source at 22050 Hz stereo, as a device now gives it (the rendered chorale): the stream mixes and
    resamples it once; the report meters the input level of the mono mix."""
    import soxr

    x, rate = load_stereo(bach_fixture(tmp_path_factory))
    x = x[: 6 * rate]
    stream = load_model(gain_model(tmp_path / "identity.onnx"), task=AUDIO_TASK).stream(rate=rate, channels=2,
                                                                                         hop=2048)
    writer, report = Collect(), AudioReport(stream)
    source = ArraySource(x, rate, "stereo", 0.064)
    s = Engine(RunPlan("stereo", source, stream, [ReconstructionSink(writer)], report), Pacer(MAX_SPEED)).run()
    expected = soxr.resample(x.mean(axis=1, dtype=np.float32), rate, 8000, quality="HQ")
    y = writer.samples()
    assert len(y) == len(expected) == s["samples_out"] == 6 * 8000 and s["duration_s"] == pytest.approx(6.0)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert np.max(np.abs(y - soxr.resample(x[:, 0], rate, 8000))) > 0.01  # both channels, not the left one
    last = x[(len(x) - 1) // source.block * source.block:].astype(np.float64)
    assert report.view()["meters"][0]["text"] == f"{dbfs(last.mean(axis=1)):.1f} dBFS"
