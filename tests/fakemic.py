"""A real PortAudio device on a machine without a sound card (../shared/DESIGN.md, recipe 1).

ALSA's `file` plugin reads capture data from a raw file and writes playback data to another, under a
`plug` that converts to whatever the client asks for. `make_home` writes the `.asoundrc`; the device's
"native" format is the plug's slave format (`rate`, `channels`, `fmt`); PortAudio reports that rate as the
device's default and 128 channels (plug's limit). The device is not paced (it runs as fast as the
reader), and past the end of its file capture repeats stale data: read a known number of frames.

Seen here: capture is continuous only when the client asks for exactly the slave's format. As soon as
plug converts (sample format, channels or rate) whole periods of the file are skipped. So the raw check
reads S16_LE mono as int16 mono, and `DeviceSource` (which asks float32 stereo at the default rate) gets a
FLOAT_LE stereo device.

ALSA reads `$HOME/.asoundrc` when PortAudio initialises (at `import sounddevice`), so every use runs in a
subprocess whose HOME is the folder `make_home` wrote (`run_python`).
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MIC, SPEAKER = "fakemic", "fakespk"

ASOUNDRC = """\
pcm.{mic} {{ type plug
  slave {{ pcm {{ type file; slave.pcm "null"; file "/dev/null"; format "raw"
                infile {{ @func getenv vars [ FAKEMIC_FILE ] default "/nonexistent/fakemic.raw" }} }}
          format {fmt}; rate {rate}; channels {channels} }} }}
pcm.{speaker} {{ type plug
  slave {{ pcm {{ type file; slave.pcm "null"; format "raw"
                file {{ @func getenv vars [ FAKESPK_FILE ] default "/dev/null" }} }}
          format FLOAT_LE; rate {speaker_rate}; channels 2 }} }}
pcm.!default {{ type asym; playback.pcm "{speaker}"; capture.pcm "{mic}" }}
"""


def make_home(home: Path, rate: int = 16000, channels: int = 1, fmt: str = "S16_LE",
              speaker_rate: int = 22050) -> Path:
    """A folder with an `.asoundrc` defining the fake microphone (`fmt` S16_LE or FLOAT_LE) and speaker
    (float32 stereo at `speaker_rate`, written to $FAKESPK_FILE)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".asoundrc").write_text(ASOUNDRC.format(mic=MIC, speaker=SPEAKER, rate=rate, channels=channels,
                                                    fmt=fmt, speaker_rate=speaker_rate))
    return home


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16, as an S16_LE device file holds them (frames x channels)."""
    return np.rint(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")


def write_raw(path: Path, samples: np.ndarray, fmt: str = "S16_LE") -> np.ndarray:
    """Write samples ((n,) or (n, channels), floats) as raw interleaved `fmt`; returns the array written."""
    data = to_int16(samples) if fmt == "S16_LE" else np.clip(samples, -1.0, 1.0).astype("<f4")
    data.tofile(path)
    return data


def device_env(home: Path, mic_file: Path | None = None, speaker_file: Path | None = None) -> dict[str, str]:
    """Environment for a subprocess that sees the fake devices (user site-packages kept reachable)."""
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(ROOT), PYTHONUSERBASE=site.getuserbase())
    if mic_file is not None:
        env["FAKEMIC_FILE"] = str(mic_file)
    if speaker_file is not None:
        env["FAKESPK_FILE"] = str(speaker_file)
    return env


def run_python(code: str, home: Path, mic_file: Path | None = None, speaker_file: Path | None = None,
               args: tuple[str, ...] = (), timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `python -c code args...` with HOME pointing at the fake-device folder."""
    return subprocess.run([sys.executable, "-c", code, *args], env=device_env(home, mic_file, speaker_file),
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# Prepended to scripts that end like the CLI: a StreamerError is one line on stderr and its exit code.
CLI_WRAPPER = """\
import sys
from streamer.core.errors import StreamerError

def _cli(main):
    try:
        main()
    except StreamerError as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
"""
