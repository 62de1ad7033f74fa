"""The service-wide view behind `streamer watch`: what every live worker announces, who owns which
partition, each partition's backlog, the dead letters, and the anomalies stored, as one snapshot.

Rates (chunks/s, beats/s) are differences between two snapshots, per worker present in both (a worker that
died takes its counters with it; its partitions' chunks are counted again by the next owner).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from streamer.serve.transport import Backlog, Bus

ANOMALY_WINDOW_S = 600.0  # anomalies shown from this long ago on


@dataclass
class PatientAnomalies:
    count: int = 0
    last_t: float = float("nan")  # s into the patient's stream
    last_score: float = float("nan")
    last_seen: float = 0.0  # wall clock


@dataclass
class Snapshot:
    time: float
    partitions: int
    workers: dict[str, dict[str, Any]]
    owners: dict[int, str]
    backlog: dict[int, Backlog]
    dead_letters: int
    anomalies: dict[str, PatientAnomalies]
    rates: dict[str, dict[str, float]] = field(default_factory=dict)  # worker -> {"chunks": /s, "beats": /s}

    @property
    def patients(self) -> int:
        return sum(int(w.get("patients", 0)) for w in self.workers.values())

    def total_rate(self, what: str) -> float:
        return sum(r.get(what, 0.0) for r in self.rates.values())

    def drops(self) -> dict[str, int]:
        """Everything not scored as sent, by reason, summed over the live workers."""
        out: dict[str, int] = defaultdict(int)
        for w in self.workers.values():
            for reason, n in w.get("drops", {}).items():
                out[reason] += int(n)
            if w.get("late"):
                out["late chunks (scored)"] += int(w["late"])
        return dict(out)

    def lagging(self, n: int = 5) -> list[tuple[str, float, str]]:
        """Patients furthest behind (patient, seconds from publish to events stored, worker)."""
        rows = [(p, float(lag), worker) for worker, w in self.workers.items() for p, lag in w.get("lagging", [])]
        return sorted(rows, key=lambda r: -r[1])[:n]

    def to_dict(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if isinstance(x, float) and not math.isfinite(x) else x

        return {"time": self.time, "partitions": self.partitions, "patients": self.patients,
                "workers": self.workers, "owners": {str(k): v for k, v in sorted(self.owners.items())},
                "backlog": {str(p): {"waiting": b.waiting, "unacked": b.unacked,
                                     "oldest_waiting_s": clean(b.oldest_waiting_s)}
                            for p, b in sorted(self.backlog.items())},
                "dead_letters": self.dead_letters, "drops": self.drops(),
                "rates": {"chunks_per_s": self.total_rate("chunks"), "beats_per_s": self.total_rate("beats"),
                          "per_worker": self.rates},
                "anomalies": {p: {"count": a.count, "last_t": clean(a.last_t), "last_score": clean(a.last_score)}
                              for p, a in self.anomalies.items()},
                "lagging": self.lagging()}


class Watcher:
    """Collects snapshots of the service from its broker."""

    def __init__(self, bus: Bus, anomaly_window_s: float = ANOMALY_WINDOW_S) -> None:
        self.bus = bus
        self.anomaly_window_s = anomaly_window_s
        self.anomalies: dict[str, PatientAnomalies] = defaultdict(PatientAnomalies)
        self.last: dict[str, dict[str, Any]] = {}  # each worker's last announcement with a new time
        self.rates: dict[str, dict[str, float]] = {}
        self.following = False

    def _on_anomaly(self, event: dict[str, Any]) -> None:
        a = self.anomalies[str(event.get("stream", "?"))]
        a.count += 1
        a.last_t = float(event.get("t") or math.nan)
        a.last_score = float(event.get("score") or math.nan)
        a.last_seen = time.time()

    async def snapshot(self) -> Snapshot:
        if not self.following:
            await self.bus.follow_anomalies(self.anomaly_window_s, self._on_anomaly)
            self.following = True
        workers, owners, dead = await asyncio.gather(self.bus.workers(), self.bus.owners(),
                                                     self.bus.dead_letter_count())
        announced = {int(w["of"]) for w in workers.values() if w.get("of")}
        if len(announced) == 1:  # the workers' partition count, whatever this dashboard was told
            self.bus.partitions = announced.pop()
        backlogs = await asyncio.gather(*(self.bus.backlog(p) for p in range(self.bus.partitions)))
        snap = Snapshot(time.time(), self.bus.partitions, workers, owners, dict(enumerate(backlogs)), dead,
                        dict(self.anomalies))
        for worker, w in workers.items():  # rates between a worker's own announcements (every heartbeat)
            before = self.last.get(worker)
            if before is not None and w.get("time", 0) > before.get("time", 0):
                dt = w["time"] - before["time"]
                self.rates[worker] = {k: max(0.0, (w.get(k, 0) - before.get(k, 0)) / dt)
                                      for k in ("chunks", "beats", "anomalies")}
            if before is None or w.get("time", 0) > before.get("time", 0):
                self.last[worker] = w
        for gone in set(self.last) - set(workers):
            self.last.pop(gone)
            self.rates.pop(gone, None)
        snap.rates = dict(self.rates)
        return snap

    async def settled(self, timeout_s: float = 8.0) -> Snapshot:
        """A snapshot with rates for every live worker (they announce every third of a lease), or the last
        one taken within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            snap = await self.snapshot()
            if set(snap.rates) >= set(snap.workers) or time.monotonic() > deadline:
                return snap
            await asyncio.sleep(0.25)
