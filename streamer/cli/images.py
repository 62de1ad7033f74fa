"""`streamer images` and `streamer train images`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from streamer.cli_common import check_preset, default_model, need_training_extra, one_line_errors

MODEL_FILE = "denoise.onnx"


@click.command()
@click.argument("source", required=False)
@click.option("--camera", type=int, help="Read camera N (OpenCV) instead of SOURCE.")
@click.option("--watch", is_flag=True, help="Keep running and denoise images as they arrive in the folder.")
@click.option("--clean", type=click.Path(path_type=Path), help="Folder of clean references (same names): "
                                                                 "enables PSNR/SSIM.")
@click.option("--add-noise", type=float, metavar="SIGMA",
              help="Treat the inputs as clean and add clip(x + SIGMA N(0,1)) noise: PSNR/SSIM live.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --add-noise.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Folder for denoised images (same names), or a video file (.mp4, .avi).")
@click.option("--model", "model_path", type=click.Path(path_type=Path),
              help=f"ONNX denoiser (default: samples/models/{MODEL_FILE}).")
@click.option("--speed", default="max", show_default=True, help="Video replay speed: 1 = its frame rate, N, max.")
@click.option("--batch", type=int, default=256, show_default=True, help="Images per model call at most.")
@click.option("--events", type=click.Path(path_type=Path), help="Write one JSON line per image (PSNR, SSIM).")
@click.option("--summary", type=click.Path(path_type=Path), help="Write the final summary JSON here.")
@click.option("--no-dashboard", is_flag=True, help="Print only the final summary.")
@click.option("--threads", type=int, default=2, show_default=True, help="onnxruntime intra-op threads.")
@one_line_errors
def images(source: str | None, camera: int | None, watch: bool, clean: Path | None, add_noise: float | None,
           seed: int, out: Path | None, model_path: Path | None, speed: str, batch: int, events: Path | None,
           summary: Path | None, no_dashboard: bool, threads: int) -> None:
    """Denoise a stream of grayscale images: a folder or glob, a video, a camera, an .npz or IDX array.

    Colour images become grayscale. Images up to twice the model's size are resized to it and back;
    larger ones are cut into overlapping tiles that are blended back (nothing is cropped).
    """
    from streamer.run_images import run_images

    code = run_images(source, model_path or default_model(MODEL_FILE), camera=camera, watch=watch, clean=clean,
                      add_noise=add_noise, seed=seed, out=out, speed=speed, batch=batch, summary_path=summary,
                      events=events, dashboard=not no_dashboard, threads=threads)
    sys.exit(code)


@click.command("images")
@click.option("--out", type=click.Path(path_type=Path), default=Path("models"), show_default=True)
@click.option("--preset", default="default", show_default=True,
              help="default (ships: dense + strips, int8), unet (conv, same quality, 3-4x slower), "
                   "fast (dense: faster, lower quality) or lecture.")
@click.option("--sigma", type=float, default=0.5, show_default=True, help="Noise level trained for.")
@click.option("--epochs", type=int, help="Override the preset's epochs (quick runs).")
@click.option("--seed", type=int, default=0, show_default=True)
@one_line_errors
def train_images_cmd(out: Path, preset: str, sigma: float, epochs: int | None, seed: int) -> None:
    """MNIST -> Keras -> ONNX, parity-checked, with a model card (PSNR/SSIM at sigma 0.3/0.5/0.7)."""
    need_training_extra()
    from export.image_models import PRESETS
    from export.train_images import train_images

    check_preset(preset, PRESETS)
    result = train_images(preset, out, epochs=epochs, seed=seed, sigma=sigma)
    meta = result["meta"] if "meta" in result else result
    click.echo(f"wrote {out / (str(meta['name']) + '.onnx')}")


def register(main: click.Group, train: click.Group) -> None:
    main.add_command(images)
    train.add_command(train_images_cmd)
