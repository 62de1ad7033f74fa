"""Audio files, resampling and the WAV sink, on real music (a rendered Bach chorale, see audio_fixtures)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from streamer.audio.files import FileSource, read_audio, wav_data_chunk
from streamer.audio.resample import StreamResampler, mono
from streamer.audio.wavsink import WavSink, to_pcm16, wav_header, write_wav
from streamer.core.errors import InputError, StreamerError
from streamer.run.sources import Timing

from .audio_fixtures import bach_fixture, load_stereo
from .fakemic import CLI_WRAPPER, ROOT

MODEL_RATE = 8000  # Hz, the music model's rate


@pytest.fixture(scope="session")
def bach(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bach_fixture(tmp_path_factory)


@pytest.fixture(scope="session")
def stereo(bach: Path) -> tuple[np.ndarray, int]:
    return load_stereo(bach)


def odd_blocks(x: np.ndarray, seed: int) -> list[np.ndarray]:
    """Cut x into random block sizes from 0 to 4999 frames (empty and 1-frame blocks included)."""
    rng = np.random.default_rng(seed)
    sizes = np.concatenate([[0, 1, 1, 7], rng.integers(0, 5000, size=len(x) // 2000 + 10)])
    cuts = np.minimum(np.cumsum(sizes), len(x))
    return [*np.split(x, cuts), x[cuts[-1]:]]


def stream(resampler: StreamResampler, blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([resampler.process(b) for b in blocks] + [resampler.flush()])


# --- resampling -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device_rate", [44100, 48000])
def test_streaming_resampler_equals_one_shot(stereo: tuple[np.ndarray, int], device_rate: int) -> None:
    x, rate = stereo
    at_device = soxr.resample(x, rate, device_rate).astype(np.float32)  # stereo, as a device would give it
    reference = soxr.resample(at_device.mean(axis=1), device_rate, MODEL_RATE, quality="HQ")
    resampler = StreamResampler(device_rate, MODEL_RATE, 2)
    blocks = odd_blocks(at_device, seed=device_rate)
    pieces = [resampler.process(b) for b in blocks]
    assert sum(len(p) == 0 for p in pieces[:8]) >= 4  # soxr holds back its filter delay at first
    out = np.concatenate(pieces + [resampler.flush()])
    assert out.dtype == np.float32 and out.ndim == 1
    assert len(out) == len(reference) == round(len(at_device) * MODEL_RATE / device_rate)
    np.testing.assert_allclose(out, reference, atol=1e-6)
    assert np.std(out) > 0.01  # real music went through, not silence


def test_mono_mix_is_the_mean_of_channels(stereo: tuple[np.ndarray, int]) -> None:
    x, rate = stereo
    left, right = x[:, 0], x[:, 1]
    assert np.max(np.abs(left - right)) > 0.01  # the render really is stereo
    out = stream(StreamResampler(rate, MODEL_RATE, 2), odd_blocks(x, seed=1))
    expected = soxr.resample((left.astype(np.float64) + right) / 2, rate, MODEL_RATE, quality="HQ")
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # the sum (or one channel) would be far off
    assert np.max(np.abs(out - 2 * expected)) > 0.1
    assert np.max(np.abs(out - soxr.resample(left, rate, MODEL_RATE))) > 0.01


def test_passthrough_and_shapes(stereo: tuple[np.ndarray, int]) -> None:
    x, rate = stereo
    same = StreamResampler(rate, rate, 2)
    np.testing.assert_array_equal(stream(same, odd_blocks(x[:20000], seed=2)), x[:20000].mean(axis=1))
    assert StreamResampler(rate, rate, 1).process(x[:5, 0]).shape == (5,)
    np.testing.assert_array_equal(mono(x[:10, :1], 1), x[:10, 0])
    with pytest.raises(ValueError, match="3 channels"):
        StreamResampler(rate, MODEL_RATE, 2).process(np.zeros((10, 3)))


def test_flush_resets_for_a_new_signal(stereo: tuple[np.ndarray, int]) -> None:
    x = stereo[0][:30000]
    resampler = StreamResampler(stereo[1], MODEL_RATE, 2)
    first = stream(resampler, odd_blocks(x, seed=3))
    second = stream(resampler, odd_blocks(x, seed=4))
    np.testing.assert_array_equal(first, second)


# --- reading files ----------------------------------------------------------------------------------------


def test_read_wav_resamples_to_mono_at_model_rate(bach: Path, stereo: tuple[np.ndarray, int]) -> None:
    x, rate = stereo
    signal, native = read_audio(bach, MODEL_RATE)
    assert native == rate == 22050
    assert signal.dtype == np.float32
    reference = soxr.resample(x.mean(axis=1), rate, MODEL_RATE, quality="HQ")
    np.testing.assert_allclose(signal, reference, atol=1e-6)
    assert abs(len(signal) / MODEL_RATE - 25.3) < 0.2


def test_read_flac_equals_wav_and_lossy_formats_match(tmp_path: Path, stereo: tuple[np.ndarray, int]) -> None:
    x, rate = stereo
    x = x[: 8 * rate]
    reference = soxr.resample(x.mean(axis=1), rate, MODEL_RATE, quality="HQ")
    for ext in ("flac", "ogg", "mp3"):
        path = tmp_path / f"bach.{ext}"
        sf.write(str(path), x, rate)
        signal, native = read_audio(path, MODEL_RATE)
        assert native == rate
        if ext == "flac":  # lossless: the same 16-bit samples as the WAV render
            np.testing.assert_allclose(signal, reference, atol=1e-6)
            continue
        assert abs(len(signal) - len(reference)) < 0.02 * len(reference), ext
        n = min(len(signal), len(reference))
        corr = np.corrcoef(signal[:n], reference[:n])[0, 1]
        assert corr > 0.9, (ext, corr)


def test_silent_file_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(str(path), np.zeros(44100), 44100, subtype="PCM_16")
    signal, native = read_audio(path, MODEL_RATE)
    assert native == 44100 and len(signal) == MODEL_RATE and not signal.any()


def expect_input_error(path: Path, *needles: str) -> str:
    with pytest.raises(InputError) as info:
        read_audio(path, MODEL_RATE)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    for needle in needles:
        assert needle in message, message
    return message


def test_missing_directory_and_empty_files(tmp_path: Path) -> None:
    expect_input_error(tmp_path / "nope.wav", "no such file")
    expect_input_error(tmp_path, "is a directory")
    (tmp_path / "empty.wav").write_bytes(b"")
    expect_input_error(tmp_path / "empty.wav", "empty file")


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are my notes, not audio\n" * 20)
    expect_input_error(path, "not an audio file", "Format not recognised")


def test_truncated_wav(tmp_path: Path, bach: Path) -> None:
    data = bach.read_bytes()
    frames = sf.info(str(bach)).frames
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 4 * 100_000 + 3])  # 100000 whole frames (16-bit stereo) and part of one
    expect_input_error(cut, f"truncated: header says {frames} frames, file holds 100000")
    assert sf.info(str(cut)).frames == 100_000  # what libsndfile alone would have read, silently


def test_header_only_and_zero_frame_wavs(tmp_path: Path, bach: Path) -> None:
    frames = sf.info(str(bach)).frames
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(bach.read_bytes()[:44])
    expect_input_error(header_only, f"header says {frames} frames, file holds 0")
    empty = tmp_path / "zero.wav"
    sf.write(str(empty), np.zeros(0), 8000, subtype="PCM_16")
    expect_input_error(empty, "no samples")


def test_truncated_flac_and_mp3(tmp_path: Path, stereo: tuple[np.ndarray, int]) -> None:
    x, rate = stereo
    x = x[: 6 * rate]
    for ext in ("flac", "mp3"):
        full = tmp_path / f"full.{ext}"
        sf.write(str(full), x, rate)
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        expect_input_error(cut, "truncated", f"header says {len(x)} frames")


def test_non_finite_samples(tmp_path: Path, stereo: tuple[np.ndarray, int]) -> None:
    x = stereo[0][:20000].copy()
    x[12345, 1] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(str(path), x, stereo[1], subtype="FLOAT")
    expect_input_error(path, "non-finite", "frame 12345")


READ = """
from streamer.audio.files import read_audio
def main():
    read_audio(sys.argv[1], 8000)
_cli(main)
"""


@pytest.mark.parametrize("damage", ["text", "truncated_wav", "truncated_mp3", "empty"])
def test_bad_files_end_in_one_line(tmp_path: Path, bach: Path, stereo: tuple[np.ndarray, int], damage: str) -> None:
    """As the CLI reports them: one line on stderr (no libsndfile or mpg123 notes), exit code 2."""
    path = tmp_path / ("bad.mp3" if damage == "truncated_mp3" else "bad.wav")
    if damage == "text":
        path.write_text("not audio\n")
    elif damage == "truncated_wav":
        path.write_bytes(bach.read_bytes()[:100_001])
    elif damage == "truncated_mp3":
        sf.write(str(tmp_path / "full.mp3"), stereo[0][: 5 * stereo[1]], stereo[1])
        path.write_bytes((tmp_path / "full.mp3").read_bytes()[:20_000])
    else:
        path.write_bytes(b"")
    result = subprocess.run([sys.executable, "-c", CLI_WRAPPER + READ, str(path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(path)), result.stderr
    assert "Traceback" not in result.stderr


def test_librosa_fallback_when_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "exotic.xyz"
    path.write_bytes(b"\x00not a format libsndfile knows" * 10)
    expect_input_error(path, "not an audio file")  # librosa is not a dependency: plain error without it

    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    fake = types.ModuleType("librosa")
    fake.load = lambda p, sr=None, mono=True: (np.stack([tone, tone]), 16000)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "librosa", fake)
    signal, native = read_audio(path, MODEL_RATE)
    assert native == 16000
    np.testing.assert_allclose(signal, soxr.resample(tone, 16000, MODEL_RATE, quality="HQ"), atol=1e-6)

    def broken(p: str, sr: object = None, mono: bool = True) -> None:
        raise RuntimeError("no backend")
    fake.load = broken  # type: ignore[attr-defined]
    expect_input_error(path, "not an audio file", "librosa: no backend")


def test_file_source_blocks(bach: Path) -> None:
    source = FileSource(bach, MODEL_RATE, 0.25)
    assert source.timing is Timing.REPLAY and source.rate == MODEL_RATE and source.native_rate == 22050
    assert source.name == str(bach)
    blocks = list(source.blocks())
    assert [b.start for b in blocks] == list(range(0, len(source.signal), 2000))
    assert all(len(b.samples) == 2000 for b in blocks[:-1]) and 0 < len(blocks[-1].samples) <= 2000
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks]), read_audio(bach, MODEL_RATE)[0])
    assert source.duration_s == pytest.approx(len(source.signal) / MODEL_RATE)
    assert source.peak == float(np.max(np.abs(source.signal))) > 0.01  # known before the replay, as in training
    assert source.summary() == {"input": f"{bach} (22050 Hz)"} and source.drops() == {}


# --- the WAV sink -----------------------------------------------------------------------------------------


def test_wav_data_chunk_parser() -> None:
    assert wav_data_chunk(wav_header(8000, 10) + bytes(20), 44 + 20) == (20, 20, 2)
    assert wav_data_chunk(wav_header(8000, 10) + bytes(6), 44 + 6) == (20, 6, 2)
    assert wav_data_chunk(b"fLaC" + bytes(40), 44) is None


def test_wav_sink_header_valid_while_open(tmp_path: Path, bach: Path) -> None:
    signal, _ = read_audio(bach, MODEL_RATE)
    signal = signal[: 3 * MODEL_RATE]
    signal = signal * (1.3 / np.max(np.abs(signal)))  # louder than full scale: some samples clip
    path = tmp_path / "out.wav"
    sink = WavSink(path, MODEL_RATE)
    try:
        assert sf.info(str(path)).frames == 0
        written = 0
        for block in np.array_split(signal, 7):
            sink.write(block)
            written += len(block)
            info = sf.info(str(path))  # another reader, while the sink is still open
            assert (info.frames, info.samplerate, info.channels, info.subtype) == (written, MODEL_RATE, 1, "PCM_16")
        back, _ = sf.read(str(path), dtype="int16")
        np.testing.assert_array_equal(back, to_pcm16(signal)[0])
        assert sink.clipped == int(np.sum(np.abs(signal) > 1)) > 0
        assert read_audio(path, MODEL_RATE)[0].shape == signal.shape
    finally:
        sink.close()
    assert sf.info(str(path)).frames == len(signal)


def test_header_lagging_the_data_is_still_valid(tmp_path: Path) -> None:
    """The state between a write's data and its header update (where a kill can land)."""
    pcm = (np.arange(1000) * 7).astype("<i2")
    path = tmp_path / "lag.wav"
    path.write_bytes(wav_header(8000, 600) + pcm.tobytes()[:1501])
    back, _ = sf.read(str(path), dtype="int16")
    np.testing.assert_array_equal(back, pcm[:600])
    assert len(read_audio(path, 8000)[0]) == 600  # not reported as truncated


WRITER = """
import sys, numpy as np
from streamer.audio.wavsink import WavSink
sink = WavSink(sys.argv[1], 8000)
block = (np.sin(np.arange(800) / 5) * 0.5).astype(np.float32)
while True:
    sink.write(block)
    print(sink.frames, flush=True)
"""


def test_wav_sink_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.wav"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        reported = 0
        deadline = time.monotonic() + 30
        while reported < 50 * 800 and time.monotonic() < deadline:
            reported = int(proc.stdout.readline())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    info = sf.info(str(path))
    assert info.frames >= reported and info.frames % 800 == 0  # whole blocks, as many as the header says
    back, _ = sf.read(str(path), dtype="float32")
    block = to_pcm16(np.sin(np.arange(800) / 5) * 0.5)[0] / 32768
    np.testing.assert_allclose(back.reshape(-1, 800), np.tile(block, (len(back) // 800, 1)), atol=1e-6)


def test_wav_sink_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(StreamerError, match=r"cannot write WAV \(No such file or directory\)") as info:
        WavSink(tmp_path / "no" / "such" / "dir.wav", MODEL_RATE)
    assert "\n" not in str(info.value)
    with pytest.raises(StreamerError, match="Is a directory"):
        WavSink(tmp_path, MODEL_RATE)
    write_wav(tmp_path / "whole.wav", np.linspace(-1, 1, 101), MODEL_RATE)
    np.testing.assert_array_equal(sf.read(str(tmp_path / "whole.wav"), dtype="int16")[0],
                                  np.rint(np.linspace(-1, 1, 101) * 32767).astype(np.int16))
