"""`streamer images` and `streamer train images`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from streamer.cli.common import check_preset, need_training_extra, one_line_errors, refuse_given
from streamer.cli.execute import execute
from streamer.cli.options import RunOptions, collect, run_options
from streamer.cli.ranges import Bounded
from streamer.core.errors import InputError
from streamer.core.limits import MAX_IMAGE_PIXELS, MAX_PIXELS_OPTION
from streamer.core.model import load_model
from streamer.core.modelmeta import IMAGE_TASK
from streamer.images.report import Evaluated, ImageReport
from streamer.run.engine import RunPlan
from streamer.run.sinks import JsonlSink, Sink
from streamer.run.sources import Source

MODEL_FILE = "denoise.onnx"
CLEAN_SUBFOLDER = "clean"  # a folder's own clean references, used without --clean
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg"}

MAX_CAMERA = 99  # OpenCV camera indices are small; a negative one crashes OpenCV's backends
MAX_SIGMA = 10.0  # --add-noise: images are in [0, 1]; far beyond this is noise alone
MAX_BATCH = 65536  # images per model call


def source_kind(source: str | None, camera: int | None) -> str:
    """`camera`, `video`, `array` (.npz/.npy/IDX) or `folder` (a folder or a glob of image files)."""
    if camera is not None:
        if source is not None:
            raise InputError("--camera", f"give a SOURCE ({source}) or --camera N, not both")
        return "camera"
    if source is None:
        raise InputError("images", "give a SOURCE (folder, glob, video, .npz, IDX) or --camera N")
    path = Path(source)
    if path.suffix.lower() in VIDEO_SUFFIXES and not path.is_dir():
        return "video"
    from streamer.images.sources import is_image_array

    return "array" if is_image_array(path) and not path.is_dir() else "folder"


# what each kind of source cannot use, by parameter name, and why (said when such an option is given)
NOT_FOR = {
    "camera": (("watch", "clean", "batch", "speed"), "a camera (live: one frame at a time, no references)"),
    "video": (("watch", "clean"), "a video (no clean references; --watch watches a folder)"),
    "array": (("watch", "clean", "speed"), "an array file (its references are its `clean` key; no frame rate)"),
    "folder": (("speed",), "a folder of images (no frame rate: images go as fast as they are read)"),
}


def refuse_inapplicable(kind: str, add_noise: float | None, clean: Path | None) -> None:
    names, what = NOT_FOR[kind]
    refuse_given(names, what)
    if add_noise is None:
        refuse_given(["seed"], "a run without --add-noise (it seeds the noise)")
    elif clean is not None:
        raise InputError("--clean", "--add-noise takes the inputs as the clean references: give one of the two")


def open_source(source: str | None, camera: int | None, watch: bool, clean: Path | None,
                batch: int, out: Path | None = None, max_pixels: int = MAX_IMAGE_PIXELS) -> Source:
    kind = source_kind(source, camera)
    if camera is not None:
        from streamer.images.sources import CameraSource

        return CameraSource(camera)
    path = Path(str(source))  # source_kind refused a missing SOURCE
    if kind == "video":
        from streamer.images.sources import VideoSource

        return VideoSource(path, batch=batch, max_pixels=max_pixels)
    if kind == "array":
        from streamer.images.sources import ImageArraySource

        return ImageArraySource(path, batch=batch, max_pixels=max_pixels)
    from streamer.images.sources import FolderSource

    if clean is None and path.is_dir() and (path / CLEAN_SUBFOLDER).is_dir():
        clean = path / CLEAN_SUBFOLDER  # the convention of samples/images: references beside the inputs
    # never read our own outputs or the references as inputs, even when they sit inside the folder
    exclude = [p for p in (out, clean) if p is not None]
    return FolderSource(str(source), batch=batch, watch=watch, clean_dir=clean, exclude=exclude,
                        max_pixels=max_pixels)


def open_output(out: Path, fps: float) -> Sink:
    if out.suffix.lower() in VIDEO_SUFFIXES:
        from streamer.images.sinks import VideoSink

        return VideoSink(out, fps)  # the frame size is taken from the first image
    from streamer.images.sinks import FolderSink

    return FolderSink(out)


def plan_images(source: str | None, run: RunOptions, camera: int | None = None, watch: bool = False,
                clean: Path | None = None, add_noise: float | None = None, seed: int = 0, out: Path | None = None,
                batch: int = 256, max_pixels: int = MAX_IMAGE_PIXELS) -> RunPlan:
    if add_noise is not None and not 0 < add_noise <= 2:
        raise InputError("--add-noise", f"sigma must be in (0, 2], not {add_noise}")
    model = load_model(run.model, threads=run.threads, provider=run.provider, task=IMAGE_TASK)
    src = open_source(source, camera, watch, clean, batch, out, max_pixels)
    sinks: list[Sink] = []
    if out is not None:
        sinks.append(open_output(out, src.rate))
    if run.events:
        sinks.append(JsonlSink(run.events))
    stream = model.stream(stream_id=src.name, add_noise=add_noise, seed=seed)
    idle = None
    if watch:
        from streamer.images.sources import FolderSource

        idle = src if isinstance(src, FolderSource) else None
    report = ImageReport({"out": str(out)} if out else None, add_noise, idle=idle,
                         evaluated=Evaluated.from_meta(model.meta))
    recorder = None
    if run.report is not None:
        from streamer.images.figures import ImageRecorder

        recorder = ImageRecorder()
    return RunPlan(f"aestream images · {src.name} · model {model.name}", src, stream, sinks, report,
                   recorder=recorder)


@click.command()
@click.argument("source", required=False)
@click.option("--camera", type=Bounded(0, MAX_CAMERA, integer=True), help="Read camera N (OpenCV) instead of SOURCE.")
@click.option("--watch", is_flag=True, help="Keep running and denoise images as they arrive in the folder.")
@click.option("--clean", type=click.Path(path_type=Path), help="Folder of clean references (same names): "
                                                                 "enables PSNR/SSIM.")
@click.option("--add-noise", type=Bounded(0.0, MAX_SIGMA), metavar="SIGMA",
              help="Treat the inputs as clean and add clip(x + SIGMA N(0,1)) noise: PSNR/SSIM live.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --add-noise.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Folder for denoised images (same names), or a video file (.mp4, .avi).")
@click.option("--batch", type=Bounded(1, MAX_BATCH, integer=True), default=256, show_default=True,
              help="Images per model call at most.")
@click.option("--max-pixels", type=Bounded(1, MAX_PIXELS_OPTION, integer=True), default=MAX_IMAGE_PIXELS,
              show_default=True, help="Largest image taken (width x height); a larger one is skipped, named in the "
                                      "summary, before it is decoded.")
@run_options(MODEL_FILE, threads=2, speed="max", speed_help="video replay speed (1 = its frame rate)")
@one_line_errors
def images(source: str | None, camera: int | None, watch: bool, clean: Path | None, add_noise: float | None,
           seed: int, out: Path | None, batch: int, max_pixels: int, **shared: Any) -> None:
    """Denoise a stream of grayscale images: a folder or glob, a video, a camera, an .npz or IDX array.

    Colour images become grayscale. The default model takes each image at its own size (tiles above 256 px);
    a fixed-size model (--model) gets images up to twice its size resized to it and back, larger ones cut into
    overlapping tiles that are blended back (nothing is cropped). Sizes or noise levels the model's card did
    not evaluate are named on the dashboard and in the summary (outside_evaluated).
    """
    refuse_inapplicable(source_kind(source, camera), add_noise, clean)
    run = collect(MODEL_FILE, shared, inputs=[source, clean], outputs={"--out": out})
    plan = plan_images(source, run, camera=camera, watch=watch, clean=clean, add_noise=add_noise, seed=seed,
                       out=out, batch=batch, max_pixels=max_pixels)
    sys.exit(execute(plan, run))


@click.command("images")
@click.option("--out", type=click.Path(path_type=Path), default=Path("models"), show_default=True)
@click.option("--preset", default="default", show_default=True,
              help="default (ships: dense + strips, int8), unet (conv, same quality, 3-4x slower), "
                   "fast (dense: faster, lower quality) or lecture.")
@click.option("--sigma", type=float, default=0.5, show_default=True, help="Noise level trained for.")
@click.option("--epochs", type=int, help="Override the preset's epochs (quick runs).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--verbose", is_flag=True, help="Show TensorFlow's own log lines and warnings.")
@one_line_errors
def train_images_cmd(out: Path, preset: str, sigma: float, epochs: int | None, seed: int, verbose: bool) -> None:
    """MNIST -> Keras -> ONNX, parity-checked, with a model card (PSNR/SSIM at sigma 0.3/0.5/0.7).

    Shows each phase and epoch, and ends with the held-out figures written into the model card."""
    need_training_extra(verbose)
    from export.heldout import print_result
    from export.image_models import PRESETS
    from export.progress import TrainingProgress
    from export.train_images import others_of, train_images

    check_preset(preset, PRESETS)
    with TrainingProgress() as progress:
        result = train_images(preset, out, epochs=epochs, seed=seed, sigma=sigma, progress=progress)
    print_result(progress.console, result["meta"], result["onnx"], result["card"], others_of(result["onnx"]))
