"""An image run's record, from its image events only: the dashboard's view (the latest image before, after
and its reference, a PSNR sparkline) and the summary (mean PSNR/SSIM against references, of the denoised
images and of the inputs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from streamer.images.events import ImageEvent
from streamer.run.sources import Block

QUALITY_HISTORY = 200  # images kept for the PSNR sparkline (a wide terminal shows up to this many)
MAX_SIZES_NAMED = 5  # distinct unevaluated image sizes named in the note (more are counted)
SIGMA_TOLERANCE = 1e-9


def _sigma(key: Any) -> float | None:
    """The noise level a metrics key such as `sigma_0.5` is about (None for other keys)."""
    try:
        return float(str(key)[len("sigma_"):]) if str(key).startswith("sigma_") else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Evaluated:
    """What a model's card says was evaluated: image sizes (h, w) and noise levels, from its metadata
    (`image.evaluated_sizes` / `evaluated_sigmas`; a fixed-size model without them: its own size, and the
    sigmas of its `metrics`)."""

    sizes: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Evaluated:
        image = meta.get("image") or {}
        sizes = image.get("evaluated_sizes") or ([[image["height"], image["width"]]] if "height" in image else [])
        sigmas = image.get("evaluated_sigmas") or [_sigma(k) for k in (meta.get("metrics") or {})
                                                   if _sigma(k) is not None]
        return cls(tuple((int(h), int(w)) for h, w in sizes), tuple(sorted(float(g) for g in sigmas)))

    def size_note(self, outside: Sequence[tuple[int, int]], n_more: int) -> str | None:
        if not outside or not self.sizes:
            return None
        named = ", ".join(f"{h}x{w}" for h, w in outside) + (f" and {n_more} more sizes" if n_more else "")
        verb = "is" if len(outside) == 1 and not n_more else "are"
        return f"{named} {verb} not among the evaluated sizes {', '.join(f'{h}x{w}' for h, w in self.sizes)}"

    def sigma_note(self, sigma: float | None) -> str | None:
        if sigma is None or not self.sigmas or \
                self.sigmas[0] - SIGMA_TOLERANCE <= sigma <= self.sigmas[-1] + SIGMA_TOLERANCE:
            return None
        return (f"added noise sigma {sigma:g} is outside the evaluated noise levels "
                f"{', '.join(f'{g:g}' for g in self.sigmas)}")


class ImageReport:
    unit = "images"

    def __init__(self, info: dict[str, Any] | None = None, add_noise: float | None = None,
                 clock: Callable[[], float] = time.perf_counter, idle: Idle | None = None,
                 evaluated: Evaluated | None = None) -> None:
        self.info = dict(info or {})
        self.evaluated = evaluated  # the model card's sizes and noise levels: others are named
        self.outside: list[tuple[int, int]] = []  # image sizes seen outside them (the first MAX_SIZES_NAMED)
        self.n_outside_more = 0
        self.seen_sizes: set[tuple[int, int]] = set()
        self.idle = idle  # a watched folder's waiting, excluded from the throughput
        self.add_noise = add_noise
        self.clock = clock
        self.lock = threading.Lock()
        self.n_images = self.resized = self.tiled = 0
        self.psnr_sum = self.psnr_noisy_sum = self.ssim_sum = self.ssim_noisy_sum = 0.0
        self.n_psnr = self.n_ssim = 0
        self.recent_psnr: list[float] = []
        self.latest: ImageEvent | None = None
        self.started = clock()  # throughput counts from here (the run's start) ...
        self.last: float | None = None  # ... to the latest images handled, minus the time spent waiting
        self.idle_until_last = 0.0

    def on_block(self, block: Block) -> None:
        pass

    def on_events(self, events: Sequence[ImageEvent]) -> None:
        if not events:
            return
        psnr = [(e.psnr_db, e.psnr_noisy_db) for e in events if e.psnr_db is not None and e.psnr_noisy_db is not None
                and np.isfinite(e.psnr_db) and np.isfinite(e.psnr_noisy_db)]
        ssim = [(e.ssim, e.ssim_noisy) for e in events if e.ssim is not None and e.ssim_noisy is not None]
        with self.lock:
            self.last = self.clock()
            self.idle_until_last = self.idle.idle_s if self.idle is not None else 0.0
            self.n_images += len(events)
            self.resized += sum(e.resized for e in events)
            self.tiled += sum(e.tiled for e in events)
            self.latest = events[-1]
            if self.evaluated is not None:
                self._note_sizes(self.evaluated, events)
            if psnr:
                self.psnr_sum += sum(p for p, _ in psnr)
                self.psnr_noisy_sum += sum(n for _, n in psnr)
                self.n_psnr += len(psnr)
                self.recent_psnr = (self.recent_psnr + [p for p, _ in psnr[-QUALITY_HISTORY:]])[-QUALITY_HISTORY:]
            if ssim:
                self.ssim_sum += sum(s for s, _ in ssim)
                self.ssim_noisy_sum += sum(n for _, n in ssim)
                self.n_ssim += len(ssim)

    def _note_sizes(self, evaluated: Evaluated, events: Sequence[ImageEvent]) -> None:
        for e in events:
            size = (int(e.image.shape[0]), int(e.image.shape[1]))
            if size in self.seen_sizes:
                continue
            self.seen_sizes.add(size)
            if size not in evaluated.sizes:
                if len(self.outside) < MAX_SIZES_NAMED:
                    self.outside.append(size)
                else:
                    self.n_outside_more += 1

    def outside_evaluated(self) -> list[str]:
        """What this run has that the model's card did not evaluate: image sizes, the added noise level."""
        if self.evaluated is None:
            return []
        with self.lock:
            outside, more = list(self.outside), self.n_outside_more
        notes = [self.evaluated.size_note(outside, more), self.evaluated.sigma_note(self.add_noise)]
        return [n for n in notes if n]

    def quality(self) -> dict[str, float | None]:
        def mean(total: float, n: int) -> float | None:
            return round(total / n, 4) if n else None
        return {"psnr_db": mean(self.psnr_sum, self.n_psnr), "psnr_noisy_db": mean(self.psnr_noisy_sum, self.n_psnr),
                "ssim": mean(self.ssim_sum, self.n_ssim), "ssim_noisy": mean(self.ssim_noisy_sum, self.n_ssim)}

    def throughput(self) -> float | None:
        """Images per second of the run so far: from its start to the latest image written, reading and
        writing included, time spent waiting for new files (`--watch`) excluded. The dashboard and the
        summary both show this figure."""
        with self.lock:
            n, last, idle = self.n_images, self.last, self.idle_until_last
        if last is None:
            return None
        working = last - self.started - idle
        return n / working if working > 0 else None

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        rate = self.throughput()
        out: dict[str, Any] = {
            **self.info, "images": self.n_images, "images_per_s": round(rate, 1) if rate else None,
            "resized": self.resized, "tiled": self.tiled, **self.quality(),
        }
        if self.add_noise is not None:
            out["added_noise_sigma"] = self.add_noise
        if self.evaluated is not None:
            out["outside_evaluated"] = self.outside_evaluated()
        return out

    def view(self) -> dict[str, Any]:
        with self.lock:
            latest = self.latest
            recent = list(self.recent_psnr)
            n = self.n_images
        q = self.quality()
        rate = self.throughput()
        fields = {"images": f"{n:,}",
                  "throughput": f"{rate:,.0f} images/s (read, denoise, write)" if rate else "-"}
        if q["psnr_db"] is not None:
            fields["PSNR"] = f"{q['psnr_db']:.2f} dB (noisy input {q['psnr_noisy_db']:.2f} dB)"
        if q["ssim"] is not None:
            fields["SSIM"] = f"{q['ssim']:.3f} (noisy input {q['ssim_noisy']:.3f})"
        view: dict[str, Any] = {"fields": fields, "timed": False, "state": self._state(n)}
        notes = self.outside_evaluated()
        if notes:
            view["warnings"] = [f"outside the evaluated range: {note}" for note in notes]
        if recent:
            view["series"] = [{"label": "PSNR dB", "values": recent}]
        if latest is not None:
            view["images"] = [("input", latest.noisy), ("denoised", latest.image)] + (
                [("clean", latest.clean)] if latest.clean is not None else [])
        return view

    def _state(self, n: int) -> tuple[str, str]:
        if self.idle is not None and self.idle.waiting:
            return f"waiting for new files in {self.idle.name}", "yellow"
        return ("denoising", "bold green") if n else ("reading the first images", "yellow")


class Idle(Protocol):
    """A source that may wait for input (a watched folder): how long it has waited, whether it waits now."""

    name: str
    idle_s: float
    waiting: bool
