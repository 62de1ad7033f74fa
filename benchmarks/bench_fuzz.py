"""The long fuzzing run: every input format (tests/fuzz.py) with many hypothesis examples, each format in its
own worker process. The suite runs the same harness with 12 examples per format.

    python benchmarks/bench_fuzz.py                  # 300 examples per format (about 15 minutes here)
    python benchmarks/bench_fuzz.py --examples 50

Results: results_fuzz.md / .json: per format, cases run, accepted (exit 0), refused (one line, exit 2),
failures (any other outcome: uncaught exception, several lines, a hang, a signal) and the worker's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz import CASE_SECONDS, FORMATS, MEMORY_CAP_MB  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for fmt in FORMATS:
        case = Path(tempfile.gettempdir()) / f"aestream-fuzz-{fmt}.json"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tests.fuzz", fmt, "--examples", str(args.examples),
                               "--seed", str(args.seed), "--case-file", str(case)],
                              capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - start
        if proc.returncode < 0:
            rows.append({"format": fmt, "cases": None, "failures": [f"signal {-proc.returncode} on "
                                                                    f"{case.read_text()}"], "seconds": seconds})
        else:
            rows.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "seconds": round(seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)  # noqa: T201
    machine = f"{platform.platform()}, {os.cpu_count()} cores"
    out = Path(__file__).with_name("results_fuzz")
    out.with_suffix(".json").write_text(json.dumps({"examples": args.examples, "seed": args.seed,
                                                    "machine": machine, "formats": rows}, indent=1))
    lines = [f"# Fuzzing every input format (`python benchmarks/bench_fuzz.py --examples {args.examples}`)", "",
             f"{machine}; hypothesis seed {args.seed}; per-case bound {CASE_SECONDS} s; memory cap "
             f"{MEMORY_CAP_MB} MB per worker.", "",
             "| format | cases | accepted (exit 0) | refused (one line) | failures | peak RSS MB | seconds |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['format']} | {r.get('cases')} | {r.get('accepted', '-')} | {r.get('refused', '-')} | "
                     f"{len(r['failures'])} | {r.get('peak_rss_mb', '-')} | {r['seconds']} |")
    failures = [f"- {r['format']}: {f}" for r in rows for f in r["failures"]]
    lines += ["", "Failures:" if failures else "No failures.", *failures]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))  # noqa: T201


if __name__ == "__main__":
    main()
