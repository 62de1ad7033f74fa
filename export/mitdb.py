"""MIT-BIH (WFDB) records -> labelled beats framed exactly as the runtime frames them.

R peaks come from the runtime's causal detector (`streamer.ecg.detector.detect_rpeaks`) or from the
reference annotations. Detected peaks are labelled by matching them to annotated beats within 150 ms
(`label_peaks`): a detection matched to a `V` beat is a PVC, matched to any other beat is normal, and a
detection with no annotated beat is a *false detection* (labelled normal, counted separately: the live
engine will score it too, so it belongs in the false-alarm figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamer.ecg.beats import Beat, BeatSpec, extract_beats
from streamer.ecg.evaluate import label_peaks
from streamer.ecg.readers import read_wfdb

SIGNAL_CHANNEL = 0  # first channel (MLII on most MIT-BIH records)
PEAK_SOURCES = ("detector", "annotations")


@dataclass
class Record:
    """One WFDB record: the signal of one channel, its rate, and the reference beats when annotated."""

    name: str
    path: Path
    signal: np.ndarray
    fs: float
    ann_samples: np.ndarray | None  # annotated beats (sample index), None without an annotation file
    ann_symbols: np.ndarray | None

    @property
    def duration_s(self) -> float:
        return len(self.signal) / self.fs


@dataclass
class LabelledBeats:
    """Framed beats of one record with their labels."""

    record: str
    beats: list[Beat]
    inputs: np.ndarray  # (n, n_inputs) float32 model inputs
    pvc: np.ndarray  # (n,) bool, true class
    annotated: np.ndarray  # (n,) bool, False for detections with no reference beat
    duration_s: float
    good: np.ndarray | None = None  # (n,) bool, the beat's signal quality verdict (None: all good)

    @property
    def judged(self) -> np.ndarray:
        """Beats of good signal quality: the engine judges only those (the others are 'unjudged: noise')."""
        return np.ones(len(self.pvc), bool) if self.good is None else self.good

    def part(self, a: int, b: int | None = None) -> np.ndarray | None:
        return None if self.good is None else self.good[a:b]


def record_path(path: str | Path) -> Path:
    """WFDB record path without extension (accepts `.../100`, `.../100.dat`, `.../100.hea`)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".dat", ".hea", ".atr") else path


def load_record(path: str | Path, channel: int = SIGNAL_CHANNEL) -> Record:
    """Read with the runtime's reader: the same checks, and one-line errors for a bad training record."""
    path = record_path(path)
    rec = read_wfdb(path, lead=str(channel))
    return Record(path.name, path, rec.signal, rec.fs, rec.ref_samples, rec.ref_symbols)


def rpeaks(record: Record, source: str = "detector") -> np.ndarray:
    """R peaks of a record, from the runtime detector or the annotations."""
    if source == "annotations":
        if record.ann_samples is None:
            raise ValueError(f"record {record.name} has no annotations")
        return record.ann_samples.copy()
    if source != "detector":
        raise ValueError(f"unknown peak source {source!r} (one of {PEAK_SOURCES})")
    from streamer.ecg.detector import detect_rpeaks

    return np.asarray(detect_rpeaks(record.signal, record.fs), dtype=np.int64)


def peak_labels(record: Record, peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pvc, annotated) per peak. Without annotations every peak is an unlabelled normal."""
    if record.ann_samples is None or record.ann_symbols is None:
        return np.zeros(len(peaks), bool), np.zeros(len(peaks), bool)
    return label_peaks(peaks, record.ann_samples, record.ann_symbols, record.fs)


def labelled_beats(record: Record, spec: BeatSpec, source: str = "detector") -> LabelledBeats:
    """Frame a record's beats with the model's spec and label them."""
    peaks = rpeaks(record, source)
    pvc, annotated = peak_labels(record, peaks)
    beats = extract_beats(record.signal, record.fs, peaks.tolist(), spec)
    index = {int(p): i for i, p in enumerate(peaks)}
    rows = np.array([index[b.r_sample] for b in beats], dtype=np.int64)
    inputs = np.stack([b.features for b in beats]).astype(np.float32) if beats else \
        np.zeros((0, spec.n_inputs), np.float32)
    good = quality_verdicts(record, peaks)
    return LabelledBeats(record.name, beats, inputs, pvc[rows], annotated[rows], record.duration_s,
                         np.array([good[b.r_sample] for b in beats], dtype=bool))


def quality_verdicts(record: Record, peaks: np.ndarray) -> dict[int, bool]:
    """{R peak: judged good} from the engine's signal-quality checks, run over the record as live (the
    verdicts do not depend on how the stream is cut, so one block is the live stream)."""
    from streamer.ecg.quality import StreamQuality

    quality = StreamQuality(record.fs)
    quality.feed(record.signal, [int(p) for p in peaks])
    quality.flush()
    return {int(p): quality.verdict(int(p)).good for p in peaks}


def load_all(paths: Sequence[str | Path]) -> list[Record]:
    return [load_record(p) for p in paths]
