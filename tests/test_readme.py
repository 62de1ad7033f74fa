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
