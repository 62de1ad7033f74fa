"""Audio framing and quality arithmetic on real music (the shipped sample clip)."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.audio.framer import FrameCutter, OverlapAdd, check_hop, synthesis_window
from streamer.audio.levels import PeakNormaliser, dbfs
from streamer.audio.quality import StreamingEdgeRatio, edge_jump_ratio, frame_snr_db, snr_db


def _stream(x: np.ndarray, frame: int, hop: int, blocks: np.ndarray,
            model=lambda f: f) -> tuple[np.ndarray, list[int]]:  # type: ignore[no-untyped-def]
    cutter, ola = FrameCutter(frame, hop), OverlapAdd(frame, hop)
    out, starts, pos = [], [], 0
    for size in blocks:
        if pos >= len(x):
            break
        for f in cutter.feed(x[pos:pos + size]):
            starts.append(f.start)
            out.append(ola.add(f.start, model(f.samples)))
        pos += size
    for f in cutter.flush():
        starts.append(f.start)
        out.append(ola.add(f.start, model(f.samples), stream_end=len(x)))
    out.append(ola.finish(len(x)))
    return np.concatenate(out), starts


@pytest.mark.parametrize("hop", [4096, 2048, 1024, 1000])
def test_overlap_add_of_identity_gives_back_the_input(music_8k: np.ndarray, hop: int) -> None:
    x = music_8k[: 8000 * 6 + 123]
    rng = np.random.default_rng(hop)
    y, starts = _stream(x, 4096, hop, rng.integers(1, 5000, size=200))
    assert len(y) == len(x)
    np.testing.assert_allclose(y, x, atol=1e-12)
    assert np.all(np.diff(starts) == hop)
    assert starts[0] == -(4096 - hop) and starts[-1] <= len(x) - 1 < starts[-1] + 4096


def test_block_size_does_not_change_the_output(music_8k: np.ndarray) -> None:
    x = music_8k[: 8000 * 5]

    def model(f: np.ndarray) -> np.ndarray:  # a non-linear "codec": the result depends on frame edges
        return np.tanh(3 * f) * np.hanning(len(f)) ** 0.1

    a, _ = _stream(x, 4096, 2048, np.full(1000, 64), model)
    b, _ = _stream(x, 4096, 2048, np.full(10, 10**6), model)
    np.testing.assert_array_equal(a, b)


def test_overlap_add_removes_frame_edge_steps(music_8k: np.ndarray) -> None:
    """A codec that treats frames independently leaves steps at frame edges; overlap-add hides them."""
    x = music_8k[: 8000 * 20]

    def lowpass(f: np.ndarray) -> np.ndarray:  # DCT keeping the first quarter: the linear codec
        from scipy.fft import dct, idct

        c = dct(f, norm="ortho")
        c[len(f) // 4:] = 0
        return idct(c, norm="ortho")

    plain, _ = _stream(x, 4096, 4096, np.full(100, 4096), lowpass)
    ola, _ = _stream(x, 4096, 2048, np.full(100, 4096), lowpass)
    # on a short clip the ratio of the original itself strays from 1 by chance: compare with it
    original = edge_jump_ratio(x, 2048)
    assert edge_jump_ratio(plain, 4096) > 1.5 * edge_jump_ratio(x, 4096)  # clicks
    meter = StreamingEdgeRatio(2048, (0,))
    meter.update(ola)
    assert abs(meter.ratio / original - 1.0) < 0.1  # within chance variation of the original


def test_hann_windows_sum_to_a_constant_for_dividing_hops() -> None:
    w = synthesis_window(4096, 1024)
    total = sum(np.roll(w, k * 1024) for k in range(4))
    np.testing.assert_allclose(total, 2.0)


@pytest.mark.parametrize("hop", [0, 3000, 4097, -1])
def test_bad_hops_are_refused(hop: int) -> None:
    with pytest.raises(ValueError, match="hop must be"):
        check_hop(4096, hop)


def test_snr_figures(music_8k: np.ndarray) -> None:
    x = music_8k[:4096 * 3]
    assert snr_db(x, 0.5 * x) == pytest.approx(20 * np.log10(2), abs=1e-9)
    frames = np.stack([x[:4096], np.zeros(4096), x[4096:8192]])
    snrs = frame_snr_db(frames, frames * 0.9)
    assert np.isnan(snrs[1]) and np.allclose(snrs[[0, 2]], 20.0)
    assert np.isnan(snr_db(np.zeros(100), np.ones(100)))  # silent reference: undefined, no division by zero
    assert snr_db(x, x) == float("inf")


def test_streaming_edge_ratio_equals_offline(music_8k: np.ndarray) -> None:
    x = np.round(music_8k[:50000] * 8) / 8  # quantised: steps everywhere, ratio far from 1 somewhere
    meter = StreamingEdgeRatio(4096, (0,))
    for i in range(0, len(x), 777):
        meter.update(x[i:i + 777])
    assert meter.ratio == pytest.approx(edge_jump_ratio(x, 4096), rel=1e-12)


def test_peak_normaliser_file_and_live(music_8k: np.ndarray) -> None:
    x = music_8k[:4096 * 4] * 0.3
    fixed = PeakNormaliser({"kind": "peak", "target": 1.0}, known_peak=float(np.abs(x).max()))
    assert fixed.gain(x[:4096]) == pytest.approx(1 / np.abs(x).max())
    live = PeakNormaliser({"kind": "peak", "target": 1.0})
    gains = [live.gain(x[i:i + 4096]) for i in range(0, len(x), 4096)]
    assert all(a >= b for a, b in zip(gains, gains[1:]))  # louder passages only lower the gain
    assert gains[-1] == pytest.approx(1 / np.abs(x).max())
    assert live.gain(np.zeros(10)) == gains[-1]
    assert PeakNormaliser({"kind": "peak"}).gain(np.zeros(4096)) == 1.0  # silence: no division by zero
    with pytest.raises(ValueError, match="not supported"):
        PeakNormaliser({"kind": "zscore"})
    assert dbfs(np.zeros(5)) == float("-inf") and dbfs(np.ones(5)) == 0.0
