"""The library API on real data: any chunking gives the events of one call, a stream in a pool gives the events
it gives alone, saved state goes on seamlessly, reset starts afresh, and a bad chunk stops only its stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.signal import resample_poly

import streamer
from streamer import Chunk, StreamError
from tests.conftest import MODELS, mitdb_record

ATOL = 1e-6  # the tolerance: the model's batch size may change float rounding, nothing else


def ecg_signal(name: str, start_s: float, seconds: float, rate: int = 360) -> np.ndarray:
    """A real MIT-BIH stretch (lead 0), resampled from 360 Hz to `rate` when asked."""
    import wfdb

    rec = wfdb.rdrecord(str(mitdb_record(name)), channels=[0], sampfrom=int(start_s * 360),
                        sampto=int((start_s + seconds) * 360))
    x = rec.p_signal[:, 0].astype(np.float64)
    return x if rate == 360 else resample_poly(x, rate, 360)


def random_chunks(x: Any, seed: int, lo: int = 1, hi: int = 3000) -> Iterator[Any]:
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(x):
        n = int(rng.integers(lo, hi))
        yield x[i:i + n]
        i += n


def beats(events: list[Any]) -> np.ndarray:
    return np.array([(e.r_sample, e.score, e.anomaly, e.beat) for e in events], dtype=np.float64)


def assert_same_beats(a: list[Any], b: list[Any]) -> None:
    x, y = beats(a), beats(b)
    assert x.shape == y.shape and len(x) > 50
    np.testing.assert_array_equal(x[:, 0], y[:, 0])  # the same R peaks
    np.testing.assert_allclose(x[:, 1], y[:, 1], rtol=0, atol=ATOL)  # the same scores
    np.testing.assert_array_equal(x[:, 2:], y[:, 2:])  # the same decisions and beat numbers
    assert [e.state for e in a] == [e.state for e in b]


@pytest.fixture(scope="module")
def ecg_model() -> streamer.Model:
    return streamer.load_model(MODELS / "ecg.onnx")


def alone(model: streamer.Model, x: Any, **options: Any) -> list[Any]:
    s = model.stream(**options)
    return s.feed(x) + s.flush()


# --- ECG -----------------------------------------------------------------------------------------------------

def test_ecg_any_chunk_sizes_give_the_events_of_one_call(ecg_model: streamer.Model) -> None:
    x = ecg_signal("106", 60, 240)
    whole = alone(ecg_model, x, rate=360)
    s = ecg_model.stream(rate=360)
    chunked = [e for c in random_chunks(x, 1) for e in s.feed(c)] + s.flush()
    assert_same_beats(whole, chunked)
    assert sum(e.anomaly for e in whole) > 20  # record 106 has frequent PVCs: the decisions are exercised


def test_ecg_pool_streams_equal_each_alone(ecg_model: streamer.Model) -> None:
    """Three rates and lengths; one stream joins late and one leaves early, one batched call per tick."""
    signals = {"a": (ecg_signal("106", 0, 150), 360), "b": (ecg_signal("100", 30, 100, 250), 250),
               "c": (ecg_signal("116", 10, 120, 500), 500)}
    pool = ecg_model.pool()
    calls: list[int] = []
    run = pool.model.run
    pool.model.run = lambda batch: (calls.append(len(batch)), run(batch))[1]  # type: ignore[method-assign]
    got: dict[str, list[Any]] = {k: [] for k in signals}
    pos = {k: 0 for k in signals}
    for tick in range(160):
        if tick == 0:
            pool.add("a", rate=360)
            pool.add("b", rate=250)
        if tick == 20:
            pool.add("c", rate=500)  # joins while the others run
        if tick == 80:
            got["b"] += pool.remove("b")  # leaves early: its last beats come out on removal
        chunks = {}
        for k in pool.ids:
            x, rate = signals[k]
            chunks[k] = x[pos[k]:pos[k] + rate]  # one second of each stream
            pos[k] += rate
        before = len(calls)
        result = pool.feed(chunks)
        assert len(calls) - before <= 1  # everything ready in the tick went into one model call
        assert pool.last.rows == sum(len(v) for v in result.values())
        for k, events in result.items():
            got[k] += events
    for k, events in pool.flush().items():
        got[k] += events
    pool.model.run = run  # type: ignore[method-assign]
    assert max(calls) >= 3  # beats of several streams shared calls
    for k, (x, rate) in signals.items():
        assert_same_beats(got[k], alone(ecg_model, x[:pos[k]], rate=rate))


def test_ecg_saved_state_goes_on_seamlessly(ecg_model: streamer.Model) -> None:
    x = ecg_signal("106", 300, 200)
    cut = 360 * 97 + 123
    s = ecg_model.stream(rate=360, calibrate_s=30)
    first = s.feed(x[:cut])
    blob = s.save()
    other = streamer.load_model(MODELS / "ecg.onnx")  # as another process would
    restored = other.restore_stream(blob)
    rest = restored.feed(x[cut:]) + restored.flush()
    assert_same_beats(first + rest, alone(ecg_model, x, rate=360, calibrate_s=30))
    assert isinstance(blob, bytes) and len(blob) < 200_000


def test_ecg_reset_starts_afresh(ecg_model: streamer.Model) -> None:
    x = ecg_signal("106", 0, 120)
    s = ecg_model.stream(rate=360)
    s.feed(ecg_signal("116", 0, 60))
    s.reset()
    assert_same_beats(s.feed(x) + s.flush(), alone(ecg_model, x, rate=360))


def test_pool_refuses_a_bad_chunk_for_its_stream_only(ecg_model: streamer.Model) -> None:
    x = ecg_signal("106", 0, 60)
    y = ecg_signal("100", 0, 60)
    pool = ecg_model.pool(rate=360)
    for k in ("good", "bad"):
        pool.add(k)
    out_good: list[Any] = []
    out_bad: list[Any] = []
    inf = y[:360].copy()
    inf[17] = np.inf  # (NaN is a missing sample, not a bad chunk: tests/test_quality.py)
    bad_chunks = {5: inf, 9: np.stack([y[:360], y[:360]], axis=1), 13: Chunk(y[:360], rate=250),
                  17: Chunk(y[:360], start=3)}
    pos = 0
    for tick in range(60):
        chunk: Any = bad_chunks.get(tick, y[pos:pos + 360])
        result = pool.feed({"good": x[tick * 360:(tick + 1) * 360], "bad": chunk, "nobody": y[:10]})
        out_good += result["good"]
        out_bad += result["bad"]
        assert "nobody" in result.errors and "not in this pool" in str(result.errors["nobody"])
        if tick in bad_chunks:
            err = result.errors["bad"]
            assert isinstance(err, StreamError) and str(err).startswith("stream bad:")
            assert "good" not in result.errors
        else:
            pos += 360
    final = pool.flush()
    out_good += final["good"]
    out_bad += final["bad"]
    refused = pool.counters("bad")
    assert sum(v for k, v in refused.items() if k.startswith("refused")) == 4
    assert refused["refused: non-finite sample"] == 1 and refused["refused: wrong rate"] == 1
    assert refused["refused: wrong shape"] == 1 and refused["refused: overlap"] == 1
    assert_same_beats(out_good, alone(ecg_model, x, rate=360))
    # the refused chunks left no trace: the stream is what the good chunks alone make
    assert_same_beats(out_bad, alone(ecg_model, y[:pos], rate=360))


def test_stream_errors_name_the_stream_and_the_problem(ecg_model: streamer.Model) -> None:
    s = ecg_model.stream(stream_id="patient-7", rate=360)
    with pytest.raises(StreamError, match=r"^stream patient-7: an ECG chunk is one lead .*expected shape \(n,\)"):
        s.feed(np.zeros((10, 2)))
    with pytest.raises(StreamError, match=r"^stream p: sampling rate too low .*expected >= 100 Hz, got 50 Hz"):
        ecg_model.stream(stream_id="p", rate=50)
    with pytest.raises(StreamError, match="needs its sampling rate"):
        ecg_model.stream()


# --- audio ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def music_model() -> streamer.Model:
    return streamer.load_model(MODELS / "music.onnx")


def audio_out(events: list[Any]) -> np.ndarray:
    return np.concatenate([e.samples for e in events]) if events else np.zeros(0)


def stereo_44k(music_8k: np.ndarray) -> np.ndarray:
    """The real clip at 44.1 kHz in two channels (one a little quieter), as a sound card would give it."""
    import soxr

    x = soxr.resample(music_8k[:8000 * 12], 8000, 44100).astype(np.float32)
    return np.stack([x, 0.8 * x], axis=1)


@pytest.mark.parametrize("fmt", ["8k-mono", "44k-stereo"])
@pytest.mark.parametrize("hop", [4096, 2048])
def test_audio_chunks_pool_and_restore(music_model: streamer.Model, music_8k: np.ndarray, fmt: str,
                                       hop: int) -> None:
    x = music_8k[:8000 * 12].astype(np.float32) if fmt == "8k-mono" else stereo_44k(music_8k)
    options = {"rate": 8000, "hop": hop} if fmt == "8k-mono" else {"rate": 44100, "channels": 2, "hop": hop}
    whole = alone(music_model, x, **options)
    ref = audio_out(whole)
    assert len(ref) == (len(x) if fmt == "8k-mono" else 8000 * 12)
    refs = np.concatenate([e.reference for e in whole])
    assert 10 * np.log10(np.sum(refs ** 2) / np.sum((refs - ref) ** 2)) > 10  # a real reconstruction
    s = music_model.stream(**options)
    chunked = [e for c in random_chunks(x, 2, hi=9000) for e in s.feed(c)] + s.flush()
    np.testing.assert_allclose(audio_out(chunked), ref, rtol=0, atol=ATOL)
    # in a pool beside another stream (another rate), fed in other chunk sizes
    pool = music_model.pool()
    pool.add("x", **options)
    pool.add("other", rate=16000)
    got: list[Any] = []
    other = np.tile(music_8k[:8000 * 3].astype(np.float32), 2)
    for i, c in enumerate(random_chunks(x, 3, hi=20000)):
        got += pool.feed({"x": c, "other": other[i * 1000:(i + 1) * 1000]})["x"]
    got += pool.flush()["x"]
    np.testing.assert_allclose(audio_out(got), ref, rtol=0, atol=ATOL)
    # saved half-way, restored in a new stream
    s = music_model.stream(**options)
    cut = len(x) // 2 + 777
    first = s.feed(x[:cut])
    restored = streamer.load_model(MODELS / "music.onnx").restore_stream(s.save())
    rest = restored.feed(x[cut:]) + restored.flush()
    np.testing.assert_allclose(audio_out(first + rest), ref, rtol=0, atol=ATOL)
    assert [e.frame for e in first + rest] == list(range(len(whole)))


def test_audio_reset_and_bad_chunks(music_model: streamer.Model, music_8k: np.ndarray) -> None:
    x = music_8k[:8000 * 5].astype(np.float32)
    s = music_model.stream(rate=8000)
    s.feed(x[::-1].copy())
    s.reset()
    np.testing.assert_array_equal(audio_out(s.feed(x) + s.flush()), audio_out(alone(music_model, x, rate=8000)))
    with pytest.raises(StreamError, match=r"channels .*expected shape \(n, 2\), got shape \(100,\)"):
        music_model.stream(rate=44100, channels=2).feed(np.zeros(100, np.float32))
    bad = x[:100].copy()
    bad[3] = np.inf
    with pytest.raises(StreamError, match="non-finite sample .* index 3"):
        music_model.stream().feed(bad)


# --- images --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits() -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """The 16 shipped noisy MNIST test digits and their clean references."""
    import cv2

    files = sorted((MODELS.parent / "images").glob("*.png"))
    noisy = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 for f in files]
    clean = [cv2.imread(str(f.parent / "clean" / f.name), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
             for f in files]
    return noisy, clean, [f.name for f in files]


def test_images_one_at_a_time_in_batches_and_in_a_pool(digits: tuple[list[np.ndarray], list[np.ndarray],
                                                                      list[str]]) -> None:
    model = streamer.load_model(MODELS / "denoise.onnx", threads=2)
    noisy, clean, names = digits
    large = np.kron(clean[0], np.ones((10, 9), np.float32))  # 320x288: tiles (for the any-size default too)
    batch = model.stream().feed(noisy, clean=clean, names=names)
    assert [e.name for e in batch] == names
    assert np.mean([e.psnr_db for e in batch]) > np.mean([e.psnr_noisy_db for e in batch]) + 10
    one = model.stream()
    singles = [e for im, c in zip(noisy, clean) for e in one.feed(im, clean=c)]
    for a, b in zip(batch, singles):
        np.testing.assert_allclose(a.image, b.image, rtol=0, atol=ATOL)
        assert a.psnr_db == pytest.approx(b.psnr_db, abs=1e-4)
    pool = model.pool()
    pool.add("p", add_noise=0.5, seed=3)
    pool.add("q")
    mixed: list[Any] = []
    for i, (im, c) in enumerate(zip(noisy, clean)):
        chunks = {"p": Chunk(np.stack([c, c])), "q": Chunk(im, extras={"clean": c})}
        if i == 5:
            chunks["q"] = Chunk(large)
        result = pool.feed(chunks)
        mixed += result["q"]
    assert mixed[5].tiled and mixed[5].image.shape == large.shape
    qs = [e for i, e in enumerate(mixed) if i != 5]
    for a, b in zip(qs, singles[:5] + singles[6:]):
        np.testing.assert_allclose(a.image, b.image, rtol=0, atol=ATOL)
    # the added noise is seeded per stream: a restored stream draws what the original would have
    s = model.stream(add_noise=0.5, seed=3)
    s.feed(np.stack(clean[:4]))
    blob = s.save()
    after = s.feed(np.stack(clean[4:8]))
    restored = model.restore_stream(blob).feed(np.stack(clean[4:8]))
    for a, b in zip(after, restored):
        np.testing.assert_array_equal(a.noisy, b.noisy)
        np.testing.assert_allclose(a.image, b.image, rtol=0, atol=ATOL)
    with pytest.raises(StreamError, match=r"outside \[0, 1\]"):
        model.stream().feed(noisy[0] * 255)


def test_a_model_file_alone_configures_its_streams(tmp_path: Path) -> None:
    for name, task in (("ecg.onnx", "ecg-beat-anomaly"), ("music.onnx", "audio-codec"),
                       ("denoise.onnx", "image-denoise")):
        model = streamer.load_model(MODELS / name)
        assert model.task == task and model.provider == "CPUExecutionProvider"
    with pytest.raises(streamer.StreamerError, match="provider: 'nope' is not available"):
        streamer.load_model(MODELS / "ecg.onnx", provider="nope")
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(streamer.ModelError, match="not a readable ONNX model"):
        streamer.load_model(bad)
