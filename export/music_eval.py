"""Codecs on whole tracks at a stream hop: mean per-frame SNR, log-spectral distance and mel distance.

One definition for the model card, the benchmark (`benchmarks/bench_music_recordings.py`) and the tests:

- the signal goes through the codec as `streamer audio --hop H` sends it: the runtime's own `FrameCutter`
  and `OverlapAdd` (hop 4096: frames side by side; hop <= 2048: periodic Hann, weighted overlap-add);
- mean per-frame SNR: `streamer.audio.quality.mean_frame_snr_db` over the 4096-sample blocks of the output
  against the same blocks of the input (side by side, at every hop, so both hops are scored on the same
  blocks; silent blocks left out);
- log-spectral distance (dB): STFT power spectra (librosa, n_fft 512 = 64 ms, hop 128, Hann) of input and
  output in dB, both floored at `TOP_DB` below the input's loudest bin; per STFT frame the root mean square
  over frequency of the difference, then the mean over frames;
- mel distance (dB): the same on a 64-band mel power spectrogram (librosa, fmax 4 kHz): mean |difference|
  over bands and frames.

Baselines with the same 1024 numbers per frame: the adaptive DCT (512 largest of 4096 coefficients + their
positions), the untrained MDCT top-512 (the shipped codec's initialisation: sine-window MDCT, hop 512,
4608 coefficients, the 512 largest kept) and the DCT low-pass (first 1024 coefficients).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from export.audio_baselines import dct_lowpass, dct_topk
from export.audio_models import FRAME, mdct_basis
from streamer.audio import quality
from streamer.audio.framer import FrameCutter, OverlapAdd

Codec = Callable[[np.ndarray], np.ndarray]  # (n, 4096) frames -> (n, 4096) reconstructions
SAMPLE_RATE_HZ = 8000
HOPS = (4096, 2048)  # the default hop (frames side by side) and 50 % overlap-add
N_FFT = 512  # STFT window, 64 ms at 8 kHz
STFT_HOP = 128  # 16 ms
N_MELS = 64
TOP_DB = 80.0  # spectra floored this far below the reference's loudest bin (as librosa's power_to_db)
MDCT_HOP = 512  # the shipped codec's filterbank hop
K = 512  # kept coefficients (values) per frame; their positions are the other 512 numbers


def filterbank_topk(frames: np.ndarray, analysis: np.ndarray, synthesis: np.ndarray, k: int,
                    hop: int) -> np.ndarray:
    """A lapped filterbank codec in numpy: frame zero-padded by `hop` on each side, blocks of 2 hop every
    hop through `analysis` (2 hop, filters), the k largest of the (FRAME/hop + 1) * filters coefficients
    kept, `synthesis` (2 hop, filters) overlap-added and cropped. With the MDCT basis for both, the
    shipped codec before training; with a trained model's kernels (`model_filterbank`), that model at any k."""
    x = np.asarray(frames, np.float64)
    padded = np.pad(x, ((0, 0), (hop, hop)))
    blocks = FRAME // hop + 1
    idx = np.arange(blocks)[:, None] * hop + np.arange(2 * hop)[None, :]
    flat = (padded[:, idx] @ analysis.astype(np.float64)).reshape(len(x), -1)  # (n, blocks * filters)
    small = np.argpartition(np.abs(flat), flat.shape[1] - k, axis=1)[:, : flat.shape[1] - k]
    np.put_along_axis(flat, small, 0.0, axis=1)
    pieces = flat.reshape(len(x), blocks, -1) @ synthesis.astype(np.float64).T  # (n, blocks, 2 hop)
    out = np.zeros_like(padded)
    for b in range(blocks):
        out[:, b * hop: b * hop + 2 * hop] += pieces[:, b]
    return out[:, hop: hop + FRAME].astype(np.float32)


def mdct_topk(frames: np.ndarray, k: int = K, hop: int = MDCT_HOP) -> np.ndarray:
    """The shipped codec before training: sine-window MDCT at `hop`, the k largest coefficients kept."""
    basis = mdct_basis(hop)
    return filterbank_topk(frames, basis, basis, k, hop)


def model_filterbank(model_path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(analysis, synthesis, hop) of an exported top-k codec, read from its encoder's Conv and its decoder's
    ConvTranspose kernels (both stored as (filters, 1, 1, 2 hop))."""
    import onnx
    from onnx import numpy_helper

    from export.onnx_export import read_metadata

    path = Path(model_path)
    meta = read_metadata(path)
    kernels = []
    for part in ("encoder", "decoder"):
        graph = onnx.load(str(path.parent / meta["companions"][part])).graph
        weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        op = "Conv" if part == "encoder" else "ConvTranspose"
        node = next(n for n in graph.node if n.op_type == op)
        w = weights[node.input[1]]
        kernels.append(w.reshape(w.shape[0], -1).T)  # (2 hop, filters)
    return kernels[0], kernels[1], int(meta["training"]["recipe"]["hop"])


def baselines() -> dict[str, Codec]:
    """The fixed transforms at the codec's budget (1024 numbers per 4096 samples), by name."""
    return {"dct_top_512_with_positions": lambda x: dct_topk(x, K),
            "mdct_top_512_with_positions": mdct_topk,
            "dct_first_1024": lambda x: dct_lowpass(x, 2 * K)}


def through_codec(codec: Codec, signal: np.ndarray, hop: int, frame: int = FRAME) -> np.ndarray:
    """The signal framed, coded and put back together as the runtime does at `hop` (same length)."""
    cutter, ola = FrameCutter(frame, hop), OverlapAdd(frame, hop)
    frames = cutter.feed(np.asarray(signal, np.float64)) + cutter.flush()
    recon = codec(np.stack([f.samples for f in frames]).astype(np.float32))
    out = [ola.add(f.start, r, stream_end=len(signal)) for f, r in zip(frames, recon)]
    out.append(ola.finish(len(signal)))
    return np.concatenate(out)[: len(signal)]


def _db(power: np.ndarray, floor_db: float) -> np.ndarray:
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-20)), floor_db)


def spectral_distances(reference: np.ndarray, estimate: np.ndarray,
                       rate: int = SAMPLE_RATE_HZ) -> dict[str, float]:
    """{'lsd_db': log-spectral distance, 'mel_db': mean |log-mel difference|} (see the module docstring)."""
    import librosa

    ref = np.asarray(reference, np.float32)
    est = np.asarray(estimate, np.float32)
    p_ref = np.abs(librosa.stft(ref, n_fft=N_FFT, hop_length=STFT_HOP, window="hann")) ** 2
    p_est = np.abs(librosa.stft(est, n_fft=N_FFT, hop_length=STFT_HOP, window="hann")) ** 2
    floor = 10.0 * np.log10(max(float(p_ref.max()), 1e-20)) - TOP_DB
    lsd = np.sqrt(np.mean((_db(p_ref, floor) - _db(p_est, floor)) ** 2, axis=0))
    mel = librosa.filters.mel(sr=rate, n_fft=N_FFT, n_mels=N_MELS, fmax=rate / 2)
    m_ref, m_est = mel @ p_ref, mel @ p_est
    mel_floor = 10.0 * np.log10(max(float(m_ref.max()), 1e-20)) - TOP_DB
    return {"lsd_db": float(np.mean(lsd)),
            "mel_db": float(np.mean(np.abs(_db(m_ref, mel_floor) - _db(m_est, mel_floor))))}


def signal_figures(reference: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
    """Mean per-frame SNR over side-by-side 4096-sample blocks, plus the two spectral distances."""
    n = len(reference) // FRAME * FRAME
    snr = quality.mean_frame_snr_db(np.reshape(reference[:n], (-1, FRAME)),
                                    np.reshape(reconstruction[:n], (-1, FRAME)))
    return {"mean_frame_snr_db": round(snr, 3),
            **{k: round(v, 3) for k, v in spectral_distances(reference, reconstruction).items()}}


def evaluate_tracks(codecs: Mapping[str, Codec], tracks: Mapping[str, np.ndarray],
                    hops: Sequence[int] = HOPS) -> dict[str, Any]:
    """{hop: {track: {codec: figures}}} plus {hop: {'mean': {codec: figures averaged over tracks}}}."""
    out: dict[str, Any] = {}
    for hop in hops:
        per_track = {name: {codec: signal_figures(x, through_codec(fn, x, hop)) for codec, fn in codecs.items()}
                     for name, x in tracks.items()}
        mean = {codec: {key: round(float(np.mean([per_track[t][codec][key] for t in per_track])), 3)
                        for key in ("mean_frame_snr_db", "lsd_db", "mel_db")} for codec in codecs}
        out[str(hop)] = {"tracks": per_track, "mean": mean}
    return out


def margins(figures: Mapping[str, Any], codec: str, against: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per hop: the codec's smallest SNR margin (dB) over each baseline across tracks (negative: below)."""
    return {hop: {b: round(min(t[codec]["mean_frame_snr_db"] - t[b]["mean_frame_snr_db"]
                               for t in f["tracks"].values()), 3) for b in against}
            for hop, f in figures.items()}


def table(figures: Mapping[str, Any], codecs: Sequence[str]) -> list[str]:
    """Markdown: one row per (hop, track), per codec 'SNR / LSD / mel'."""
    lines = ["| hop | track | " + " | ".join(codecs) + " |", "|---|---|" + "---|" * len(codecs)]
    for hop, f in figures.items():
        for track, row in [*f["tracks"].items(), ("**mean**", f["mean"])]:
            cells = [f"{row[c]['mean_frame_snr_db']:.2f} / {row[c]['lsd_db']:.2f} / {row[c]['mel_db']:.2f}"
                     for c in codecs]
            lines.append(f"| {hop} | {track} | " + " | ".join(cells) + " |")
    return lines
