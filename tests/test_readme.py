"""Every Python snippet in the README runs as written (in order, as one session, from the repository root),
so the API the README shows is the API there is."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_snippets() -> None:
    assert len(python_snippets()) >= 4


def test_readme_snippets_run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    for i, code in enumerate(python_snippets()):
        exec(compile(code, f"README.md snippet {i + 1}", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert re.search(r"\d{3} beats in 3 minutes, [1-9]\d* flagged", out)
    assert "stream bed-3: non-finite sample" in out
    assert re.search(r"median frame SNR 1\d\.\d dB", out)  # the codec's ~16 dB on this held-out clip
    assert re.search(r"image 0: PSNR \d+\.\d -> 2\d\.\d dB", out)
    assert os.getcwd() == str(Path(ROOT))


def _readme_text() -> str:
    return " ".join((ROOT / "README.md").read_text().split())  # line breaks as spaces


def _fields_after(anchor: str, end: str = ")") -> set[str]:
    """The backticked names the README lists right after `anchor` (up to `end`), state values left out."""
    from streamer.ecg.judge import CALIBRATING, JUDGED, NOISE, WARMUP
    from streamer.ecg.quality import GOOD

    text = _readme_text()
    assert text.count(anchor) == 1, anchor
    listed = text.split(anchor, 1)[1].split(end, 1)[0]
    return set(re.findall(r"`(\w+)`", listed)) - {WARMUP, CALIBRATING, JUDGED, NOISE, GOOD}


def test_readme_lists_exactly_the_event_fields() -> None:
    """Each stream's events JSON (`to_dict`, what `--events` and the service write) has exactly the fields the
    README names, no more and no fewer."""
    import numpy as np

    from streamer.audio.events import AudioFrameEvent
    from streamer.ecg.events import BeatEvent
    from streamer.images.events import ImageEvent

    beat = set(BeatEvent("s", 0, 0.0, 0, 1.0, 2.0, False, 800.0, "judged").to_dict())
    frame = set(AudioFrameEvent("s", 0, 0.0, 0, np.zeros(4), np.zeros(4), 10.0, 1.0).to_dict())
    image = set(ImageEvent("s", 0, "a.png", np.zeros((2, 2)), np.zeros((2, 2)), None, None, None, None, None,
                           False, False).to_dict())
    assert _fields_after("`--events PATH` writes one JSON line per beat (") == beat
    assert _fields_after("A `BeatEvent` has ", end=":") == beat
    assert _fields_after("one JSON beat event (the library's `BeatEvent`:", end="), message id") == beat | {"sent"}
    assert _fields_after("`--events` one JSON line per frame (") == frame
    assert _fields_after("`--events` one JSON line per image (") == image


def test_readme_examples_use_files_a_clone_has() -> None:
    """No example points outside the repository (a user's clone has samples/ and what `streamer download`
    fetches, not the developers' ../shared data)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```\w*\n(.*?)```", text, flags=re.S)
    assert not [line for b in blocks for line in b.splitlines() if "../" in line or "shared/data" in line]
    paths = set(re.findall(r"samples/[\w./-]+(?![\w./{-])", "\n".join(blocks)))  # not f-string patterns
    missing = [p for p in paths if not (ROOT / p).exists() and not (ROOT / p).with_suffix(".hea").exists()]
    assert paths and not missing, missing
