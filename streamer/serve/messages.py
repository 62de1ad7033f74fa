"""What travels through the broker: ECG chunks of one patient, beat events, dead letters; and the
partition a patient belongs to.

A chunk is one message: headers say whose it is and where it goes (`Patient`, `Rate` in Hz, `Start`: the
stream index of its first sample, `Sent`: the publisher's wall clock in seconds, `Format`: `f32le`), the
payload is the samples as little-endian float32. A beat event is a JSON object (the library's
`BeatEvent.to_dict()` plus `sent`: its chunk's publish time), with the message id `<patient>:<r_sample>`
so that a chunk processed twice (after a worker died) never stores an event twice.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT = "f32le"
MAX_CHUNK_S = 60.0  # a chunk longer than this is refused (a gateway sends 1-3 s)
PATIENT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def partition_of(patient: str, partitions: int) -> int:
    """Stable across processes and machines (Python's own hash() is salted per process)."""
    return zlib.crc32(patient.encode()) % partitions


def chunk_subject(partition: int, patient: str) -> str:
    return f"aestream.chunks.{partition}.{patient}"


def beat_subject(patient: str, anomaly: bool = False) -> str:
    return f"aestream.{'anomalies' if anomaly else 'beats'}.{patient}"


class BadChunk(Exception):
    """A chunk message that cannot be used: `kind` is what is counted, the message (with the details)
    goes to the dead-letter subject as its reason."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class ChunkMessage:
    patient: str
    rate: float
    start: int  # stream index of samples[0]
    samples: np.ndarray  # float32
    sent: float  # publisher's wall clock (time.time()), for end-to-end latency

    def headers(self) -> dict[str, str]:
        return {"Patient": self.patient, "Rate": repr(float(self.rate)), "Start": str(int(self.start)),
                "Sent": repr(float(self.sent)), "Format": FORMAT}

    def payload(self) -> bytes:
        return np.asarray(self.samples, dtype="<f4").tobytes()


def check_patient(patient: str) -> str:
    if not patient or len(patient) > 64 or not set(patient) <= PATIENT_CHARS:
        raise BadChunk("bad patient id", f"{patient[:70]!r} is not 1-64 letters, digits, '-' or '_'")
    return patient


def decode_chunk(headers: dict[str, str] | None, payload: bytes) -> ChunkMessage:
    """A chunk message, or `BadChunk` saying what is wrong (not a chunk, unknown rate, wrong length, NaN)."""
    h = headers or {}
    try:
        patient = check_patient(h["Patient"])
        rate, start, sent = float(h["Rate"]), int(h["Start"]), float(h.get("Sent", "nan"))
        fmt = h.get("Format", FORMAT)
    except KeyError as exc:
        raise BadChunk("not a chunk", f"header {exc.args[0]} missing") from None
    except ValueError as exc:
        raise BadChunk("not a chunk", f"unreadable header ({exc})") from None
    if fmt != FORMAT:
        raise BadChunk("unknown format", f"{fmt!r} (expected {FORMAT})")
    if not (math.isfinite(rate) and rate > 0):
        raise BadChunk("unknown rate", f"{h.get('Rate')!r}")
    if start < 0:
        raise BadChunk("negative start", str(start))
    if len(payload) % 4:
        raise BadChunk("wrong length", f"payload of {len(payload)} bytes is not whole float32 samples")
    samples = np.frombuffer(payload, dtype="<f4")
    if len(samples) == 0 or len(samples) > MAX_CHUNK_S * rate:
        most = int(MAX_CHUNK_S * rate)
        raise BadChunk("wrong length", f"{len(samples)} samples (expected 1 to {most} at {rate:g} Hz)")
    if not np.isfinite(samples).all():
        raise BadChunk("non-finite sample", f"at index {int(np.flatnonzero(~np.isfinite(samples))[0])}")
    return ChunkMessage(patient, rate, start, samples, sent)


def event_id(patient: str, r_sample: int, kind: str = "beat") -> str:
    return f"{patient}:{r_sample}" if kind == "beat" else f"{kind}:{patient}:{r_sample}"


def encode_event(event: dict[str, Any]) -> bytes:
    """Strict JSON: a NaN (an unknown RR interval or send time) becomes null. The event's values are plain
    Python numbers (`BeatEvent.to_dict`), so only floats need looking at."""
    clean = {k: (None if type(v) is float and not math.isfinite(v) else v) for k, v in event.items()}
    return json.dumps(clean, separators=(",", ":"), allow_nan=False).encode()
