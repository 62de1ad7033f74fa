"""An image run's record, from its image events only: the dashboard's view (the latest image before, after
and its reference, a PSNR sparkline) and the summary (mean PSNR/SSIM against references, of the denoised
images and of the inputs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from streamer.images.events import ImageEvent
from streamer.run.sources import Block

QUALITY_HISTORY = 60  # images in the PSNR sparkline


class ImageReport:
    def __init__(self, info: dict[str, Any] | None = None, add_noise: float | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.info = dict(info or {})
        self.add_noise = add_noise
        self.clock = clock
        self.lock = threading.Lock()
        self.n_images = self.resized = self.tiled = 0
        self.psnr_sum = self.psnr_noisy_sum = self.ssim_sum = self.ssim_noisy_sum = 0.0
        self.n_psnr = self.n_ssim = 0
        self.recent_psnr: list[float] = []
        self.latest: ImageEvent | None = None
        self.started: float | None = None  # when the first images were handled (for the throughput field)

    def on_block(self, block: Block) -> None:
        pass

    def on_events(self, events: Sequence[ImageEvent]) -> None:
        if not events:
            return
        psnr = [(e.psnr_db, e.psnr_noisy_db) for e in events if e.psnr_db is not None and e.psnr_noisy_db is not None
                and np.isfinite(e.psnr_db) and np.isfinite(e.psnr_noisy_db)]
        ssim = [(e.ssim, e.ssim_noisy) for e in events if e.ssim is not None and e.ssim_noisy is not None]
        with self.lock:
            if self.started is None:
                self.started = self.clock()
            self.n_images += len(events)
            self.resized += sum(e.resized for e in events)
            self.tiled += sum(e.tiled for e in events)
            self.latest = events[-1]
            if psnr:
                self.psnr_sum += sum(p for p, _ in psnr)
                self.psnr_noisy_sum += sum(n for _, n in psnr)
                self.n_psnr += len(psnr)
                self.recent_psnr = (self.recent_psnr + [p for p, _ in psnr[-QUALITY_HISTORY:]])[-QUALITY_HISTORY:]
            if ssim:
                self.ssim_sum += sum(s for s, _ in ssim)
                self.ssim_noisy_sum += sum(n for _, n in ssim)
                self.n_ssim += len(ssim)

    def quality(self) -> dict[str, float | None]:
        def mean(total: float, n: int) -> float | None:
            return round(total / n, 4) if n else None
        return {"psnr_db": mean(self.psnr_sum, self.n_psnr), "psnr_noisy_db": mean(self.psnr_noisy_sum, self.n_psnr),
                "ssim": mean(self.ssim_sum, self.n_ssim), "ssim_noisy": mean(self.ssim_noisy_sum, self.n_ssim)}

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        wall = metrics.get("wall_s", 0.0)
        busy = metrics.get("busy_s", 0.0)
        out: dict[str, Any] = {
            **self.info, "images": self.n_images,
            "images_per_s": round(self.n_images / wall, 1) if wall > 0 else None,
            "engine_images_per_s": round(self.n_images / busy, 1) if busy > 0 else None,
            "resized": self.resized, "tiled": self.tiled, **self.quality(),
        }
        if self.add_noise is not None:
            out["added_noise_sigma"] = self.add_noise
        return out

    def view(self) -> dict[str, Any]:
        with self.lock:
            latest = self.latest
            recent = list(self.recent_psnr)
            n, started = self.n_images, self.started
        q = self.quality()
        fields = {"images": str(n)}
        if started is not None and n > 1:
            elapsed = self.clock() - started
            fields["throughput"] = f"{n / elapsed:,.0f} images/s" if elapsed > 0 else "-"
        if q["psnr_db"] is not None:
            fields["PSNR"] = f"{q['psnr_db']:.2f} dB (noisy input {q['psnr_noisy_db']:.2f} dB)"
        if q["ssim"] is not None:
            fields["SSIM"] = f"{q['ssim']:.3f} (noisy input {q['ssim_noisy']:.3f})"
        view: dict[str, Any] = {"fields": fields}
        if recent:
            view["series"] = [{"label": "PSNR dB", "values": recent}]
        if latest is not None:
            view["images"] = [("input", latest.noisy), ("denoised", latest.image)] + (
                [("clean", latest.clean)] if latest.clean is not None else [])
        return view
