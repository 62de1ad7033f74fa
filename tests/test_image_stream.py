"""`streamer images` end to end on real MNIST digits, with closed-form models (identity, 1 - x), so every
figure the run reports can be checked against a direct computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from streamer.cli.main import main
from streamer.images.quality import psnr_db, ssim
from tests.image_fixtures import as_float, mnist_u8, mosaic, write_image, write_pngs, write_truncated, write_video
from tests.onnx_models import image_model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("imgmodels")
    return {"identity": image_model(d / "identity.onnx"), "invert": image_model(d / "invert.onnx", "invert"),
            "ecg": image_model(d / "wrong.onnx", task="ecg-beat-anomaly")}


def _run(args: list[str]) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["images", *args, "--no-dashboard"])
    return r.exit_code, r.output


def _one_line(code: int, output: str, *needles: str) -> None:
    assert code != 0 and "Traceback" not in output, output
    lines = [ln for ln in output.splitlines() if ln.startswith("streamer: error")]
    assert len(lines) == 1, output
    for needle in needles:
        assert needle in lines[0], lines[0]


def _resized32(u8: np.ndarray) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(d, (32, 32), interpolation=cv2.INTER_LINEAR) for d in u8])


def test_folder_with_clean_references(tmp_path: Path, models: dict[str, Path]) -> None:
    """32x32 noisy digits with clean references: the identity's PSNR equals the noisy input's, the
    inversion's equals a direct computation, and the outputs keep the names."""
    clean = _resized32(mnist_u8(40)[0])
    rng = np.random.default_rng(1)
    noisy = np.clip(clean / 255 + 0.3 * rng.standard_normal(clean.shape), 0, 1)
    noisy_u8 = np.round(noisy * 255).astype(np.uint8)
    for i in range(40):
        write_image(tmp_path / "in" / f"{i}.png", noisy_u8[i])
        write_image(tmp_path / "in" / "clean" / f"{i}.png", clean[i])  # inside the input folder: not an input
    out, summary, events = tmp_path / "out", tmp_path / "s.json", tmp_path / "events.jsonl"
    code, output = _run([str(tmp_path / "in"), "--clean", str(tmp_path / "in" / "clean"), "--model",
                         str(models["invert"]), "--out", str(out), "--summary", str(summary), "--events", str(events)])
    assert code == 0, output
    s = json.loads(summary.read_text())
    c, x = clean / 255.0, noisy_u8 / 255.0
    assert s["images"] == 40 and s["skipped"] == [] and s["clean_missing"] == []
    assert s["psnr_db"] == pytest.approx(np.mean(psnr_db(c, 1 - x)), abs=1e-3)
    assert s["psnr_noisy_db"] == pytest.approx(np.mean(psnr_db(c, x)), abs=1e-3)
    assert s["ssim"] == pytest.approx(np.mean(ssim(c, 1 - x)), abs=1e-3)
    # one JSON line per image, in stream order, each with its own figures
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["image"] for e in lines] == [f"{i}.png" for i in range(40)]
    assert [e["index"] for e in lines] == list(range(40))
    np.testing.assert_allclose([e["psnr_db"] for e in lines], psnr_db(c, 1 - x), atol=1e-3)
    np.testing.assert_allclose([e["psnr_noisy_db"] for e in lines], psnr_db(c, x), atol=1e-3)
    np.testing.assert_allclose([e["ssim"] for e in lines], ssim(c, 1 - x), atol=1e-3)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{i}.png" for i in range(40))
    import cv2

    np.testing.assert_array_equal(cv2.imread(str(out / "7.png"), cv2.IMREAD_GRAYSCALE), 255 - noisy_u8[7])


def test_add_noise_makes_quality_live(tmp_path: Path, models: dict[str, Path]) -> None:
    write_pngs(tmp_path / "clean", 64)
    summary = tmp_path / "s.json"
    code, output = _run([str(tmp_path / "clean"), "--add-noise", "0.5", "--model", str(models["identity"]),
                         "--summary", str(summary)])
    assert code == 0, output
    s = json.loads(summary.read_text())
    # MNIST at sigma 0.5 after clipping: about 9.4 dB (the measured noisy-input figure is 9.36)
    assert 8.5 < s["psnr_noisy_db"] < 10.5 and s["psnr_db"] == s["psnr_noisy_db"] and s["resized"] == 64
    assert s["added_noise_sigma"] == 0.5


def test_other_sizes_are_resized_or_tiled_never_cropped(tmp_path: Path, models: dict[str, Path]) -> None:
    big = mosaic(3, 5)  # 84 x 140: tiled
    write_image(tmp_path / "in" / "big.png", big)
    write_image(tmp_path / "in" / "digit.png", mnist_u8(1)[0][0])  # 28 x 28: resized
    out, summary = tmp_path / "out", tmp_path / "s.json"
    code, output = _run([str(tmp_path / "in"), "--model", str(models["identity"]), "--out", str(out),
                         "--summary", str(summary)])
    assert code == 0, output
    s = json.loads(summary.read_text())
    assert s["tiled"] == 1 and s["resized"] == 1 and s["images"] == 2
    import cv2

    back = cv2.imread(str(out / "big.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(back, big)  # tiling with an identity model is exact
    assert cv2.imread(str(out / "digit.png"), cv2.IMREAD_GRAYSCALE).shape == (28, 28)


def test_unreadable_image_is_skipped_named_and_the_run_goes_on(tmp_path: Path, models: dict[str, Path]) -> None:
    write_pngs(tmp_path / "in", 5)
    write_truncated(tmp_path / "in" / "cut.png", mnist_u8(1, 9)[0][0])
    (tmp_path / "in" / "notes.png").write_text("not an image")
    summary = tmp_path / "s.json"
    code, output = _run([str(tmp_path / "in"), "--model", str(models["identity"]), "--summary", str(summary)])
    assert code == 0, output
    s = json.loads(summary.read_text())
    assert s["images"] == 5 and s["drops"] == {"unreadable image": 2}
    assert any(k.startswith("cut.png") for k in s["skipped"]) and any(k.startswith("notes.png") for k in s["skipped"])


def test_video_in_video_out(tmp_path: Path, models: dict[str, Path]) -> None:
    import cv2

    frames = _resized32(mnist_u8(30)[0])
    video = write_video(tmp_path / "in.avi", frames, 10.0, "MJPG")
    code, output = _run([str(video), "--model", str(models["identity"]), "--out", str(tmp_path / "out.avi"),
                         "--summary", str(tmp_path / "s.json")])
    assert code == 0, output
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 30 == json.loads((tmp_path / "s.json").read_text())["images"]


def test_array_file_with_clean_key(tmp_path: Path, models: dict[str, Path]) -> None:
    clean = as_float(_resized32(mnist_u8(300)[0]))
    noisy = np.clip(clean + 0.5 * np.random.default_rng(0).standard_normal(clean.shape), 0, 1).astype(np.float32)
    np.savez(tmp_path / "a.npz", images=noisy, clean=clean)
    code, output = _run([str(tmp_path / "a.npz"), "--model", str(models["invert"]), "--summary",
                         str(tmp_path / "s.json"), "--batch", "64"])
    assert code == 0, output
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["images"] == 300 and s["batches"] == 5
    assert s["psnr_db"] == pytest.approx(np.mean(psnr_db(clean, 1 - noisy)), abs=1e-3)


def test_bad_inputs_are_one_line(tmp_path: Path, models: dict[str, Path]) -> None:
    (tmp_path / "empty").mkdir()
    _one_line(*_run([str(tmp_path / "empty"), "--model", str(models["identity"])]), "no images")
    (tmp_path / "v.mp4").write_text("not a video")
    _one_line(*_run([str(tmp_path / "v.mp4"), "--model", str(models["identity"])]), "v.mp4", "cannot open video")
    _one_line(*_run(["--camera", "7", "--model", str(models["identity"])]), "camera 7", "no such camera")
    write_pngs(tmp_path / "ok", 2)
    _one_line(*_run([str(tmp_path / "ok"), "--model", str(models["ecg"])]), "needs 'image-denoise'")
    _one_line(*_run([str(tmp_path / "ok"), "--model", str(models["identity"]), "--add-noise", "-1"]), "--add-noise")


def test_dashboard_view_has_throughput_quality_and_preview(models: dict[str, Path]) -> None:
    """The report the dashboard shows, fed as the run path feeds it: a stream's events, block after block."""
    from streamer.core.model import load_model
    from streamer.core.modelmeta import IMAGE_TASK
    from streamer.images.report import ImageReport

    model = load_model(models["invert"], task=IMAGE_TASK)
    clean = as_float(_resized32(mnist_u8(64)[0]))
    stream = model.stream(add_noise=0.5)
    report = ImageReport(add_noise=0.5)
    for start in (0, 32):
        events = stream.feed(clean[start:start + 32])
        assert [e.index for e in events] == list(range(start, start + 32))
        report.on_events(events)
    assert stream.flush() == []
    view = report.view()
    assert view["fields"]["images"] == "64" and "images/s" in view["fields"]["throughput"]
    assert "dB" in view["fields"]["PSNR"] and len(view["series"][0]["values"]) == 64  # all kept, up to 200
    labels = [label for label, _ in view["images"]]
    assert labels == ["input", "denoised", "clean"]
    np.testing.assert_allclose(view["images"][1][1], 1 - view["images"][0][1], atol=1e-6)
    np.testing.assert_array_equal(view["images"][2][1], clean[-1])  # the latest image's reference


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_watch_cli_takes_new_files_once_and_ends_on_ctrl_c(tmp_path: Path, sig: str, code: int) -> None:
    """`streamer images DIR --watch --out DIR/out`: files copied in while it runs are denoised once each,
    its own outputs inside the watched folder are not read back, and Ctrl-C (or SIGTERM, as a service
    manager stops it) writes the summary."""
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT, in_foreground

    src = ROOT / "samples" / "images"
    watched = tmp_path / "in"
    watched.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "streamer.cli", "images", str(watched), "--watch", "--out",
                             str(watched / "out"), "--summary", str(tmp_path / "s.json"), "--no-dashboard"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=in_foreground)
    names = [f"test_{i:05d}.png" for i in range(5)]
    time.sleep(2)
    for name in names[:3]:
        shutil.copy(src / name, watched / name)
    time.sleep(1.5)
    for name in names[3:]:
        shutil.copy(src / name, watched / name)
    deadline = time.monotonic() + 30
    while len(list((watched / "out").glob("*.png"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # a second pass over the folder, which now also holds out/
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code and b"Traceback" not in err
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["images"] == 5 and s["interrupted"] is True and s["images_per_s"] > 0
    assert sorted(p.name for p in (watched / "out").iterdir()) == names
