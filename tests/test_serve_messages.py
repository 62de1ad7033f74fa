"""The chunk codec the monitor service and any device gateway share: a real ECG chunk goes through
unchanged, and every kind of malformed chunk is refused with its kind named (no broker needed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import streamer
from streamer.serve.messages import BadChunk, ChunkMessage, decode_chunk, encode_event, partition_of
from tests.conftest import mitdb_record


@pytest.fixture(scope="module")
def chunk() -> ChunkMessage:
    x = streamer.read_ecg(mitdb_record("106")).signal[:720].astype(np.float32)
    return ChunkMessage("bed-7", 360.0, 3600, x, 1.7e9)


def test_a_chunk_goes_through_unchanged(chunk: ChunkMessage) -> None:
    back = decode_chunk(chunk.headers(), chunk.payload())
    assert (back.patient, back.rate, back.start, back.sent) == (chunk.patient, chunk.rate, chunk.start, chunk.sent)
    np.testing.assert_array_equal(back.samples, chunk.samples)


@pytest.mark.parametrize("change, kind", [
    (lambda h, p: ({k: v for k, v in h.items() if k != "Patient"}, p), "not a chunk"),
    (lambda h, p: ({**h, "Start": "ten"}, p), "not a chunk"),
    (lambda h, p: ({**h, "Patient": "bed 7/a"}, p), "bad patient id"),
    (lambda h, p: ({**h, "Format": "s16le"}, p), "unknown format"),
    (lambda h, p: ({**h, "Rate": "0"}, p), "unknown rate"),
    (lambda h, p: ({**h, "Rate": "nan"}, p), "unknown rate"),
    (lambda h, p: ({**h, "Start": "-360"}, p), "negative start"),
    (lambda h, p: (h, p[:-3]), "wrong length"),
    (lambda h, p: (h, b""), "wrong length"),
    (lambda h, p: (h, p + p * 40), "wrong length"),  # 82 s at 360 Hz: over MAX_CHUNK_S
    (lambda h, p: (h, np.r_[np.frombuffer(p, "<f4")[:5], np.inf].astype("<f4").tobytes()), "non-finite sample"),
])
def test_malformed_chunks_are_refused_by_kind(chunk: ChunkMessage, change, kind: str) -> None:  # type: ignore[no-untyped-def]
    headers, payload = change(chunk.headers(), chunk.payload())
    with pytest.raises(BadChunk) as info:
        decode_chunk(headers, payload)
    assert info.value.kind == kind and str(info.value).startswith(kind)


def test_partition_of_is_the_same_in_every_process() -> None:
    """Publishers and workers on different machines must agree (Python's hash() is salted per process)."""
    ids = [f"patient-{i:05d}" for i in range(200)]
    here = [partition_of(p, 16) for p in ids]
    code = f"from streamer.serve.messages import partition_of; print([partition_of(p, 16) for p in {ids!r}])"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert str(here) == there.strip()
    counts = np.bincount(here, minlength=16)
    assert counts.min() > 0.4 * counts.mean()  # spread over every partition


def test_events_are_strict_json() -> None:
    body = encode_event({"stream": "bed-7", "rr_ms": float("nan"), "score": 0.25, "anomaly": False})
    assert body == b'{"stream":"bed-7","rr_ms":null,"score":0.25,"anomaly":false}'
