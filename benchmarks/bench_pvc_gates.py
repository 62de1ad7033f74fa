"""PVC alarms, leave-records-out, under each alarm rule: what the quality gate and the shape gate each buy.

    python benchmarks/bench_pvc_gates.py [--data ../shared/data/mitdb]   # ~5 min (8 fits)

Each record is scored by a model fitted without it (the shipped preset's training; the rule does not change
the fit). Each fold's thresholds come from its own training records' normal beats; the rules differ only in
which percentiles and gates are applied:
- the earlier rule: score above the 99.5th percentile, every beat judged;
- + the quality gate (beats of poor signal quality not judged);
- + the shape gate at the shipped percentiles (99.3 for the score, 90 for the shape), and the grid around it
  the shipped point was picked from.
Pooled precision and recall (every detected PVC from beat 9 on, those left unjudged counted as missed) and
the largest false-alarm rate of any record. Writes results_pvc_gates.{md,json}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ("100", "102", "104", "105", "106", "116", "121", "123")


def _both(model: Any, lb: Any, spec: Any, score: dict[str, Any], shape: dict[str, Any], first: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """A record's scores and shape scores, streamed as the engine computes them, from beat `first` on."""
    from export import train_records as tr

    return tr.record_scores(model, lb, spec, score)[first:], tr.record_scores(model, lb, spec, shape)[first:]


def fold_scores(data: Path) -> dict[str, dict[str, Any]]:
    from export import train_records as tr
    from streamer.ecg.scoring import judged_from, morphology_spec

    cfg = tr.PRESETS["default"]
    spec = tr.beat_spec(cfg)
    beats = tr.load_beats([data / r for r in RECORDS], cfg, "detector")
    out = {}
    for i, test in enumerate(beats):
        train = [lb for j, lb in enumerate(beats) if j != i]
        model, score, _, _ = tr.fit_on(train, cfg, cfg["train"]["epochs"], 0)
        shape = morphology_spec(score)
        assert shape is not None
        first = judged_from(score)
        normal = [_both(model, lb, spec, score, shape, first) for lb in train]
        rows = [tr.training_rows(lb)[first:] for lb in train]
        s, m = _both(model, test, spec, score, shape, first)
        out[test.record] = {"s": s, "m": m, "pvc": test.pvc[first:], "good": test.judged[first:],
                            "minutes": test.duration_s / 60.0,
                            "train_s": np.concatenate([n[0][r] for n, r in zip(normal, rows)]),
                            "train_m": np.concatenate([n[1][r] for n, r in zip(normal, rows)])}
        print(f"fold {i + 1}/{len(beats)} (without {test.record}) done", flush=True)
    return out


def evaluate(folds: dict[str, dict[str, Any]], q_score: float, q_shape: float | None, gate: bool) -> dict[str, Any]:
    tp = fp = fn = 0
    worst = 0.0
    per_record = {}
    for record, d in folds.items():
        alarm = d["s"] > np.percentile(d["train_s"], q_score)
        if q_shape is not None:
            alarm &= d["m"] > np.percentile(d["train_m"], q_shape)
        if gate:
            alarm &= d["good"]
        t, f, n = int((alarm & d["pvc"]).sum()), int((alarm & ~d["pvc"]).sum()), int((~alarm & d["pvc"]).sum())
        tp, fp, fn = tp + t, fp + f, fn + n
        worst = max(worst, f / d["minutes"])
        per_record[record] = {"tp": t, "fp": f, "fn": n, "false_alarms_per_min": f / d["minutes"]}
    return {"score_percentile": q_score, "shape_percentile": q_shape, "quality_gate": gate,
            "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1), "max_false_alarms_per_min": worst,
            "per_record": per_record}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_pvc_gates")
    args = ap.parse_args()
    folds = fold_scores(args.data)
    rules = [(99.5, None, False), (99.5, None, True), (99.3, 90.0, True)]
    rules += [(qs, qm, True) for qs in (99.5, 99.4, 99.3, 99.2, 99.1) for qm in (80.0, 85.0, 90.0, 92.0)
              if (qs, qm) != (99.3, 90.0)]
    results = [evaluate(folds, *rule) for rule in rules]
    lines = ["Leave-records-out on 8 MIT-BIH records, the shipped preset's fits (seed 0); `python "
             "benchmarks/bench_pvc_gates.py`", "",
             "| score percentile | shape percentile | quality gate | precision | recall | max false alarms / min |",
             "|---:|---:|---|---:|---:|---:|"]
    for r in results:
        shape = "-" if r["shape_percentile"] is None else f"{r['shape_percentile']:g}"
        lines.append(f"| {r['score_percentile']:g} | {shape} | {'yes' if r['quality_gate'] else 'no'} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {r['max_false_alarms_per_min']:.2f} |")
    lines += ["", "Rows 1-3: the earlier rule, + the quality gate, + the shape gate as shipped; then the grid."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
