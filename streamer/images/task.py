"""Image task: images -> (resize or tiles) -> denoising autoencoder -> images back -> folder / video, with
PSNR and SSIM whenever a clean reference exists (a clean folder, an array's `clean` key, or `--add-noise`).

Images that already have the model's size travel as one array per block (no per-image Python work on
the data path): that is what lets an in-memory stream run at onnxruntime's batched speed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamer.core.errors import ModelError
from streamer.images import sizing
from streamer.images.quality import psnr_db, ssim
from streamer.images.sources import ImageStack
from streamer.core.model import Model
from streamer.run.sources import Block

SSIM_MIN_SIDE = 11  # the Gaussian SSIM window; smaller images get PSNR only
QUALITY_HISTORY = 60  # images in the PSNR sparkline

ImageSink = Callable[[str, np.ndarray], None]


@dataclass
class Work:
    """Images that go through the model together: a stack of model-sized images, or one planned image."""

    names: list[str]
    noisy: np.ndarray  # (n, h, w) model-sized, or (1, H, W) for a planned image
    clean: np.ndarray | None
    plan: sizing.Plan | None = None  # None: already the model's size
    tiles: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))

    @property
    def n(self) -> int:
        return len(self.names)


def model_image_size(model: Model) -> tuple[int, int]:
    try:
        image = model.meta["image"]
        return int(image["height"]), int(image["width"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(model.path, f"image size not described in metadata ({exc})") from None


class ImageTask:
    def __init__(self, model: Model, outputs: Sequence[ImageSink] = (), add_noise: float | None = None,
                 seed: int = 0, events: bool = False, info: dict[str, Any] | None = None) -> None:
        """`outputs` receive (name, denoised image); `add_noise` sigma makes noisy inputs from clean ones;
        `events` asks for one event per image; `info` (output path) goes into the summary."""
        self.info = dict(info or {})
        self.model = model
        self.hw = model_image_size(model)
        shape = model.input_shape[1:]
        if [d for d in shape if isinstance(d, int)] != list(self.hw):
            raise ModelError(model.path, f"model input {shape} does not match its image size {self.hw}")
        self.outputs = list(outputs)
        self.add_noise = add_noise
        self.rng = np.random.default_rng(seed)
        self.per_image_events = events
        self.lock = threading.Lock()
        self.n_images = 0
        self.resized = self.tiled = 0
        self.psnr_sum = self.psnr_noisy_sum = self.ssim_sum = self.ssim_noisy_sum = 0.0
        self.n_psnr = self.n_ssim = 0
        self.recent_psnr: list[float] = []
        self.latest: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
        self.started: float | None = None  # when the first images were handled (for the throughput field)

    # --- framing ---
    def feed(self, block: Block) -> list[Work]:
        samples = block.samples
        if isinstance(samples, ImageStack):  # an array file: equal-sized images, already stacked
            return self._works([(samples.names, samples.images.astype(np.float32, copy=False), samples.clean)])
        groups: list[tuple[list[str], np.ndarray, np.ndarray | None]] = []
        run: list[Any] = []
        for item in samples:  # consecutive model-sized images share one array
            if item.image.shape == self.hw and (not run or (run[-1].clean is None) == (item.clean is None)):
                run.append(item)
                continue
            groups += self._stack(run)
            run = [item] if item.image.shape == self.hw else []
            if item.image.shape != self.hw:
                groups.append(([item.name], item.image[None].astype(np.float32),
                               None if item.clean is None else item.clean[None]))
        groups += self._stack(run)
        return self._works(groups)

    @staticmethod
    def _stack(run: list[Any]) -> list[tuple[list[str], np.ndarray, np.ndarray | None]]:
        if not run:
            return []
        clean = None if run[0].clean is None else np.stack([i.clean for i in run]).astype(np.float32)
        return [([i.name for i in run], np.stack([i.image for i in run]).astype(np.float32), clean)]

    def _works(self, groups: list[tuple[list[str], np.ndarray, np.ndarray | None]]) -> list[Work]:
        works = []
        for names, images, clean in groups:
            if self.add_noise is not None:  # the given images are the clean references
                clean = images
                noise = self.rng.standard_normal(images.shape, dtype=np.float32)
                images = np.clip(images + np.float32(self.add_noise) * noise, 0.0, 1.0)
            work = Work(names, images, clean)
            if images.shape[1:] == self.hw:
                work.tiles = images
            else:
                work.plan = sizing.plan(images.shape[1:], self.hw)
                work.tiles = sizing.to_model(images[0], work.plan)
            works.append(work)
        return works

    def flush(self) -> list[Work]:
        return []

    def count(self, items: Sequence[Work]) -> int:
        return sum(w.n for w in items)

    def inputs(self, items: Sequence[Work]) -> np.ndarray:
        return items[0].tiles if len(items) == 1 else np.concatenate([w.tiles for w in items])

    # --- task logic ---
    def handle(self, items: Sequence[Work], inputs: np.ndarray, outputs: np.ndarray) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        offset = 0
        for work in items:
            out = outputs[offset:offset + len(work.tiles)]
            offset += len(work.tiles)
            if work.plan is None:
                denoised = out
            else:
                denoised = sizing.from_model(out, work.plan)[None]
                if work.plan.kind == "tiles":
                    self.tiled += 1
                else:
                    self.resized += 1
            for sink in self.outputs:
                for name, image in zip(work.names, denoised):
                    sink(name, image)
            events += self._score(work, denoised)
        return events

    def _score(self, work: Work, denoised: np.ndarray) -> list[dict[str, Any]]:
        psnr = psnr_noisy = ss = ss_noisy = None
        if work.clean is not None:
            psnr, psnr_noisy = psnr_db(work.clean, denoised), psnr_db(work.clean, work.noisy)
            if min(denoised.shape[1:]) >= SSIM_MIN_SIDE:
                ss, ss_noisy = ssim(work.clean, denoised), ssim(work.clean, work.noisy)
        with self.lock:
            if self.started is None:
                self.started = time.perf_counter()
            self.n_images += work.n
            self.latest = (work.noisy[-1], denoised[-1], None if work.clean is None else work.clean[-1])
            if psnr is not None and psnr_noisy is not None:
                finite = np.isfinite(psnr) & np.isfinite(psnr_noisy)
                self.psnr_sum += float(psnr[finite].sum())
                self.psnr_noisy_sum += float(psnr_noisy[finite].sum())
                self.n_psnr += int(finite.sum())
                self.recent_psnr = (self.recent_psnr + psnr[-QUALITY_HISTORY:].tolist())[-QUALITY_HISTORY:]
            if ss is not None and ss_noisy is not None:
                self.ssim_sum += float(ss.sum())
                self.ssim_noisy_sum += float(ss_noisy.sum())
                self.n_ssim += len(ss)
        if not self.per_image_events:
            return []
        return [{"image": name,
                 "psnr_db": None if psnr is None else _r(psnr[i]),
                 "psnr_noisy_db": None if psnr_noisy is None else _r(psnr_noisy[i]),
                 "ssim": None if ss is None else _r(ss[i])} for i, name in enumerate(work.names)]

    def drops(self) -> dict[str, int]:
        return {}

    # --- reporting ---
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
            "resized": self.resized, "tiled": self.tiled,
            **self.quality(),
        }
        if self.add_noise is not None:
            out["added_noise_sigma"] = self.add_noise
        return out

    def view(self) -> dict[str, Any]:
        with self.lock:
            latest = self.latest
            recent = list(self.recent_psnr)
        q = self.quality()
        fields = {"images": str(self.n_images)}
        if self.started is not None and self.n_images > 1:
            elapsed = time.perf_counter() - self.started
            fields["throughput"] = f"{self.n_images / elapsed:,.0f} images/s" if elapsed > 0 else "-"
        if q["psnr_db"] is not None:
            fields["PSNR"] = f"{q['psnr_db']:.2f} dB (noisy input {q['psnr_noisy_db']:.2f} dB)"
        if q["ssim"] is not None:
            fields["SSIM"] = f"{q['ssim']:.3f} (noisy input {q['ssim_noisy']:.3f})"
        view: dict[str, Any] = {"fields": fields}
        if recent:
            view["series"] = [{"label": "PSNR dB", "values": recent}]
        if latest is not None:
            noisy, denoised, clean = latest
            view["images"] = [("input", noisy), ("denoised", denoised)] + ([("clean", clean)] if clean is not None
                                                                            else [])
        return view


def _r(x: float) -> float | None:
    return round(float(x), 3) if np.isfinite(x) else None
