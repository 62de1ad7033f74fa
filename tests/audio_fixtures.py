"""Real audio for the audio tests: J. S. Bach, chorale BWV 66.6, from the music21 corpus, rendered with
Debian's fluidsynth and the FluidR3 General MIDI soundfont (22050 Hz stereo, about 25 s), made as:

    music21.corpus.parse('bach/bwv66.6').write('midi', fp='bwv66.6.mid')
    fluidsynth -ni -q -g 0.5 -r 22050 -F bwv66.6.wav /usr/share/sounds/sf2/FluidR3_GM.sf2 bwv66.6.mid

Rendered once per test session into pytest's base temp dir. Some MIDI files make `fluidsynth -F` render
forever, so the render is bounded in time and in output size.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

PIECE = "bach/bwv66.6"
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RENDER_RATE = 22050  # Hz, stereo 16-bit
RENDER_TIMEOUT_S = 60.0
RENDER_MAX_BYTES = 5 * 60 * RENDER_RATE * 4  # five minutes of 16-bit stereo: far beyond this piece


def _render(midi: Path, wav: Path) -> None:
    """fluidsynth to a WAV, killed if it runs too long or writes too much."""
    cmd = ["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(RENDER_RATE), "-F", str(wav), str(SOUNDFONT),
           str(midi)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline or (wav.exists() and wav.stat().st_size > RENDER_MAX_BYTES):
                raise RuntimeError(f"fluidsynth did not finish rendering {midi} (stopped)")
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"fluidsynth failed on {midi} (exit {proc.returncode})")


def render_bach(cache_dir: Path) -> Path:
    """Path of the rendered chorale (rendered on first call, then reused from `cache_dir`)."""
    wav = cache_dir / "bwv66.6.wav"
    if wav.exists():
        return wav
    music21 = pytest.importorskip("music21")
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        pytest.skip("needs Debian's fluidsynth and fluid-soundfont-gm to render test audio")
    cache_dir.mkdir(parents=True, exist_ok=True)
    midi = cache_dir / "bwv66.6.mid"
    music21.corpus.parse(PIECE).write("midi", fp=str(midi))
    tmp = cache_dir / "bwv66.6.partial.wav"
    _render(midi, tmp)
    tmp.rename(wav)
    return wav


def bach_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_bach(tmp_path_factory.getbasetemp() / "bach")


def load_stereo(wav: Path) -> tuple[np.ndarray, int]:
    """The rendered chorale as float32 (n, 2) and its rate."""
    import soundfile as sf

    data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    return data, int(rate)
