"""Quieting what C libraries print while a file or device is opened or decoded.

libsndfile, mpg123, ALSA, PortAudio, libpng, OpenCV and FFmpeg print notes and warnings straight to the
process's stderr (pyedflib even to stdout), and librosa's fallbacks raise Python warnings; all of it would
break the CLI's one-line errors and the dashboard.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def silence_c_stderr(stdout: bool = False) -> Iterator[None]:
    """Send what C libraries print to stderr (and, with `stdout`, to stdout) to /dev/null meanwhile, and ignore
    Python warnings.

    Only for short calls (opening or decoding a file, opening a device): it redirects the process's file
    descriptors.
    """
    fds = (2, 1) if stdout else (2,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            saved = [os.dup(fd) for fd in fds]
        except OSError:  # no stderr at all
            yield
            return
        sys.stderr.flush()
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in fds:
                os.dup2(devnull, fd)
            yield
        finally:
            for fd, copy in zip(fds, saved):
                os.dup2(copy, fd)
                os.close(copy)
            os.close(devnull)


@contextlib.contextmanager
def capture_c_stderr() -> Iterator[list[str]]:
    """What C libraries print to stderr meanwhile, kept instead of shown: the list holds it once the block
    ends. For libraries that report failures only by printing them (OpenCV's video writer)."""
    captured: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read().decode(errors="replace"))
