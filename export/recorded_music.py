"""Recorded music (real audio tracks, not rendered from MIDI) from Debian packages, split by track.

    python -m export.recorded_music        # list the installed tracks, their licence and role

Each source is a Debian package whose copyright file is checked for the music's licence before any track
is used (`LicenceError` otherwise). A track is read with soundfile (OGG, MP3), cut to its first
`MAX_SECONDS`, mixed to mono, resampled to 8 kHz with soxr and peak-normalised, exactly as
`export.music_data` treats the user's own files; decoded tracks are cached beside the music21 renders.

The split is by track and depends on nothing but the track's name: the first 8 hex digits of
sha256("package/file") modulo 100 put a track in test (< TEST_PERCENT), validation (< TEST_PERCENT +
VALIDATION_PERCENT) or train, so adding or removing a package never moves another package's tracks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.music_data import FRAME, SAMPLE_RATE_HZ, Piece, cache_dir, peak_normalise, slug, to_model_rate

MAX_SECONDS = 120.0  # first two minutes of each track, so long tracks do not dominate
TEST_PERCENT = 20  # held-out tracks: never used for any choice
VALIDATION_PERCENT = 15  # tracks for early stopping and design choices
CACHE_VERSION = "v1"
COPYRIGHT_DIR = Path("/usr/share/doc")


class LicenceError(RuntimeError):
    """A package's copyright file does not state the licence this module expects for its music."""

    def __init__(self, package: str, path: Path, expected: str) -> None:
        super().__init__(f"{path}: expected the licence text {expected!r} for the music of {package}, "
                         "did not find it; not using its tracks")
        self.package, self.path, self.expected = package, path, expected


@dataclass(frozen=True)
class Source:
    """One Debian package of recorded music and the licence its copyright file must state."""

    package: str
    folder: Path
    pattern: str  # glob for the tracks inside `folder`
    licence: str  # SPDX identifier of the music's licence
    licence_text: str  # phrase that must appear in /usr/share/doc/<package>/copyright (whitespace-normalised)
    authors: str
    description: str
    exclude: tuple[str, ...] = ()  # file names that are not music (e.g. a silent track)

    @property
    def copyright_file(self) -> Path:
        return COPYRIGHT_DIR / self.package / "copyright"


SOURCES: tuple[Source, ...] = (
    # copyright: "GNU General Public License version 2 / or at your option any later version"
    Source("wesnoth-1.16-music", Path("/usr/share/games/wesnoth/1.16/data/core/music"), "*.ogg",
           "GPL-2.0-or-later", "General Public License version 2 or at your option any later version",
           "The Battle for Wesnoth composers (Frank Amos, Jeremy Nicoll, Doug Kaufman and others)",
           "orchestral and choral game score, OGG Vorbis 44.1 kHz stereo", exclude=("silence.ogg",)),
    # copyright: "Files: *  Copyright: 2002 Michael Kievernagel  License: GPL-2+"
    Source("asc-music", Path("/usr/share/games/asc/music"), "*.mp3", "GPL-2.0-or-later",
           "Copyright: 2002 Michael Kievernagel License: GPL-2+", "Michael Kievernagel",
           "Advanced Strategic Command soundtrack (synth-orchestral), MP3 22.05 kHz stereo"),
)


@dataclass(frozen=True)
class Track:
    """One installed track, its licence and its role in the split."""

    name: str  # "package/file"
    path: Path
    source: Source

    @property
    def role(self) -> str:
        return role_of(self.name)


def role_of(name: str) -> str:
    """'train', 'validation' or 'test', from the track's name alone."""
    bucket = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 100
    if bucket < TEST_PERCENT:
        return "test"
    return "validation" if bucket < TEST_PERCENT + VALIDATION_PERCENT else "train"


def check_licence(source: Source) -> None:
    """Raises LicenceError unless the package's copyright file states `source.licence_text`."""
    path = source.copyright_file
    text = " ".join(path.read_text(errors="replace").split()) if path.is_file() else ""
    if " ".join(source.licence_text.split()) not in text:
        raise LicenceError(source.package, path, source.licence_text)


def installed_tracks(sources: Sequence[Source] = SOURCES) -> list[Track]:
    """Tracks of every installed source (licence checked), sorted by name; missing packages give none."""
    tracks = []
    for source in sources:
        files = sorted(p for p in source.folder.glob(source.pattern) if p.name not in source.exclude)
        if not files:
            continue
        check_licence(source)
        tracks += [Track(f"{source.package}/{p.name}", p, source) for p in files]
    return tracks


def recorded_cache_dir() -> Path:
    return cache_dir().parent / f"recorded-{CACHE_VERSION}-{SAMPLE_RATE_HZ}hz-{int(MAX_SECONDS)}s"


def decode_track(path: Path, max_seconds: float = MAX_SECONDS) -> tuple[np.ndarray, float]:
    """First `max_seconds` of an audio file -> (peak-normalised mono float32 at 8 kHz, peak)."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        audio = f.read(frames=int(max_seconds * f.samplerate), dtype="float32", always_2d=True)
        rate = f.samplerate
    return peak_normalise(to_model_rate(audio, rate))


def load_track(track: Track, max_seconds: float = MAX_SECONDS, cache: Path | None = None) -> Piece | None:
    """The track as a Piece (from the cache when there), or None if it is silent or shorter than a frame."""
    path = (cache or recorded_cache_dir()) / f"{slug(track.name)}.npz"
    if path.exists():
        with np.load(path) as z:
            audio, peak = z["audio"], float(z["peak"])
    else:
        audio, peak = decode_track(track.path, max_seconds)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, audio=audio, peak=np.float64(peak))
        tmp.replace(path)  # atomic: a killed run never leaves a half-written entry
    if peak <= 0 or len(audio) < FRAME:
        return None
    return Piece(track.name, audio, peak, str(track.path))


def load_recorded(tracks: Sequence[Track] | None = None) -> dict[str, list[Piece]]:
    """{'train', 'validation', 'test'} -> pieces, by track."""
    out: dict[str, list[Piece]] = {"train": [], "validation": [], "test": []}
    for track in installed_tracks() if tracks is None else tracks:
        piece = load_track(track)
        if piece is not None:
            out[track.role].append(piece)
    return out


def sources_meta(tracks: Sequence[Track]) -> dict[str, Any]:
    """What a model card records: each package with its licence, authors and tracks by role."""
    out: dict[str, Any] = {}
    for t in tracks:
        entry = out.setdefault(t.source.package, {
            "licence": t.source.licence, "authors": t.source.authors, "description": t.source.description,
            "copyright_file": str(t.source.copyright_file), "tracks": {"train": [], "validation": [], "test": []}})
        entry["tracks"][t.role].append(Path(t.name).name)
    return out


def split_meta(pieces: dict[str, list[Piece]], tracks: Sequence[Track]) -> dict[str, Any]:
    return {"sources": sources_meta(tracks), "max_seconds": MAX_SECONDS, "resampler": "soxr (HQ)",
            "mono": "mean of the channels", "normalisation": "peak per track to 1.0",
            "split": f"by track: sha256(package/file) mod 100 < {TEST_PERCENT} test, < "
                     f"{TEST_PERCENT + VALIDATION_PERCENT} validation, else train",
            "seconds": {r: round(sum(len(p.audio) for p in ps) / SAMPLE_RATE_HZ, 1) for r, ps in pieces.items()},
            "n_tracks": {r: len(ps) for r, ps in pieces.items()}}


def main() -> None:
    tracks = installed_tracks()
    pieces = load_recorded(tracks)
    for t in tracks:
        print(f"{t.role:<10} {t.source.licence:<18} {t.name}")
    meta = split_meta(pieces, tracks)
    print(re.sub(r"[{}']", "", f"tracks {meta['n_tracks']}, seconds {meta['seconds']}"))


if __name__ == "__main__":
    main()
