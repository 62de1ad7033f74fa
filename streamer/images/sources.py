"""Image sources: a folder or glob of image files (optionally watched for new ones), a video file, a
camera, and an array of images (.npz, .npy, or MNIST's IDX format). Each is a run `Source` whose blocks hold
a list of (h, w) images (an (n, h, w) array for array files), their names and clean references in `extras`,
and the stream index of the first one in `start`.

Every image becomes (H, W) float32 grayscale in [0, 1]: colour through `cv2.cvtColor` (BGR/BGRA to gray),
8-bit / 255, 16-bit / 65535. OpenCV is imported inside the functions that need it, so other streams do
not pay for it.

Folder runs skip what they cannot read (named in `skipped`, counted in `drops()`) and go on; everything
that stops a run is an `InputError` naming the file and the problem.
"""

from __future__ import annotations

import glob
import gzip
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamer.core.cstderr import silence_c_stderr
from streamer.core.errors import InputError
from streamer.core.limits import BLOCK_PIXELS, MAX_ARRAY_PIXELS, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS
from streamer.core.npz import npy_shape, npz_shapes
from streamer.images.kind import frame_name
from streamer.images.opencv import opencv
from streamer.run.sources import Block, QuietSource, Timing

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm", ".bmp", ".tif", ".tiff")
IGNORED_SUFFIXES = (".tmp", ".part")  # files still being written by a downloader or an atomic writer
NOMINAL_FS = 1000.0  # items/s reported by unpaced sources (folders, arrays): the engine does not pace them
VIDEO_FALLBACK_FPS = 25.0  # frames/s when a video does not say
CAMERA_FALLBACK_FPS = 30.0
MAX_SANE_FPS = 1000.0  # a container claiming more is wrong: use the fallback
VIDEO_BATCH = 32  # frames per block from a video file when the caller does not choose
ARRAY_BATCH = 256  # images per block from a folder or an array
SETTLE_S = 0.5  # --watch: a file is taken once its size and mtime have not changed for this long
GIVE_UP_S = 5.0  # --watch: a stable file that still does not decode after this long is skipped
POLL_S = 0.2  # --watch: seconds between directory scans


@dataclass
class ImageItem:
    name: str  # file name relative to the folder ("a/7.png"), or "frame_000123" for video/camera/array
    image: np.ndarray  # (H, W) float32 grayscale in [0, 1]
    clean: np.ndarray | None  # clean reference of the same shape, when one exists
    index: int  # position in the stream (skipped files take none)
    arrival: float | None = None  # the source's clock() when a live source (camera, --watch) got it


def _full(items: list[ImageItem], batch: int) -> bool:
    """Whether a block of images is complete: `batch` images, or BLOCK_PIXELS pixels (big images, few per block)."""
    return len(items) >= batch or sum(item.image.size for item in items) >= BLOCK_PIXELS


def _blocks(items: list[ImageItem], live: bool) -> Iterator[Block]:
    """`Block`s of images (a list of (h, w) arrays) with their names and references in `extras`; consecutive
    items with and without a reference go in separate blocks. For live sources, `arrival` is when the first
    item arrived (latency counts from it)."""
    i = 0
    while i < len(items):
        j = i + 1
        while j < len(items) and (items[j].clean is None) == (items[i].clean is None):
            j += 1
        run = items[i:j]
        clean = None if run[0].clean is None else [it.clean for it in run]
        yield Block([it.image for it in run], run[0].index, run[0].arrival if live else None,
                    {"names": [it.name for it in run], "clean": clean})
        i = j



# --- decoding ---------------------------------------------------------------------------------------

def to_gray_float(pixels: np.ndarray, channel_order: str = "bgr") -> np.ndarray:
    """Decoded pixels (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), any integer or float dtype -> (H, W) float32.

    Integers are divided by their type's maximum (255, 65535); floats are taken as already in [0, 1].
    """
    cv2 = opencv()

    x = pixels
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[:, :, 0]
    elif x.ndim == 3 and x.shape[2] in (3, 4):
        code = {("bgr", 3): cv2.COLOR_BGR2GRAY, ("bgr", 4): cv2.COLOR_BGRA2GRAY,
                ("rgb", 3): cv2.COLOR_RGB2GRAY, ("rgb", 4): cv2.COLOR_RGBA2GRAY}[(channel_order, x.shape[2])]
        if x.dtype not in (np.uint8, np.uint16, np.float32):
            x = x.astype(np.float32)
        x = cv2.cvtColor(x, code)
    elif x.ndim != 2:
        raise ValueError(f"not an image: shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        return (x.astype(np.float32) / np.float32(np.iinfo(x.dtype).max)).astype(np.float32)
    return x.astype(np.float32, copy=False)


# PNG: 8-byte signature, chunks `<u32 length> <4-byte type> <data> <u32 crc>`, the last one `IEND` (empty):
#   89 50 4E 47 0D 0A 1A 0A ... 00 00 00 00 49 45 4E 44 AE 42 60 82
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# JPEG: starts with SOI (FF D8), ends with EOI (FF D9); inside the entropy-coded data FF is always stuffed
JPEG_SOI, JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
# BMP: "BM" <u32 little-endian file size> ...
BMP_MAGIC = b"BM"
# binary PGM/PPM: "P5"|"P6", then width, height, maxval as ASCII (whitespace and # comments between), one
# whitespace byte, then width * height * channels samples of 1 byte (maxval < 256) or 2 bytes
PNM_HEADER = re.compile(rb"\AP([56])(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)\s")


def incomplete(data: bytes) -> str | None:
    """Why these file bytes are a cut-off image (the reason), or None when they look whole.

    Decoders read some cut files without complaint (libjpeg fills a cut JPEG with grey), so the end
    markers and declared sizes of PNG, JPEG, BMP and binary PGM/PPM are checked before decoding.
    """
    if not data:
        return "empty file"
    if data.startswith(PNG_SIGNATURE):
        return None if data.endswith(PNG_IEND) else "truncated PNG (no IEND chunk at the end)"
    if data.startswith(JPEG_SOI):
        return None if data.rstrip(b"\x00\r\n ").endswith(JPEG_EOI) else "truncated JPEG (no end-of-image marker)"
    if data.startswith(BMP_MAGIC) and len(data) >= 6:
        declared = struct.unpack_from("<I", data, 2)[0]
        return None if len(data) >= declared else f"truncated BMP ({len(data)} of {declared} bytes)"
    pnm = PNM_HEADER.match(data)
    if pnm:
        channels = 1 if pnm[1] == b"5" else 3
        width, height, maxval = int(pnm[2]), int(pnm[3]), int(pnm[4])
        need = pnm.end() + width * height * channels * (1 if maxval < 256 else 2)
        return None if len(data) >= need else f"truncated PGM/PPM ({len(data)} of {need} bytes)"
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) an image file's header declares (PNG, JPEG, BMP, GIF, binary PGM/PPM), read before
    anything is decoded; None for other formats (OpenCV's own pixel limit stands guard over those)."""
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24:
        return struct.unpack_from(">II", data, 16)
    if data.startswith(JPEG_SOI):
        return _jpeg_size(data)
    if data.startswith(BMP_MAGIC) and len(data) >= 26:
        width, height = struct.unpack_from("<ii", data, 18)
        return abs(width), abs(height)  # a negative height is a top-down BMP
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack_from("<HH", data, 6)
    pnm = PNM_HEADER.match(data)
    return (int(pnm[2]), int(pnm[3])) if pnm else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The frame size in a JPEG's start-of-frame segment (SOF0-SOF15 but DHT, JPG and DAC)."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill bytes
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack_from(">HH", data, i + 5)
            return width, height
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        i += 2 + struct.unpack_from(">H", data, i + 2)[0]
    return None


def too_large(width: int, height: int, max_pixels: int) -> str | None:
    """Why an image of this size is refused (more pixels than the cap), or None."""
    if width * height > max_pixels:
        return f"{width}x{height} is {width * height:,} pixels, more than the {max_pixels:,} allowed (--max-pixels)"
    return None


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray | None, str]:
    """File bytes -> ((H, W) float32 in [0, 1], "") or (None, the reason it is unreadable). An image larger
    than `max_pixels` is refused from its header, before it is decoded (a 114 kB PNG can declare 10000x10000)."""
    cv2 = opencv()

    reason = incomplete(data)
    if reason:
        return None, reason
    size = declared_size(data)
    reason = too_large(*size, max_pixels) if size else None
    if reason:
        return None, reason
    with silence_c_stderr():  # libpng and libjpeg print what they find wrong
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        return None, "not an image OpenCV can decode"
    reason = too_large(pixels.shape[1], pixels.shape[0], max_pixels)
    if reason:  # a format whose header was not read above
        return None, reason
    try:
        return to_gray_float(pixels), ""
    except ValueError as exc:
        return None, str(exc)


def read_image(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray | None, str]:
    """Read and decode one file (the bytes are read once, so a file being replaced cannot mix versions)."""
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_FILE_BYTES:
            return None, f"file of {size / 1e6:.0f} MB, more than any image of the allowed size"
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read ({exc.strerror})"
    return decode_image(data, max_pixels)


# --- folders ----------------------------------------------------------------------------------------

def natural_key(name: str) -> list[Any]:
    """Sort key where digit runs compare as numbers: 2.png before 10.png."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def wanted(rel: str) -> bool:
    """An image file name (relative path) the folder source takes: image suffix, no hidden or temp part."""
    parts = rel.replace("\\", "/").split("/")
    if any(p.startswith(".") for p in parts):
        return False
    low = parts[-1].lower()
    return low.endswith(IMAGE_SUFFIXES) and not low.endswith(IGNORED_SUFFIXES)


class FolderSource:
    """Image files from a folder (searched recursively) or a glob (`"scans/*.png"`, `**` allowed), in natural
    order of their relative names; a single image file works too.

    Yields blocks of up to `batch` images. Files that cannot be read are skipped: named with the reason in
    `skipped`, counted in `drops()`. Hidden files and folders (a leading '.') and names ending in .tmp or
    .part are ignored, and so is anything under `exclude` (e.g. the output folder).

    `watch=True` keeps scanning every `poll_s` until Ctrl-C (or `max_idle_s` without any new or changing
    file): each file is taken once (by path), when its size and mtime have been stable for `settle_s`
    and it decodes completely. A stable file that does not decode is retried while it stays stable, and
    skipped once it has been stable for `give_up_s` (a slow writer pausing mid-file gets that long).
    Files present at start are taken the same way, so a file half-written at start is waited for too.

    `clean_dir`: a clean reference for `a/7.png` is `clean_dir/a/7.png`, or a file with the same stem and
    another image suffix (`a/7.jpg`). A missing, unreadable or differently sized reference leaves
    `clean` None and is noted in `clean_missing`.
    """

    def __init__(self, pattern: str | Path, batch: int = ARRAY_BATCH, watch: bool = False, poll_s: float = POLL_S,
                 settle_s: float = SETTLE_S, clean_dir: Path | None = None, max_idle_s: float | None = None,
                 give_up_s: float = GIVE_UP_S, exclude: Sequence[Path] = (),
                 clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep,
                 max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.pattern = str(pattern)
        self.max_pixels = max_pixels
        self.batch = max(1, int(batch))
        self.watch = watch
        self.poll_s = poll_s
        self.settle_s = settle_s
        self.give_up_s = max(give_up_s, settle_s)
        self.max_idle_s = max_idle_s
        self.clean_dir = Path(clean_dir) if clean_dir is not None else None
        self.exclude = [Path(p).resolve() for p in exclude]
        self.clock = clock
        self.sleep = sleep
        self.live = watch
        self.timing = Timing.LIVE if watch else Timing.UNTIMED  # a folder has no signal time: no RTF
        self.rate = NOMINAL_FS
        self.name = self.pattern
        self.skipped: list[str] = []
        self.clean_missing: list[str] = []
        self.taken = 0
        self.idle_s = 0.0  # time spent waiting for new files (--watch): not counted in the throughput
        self.waiting = False  # nothing to do right now: the dashboard says so
        self.root, self._list = self._resolve()
        if self.clean_dir is not None and not self.clean_dir.is_dir():
            raise InputError(self.clean_dir, "no such folder (for clean references)")
        self._initial = [] if watch else self._files()
        self.total: int | None = None if watch else len(self._initial)  # files found (some may be unreadable)
        if not watch and not self._initial:
            raise InputError(self.pattern, "no images (PNG/JPG/JPEG/PGM/PPM/BMP/TIF)")

    # -- listing
    def _resolve(self) -> tuple[Path, Callable[[], list[Path]]]:
        """(root that names are relative to, a function listing the wanted files now)."""
        path = Path(self.pattern)
        if glob.has_magic(self.pattern) and not path.exists():  # a folder named `scan [2]` is that folder
            root = Path(*[p for p in path.parts[:next(i for i, p in enumerate(path.parts) if glob.has_magic(p))]])
            return root, lambda: [Path(p) for p in glob.glob(self.pattern, recursive=True) if Path(p).is_file()]
        if path.is_dir():
            return path, lambda: [p for p in path.rglob("*") if p.is_file()]
        if path.is_file():
            return path.parent, lambda: [path]
        if self.watch:
            raise InputError(path, "no such folder to watch")
        raise InputError(path, "no such file or folder")

    def _excluded(self, path: Path) -> bool:
        if not self.exclude:
            return False
        full = path.resolve()
        return any(full == ex or ex in full.parents for ex in self.exclude)

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def _files(self) -> list[tuple[str, Path]]:
        try:
            found = {self._rel(p): p for p in self._list()}
        except OSError:  # a sub-folder vanished mid-scan: what is there is listed again at the next scan
            return []
        names = [n for n in found if wanted(n) and not self._excluded(found[n])]
        return [(n, found[n]) for n in sorted(names, key=natural_key)]

    # -- items
    def _clean_for(self, rel: str, shape: tuple[int, ...]) -> np.ndarray | None:
        if self.clean_dir is None:
            return None
        exact = self.clean_dir / rel
        candidates = [exact] + [exact.with_suffix(s) for s in IMAGE_SUFFIXES if s != exact.suffix.lower()]
        for cand in candidates:
            if cand.is_file():
                clean, why = read_image(cand, self.max_pixels)
                if clean is None:
                    self.clean_missing.append(f"{rel}: reference {cand.name} unreadable ({why})")
                elif clean.shape != shape:
                    self.clean_missing.append(f"{rel}: reference is {clean.shape[1]}x{clean.shape[0]}, "
                                              f"image {shape[1]}x{shape[0]}")
                else:
                    return clean
                return None
        self.clean_missing.append(f"{rel}: no reference")
        return None

    def _item(self, rel: str, image: np.ndarray) -> ImageItem:
        item = ImageItem(rel, image, self._clean_for(rel, image.shape), self.taken,
                         self.clock() if self.live else None)
        self.taken += 1
        return item

    def _skip(self, rel: str, reason: str) -> None:
        self.skipped.append(f"{rel}: {reason}")

    def summary(self) -> dict[str, Any]:
        """Merged into the run's summary: which files were skipped and why, which had no clean reference."""
        out: dict[str, Any] = {"skipped": list(self.skipped)}
        if self.clean_dir is not None:
            out["clean_missing"] = list(self.clean_missing)
        return out

    def drops(self) -> dict[str, int]:
        return {"unreadable image": len(self.skipped)} if self.skipped else {}

    def length(self) -> int | None:
        return self.total

    def close(self) -> None:
        pass

    # -- streaming
    def blocks(self) -> Iterator[Block]:
        return self._watch() if self.watch else self._once()

    def _once(self) -> Iterator[Block]:
        """The files there now, each read once, in blocks of `batch` readable images."""
        items: list[ImageItem] = []
        for rel, path in self._initial:
            image, why = read_image(path, self.max_pixels)
            if image is None:
                self._skip(rel, why)
                continue
            items.append(self._item(rel, image))
            if _full(items, self.batch):
                yield from _blocks(items, self.live)
                items = []
        if items:
            yield from _blocks(items, self.live)
        if self.taken == 0:
            raise InputError(self.pattern, f"none of the {len(self.skipped)} image files could be read "
                                           f"(first: {self.skipped[0]})")

    def _watch(self) -> Iterator[Block]:
        """Scan, take what has settled, yield it; until Ctrl-C or `max_idle_s` without any change."""
        watcher = _Watcher(self.settle_s, self.give_up_s, self.clock, self.max_pixels)
        last_change = self.clock()
        while True:
            ready, changed = watcher.scan(self._files())
            if changed:
                last_change = self.clock()
            items: list[ImageItem] = []
            for rel, image, why in ready:
                if image is None:
                    self._skip(rel, why)
                else:
                    items.append(self._item(rel, image))
            part: list[ImageItem] = []
            for item in items:
                part.append(item)
                if _full(part, self.batch):
                    yield from _blocks(part, self.live)
                    part = []
            if part:
                yield from _blocks(part, self.live)
            if self.max_idle_s is not None and not watcher.pending and self.clock() - last_change >= self.max_idle_s:
                return
            self.waiting = not watcher.pending
            before = self.clock()
            self.sleep(self.poll_s)
            self.idle_s += self.clock() - before


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    stable_since: float
    last_error: str = ""


class _Watcher:
    """State of a watched folder: files done (taken or skipped, by relative name) and files still settling."""

    def __init__(self, settle_s: float, give_up_s: float, clock: Callable[[], float],
                 max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.max_pixels = max_pixels
        self.settle_s = settle_s
        self.give_up_s = give_up_s
        self.clock = clock
        self.done: set[str] = set()
        self.pending: dict[str, _Seen] = {}

    def scan(self, files: list[tuple[str, Path]]) -> tuple[list[tuple[str, np.ndarray | None, str]], bool]:
        """(files ready now: (name, image or None, reason), whether anything appeared or changed)."""
        now = self.clock()
        ready: list[tuple[str, np.ndarray | None, str]] = []
        changed = False
        for rel, path in files:
            if rel in self.done:
                continue
            try:
                st = path.stat()
            except OSError:  # vanished between listing and stat (renamed by its writer): not ours yet
                continue
            seen = self.pending.get(rel)
            if seen is None or (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
                self.pending[rel] = _Seen(st.st_size, st.st_mtime_ns, now)
                changed = True
                continue
            stable = now - seen.stable_since
            if stable < self.settle_s:
                continue
            image, why = read_image(path, self.max_pixels)
            if image is None and stable < self.give_up_s:
                seen.last_error = why  # maybe still being written by a writer that pauses: retry next scan
                continue
            ready.append((rel, image, why))
            self.done.add(rel)
            del self.pending[rel]
            changed = True
        return ready, changed


# --- video and camera -------------------------------------------------------------------------------

def _fps(capture: Any, fallback: float) -> float:
    cv2 = opencv()

    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if 0.0 < fps <= MAX_SANE_FPS else fallback


class VideoSource:
    """Frames of a video file (anything OpenCV's FFmpeg reads), gray, in blocks of `batch` frames.

    `fs` is the video's frame rate (25 when it does not say); the engine paces by it. Ends at the last
    frame. A file OpenCV cannot open, or that opens but has no frame, is an `InputError`.
    """

    live = False
    timing = Timing.REPLAY

    def __init__(self, path: str | Path, batch: int = VIDEO_BATCH, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        cv2 = opencv()

        self.path = Path(path)
        self.name = str(path)
        self.batch = max(1, int(batch))
        if not self.path.is_file():
            raise InputError(self.path, "no such file")
        with silence_c_stderr():
            capture = cv2.VideoCapture(str(self.path))
            opened = capture.isOpened()
            first = capture.read() if opened else (False, None)
        if not opened or not first[0] or first[1] is None:
            capture.release()
            raise InputError(self.path, "cannot open video (not a video file, or no codec for it)")
        reason = too_large(first[1].shape[1], first[1].shape[0], max_pixels)
        if reason:
            capture.release()
            raise InputError(self.path, f"video frames of {reason}")
        self.capture = capture
        self.first: np.ndarray | None = first[1]
        self.rate = _fps(capture, VIDEO_FALLBACK_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = count if count > 0 else None  # as the container says: an estimate for some formats

    def drops(self) -> dict[str, int]:
        return {}

    def length(self) -> int | None:
        return self.total

    def summary(self) -> dict[str, Any]:
        return {"fps": self.rate}

    def close(self) -> None:
        self.capture.release()

    def _frames(self) -> Iterator[np.ndarray]:
        if self.first is not None:
            first, self.first = self.first, None
            yield first
        while True:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                return
            yield frame

    def blocks(self) -> Iterator[Block]:
        items: list[ImageItem] = []
        index = 0
        try:
            for frame in self._frames():
                items.append(ImageItem(frame_name(index), to_gray_float(frame), None, index))
                index += 1
                if _full(items, self.batch):
                    yield from _blocks(items, self.live)
                    items = []
            if items:
                yield from _blocks(items, self.live)
        finally:
            self.capture.release()


class CameraSource:
    """Frames from camera `index` (OpenCV VideoCapture), live: the engine does not pace it.

    Each frame's `arrival` is when the camera returned it. Ends (without error) when the camera stops
    delivering frames (unplugged); Ctrl-C stops it.
    """

    live = True
    timing = Timing.LIVE

    def __init__(self, index: int, batch: int = 1, clock: Callable[[], float] = time.perf_counter) -> None:
        cv2 = opencv()
        self.clock = clock

        self.index = int(index)
        self.name = f"camera {self.index}"
        self.batch = max(1, int(batch))
        with silence_c_stderr():
            capture = cv2.VideoCapture(self.index)
            opened = capture.isOpened()
        if not opened:
            capture.release()
            raise InputError(self.name, "no such camera (or it cannot be opened)")
        self.capture = capture
        self.rate = _fps(capture, CAMERA_FALLBACK_FPS)

    def drops(self) -> dict[str, int]:
        return {}

    def length(self) -> int | None:
        return None

    def summary(self) -> dict[str, Any]:
        return {"camera": self.index, "fps": self.rate}

    def close(self) -> None:
        self.capture.release()

    def blocks(self) -> Iterator[Block]:
        items: list[ImageItem] = []
        index = 0
        try:
            while True:
                ok, frame = self.capture.read()
                if not ok or frame is None:
                    break
                items.append(ImageItem(frame_name(index), to_gray_float(frame), None, index, self.clock()))
                index += 1
                if len(items) == self.batch:
                    yield from _blocks(items, self.live)
                    items = []
            if items:
                yield from _blocks(items, self.live)
        finally:
            self.capture.release()


# --- arrays -----------------------------------------------------------------------------------------

# IDX (MNIST's format, big-endian): <u8 0> <u8 0> <u8 type code> <u8 number of dimensions>,
# then one <u32> per dimension, then the data in C order, e.g. t10k-images-idx3-ubyte:
#   00 00 08 03 | 00 00 27 10 (10000) | 00 00 00 1c (28) | 00 00 00 1c (28) | 7 840 000 bytes of pixels
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, source: str | Path) -> np.ndarray:
    """The array in IDX bytes; `InputError` on a bad magic, an unknown type, or a size the header denies."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise InputError(source, f"not an IDX file (magic {data[:4].hex() or 'missing'}, expected 0000TTNN)",
                         "byte 0")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES or ndim == 0:
        raise InputError(source, f"not an IDX file (type code 0x{code:02x}, {ndim} dimensions)", "byte 2")
    head = 4 + 4 * ndim
    if len(data) < head:
        raise InputError(source, f"IDX header cut short ({len(data)} of {head} bytes)")
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    dtype = np.dtype(IDX_TYPES[code])
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - head != need:
        shape = "x".join(str(d) for d in dims)
        raise InputError(source, f"IDX data is {len(data) - head} bytes, the header ({shape} {dtype.str[1:]}) "
                                 f"says {need}", f"byte {head}")
    return np.frombuffer(data, dtype, offset=head).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An IDX file (gzipped or not), its declared shape checked against the caps before the data is read: a
    1 MB gzip file can declare one 32768x32768 image."""
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            head = f.read(4)
            ndim = head[3] if len(head) == 4 else 0
            dims = f.read(4 * ndim)
            if len(head) == 4 and len(dims) == 4 * ndim and head[:2] == b"\x00\x00" and head[2] in IDX_TYPES:
                shape = struct.unpack(f">{ndim}I", dims)
                check_declared(path, shape, max_pixels)
                need = int(np.prod(shape, dtype=np.int64)) * np.dtype(IDX_TYPES[head[2]]).itemsize
                data = head + dims + f.read(need + 1)  # one byte more: a file longer than declared is refused
            else:
                data = head + dims  # parse_idx names what is wrong with the header
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(path, f"cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    return parse_idx(data, path)


def check_declared(source: str | Path, shape: Sequence[int], max_pixels: int = MAX_IMAGE_PIXELS,
                   what: str = "images") -> None:
    """Refuse an array whose declared shape holds images above `max_pixels` or more than MAX_ARRAY_PIXELS in
    all, before its data is read or decompressed."""
    dims = [int(d) for d in shape]
    if len(dims) < 2:
        return  # not images at all: as_images says so
    per_image = int(np.prod(dims[1:3], dtype=np.int64))
    total = int(np.prod(dims[:3], dtype=np.int64))
    shown = "x".join(str(d) for d in dims)
    if per_image > max_pixels:
        raise InputError(source, f"{what}: shape {shown} declares images of {per_image:,} pixels, more than the "
                                 f"{max_pixels:,} allowed (--max-pixels)")
    if total > MAX_ARRAY_PIXELS:
        raise InputError(source, f"{what}: shape {shown} declares {total:,} pixels in all, more than the "
                                 f"{MAX_ARRAY_PIXELS:,} one array file may hold (split the file)")


def as_images(array: np.ndarray, source: str | Path, what: str = "images") -> np.ndarray:
    """An image array of shape (n, H, W), (n, H, W, 1|3|4) (RGB order) or (n, H*W) with square H*W
    -> (n, H, W) float32 in [0, 1]. Integers are scaled by their type's maximum (uint8 / 255); the
    result (or floats as stored) must lie in [0, 1]."""
    x = np.asarray(array)
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise InputError(source, f"{what}: shape {x.shape} is not (n, H*W) with a square H*W, nor (n, H, W)")
        x = x.reshape(len(x), side, side)
    if x.ndim == 4 and x.shape[3] in (1, 3, 4):
        x = np.stack([to_gray_float(im, "rgb") for im in x]) if x.shape[3] > 1 else x[..., 0]
    if x.ndim != 3 or 0 in x.shape:
        raise InputError(source, f"{what}: shape {x.shape}, expected (n, H, W), (n, H, W, 1) or (n, H*W)")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / np.float32(np.iinfo(x.dtype).max)
    elif not np.issubdtype(x.dtype, np.floating):
        raise InputError(source, f"{what}: dtype {x.dtype} is not a number type")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise InputError(source, f"{what}: non-finite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise InputError(source, f"{what}: float values span [{lo:.3g}, {hi:.3g}], expected [0, 1] "
                                 "(scale them, or store uint8)")
    return x


def load_image_array(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, clean or None) from .npz (key `images` or the first array; optional `clean`), .npy, or IDX.
    Declared shapes are checked against the caps before any array is read."""
    if not path.is_file():
        raise InputError(path, "no such file")
    low = path.name.lower()
    if low.endswith(".npz"):
        try:
            for key, shape in npz_shapes(path).items():
                check_declared(path, shape, max_pixels, f"array {key!r}")
            with np.load(path, allow_pickle=False) as npz:
                keys = [k for k in npz.files if k != "clean"]
                if not keys:
                    raise InputError(path, "no image array (keys: " + ", ".join(npz.files) + ")")
                key = "images" if "images" in npz.files else keys[0]
                images, clean = npz[key], (npz["clean"] if "clean" in npz.files else None)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise InputError(path, f"not a readable .npz ({exc})") from None
        imgs = as_images(images, path, f"array {key!r}")
        ref = as_images(clean, path, "array 'clean'") if clean is not None else None
        if ref is not None and ref.shape != imgs.shape:
            raise InputError(path, f"'clean' has shape {ref.shape}, images {imgs.shape}")
        return imgs, ref
    if low.endswith(".npy"):
        try:
            with open(path, "rb") as f:
                check_declared(path, npy_shape(f), max_pixels)
            return as_images(np.load(path, allow_pickle=False), path), None
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(path, f"not a readable .npy ({exc})") from None
    return as_images(read_idx(path, max_pixels), path), None


def is_image_array(path: str | Path) -> bool:
    """Whether a path names an array file this module reads (.npz, .npy, IDX such as *-idx3-ubyte[.gz])."""
    low = Path(path).name.lower()
    return low.endswith((".npz", ".npy", ".idx", ".idx.gz")) or "-idx" in low or "_idx" in low


class ImageArraySource(QuietSource):
    """All images of an array file (see `load_image_array`), in blocks of `batch`, unpaced."""

    live = False
    timing = Timing.UNTIMED

    def __init__(self, path: str | Path, batch: int = ARRAY_BATCH, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.rate = NOMINAL_FS
        self.images, self.clean = load_image_array(self.path, max_pixels)
        pixels = int(np.prod(self.images.shape[1:]))
        self.batch = max(1, min(int(batch), BLOCK_PIXELS // max(1, pixels)))
        self.total = len(self.images)

    def blocks(self) -> Iterator[Block]:
        for start in range(0, self.total, self.batch):
            stop = min(start + self.batch, self.total)
            names = [frame_name(i) for i in range(start, stop)]
            clean = None if self.clean is None else self.clean[start:stop]
            yield Block(self.images[start:stop], start, extras={"names": names, "clean": clean})

    def length(self) -> int | None:
        return self.total
