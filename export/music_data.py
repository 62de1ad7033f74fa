"""Real music for the audio codec: music21 corpus works rendered to 8 kHz mono, cached, split by piece.

    python -m export.music_data            # render (or load) the default works and print the split

Each work: `music21.corpus.parse(name).write('midi')` -> Debian's fluidsynth with the FluidR3 General
MIDI soundfont (22 050 Hz raw s16 stereo, stopped at the piece's MIDI length + 2 s or `max_seconds`,
whichever is first, because some MIDIs make fluidsynth render forever) -> mono mix -> soxr to 8000 Hz
-> peak-normalised per piece to [-1, 1] (the lecture's normalisation; the peak is stored). Works that
fail to parse or render are skipped and listed. The user's own audio (`load_folder`) goes through the
same resampling and normalisation, one piece per file.

Splits are by piece: all frames of a piece are on one side. The test pieces are never used for any
choice (architecture, epochs, loss); choices are made on the validation pieces.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE_HZ = 8000  # model rate
FRAME = 4096  # samples, 512 ms at 8 kHz
RENDER_RATE_HZ = 22050  # fluidsynth output rate before resampling
RENDER_GAIN = 0.5
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SOUNDFONT_LICENCE = "FluidR3_GM by Frank Wen, MIT licence (Debian package fluid-soundfont-gm)"
# A second General MIDI soundfont, for variety in training renders (other instrument samples)
SECOND_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
SECOND_SOUNDFONT_LICENCE = "TimGM6mb by Tim Brechbill, GPL-2 (Debian package timgm6mb-soundfont)"
MAX_SECONDS = 60.0  # only the first minute of each work, so long movements do not dominate
TAIL_SECONDS = 2.0  # release tail rendered after the last MIDI event
RENDER_TIMEOUT_S = 120.0
CACHE_VERSION = "v1"
N_TEST = 8  # held-out pieces (as in the measurement)
N_VALIDATION = 6  # pieces for every choice made during development
SPLIT_SEED = 0
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus")
OnPiece = Callable[[str], None]  # called with each piece's name once it is loaded (progress displays)

# The default works: a fixed, documented list across composers and textures (chorales, quartets,
# piano, songs, madrigals). Each is cut to its first MAX_SECONDS. Whole multi-movement files (e.g.
# beethoven/opus18no3, opus74) are left out: music21 takes minutes to parse each.
DEFAULT_WORKS: tuple[str, ...] = (
    # J. S. Bach: four-part chorales (short) and a keyboard prelude
    "bach/bwv1.6", "bach/bwv10.7", "bach/bwv101.7", "bach/bwv102.7", "bach/bwv103.6", "bach/bwv104.6",
    "bach/bwv108.6", "bach/bwv11.6", "bach/bwv110.7", "bach/bwv111.6", "bach/bwv113.8", "bach/bwv114.7",
    "bach/bwv115.6", "bach/bwv116.6", "bach/bwv117.4", "bach/bwv119.9", "bach/bwv12.7", "bach/bwv120.6",
    "bach/bwv846",
    # W. A. Mozart: string quartets and a piano sonata
    "mozart/k155/movement1", "mozart/k155/movement2", "mozart/k155/movement3",
    "mozart/k156/movement1", "mozart/k156/movement2", "mozart/k156/movement3", "mozart/k156/movement4",
    "mozart/k458/movement1", "mozart/k458/movement2", "mozart/k458/movement3", "mozart/k458/movement4",
    "mozart/k545/movement1_exposition", "mozart/k80/movement1", "mozart/k80/movement2",
    "mozart/k80/movement3", "mozart/k80/movement4",
    # L. van Beethoven: string quartets
    "beethoven/opus18no1/movement1.mxl", "beethoven/opus18no1/movement2.mxl",
    "beethoven/opus18no1/movement3.mxl", "beethoven/opus18no1/movement4.mxl",
    "beethoven/opus59no1/movement2", "beethoven/opus59no2/movement2", "beethoven/opus59no3/movement3",
    # J. Haydn: string quartets
    "haydn/opus1no1/movement1", "haydn/opus1no1/movement2", "haydn/opus1no1/movement3",
    "haydn/opus1no1/movement4", "haydn/opus1no1/movement5", "haydn/opus74no1/movement1",
    "haydn/opus74no1/movement2", "haydn/opus74no1/movement3", "haydn/opus74no1/movement4",
    # others
    "schubert/Lindenbaum", "handel/rinaldo/Lascia_chio_pianga", "joplin/maple_leaf_rag",
    "corelli/opus3no1/1grave", "verdi/laDonnaEMobile", "weber/concertino_clarinet", "cpebach/h186",
    "monteverdi/madrigal.3.1.mxl", "monteverdi/madrigal.3.2.mxl", "monteverdi/madrigal.3.3.mxl",
)


class RenderError(RuntimeError):
    """A work that could not be parsed or rendered (skipped, and named in the piece list)."""


@dataclass(frozen=True)
class Piece:
    """One piece at SAMPLE_RATE_HZ, peak-normalised to [-1, 1]."""

    name: str
    audio: np.ndarray  # float32 (n,)
    peak: float  # peak |x| before normalisation (rendered or file scale)
    source: str  # "music21" or the file path


@dataclass(frozen=True)
class Split:
    """Pieces by role; no piece is in two roles."""

    train: list[Piece]
    validation: list[Piece]
    test: list[Piece]
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    seed: int = SPLIT_SEED
    rendering: dict[str, Any] = field(default_factory=dict)

    def names(self) -> dict[str, list[str]]:
        return {role: [p.name for p in getattr(self, role)] for role in ("train", "validation", "test")}


def cache_dir() -> Path:
    root = os.environ.get("AESTREAM_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "aestream"
    return base / "music" / f"{CACHE_VERSION}-{SAMPLE_RATE_HZ}hz-{int(MAX_SECONDS)}s"


def rendering_meta() -> dict[str, Any]:
    return {"source": "music21 corpus (public-domain scores)", "synth": "fluidsynth -ni -q -g "
            f"{RENDER_GAIN} -r {RENDER_RATE_HZ} -F (raw s16 stereo)", "soundfont": SOUNDFONT.name,
            "soundfont_licence": SOUNDFONT_LICENCE, "mono": "mean of the two channels",
            "resampler": "soxr (HQ)", "sample_rate_hz": SAMPLE_RATE_HZ, "max_seconds": MAX_SECONDS,
            "normalisation": "peak per piece to 1.0"}


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def to_model_rate(audio: np.ndarray, rate: int) -> np.ndarray:
    """(n,) or (n, channels) at `rate` -> mono float32 at SAMPLE_RATE_HZ."""
    import soxr

    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != SAMPLE_RATE_HZ:
        x = soxr.resample(x, rate, SAMPLE_RATE_HZ)
    return x.astype(np.float32)


def peak_normalise(x: np.ndarray) -> tuple[np.ndarray, float]:
    """x / max|x| (the lecture's normalisation); a silent piece stays zero with peak 0."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x / peak if peak > 0 else x).astype(np.float32), peak


def midi_seconds(midi_path: Path) -> float:
    import mido

    return float(mido.MidiFile(str(midi_path)).length)


def run_fluidsynth(midi_path: Path, raw_path: Path, max_bytes: int, timeout_s: float,
                   soundfont: Path = SOUNDFONT) -> None:
    """Render to raw s16 stereo, killing fluidsynth once `max_bytes` are written or the timeout passes."""
    cmd = ["fluidsynth", "-ni", "-q", "-g", str(RENDER_GAIN), "-r", str(RENDER_RATE_HZ), "-T", "raw",
           "-O", "s16", "-F", str(raw_path), str(soundfont), str(midi_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None:
            if raw_path.exists() and raw_path.stat().st_size >= max_bytes or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def render_work(name: str, max_seconds: float = MAX_SECONDS,
                soundfont: Path = SOUNDFONT) -> tuple[np.ndarray, float]:
    """Parse one corpus work and render it; returns (normalised 8 kHz audio, peak). Raises RenderError."""
    from music21 import corpus

    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "piece.mid"
        try:
            corpus.parse(name).write("midi", fp=str(midi))
        except Exception as exc:  # music21 raises many types for malformed scores
            raise RenderError(f"music21 could not parse/write {name}: {type(exc).__name__}: {exc}") from exc
        seconds = min(midi_seconds(midi) + TAIL_SECONDS, max_seconds)
        n = int(seconds * RENDER_RATE_HZ)
        raw = Path(tmp) / "piece.raw"
        run_fluidsynth(midi, raw, max_bytes=4 * n, timeout_s=RENDER_TIMEOUT_S, soundfont=soundfont)
        if not raw.exists():
            raise RenderError(f"fluidsynth wrote nothing for {name}")
        pcm = np.fromfile(raw, dtype="<i2")
    pcm = pcm[: 2 * n - (len(pcm[: 2 * n]) % 2)].reshape(-1, 2).astype(np.float32) / 32768.0
    if len(pcm) < FRAME:
        raise RenderError(f"{name} rendered to {len(pcm)} samples only")
    return peak_normalise(to_model_rate(pcm, RENDER_RATE_HZ))


def cached_work(name: str, directory: Path, soundfont: Path = SOUNDFONT) -> Piece:
    """Rendered piece from the cache, rendering it first if needed."""
    path = directory / f"{slug(name)}.npz"
    if path.exists():
        with np.load(path) as z:
            return Piece(name, z["audio"], float(z["peak"]), "music21")
    audio, peak = render_work(name, soundfont=soundfont)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, audio=audio, peak=np.float64(peak))
    tmp.replace(path)  # atomic: a killed run never leaves a half-written cache entry
    return Piece(name, audio, peak, "music21")


def _render_one(args: tuple[str, str, str]) -> tuple[str, Piece | None, str]:
    name, directory, soundfont = args
    try:
        return name, cached_work(name, Path(directory), Path(soundfont)), ""
    except RenderError as exc:
        return name, None, str(exc)


def load_works(names: Sequence[str] = DEFAULT_WORKS, directory: Path | None = None,
               workers: int = 2, on_piece: OnPiece | None = None,
               soundfont: Path = SOUNDFONT) -> tuple[list[Piece], dict[str, str]]:
    """Pieces in the order of `names` (skipping failures) and {skipped name: why}; renders with another
    soundfont than FluidR3 are cached in a folder of their own."""
    directory = directory or (cache_dir() if soundfont == SOUNDFONT else cache_dir() / slug(soundfont.stem))
    skipped = _load_skipped(directory)
    todo = [(n, str(directory), str(soundfont)) for n in names if n not in skipped]
    results = []
    if workers > 1 and any(not (directory / f"{slug(n)}.npz").exists() for n, _, _ in todo):
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            for result in pool.map(_render_one, todo):  # in order, each as soon as it and those before are done
                results.append(result)
                if on_piece:
                    on_piece(result[0])
    else:
        for t in todo:
            results.append(_render_one(t))
            if on_piece:
                on_piece(t[0])
    pieces = []
    for name, piece, why in results:
        if piece is None:
            skipped[name] = why
        else:
            pieces.append(piece)
    _save_skipped(directory, skipped)
    return pieces, {n: skipped[n] for n in names if n in skipped}


def _load_skipped(directory: Path) -> dict[str, str]:
    path = directory / "skipped.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_skipped(directory: Path, skipped: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "skipped.json").write_text(json.dumps(skipped, indent=1, sort_keys=True))


def load_folder(folder: str | Path, max_seconds: float | None = MAX_SECONDS,
                on_piece: OnPiece | None = None) -> list[Piece]:
    """The user's own audio files (any format soundfile reads), one piece per file, sorted by path."""
    import soundfile as sf

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    pieces = []
    for path in files:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        x = to_model_rate(audio, rate)
        if max_seconds:
            x = x[: int(max_seconds * SAMPLE_RATE_HZ)]
        if len(x) < FRAME:
            continue  # shorter than one frame: nothing to train or test on
        x, peak = peak_normalise(x)
        if peak > 0:
            pieces.append(Piece(str(path.relative_to(folder)), x, peak, str(path)))
        if on_piece:
            on_piece(str(path.relative_to(folder)))
    if not pieces:
        raise ValueError(f"{folder}: no readable audio file of at least {FRAME} samples "
                         f"({', '.join(AUDIO_SUFFIXES)})")
    return pieces


def split_pieces(pieces: Sequence[Piece], seed: int = SPLIT_SEED, n_test: int = N_TEST,
                 n_validation: int = N_VALIDATION) -> tuple[list[Piece], list[Piece], list[Piece]]:
    """(train, validation, test) by piece: a seeded permutation; small sets keep >= 1 piece per role."""
    n = len(pieces)
    if n < 3:
        raise ValueError(f"need at least 3 pieces to split by piece (train, validation, test), got {n}")
    n_test = max(1, min(n_test, (n - 1) // 3 if n < 3 * n_test else n_test))
    n_validation = max(1, min(n_validation, (n - n_test) // 2 if n < 3 * n_validation else n_validation))
    order = np.random.default_rng(seed).permutation(n)
    test = [pieces[i] for i in order[:n_test]]
    validation = [pieces[i] for i in order[n_test:n_test + n_validation]]
    train = [pieces[i] for i in order[n_test + n_validation:]]
    return train, validation, test


def music_split(works: Sequence[str] | None = None, data_dir: str | Path | None = None,
                seed: int = SPLIT_SEED, n_test: int = N_TEST, n_validation: int = N_VALIDATION,
                on_piece: OnPiece | None = None) -> Split:
    """The data a model is trained and evaluated on: music21 works (default) or a folder of audio files."""
    if data_dir is not None:
        skipped: dict[str, str] = {}
        pieces = load_folder(data_dir, on_piece=on_piece)
        rendering = {"source": f"audio files under {Path(data_dir).name}/", "resampler": "soxr (HQ)",
                     "mono": "mean of the channels", "sample_rate_hz": SAMPLE_RATE_HZ,
                     "max_seconds": MAX_SECONDS, "normalisation": "peak per file to 1.0"}
    else:
        pieces, skipped = load_works(works or DEFAULT_WORKS, on_piece=on_piece)
        rendering = rendering_meta()
    train, validation, test = split_pieces(pieces, seed, n_test, n_validation)
    split = Split(train, validation, test, skipped, seed, rendering)
    if data_dir is None:
        _save_split(split)
    return split


def _save_split(split: Split) -> None:
    """The piece list with its split, next to the cached audio (for people, not read back)."""
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    record = {"seed": split.seed, **split.names(), "skipped": split.skipped, "rendering": split.rendering}
    (directory / f"split-seed{split.seed}-{len(split.train)}-{len(split.validation)}-{len(split.test)}.json"
     ).write_text(json.dumps(record, indent=1))


def frames(pieces: Sequence[Piece], frame: int = FRAME) -> np.ndarray:
    """Non-overlapping frames of every piece (a partial last frame is dropped): float32 (n, frame)."""
    rows = [p.audio[: len(p.audio) // frame * frame].reshape(-1, frame) for p in pieces]
    return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, frame), np.float32)


def main() -> None:
    t0 = time.perf_counter()
    split = music_split()
    print(f"{cache_dir()}  ({time.perf_counter() - t0:.0f} s)")
    for role, names in split.names().items():
        n = len(frames(getattr(split, role)))
        print(f"{role}: {len(names)} pieces, {n} frames: {', '.join(names)}")
    for name, why in split.skipped.items():
        print(f"skipped {name}: {why}")


if __name__ == "__main__":
    main()
