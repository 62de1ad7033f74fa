"""Quieting what C libraries print on file descriptor 2 while a file or device is opened.

libsndfile, mpg123, ALSA, PortAudio, OpenCV and FFmpeg print notes and warnings straight to the
process's stderr; they would break the CLI's one-line errors and the dashboard.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def silence_c_stderr() -> Iterator[None]:
    """Send what C libraries print to stderr to /dev/null meanwhile.

    Their notes would break the CLI's one-line errors and the dashboard. Only for short calls (opening a
    file or a device): it redirects the process's file descriptor 2.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
