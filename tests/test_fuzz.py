"""Every input format fuzzed with hypothesis (tests/fuzz.py), a few examples each so the suite stays fast; the
long run is `python benchmarks/bench_fuzz.py`. Each format runs in a worker process of its own: a signal
(a crash in a C library) kills only the worker and is reported here with the case that caused it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import CASE_SECONDS, FORMATS, MEMORY_CAP_MB

EXAMPLES = 12  # per format in the suite: about 2-6 s each


@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzzed_inputs_give_one_line_or_a_result(fmt: str, tmp_path: Path) -> None:
    """Zero uncaught exceptions, zero hangs (a per-case bound), zero signals, peak memory under the cap; every
    refusal one line naming the input, exit not 0."""
    case = tmp_path / "case.json"
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz", fmt, "--examples", str(EXAMPLES), "--seed", "1",
                           "--case-file", str(case)],
                          capture_output=True, text=True, timeout=EXAMPLES * CASE_SECONDS + 120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode >= 0, f"the worker died of signal {-proc.returncode} on {case.read_text()}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["failures"] == []
    assert report["cases"] == EXAMPLES and report["accepted"] + report["refused"] == EXAMPLES
    assert report["peak_rss_mb"] < MEMORY_CAP_MB
    assert proc.returncode == 0
