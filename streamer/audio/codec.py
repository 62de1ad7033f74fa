"""The autoencoder as a codec: audio -> latent codes (.npz) -> audio, and mixing the codes of two pieces.

Codes are made on side-by-side frames (hop = frame: 1024 numbers per 4096 samples is the 4x compression),
from audio peak-normalised as in training; the peak is stored so `decode` restores the level. The
encoder and decoder are separate .onnx files named in the autoencoder's metadata (`companions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamer.core.errors import InputError, ModelError
from streamer.core.model import Model
from streamer.core.modelmeta import AUDIO_TASK

BATCH = 64  # frames per onnxruntime call
MIX_PEAK = 0.89  # a mix is written peak-normalised to -1 dBFS


def companion(model_path: Path, part: str, threads: int = 1) -> Model:
    """The encoder or decoder: `model_path` itself if it is that part, else the file its metadata names."""
    model = Model(model_path, threads=threads, task=AUDIO_TASK)
    if model.meta.get("part") == part:
        return model
    name = model.meta.get("companions", {}).get(part)
    if not name:
        raise ModelError(model_path, f"metadata names no {part} model (companions.{part})")
    path = model_path.parent / name
    if not path.is_file():
        raise ModelError(path, f"the {part} named by {model_path.name} is missing")
    part_model = Model(path, threads=threads, task=AUDIO_TASK)
    if part_model.meta.get("part") != part:
        raise ModelError(path, f"expected the {part}, metadata says part {part_model.meta.get('part')!r}")
    return part_model


def frame_signal(signal: np.ndarray, frame: int) -> np.ndarray:
    """(n_frames, frame), the last frame zero-padded."""
    n = max(1, -(-len(signal) // frame))
    padded = np.zeros(n * frame, dtype=np.float32)
    padded[:len(signal)] = signal
    return padded.reshape(n, frame)


def run_batched(model: Model, rows: np.ndarray) -> np.ndarray:
    return np.concatenate([model.run(rows[i:i + BATCH]) for i in range(0, len(rows), BATCH)])


@dataclass
class Codes:
    codes: np.ndarray  # (n_frames, latent) float32
    n_samples: int
    peak: float  # the input's peak; decoded audio is scaled back by it
    sample_rate_hz: int
    frame: int
    latent: dict[str, Any]
    model: str

    def save(self, path: Path) -> None:
        np.savez_compressed(path, codes=self.codes, n_samples=self.n_samples, peak=self.peak,
                            sample_rate_hz=self.sample_rate_hz, frame=self.frame,
                            latent=json.dumps(self.latent), model=self.model)

    @classmethod
    def load(cls, path: Path) -> Codes:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["codes"].astype(np.float32), int(z["n_samples"]), float(z["peak"]),
                           int(z["sample_rate_hz"]), int(z["frame"]), json.loads(str(z["latent"])), str(z["model"]))
        except FileNotFoundError:
            raise InputError(path, "no such file") from None
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(path, f"not a codes file written by `streamer encode` ({exc})") from None


def _framing(model: Model) -> tuple[int, int]:
    return int(model.meta["sample_rate_hz"]), int(model.meta["frame"]["length"])


def encode_file(path: str | Path, model_path: Path, threads: int = 1) -> Codes:
    from streamer.audio.files import read_audio

    encoder = companion(model_path, "encoder", threads)
    fs, frame = _framing(encoder)
    signal, _ = read_audio(path, fs)
    peak = float(np.max(np.abs(signal))) if len(signal) else 0.0
    scaled = signal / peak if peak > 0 else signal
    codes = run_batched(encoder, frame_signal(scaled, frame))
    return Codes(codes.astype(np.float32), len(signal), peak, fs, frame, encoder.meta.get("latent", {}),
                 encoder.name)


def decode_codes(codes: Codes, model_path: Path, threads: int = 1) -> np.ndarray:
    decoder = companion(model_path, "decoder", threads)
    fs, frame = _framing(decoder)
    if (fs, frame) != (codes.sample_rate_hz, codes.frame):
        raise ModelError(model_path, f"decoder works on {frame} samples at {fs} Hz, the codes on "
                                     f"{codes.frame} at {codes.sample_rate_hz} Hz")
    width = decoder.input_shape[-1]
    if isinstance(width, int) and codes.codes.shape[1] != width:
        raise ModelError(model_path, f"decoder takes {width} latent values, the codes have {codes.codes.shape[1]}")
    audio = run_batched(decoder, codes.codes).reshape(-1)[:codes.n_samples]
    return audio.astype(np.float64) * (codes.peak if codes.peak > 0 else 1.0)


def mix_codes(a: np.ndarray, b: np.ndarray, weights: tuple[float, float], latent: dict[str, Any]) -> np.ndarray:
    """Weighted mix of two code sequences of equal length, in the model's latent space.

    Dense latents are mixed directly (the lecture's mixing). A top-k latent (k values, then their k
    positions among `coefficients`) is mixed in its coefficient space: both codes are scattered back to
    full coefficient maps, summed with the weights, and the k largest are kept again.
    """
    wa, wb = weights
    if latent.get("kind", "dense") == "dense":
        return (wa * a + wb * b).astype(np.float32)
    if latent.get("kind") != "topk":
        raise ValueError(f"cannot mix latent kind {latent.get('kind')!r}")
    k, n_coef = int(latent["k"]), int(latent["coefficients"])
    dense = wa * _scatter(a, k, n_coef) + wb * _scatter(b, k, n_coef)
    top = np.sort(np.argsort(-np.abs(dense), axis=1, kind="stable")[:, :k], axis=1)
    values = np.take_along_axis(dense, top, axis=1)
    return np.concatenate([values, top.astype(np.float64)], axis=1).astype(np.float32)


def _scatter(codes: np.ndarray, k: int, n_coef: int) -> np.ndarray:
    dense = np.zeros((len(codes), n_coef))
    idx = np.clip(np.rint(codes[:, k:2 * k]).astype(np.int64), 0, n_coef - 1)
    np.put_along_axis(dense, idx, codes[:, :k].astype(np.float64), axis=1)
    return dense


def mix_files(path_a: str | Path, path_b: str | Path, weights: tuple[float, float], model_path: Path,
              threads: int = 1) -> tuple[np.ndarray, int]:
    """Mix of two pieces over the shorter one's length, peak-normalised to MIX_PEAK. Returns (audio, rate)."""
    ca = encode_file(path_a, model_path, threads)
    cb = encode_file(path_b, model_path, threads)
    n = min(len(ca.codes), len(cb.codes))
    mixed = mix_codes(ca.codes[:n], cb.codes[:n], weights, ca.latent)
    codes = Codes(mixed, min(ca.n_samples, cb.n_samples), 1.0, ca.sample_rate_hz, ca.frame, ca.latent, ca.model)
    audio = decode_codes(codes, model_path, threads)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return (audio * (MIX_PEAK / peak) if peak > 0 else audio), ca.sample_rate_hz
