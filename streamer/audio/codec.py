"""The autoencoder as a codec: audio -> latent codes (.npz) -> audio, and mixing the codes of two pieces.

Codes are made on side-by-side frames (hop = frame: 1024 numbers per 4096 samples; stored as below, a codes
file of the shipped model is 5.5x smaller than the same audio as 16-bit PCM), from audio peak-normalised as
in training; the peak is stored so `decode` restores the level. The encoder and decoder are separate .onnx
files named in the autoencoder's metadata (`companions`).
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamer.core.atomic import write_atomically
from streamer.core.errors import InputError, ModelError, StreamerError
from streamer.core.limits import MAX_FS
from streamer.core.model import Model
from streamer.core.modelmeta import AUDIO_TASK
from streamer.core.npz import npz_shapes
from streamer.core.text import printable

BATCH = 64  # frames per onnxruntime call
MAX_CODE_VALUES = 1 << 28  # values in one codes file: ~10 days of audio at 8 kHz with the shipped codec
MIX_PEAK = 0.89  # a mix is written peak-normalised to -1 dBFS


def companion(model_path: Path, part: str, threads: int = 1) -> Model:
    """The encoder or decoder: `model_path` itself if it is that part, else the file its metadata names."""
    model = Model(model_path, threads=threads, task=AUDIO_TASK)
    if model.meta.get("part") == part:
        return model
    companions = model.meta.get("companions", {})
    name = companions.get(part) if isinstance(companions, dict) else None
    if not name:
        raise ModelError(model_path, f"metadata names no {part} model (companions.{part})")
    # only a file beside the model: a path (absolute, `../`, a sub-folder) is refused before it is looked at, so
    # a model file can neither load an ONNX file from elsewhere nor tell whether some path exists
    if not isinstance(name, str) or Path(name).name != name or name in (".", "..") or "\\" in name:
        raise ModelError(model_path, f"companions.{part} must be a file name in the model's folder, "
                                     f"got {printable(repr(name))}")
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


# What a codes file (.npz, compressed) holds: `n_samples`, `peak`, `sample_rate_hz`, `frame`, `latent` (JSON),
# `model`, and the codes. A top-k latent's codes are stored as `values` (n_frames, k) float16 and `positions`
# (n_frames, k) in the smallest unsigned integer type that holds `coefficients - 1` (uint16 for the shipped
# model): float16 values change the decoded SNR of samples/audio/bach.wav by < 1e-5 dB. A dense latent
# stays `codes` float32 (not measured at float16), as did every latent in files before this layout; those
# files are still read.
ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive of .npy files
AUDIO_MAGICS = (b"RIFF", b"fLaC", b"OggS", b"ID3", b"FORM")  # WAV, FLAC, OGG, MP3 (ID3 tag), AIFF
META_KEYS = ("n_samples", "peak", "sample_rate_hz", "frame", "latent", "model")


@dataclass
class Codes:
    codes: np.ndarray  # (n_frames, latent) float32
    n_samples: int
    peak: float  # the input's peak; decoded audio is scaled back by it
    sample_rate_hz: int
    frame: int
    latent: dict[str, Any]
    model: str
    source: str = "codes"  # the file it was read from, for messages

    def save(self, path: Path) -> int:
        """Written whole or not at all (`write_atomically`); returns the bytes written."""
        fields: dict[str, Any] = {**self._arrays(), "n_samples": self.n_samples, "peak": self.peak,
                                  "sample_rate_hz": self.sample_rate_hz, "frame": self.frame,
                                  "latent": json.dumps(self.latent), "model": self.model}
        buffer = io.BytesIO()  # a file object: numpy would add `.npz` to a name without it
        np.savez_compressed(buffer, **fields)
        data = buffer.getvalue()
        try:
            write_atomically(path, lambda f: f.write(data))
        except OSError as exc:
            raise StreamerError(f"{path}: cannot write codes ({exc.strerror})") from None
        return len(data)

    def _arrays(self) -> dict[str, np.ndarray]:
        if self.latent.get("kind") != "topk":
            return {"codes": self.codes.astype(np.float32)}
        k, n_coef = int(self.latent["k"]), int(self.latent["coefficients"])
        return {"values": self.codes[:, :k].astype(np.float16),
                "positions": np.rint(self.codes[:, k:2 * k]).astype(np.min_scalar_type(max(n_coef - 1, 0)))}

    @classmethod
    def load(cls, path: Path) -> Codes:
        """A codes file, every field checked: a crafted or damaged file is one line naming what is wrong."""
        _check_codes_file(path)
        try:
            shapes = npz_shapes(path)  # sizes checked before anything is decompressed
            for key in ("codes", "values", "positions"):
                if key in shapes and int(np.prod(shapes[key], dtype=np.int64)) > MAX_CODE_VALUES:
                    raise InputError(path, f"'{key}' declares shape {shapes[key]}: more than the "
                                           f"{MAX_CODE_VALUES:,} values a codes file may hold")
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in META_KEYS if k not in z.files]
                if missing or not ("codes" in z.files or {"values", "positions"} <= set(z.files)):
                    raise InputError(path, "not a codes file made by `streamer encode` (an .npz without "
                                           f"{', '.join(missing) or 'codes'})")
                codes = z["codes"].astype(np.float32) if "codes" in z.files else _topk_codes(path, z)
                latent = json.loads(str(z["latent"]))
                loaded = cls(codes, int(z["n_samples"]), float(z["peak"]), int(z["sample_rate_hz"]),
                             int(z["frame"]), latent if isinstance(latent, dict) else {}, str(z["model"]))
        except (OSError, ValueError, KeyError, EOFError, TypeError, OverflowError, zipfile.BadZipFile,
                zlib.error) as exc:
            raise InputError(path, f"not a readable codes file ({type(exc).__name__})") from None
        loaded.source = str(path)
        loaded.check(path)
        return loaded

    def check(self, path: Path) -> None:
        """Consistent and finite: frames, samples, rate, peak and values as `streamer encode` writes them."""
        c = self.codes
        problem = None
        if c.ndim != 2 or len(c) == 0 or c.shape[1] == 0:
            problem = f"codes of shape {c.shape}, expected (frames >= 1, latent values)"
        elif not np.isfinite(c).all():
            problem = "codes hold NaN or infinite values"
        elif not (0 < self.frame <= 1 << 16 and 0 < self.sample_rate_hz <= MAX_FS):
            problem = f"frame of {self.frame} samples at {self.sample_rate_hz} Hz is not an audio codec's"
        elif not (len(c) - 1) * self.frame < self.n_samples <= len(c) * self.frame:
            problem = f"{len(c)} frames of {self.frame} samples cannot hold {self.n_samples} samples"
        elif not (np.isfinite(self.peak) and self.peak >= 0):
            problem = f"peak {self.peak} is not a level"
        if problem:
            raise InputError(path, problem)


def _topk_codes(path: Path, z: Any) -> np.ndarray:
    """A top-k latent's values and positions side by side, as the decoder takes them."""
    values, positions = z["values"], z["positions"]
    if values.shape != positions.shape or values.ndim != 2:
        raise InputError(path, f"'values' {values.shape} and 'positions' {positions.shape} must have one 2-D shape "
                               "(frames, k)")
    return np.concatenate([values.astype(np.float32), positions.astype(np.float32)], axis=1)


def _check_codes_file(path: Path) -> None:
    """By content, not by name: a codes file is a zip archive (an .npz)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror})") from None
    if head == ZIP_MAGIC:
        return
    what = " (this is an audio file: `streamer encode` makes codes from it)" if head.startswith(AUDIO_MAGICS) else ""
    raise InputError(path, f"not a codes file made by `streamer encode`{what}")


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
    latent = decoder.meta.get("latent", {})
    if latent.get("kind") == "topk":  # positions index the coefficient map: out of range, the graph would fail
        k, n_coef = int(latent["k"]), int(latent["coefficients"])
        positions = codes.codes[:, k:2 * k]
        if not (np.all(positions == np.rint(positions)) and positions.min() >= 0 and positions.max() < n_coef):
            raise InputError(codes.source, f"positions must be whole numbers in [0, {n_coef}) for this decoder")
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
