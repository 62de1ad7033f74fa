"""Wiring of one image run: folder / video / camera / array source + model + ImageTask + sinks + dashboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamer.run.engine import Engine, Source
from streamer.core.errors import InputError
from streamer.images.task import ImageSink, ImageTask
from streamer.core.model import Model
from streamer.core.modelmeta import IMAGE_TASK
from streamer.run.pacing import Pacer, parse_speed
from streamer.ui.summary import finish_run
from streamer.run.sinks import JsonlSink

CLEAN_SUBFOLDER = "clean"  # a folder's own clean references, used without --clean
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg"}
def open_source(source: str | None, camera: int | None, watch: bool, clean: Path | None,
                batch: int, out: Path | None = None) -> Source:
    if camera is not None:
        from streamer.images.sources import CameraSource

        return CameraSource(camera)
    if source is None:
        raise InputError("images", "give a SOURCE (folder, glob, video, .npz, IDX) or --camera N")
    path = Path(source)
    if path.suffix.lower() in VIDEO_SUFFIXES and not path.is_dir():
        from streamer.images.sources import VideoSource

        return VideoSource(path, batch=batch)
    from streamer.images.sources import is_image_array

    if is_image_array(path) and not path.is_dir():
        from streamer.images.sources import ImageArraySource

        return ImageArraySource(path, batch=batch)
    from streamer.images.sources import FolderSource

    if clean is None and path.is_dir() and (path / CLEAN_SUBFOLDER).is_dir():
        clean = path / CLEAN_SUBFOLDER  # the convention of samples/images: references beside the inputs
    # never read our own outputs or the references as inputs, even when they sit inside the folder
    exclude = [p for p in (out, clean) if p is not None]
    return FolderSource(source, batch=batch, watch=watch, clean_dir=clean, exclude=exclude)


def open_outputs(out: Path | None, fps: float) -> tuple[list[ImageSink], list[Callable[[], Any]]]:
    if out is None:
        return [], []
    if out.suffix.lower() in VIDEO_SUFFIXES:
        from streamer.images.sinks import VideoSink

        video: dict[str, Any] = {}

        def write_frame(name: str, image: np.ndarray) -> None:  # the size is known at the first frame
            if "sink" not in video:
                video["sink"] = VideoSink(out, fps, (image.shape[1], image.shape[0]))
            video["sink"].write(image)

        return [write_frame], [lambda: video["sink"].close() if "sink" in video else None]
    from streamer.images.sinks import FolderSink

    folder = FolderSink(out)
    return [folder.write], [folder.close]


def run_images(source: str | None, model_path: Path, camera: int | None = None, watch: bool = False,
               clean: Path | None = None, add_noise: float | None = None, seed: int = 0, out: Path | None = None,
               speed: str = "max", batch: int = 256, summary_path: Path | None = None, events: Path | None = None,
               dashboard: bool = True, threads: int = 2) -> int:
    """Runs the stream to its end (or Ctrl-C); returns the process exit code."""
    try:
        pace = parse_speed(speed)
    except ValueError:
        raise InputError("--speed", f"{speed!r} is not a speed (a number > 0, or max)") from None
    if add_noise is not None and not 0 < add_noise <= 2:
        raise InputError("--add-noise", f"sigma must be in (0, 2], not {add_noise}")
    model = Model(model_path, threads=threads, task=IMAGE_TASK)
    src = open_source(source, camera, watch, clean, batch, out)
    sinks, closers = open_outputs(out, getattr(src, "fs", 25.0))
    try:
        task = ImageTask(model, outputs=sinks, add_noise=add_noise, seed=seed, events=events is not None,
                         info={"out": str(out)} if out else None)
        engine = Engine(src, task, model, Pacer(pace), events=JsonlSink(events) if events else None)
        title = f"aestream images · {src.name} · model {model.name}"

        def close_outputs() -> None:
            while closers:
                closers.pop()()

        return finish_run(engine, task, title, summary_path, dashboard, on_end=close_outputs)
    finally:
        for close in closers:
            close()
