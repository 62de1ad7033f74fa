"""Image outputs: a folder of denoised images under the input names, or a video file.

Images arrive as (H, W) floats in [0, 1] and are written 8-bit gray (round(x * 255), clipped). OpenCV is
imported inside the functions that need it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from streamer.core.cstderr import capture_c_stderr
from streamer.core.errors import StreamerError
from streamer.images.events import ImageEvent
from streamer.images.opencv import opencv

COLOUR_ONLY = {".ppm"}  # formats OpenCV writes only from three channels
FALLBACK_SUFFIX = ".png"  # for names with no suffix (frame_000123) or one OpenCV cannot write
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def to_u8(image: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1] -> uint8, round(x * 255), values outside [0, 1] clipped."""
    return np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


@lru_cache(maxsize=32)
def can_write(suffix: str) -> bool:
    """Whether OpenCV has an image writer for this suffix (".png", ".jpg", ...)."""
    cv2 = opencv()

    return bool(suffix) and bool(cv2.haveImageWriter("x" + suffix))


def output_name(name: str) -> PurePosixPath:
    """The relative path an item named `name` is written under: the same, or with `.png` when it has no
    suffix (`frame_000123`) or one OpenCV cannot write. Absolute names and `..` are refused (the sink never
    writes outside its folder)."""
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise StreamerError(f"{name}: not a relative image name; refusing to write it")
    if can_write(rel.suffix.lower()):
        return rel
    return rel.with_suffix(FALLBACK_SUFFIX) if rel.suffix else rel.with_name(rel.name + FALLBACK_SUFFIX)


class FolderSink:
    """Writes each image under `out_dir` with its input's relative name (sub-folders made as needed).

    Each file is encoded in memory, written to a hidden temp file next to its target (`.name.tmp`, which a
    `--watch` run ignores) and renamed over it (`os.replace`), so a reader, a watcher or a Ctrl-C never
    sees half an image. `overwrite=False` refuses to replace an existing file.
    """

    def __init__(self, out_dir: str | Path, overwrite: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.overwrite = overwrite
        self.written = 0
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise StreamerError(f"{self.out_dir}: exists and is not a folder")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StreamerError(f"{self.out_dir}: cannot create output folder ({exc.strerror})") from None

    def path_for(self, name: str) -> Path:
        return self.out_dir / output_name(name)

    def write(self, events: Sequence[ImageEvent]) -> None:
        """The run path's sink call: every denoised image under its input's name."""
        for e in events:
            self.save(e.name, e.image)

    def drops(self) -> dict[str, int]:
        return {}

    def save(self, name: str, image: np.ndarray) -> None:
        """Write one image under `path_for(name)`."""
        cv2 = opencv()

        target = self.path_for(name)
        # a symlinked sub-folder (or file) inside the output folder is not followed out of it
        root = self.out_dir.resolve()
        if not target.resolve().is_relative_to(root) or target.is_symlink():
            raise StreamerError(f"{target}: leads outside the output folder {self.out_dir} (a symbolic link); "
                                "refusing to write there")
        if not self.overwrite and target.exists():
            raise StreamerError(f"{target}: exists (not overwriting)")
        pixels = to_u8(image)
        if target.suffix.lower() in COLOUR_ONLY:  # the gray image as three equal channels
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        ok, encoded = cv2.imencode(target.suffix, pixels)
        if not ok:
            raise StreamerError(f"{target}: OpenCV cannot encode an image as {target.suffix}")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(encoded.tobytes())
            os.replace(tmp, target)
        except OSError as exc:
            raise StreamerError(f"{target}: cannot write image ({exc.strerror})") from None
        finally:  # also on Ctrl-C between the write and the rename
            if tmp.exists():
                tmp.unlink()
        self.written += 1

    def close(self) -> None:
        """Nothing is buffered: every image is complete on disk once `write` returns."""


class VideoSink:
    """Gray frames to a video file through `cv2.VideoWriter` (mp4v for .mp4/.m4v/.mov, MJPG for .avi/.mkv).

    `size` is (width, height), as OpenCV says it; None takes it from the first frame. Frames of another
    size are resized to it (a video has one frame size), counted in `resized`. `close()` releases the
    writer, which finishes the file; call it in a `finally`.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.size = size
        self.frames = 0
        self.resized = 0
        self.writer: Any = None  # cv2.VideoWriter once the frame size is known
        codec = VIDEO_CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise StreamerError(f"{self.path}: unknown video type {self.path.suffix or '(none)'!r}; use "
                                + ", ".join(VIDEO_CODECS))
        self.codec = codec
        if not self.fps > 0:
            raise StreamerError(f"{self.path}: frame rate {fps} must be > 0")
        if not self.path.parent.is_dir():
            raise StreamerError(f"{self.path}: cannot write video (no folder {self.path.parent})")
        if size is not None:
            self._open(size)

    def _open(self, size: tuple[int, int]) -> None:
        cv2 = opencv()

        w, h = int(size[0]), int(size[1])
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*self.codec), self.fps, (w, h))
        if not writer.isOpened():
            writer.release()
            raise StreamerError(f"{self.path}: cannot write video ({self.codec}, {w}x{h}, {self.fps:g} fps)")
        self.size = (w, h)
        self.writer = writer

    def write(self, events: Sequence[ImageEvent]) -> None:
        """The run path's sink call: every denoised image as the next frame."""
        for e in events:
            self.add(e.image)

    def drops(self) -> dict[str, int]:
        return {}

    def add(self, image: np.ndarray) -> None:
        """Append one frame."""
        cv2 = opencv()

        if self.writer is None:
            self._open((image.shape[1], image.shape[0]))
        frame = to_u8(image)
        w, h = self.size or (frame.shape[1], frame.shape[0])
        if frame.shape != (h, w):
            shrink = frame.size > h * w
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            self.resized += 1
        with capture_c_stderr() as said:  # OpenCV reports a failed write (a full disk) only by printing it
            self.writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        if "Failed to write" in said[0]:
            raise StreamerError(f"{self.path}: cannot write video frame {self.frames} (disk full?); the video is "
                                "cut there and, without its index, may not play to the end")
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            with capture_c_stderr():  # finishing the file on a full disk prints the same complaints
                self.writer.release()
            self.writer = None
