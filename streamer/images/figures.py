"""`--report` for an image run: what the figures need, kept while it runs, and the figures.

Kept, bounded whatever the run's length: the first `EXAMPLES` images (input, denoised, reference), each
reduced to at most `MAX_SIDE` pixels a side, and per image 16 bytes: its PSNR and SSIM and those of its
input (NaN without a reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from streamer.images.events import ImageEvent
from streamer.run.figures import Columns, Figure
from streamer.run.sources import Block

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

EXAMPLES = 8  # images in the before / after / reference grid
MAX_SIDE = 256  # px: a larger example is kept every k-th pixel (a video frame, a scan)
BIN_DB = 0.5  # narrowest PSNR histogram bin (dB)
QUALITY_FIELDS = [("psnr", np.float32), ("psnr_input", np.float32), ("ssim", np.float32), ("ssim_input", np.float32)]


@dataclass
class _Example:
    name: str
    noisy: np.ndarray
    image: np.ndarray
    clean: np.ndarray | None
    psnr: float | None
    psnr_input: float | None


def _small(image: np.ndarray) -> np.ndarray:
    step = max(1, -(-max(image.shape) // MAX_SIDE))
    return np.array(image[::step, ::step], dtype=np.float32)


def _value(x: float | None) -> float:
    return float("nan") if x is None else float(x)


class ImageRecorder:
    """The `Recorder` of an image run (one stream)."""

    def __init__(self) -> None:
        self.examples: list[_Example] = []
        self.quality = Columns(QUALITY_FIELDS)

    def on_block(self, block: Block) -> None:
        pass  # each image event carries its input, output and reference

    def on_events(self, events: Sequence[ImageEvent]) -> None:
        for e in events[:max(0, EXAMPLES - len(self.examples))]:
            self.examples.append(_Example(e.name, _small(e.noisy), _small(e.image),
                                          None if e.clean is None else _small(e.clean), e.psnr_db, e.psnr_noisy_db))
        self.quality.extend(psnr=[_value(e.psnr_db) for e in events],
                            psnr_input=[_value(e.psnr_noisy_db) for e in events],
                            ssim=[_value(e.ssim) for e in events], ssim_input=[_value(e.ssim_noisy) for e in events])

    def figures(self, summary: dict[str, Any]) -> list[Figure]:
        q = self.quality.view()
        known = np.isfinite(q["psnr"]) & np.isfinite(q["psnr_input"])
        n = len(q)
        with_ref = any(x.clean is not None for x in self.examples)
        grid = Figure("images_grid", "Before / after / reference",
                      f"The first {len(self.examples)} of {n} images: the input as the model got it (top), denoised "
                      "(middle)" + (", and the clean reference (bottom)" if with_ref else "; no clean reference")
                      + ". Titles: the image's name and its PSNR against the reference, input → denoised.",
                      (lambda: draw_grid(self.examples)) if self.examples else None)
        if not self.examples:
            grid.caption = "No image was denoised."
        title = "PSNR against the references"
        if not known.any():
            return [grid, Figure("images_psnr", title, "PSNR: no clean references (give --clean DIR, a clean/ "
                                                       "subfolder, or --add-noise SIGMA).")]
        psnr, psnr_input = q["psnr"][known].astype(np.float64), q["psnr_input"][known].astype(np.float64)
        return [grid, Figure("images_psnr", title,
                             f"Left: histogram of the PSNR of the {int(known.sum())} images with a reference, "
                             "denoised (orange) and as input (grey), means dashed. Right: each image's PSNR "
                             "denoised against as input; above the diagonal the denoiser improved it.",
                             lambda: draw_psnr(psnr, psnr_input))]


def draw_grid(examples: list[_Example]) -> MplFigure:
    from streamer.ui.report_page import new_figure, plain

    rows: list[tuple[str, list[np.ndarray | None]]] = [("input", [x.noisy for x in examples]),
                                                        ("denoised", [x.image for x in examples])]
    if any(x.clean is not None for x in examples):
        rows.append(("reference", [x.clean for x in examples]))
    columns = len(examples)
    cell = min(1.45, 10.6 / columns)
    fig = new_figure(0.5 + cell * len(rows) + 0.45, 0.9 + cell * columns)
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for i, (label, images) in enumerate(rows):
        for j, image in enumerate(images):
            ax = axes[i][j]
            if image is not None:
                ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if j == 0:
                ax.set_ylabel(label, fontsize=11)
    for j, x in enumerate(examples):
        psnr = f"{x.psnr_input:.1f} → {x.psnr:.1f} dB" if x.psnr is not None and x.psnr_input is not None else ""
        axes[0][j].set_title(plain(x.name, 18) + (f"\n{psnr}" if psnr else ""), fontsize=8.5)
    return fig


def draw_psnr(psnr: np.ndarray, psnr_input: np.ndarray) -> MplFigure:
    from streamer.ui.report_page import OUTPUT, UNJUDGED, new_figure

    fig = new_figure(4.3)
    hist, scatter = fig.subplots(1, 2, width_ratios=[1.5, 1])
    finite = np.r_[psnr, psnr_input]
    finite = finite[np.isfinite(finite)]
    lo, hi = float(finite.min()) - 0.5, float(finite.max()) + 0.5
    bins = np.arange(lo, hi + BIN_DB, max(BIN_DB, (hi - lo) / 60))
    hist.hist(psnr_input, bins=bins, color=UNJUDGED, alpha=0.75, label=f"input, mean {np.mean(psnr_input):.2f} dB")
    hist.hist(psnr, bins=bins, color=OUTPUT, alpha=0.75, label=f"denoised, mean {np.mean(psnr):.2f} dB")
    for values, colour in ((psnr_input, "#555555"), (psnr, OUTPUT)):
        hist.axvline(float(np.mean(values)), color=colour, ls="--", lw=1.3)
    hist.set_xlabel("PSNR against the reference (dB)")
    hist.set_ylabel("images")
    hist.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False)
    scatter.plot(psnr_input, psnr, ".", color=OUTPUT, ms=6, alpha=0.8)
    lo, hi = lo - 0.5, hi + 0.5
    scatter.plot([lo, hi], [lo, hi], color="#999999", ls=":", lw=1)
    scatter.set_xlim(lo, hi)
    scatter.set_ylim(lo, hi)
    scatter.set_aspect("equal")
    scatter.set_xlabel("input PSNR (dB)")
    scatter.set_ylabel("denoised PSNR (dB)")
    scatter.set_title(f"gain: median {float(np.median(psnr - psnr_input)):+.2f} dB", loc="left")
    return fig
