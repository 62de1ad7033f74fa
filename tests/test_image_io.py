"""Image I/O: folder / watched folder / video / camera / array sources, the size rule, and the sinks, on
real MNIST test digits (see image_fixtures)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from streamer.core.errors import InputError, StreamerError
from streamer.images import sinks as sinks_mod
from streamer.images import sizing
from streamer.images.sinks import FolderSink, VideoSink, output_name
from streamer.images.sources import (
    CameraSource,
    FolderSource,
    ImageArraySource,
    VideoSource,
    parse_idx,
)
from streamer.run.sources import Block, Source, Timing
from tests.image_fixtures import (
    as_float,
    idx_bytes,
    mnist_u8,
    mosaic,
    png_bytes,
    write_idx,
    write_image,
    write_pngs,
    write_truncated,
    write_video,
)

cv2 = pytest.importorskip("cv2")


@dataclass
class Item:
    """One image of a source's blocks, as the stream receives it."""

    name: str
    image: np.ndarray
    clean: np.ndarray | None
    index: int
    arrival: float | None


def items_in(block: Block) -> list[Item]:
    """The images of one run `Block`, checked against the block contract: `samples` a list of (h, w) float32
    images or an (n, h, w) float32 array, `extras` one name per image and references for all or none of them,
    `start` the stream index of the first."""
    samples, extras = block.samples, block.extras
    assert isinstance(samples, list) or (isinstance(samples, np.ndarray) and samples.ndim == 3)
    assert set(extras) == {"names", "clean"}
    names, clean = extras["names"], extras["clean"]
    assert len(names) == len(samples) > 0
    if clean is not None:
        assert len(clean) == len(samples)
    out = []
    for j, image in enumerate(samples):
        assert isinstance(image, np.ndarray) and image.ndim == 2 and image.dtype == np.float32
        ref = None if clean is None else clean[j]
        assert ref is None or ref.shape == image.shape
        out.append(Item(names[j], image, ref, block.start + j, block.arrival))
    return out


def items_of(source: Source) -> list[Item]:
    return [item for block in source.blocks() for item in items_in(block)]


def assert_is_run_source(source: Source, timing: Timing) -> None:
    """The run `Source` protocol: name, rate, timing, blocks, drops, summary, close."""
    assert isinstance(source.name, str) and source.name and source.rate > 0 and source.timing is timing
    assert isinstance(source.drops(), dict) and isinstance(source.summary(), dict)
    assert callable(source.blocks) and callable(source.close)


# --- folders ----------------------------------------------------------------------------------------

def test_folder_natural_order_batches_and_decoding(tmp_path: Path) -> None:
    digits, _ = mnist_u8(12)
    names = [f"{i}.png" for i in range(10)] + ["sub/2.png", "sub/10.png"]
    for name, digit in zip(names, digits):
        write_image(tmp_path / name, digit)
    src = FolderSource(tmp_path, batch=4)
    assert_is_run_source(src, Timing.UNTIMED)
    blocks = list(src.blocks())
    assert [len(b.samples) for b in blocks] == [4, 4, 4]
    assert [b.start for b in blocks] == [0, 4, 8]
    assert all(b.extras["clean"] is None and b.arrival is None for b in blocks)
    items = [it for b in blocks for it in items_in(b)]
    assert [it.name for it in items] == names  # 2 before 10, sub/ after the top-level files
    assert [it.index for it in items] == list(range(12))
    for it, digit in zip(items, digits):
        assert it.image.dtype == np.float32 and it.image.shape == (28, 28)
        np.testing.assert_array_equal(it.image, as_float(digit))
        assert it.clean is None
    assert src.drops() == {} and src.skipped == [] and src.summary() == {"skipped": []} and src.total == 12


def test_glob_colour_16bit_and_clean_references(tmp_path: Path) -> None:
    digits, _ = mnist_u8(3, offset=100)
    write_image(tmp_path / "in" / "gray.png", digits[0])
    write_image(tmp_path / "in" / "colour.png", np.stack([digits[1]] * 3, axis=-1))  # BGR, all channels equal
    write_image(tmp_path / "in" / "deep.png", digits[2].astype(np.uint16) * 257)  # 16-bit: same values / 65535
    write_image(tmp_path / "in" / "skip.jpg", digits[0])  # not matched by the glob
    references = {"gray.png": digits[0], "colour.jpg": digits[1]}  # deep.png has no reference
    for name, d in references.items():
        write_image(tmp_path / "clean" / name, d)
    src = FolderSource(str(tmp_path / "in" / "*.png"), clean_dir=tmp_path / "clean")
    blocks = list(src.blocks())
    # consecutive images with and without a reference travel in separate blocks (natural order: c, d, g)
    assert [(b.start, b.extras["names"], b.extras["clean"] is None) for b in blocks] == [
        (0, ["colour.png"], False), (1, ["deep.png"], True), (2, ["gray.png"], False)]
    items = {it.name: it for b in blocks for it in items_in(b)}
    assert sorted(items) == ["colour.png", "deep.png", "gray.png"]
    for name, d in zip(["gray.png", "colour.png", "deep.png"], digits):
        np.testing.assert_allclose(items[name].image, as_float(d), atol=1e-6)
    np.testing.assert_array_equal(items["gray.png"].clean, as_float(digits[0]))
    assert items["colour.png"].clean is not None  # same stem, other suffix (JPEG: lossy)
    assert np.abs(items["colour.png"].clean - as_float(digits[1])).mean() < 0.02
    assert items["deep.png"].clean is None and src.clean_missing == ["deep.png: no reference"]
    assert src.summary() == {"skipped": [], "clean_missing": ["deep.png: no reference"]}


def test_unreadable_images_are_skipped_counted_and_named(tmp_path: Path) -> None:
    names = write_pngs(tmp_path, 6)
    bad, _ = mnist_u8(2, offset=50)
    write_truncated(tmp_path / "3a_cut.png", bad[0])
    write_truncated(tmp_path / "3b_cut.jpg", bad[1], ".jpg")  # libjpeg alone would decode this (grey fill)
    (tmp_path / "4a_notes.png").write_text("not an image, just a text file with a .png name\n")
    (tmp_path / ".hidden.png").write_bytes(png_bytes(bad[0]))  # ignored, not counted
    (tmp_path / "5a.png.part").write_bytes(png_bytes(bad[0]))
    (tmp_path / "readme.txt").write_text("ignored")
    src = FolderSource(tmp_path)
    items = items_of(src)
    assert [it.name for it in items] == names  # all good ones, in order
    assert src.drops() == {"unreadable image": 3}
    skipped = {s.split(":")[0]: s for s in src.skipped}
    assert sorted(skipped) == ["3a_cut.png", "3b_cut.jpg", "4a_notes.png"]
    assert "truncated PNG" in skipped["3a_cut.png"] and "truncated JPEG" in skipped["3b_cut.jpg"]
    assert "not an image" in skipped["4a_notes.png"]
    assert src.summary() == {"skipped": src.skipped}


def test_empty_or_unreadable_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="no images"):
        FolderSource(tmp_path)
    with pytest.raises(InputError, match="no such file or folder"):
        FolderSource(tmp_path / "missing")
    FolderSource(tmp_path, watch=True)  # a watched folder may start empty
    (tmp_path / "a.png").write_text("text")
    with pytest.raises(InputError, match="none of the 1 image files could be read"):
        items_of(FolderSource(tmp_path))


def test_watch_takes_files_written_while_running_once_and_complete(tmp_path: Path) -> None:
    digits, _ = mnist_u8(10, offset=200)
    write_image(tmp_path / "00.png", digits[0])  # there before the watcher starts
    expected = {f"{i:02d}.png": digits[i] for i in range(10)}
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            time.sleep(0.1)
            (tmp_path / "05_bad.png").write_text("a text file with a .png name")
            for i in range(1, 6):
                write_image(tmp_path / f"{i:02d}.png", digits[i])
                time.sleep(0.05)
            data = png_bytes(digits[6])  # written in two halves with a pause longer than settle_s
            with open(tmp_path / "06.png", "wb") as f:
                f.write(data[:len(data) // 2])
                f.flush()
                time.sleep(0.5)
                f.write(data[len(data) // 2:])
            tmp = tmp_path / "07.png.tmp"  # written aside and renamed, as careful writers do
            tmp.write_bytes(png_bytes(digits[7]))
            tmp.rename(tmp_path / "07.png")
            (tmp_path / "sub").mkdir()
            for i in (8, 9):
                write_image(tmp_path / f"{i:02d}.png" if i == 8 else tmp_path / "sub" / "09.png", digits[i])
                time.sleep(0.05)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    expected["sub/09.png"] = expected.pop("09.png")
    src = FolderSource(tmp_path, watch=True, poll_s=0.03, settle_s=0.15, give_up_s=1.5, max_idle_s=1.0)
    assert_is_run_source(src, Timing.LIVE)
    thread = threading.Thread(target=writer)
    thread.start()
    t0 = time.monotonic()
    items: list[Item] = []
    try:
        for block in src.blocks():  # ends after max_idle_s without new files
            items += items_in(block)
            if time.monotonic() - t0 > 15:  # a watcher that never goes idle fails here instead of hanging
                break
    finally:
        thread.join()
    assert not errors
    assert time.monotonic() - t0 < 15
    names = [it.name for it in items]
    assert sorted(names) == sorted(expected) and len(names) == len(set(names))  # none missed, none twice
    for it in items:
        np.testing.assert_array_equal(it.image, as_float(expected[it.name]))  # complete, not half a file
        assert it.arrival is not None
    assert [it.index for it in items] == list(range(len(items)))
    assert src.drops() == {"unreadable image": 1} and src.skipped[0].startswith("05_bad.png: ")


# --- video and camera -------------------------------------------------------------------------------

@pytest.mark.parametrize(("suffix", "fourcc", "tolerance"), [(".avi", "MJPG", 0.02), (".mp4", "mp4v", 0.05)])
def test_video_written_by_opencv_reads_back(tmp_path: Path, suffix: str, fourcc: str, tolerance: float) -> None:
    frames = np.stack([mosaic(2, 3, offset=6 * i) for i in range(9)])  # 56x84 frames of real digits
    path = write_video(tmp_path / f"digits{suffix}", frames, 12.0, fourcc)
    src = VideoSource(path, batch=4)
    assert_is_run_source(src, Timing.REPLAY)
    assert src.rate == pytest.approx(12.0) and src.total == 9 and src.summary() == {"fps": src.rate}
    blocks = list(src.blocks())
    assert [len(b.samples) for b in blocks] == [4, 4, 1] and [b.start for b in blocks] == [0, 4, 8]
    items = [it for b in blocks for it in items_in(b)]
    got = np.stack([it.image for it in items])
    assert got.shape == (9, 56, 84) and got.dtype == np.float32
    ref = as_float(frames)
    err = np.abs(got[:, None] - ref[None]).mean(axis=(2, 3))  # every decoded frame against every written one
    assert (np.diag(err) < tolerance).all()  # close to its own frame (lossy codec)...
    assert (np.argmin(err, axis=1) == np.arange(9)).all()  # ...and to no other: order kept
    assert [it.name for it in items][:2] == ["frame_000000", "frame_000001"]
    assert all(it.clean is None for it in items)


def test_not_a_video_is_an_input_error(tmp_path: Path) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is a text file, not a video\n")
    with pytest.raises(InputError, match="cannot open video") as info:
        VideoSource(fake)
    assert str(fake) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="no such file"):
        VideoSource(tmp_path / "missing.mp4")


def test_missing_camera_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        CameraSource(7)
    assert str(info.value) == "camera 7: no such camera (or it cannot be opened)"


# --- arrays -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["nhw", "nhw1", "flat"])
def test_npz_round_trip_with_clean(tmp_path: Path, layout: str) -> None:
    digits, _ = mnist_u8(300, offset=1000)
    noisy = np.clip(as_float(digits) + 0.3 * np.random.default_rng(0).standard_normal(digits.shape), 0, 1)
    stored = {"nhw": digits, "nhw1": digits[..., None], "flat": digits.reshape(300, 784)}[layout]
    path = tmp_path / "digits.npz"
    np.savez(path, labels=np.arange(300), images=stored, clean=noisy.astype(np.float32))
    src = ImageArraySource(path, batch=128)
    assert_is_run_source(src, Timing.UNTIMED)
    blocks = list(src.blocks())
    assert [len(b.samples) for b in blocks] == [128, 128, 44] and [b.start for b in blocks] == [0, 128, 256]
    items = [it for b in blocks for it in items_in(b)]
    np.testing.assert_array_equal(np.stack([it.image for it in items]), as_float(digits))
    np.testing.assert_allclose(np.stack([it.clean for it in items]), noisy, atol=1e-6)  # type: ignore[misc]
    assert items[5].name == "frame_000005" and items[5].index == 5


def test_npz_first_array_and_bad_values(tmp_path: Path) -> None:
    digits, _ = mnist_u8(4)
    np.savez(tmp_path / "a.npz", x=digits)
    assert len(items_of(ImageArraySource(tmp_path / "a.npz"))) == 4
    np.savez(tmp_path / "b.npz", images=digits.astype(np.float32))  # 0..255 floats: not scaled
    with pytest.raises(InputError, match=r"span \[0, 255\]"):
        ImageArraySource(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", images=digits.reshape(4, 28 * 28)[:, :780])
    with pytest.raises(InputError, match="square"):
        ImageArraySource(tmp_path / "c.npz")


@pytest.mark.parametrize("name", ["t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path: Path, name: str) -> None:
    digits, _ = mnist_u8(50, offset=9000)
    path = write_idx(tmp_path / name, digits)
    src = ImageArraySource(path, batch=32)
    items = items_of(src)
    assert len(items) == 50 and src.total == 50
    np.testing.assert_array_equal(np.stack([it.image for it in items]), as_float(digits))
    np.testing.assert_array_equal(parse_idx(idx_bytes(digits), "x"), digits)


def test_bad_idx_is_an_input_error(tmp_path: Path) -> None:
    digits, _ = mnist_u8(5)
    good = idx_bytes(digits)
    (tmp_path / "magic-idx3-ubyte").write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(InputError, match="not an IDX file"):
        ImageArraySource(tmp_path / "magic-idx3-ubyte")
    (tmp_path / "short-idx3-ubyte").write_bytes(good[:-100])
    with pytest.raises(InputError, match="IDX data is 3820 bytes, the header .5x28x28 u1. says 3920"):
        ImageArraySource(tmp_path / "short-idx3-ubyte")
    labels = bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(5)  # a labels file: 1 dimension
    (tmp_path / "labels-idx1-ubyte").write_bytes(labels)
    with pytest.raises(InputError, match="shape"):
        ImageArraySource(tmp_path / "labels-idx1-ubyte")


# --- the size rule ----------------------------------------------------------------------------------

def identity_model(tiles: np.ndarray) -> np.ndarray:
    assert tiles.shape[1:] == (32, 32) and tiles.dtype == np.float32
    return tiles.copy()


def crop_of_mosaic(shape: tuple[int, int]) -> np.ndarray:
    rows, cols = -(-shape[0] // 28), -(-shape[1] // 28)
    return as_float(mosaic(rows, cols))[:shape[0], :shape[1]]


@pytest.mark.parametrize("shape", [(65, 64), (33, 100), (31, 500), (1, 500), (500, 3), (200, 301), (1080, 1920)])
def test_tiles_cover_every_pixel_and_identity_is_exact(shape: tuple[int, int]) -> None:
    image = crop_of_mosaic(shape)
    plan = sizing.plan(shape, (32, 32))
    assert plan.kind == "tiles"
    tiles = sizing.to_model(image, plan)
    assert tiles.shape == (plan.n_tiles, 32, 32)
    covered = np.zeros(plan.padded, int)
    k = 0
    for y in plan.ys:
        for x in plan.xs:
            covered[y:y + 32, x:x + 32] += 1
            if y + 32 <= shape[0] and x + 32 <= shape[1]:  # a tile inside the image is a plain crop of it
                np.testing.assert_array_equal(tiles[k], image[y:y + 32, x:x + 32])
            k += 1
    assert covered.min() >= 1 and plan.ys[-1] + 32 == plan.padded[0] and plan.xs[-1] + 32 == plan.padded[1]
    back = sizing.from_model(identity_model(tiles), plan)
    assert back.shape == shape
    np.testing.assert_allclose(back, image, atol=1e-6)
    np.testing.assert_allclose(sizing.from_model(1.0 - tiles, plan), 1.0 - image, atol=1e-6)  # blend is linear


@pytest.mark.parametrize("shape", [(28, 28), (16, 16), (1, 1), (20, 32), (1, 64)])
def test_resize_round_trip_is_exact_up_to_model_size(shape: tuple[int, int]) -> None:
    """Axes that grow to the model's size come back through the exact inverse (64: 64 -> 32 shrinks)."""
    image = crop_of_mosaic(shape) if shape != (16, 16) else cv2.resize(as_float(mnist_u8(1)[0][0]), (16, 16))
    plan = sizing.plan(shape, (32, 32))
    assert plan.kind == "resize" and plan.n_tiles == 1
    tiles = sizing.to_model(image, plan)
    assert tiles.shape == (1, 32, 32)
    back = sizing.from_model(identity_model(tiles), plan)
    assert back.shape == shape
    tol = 1e-5 if shape[1] <= 32 else 0.35  # (1, 64): the 64-wide axis is shrunk, so that one is not exact
    np.testing.assert_allclose(back, image, atol=tol)


def test_resize_matches_opencv_and_larger_images_round_trip_approximately() -> None:
    digits = as_float(mnist_u8(200, offset=3000)[0])
    plan = sizing.plan((28, 28), (32, 32))
    many = sizing.to_model_many(digits, plan)
    ref = np.stack([cv2.resize(d, (32, 32), interpolation=cv2.INTER_LINEAR) for d in digits])
    np.testing.assert_allclose(many, ref, atol=1e-6)  # the same as OpenCV's bilinear resize
    np.testing.assert_allclose(sizing.from_model_many(many, plan), digits, atol=1e-5)
    np.testing.assert_array_equal(sizing.to_model(digits[3], plan), many[3:4])
    for shape in [(48, 40), (64, 64), (64, 20)]:  # shrunk on the way in: detail below the model's grid is lost
        big = np.stack([cv2.resize(d, shape[::-1], interpolation=cv2.INTER_LINEAR) for d in digits])
        p = sizing.plan(shape, (32, 32))
        assert p.kind == "resize"
        back = sizing.from_model_many(sizing.to_model_many(big, p), p)
        psnr = 10 * np.log10(1.0 / ((back - big) ** 2).mean(axis=(1, 2)))
        assert back.shape == big.shape and psnr.min() > 24.0  # measured: min 26.5 / 27.2 / 29.2 dB


def test_rule_boundary() -> None:
    assert sizing.plan((64, 64), (32, 32)).kind == "resize"
    assert sizing.plan((65, 64), (32, 32)).kind == "tiles"
    assert sizing.plan((64, 65), (32, 32)).kind == "tiles"
    assert sizing.plan((3, 3000), (32, 32)).padded == (32, 3000)  # mirror-extended, cut again on the way back
    with pytest.raises(ValueError):
        sizing.plan((0, 5), (32, 32))


# --- sinks ------------------------------------------------------------------------------------------

def test_folder_sink_same_names_and_values(tmp_path: Path) -> None:
    digits, _ = mnist_u8(4, offset=400)
    sink = FolderSink(tmp_path / "out")
    names = ["a/7.png", "b.pgm", "frame_000003", "c.jpg"]
    for name, d in zip(names, digits):
        sink.save(name, as_float(d))
    sink.close()
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["a/7.png", "b.pgm", "c.jpg", "frame_000003.png"]
    for name, d in zip(["a/7.png", "b.pgm", "frame_000003.png"], digits):  # lossless formats: exact bytes
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / name), cv2.IMREAD_UNCHANGED), d)
    assert sink.written == 4 and sink.drops() == {}
    assert output_name("x/scan.xyz").as_posix() == "x/scan.png"
    with pytest.raises(StreamerError, match="refusing"):
        sink.save("../escape.png", as_float(digits[0]))
    # a folder run's output read back by a folder source gives the same names and images
    back = {it.name: it.image for it in items_of(FolderSource(str(tmp_path / "out" / "**" / "*.png")))}
    assert sorted(back) == ["a/7.png", "frame_000003.png"]
    np.testing.assert_array_equal(back["a/7.png"], as_float(digits[0]))


def test_folder_sink_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digits, _ = mnist_u8(2, offset=500)
    sink = FolderSink(tmp_path)
    sink.save("x.png", as_float(digits[0]))

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the new image was written aside, before the rename

    monkeypatch.setattr(sinks_mod.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sink.save("x.png", as_float(digits[1]))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temp file left behind
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "x.png"), cv2.IMREAD_UNCHANGED), digits[0])  # whole
    sink.save("x.png", as_float(digits[1]))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "x.png"), cv2.IMREAD_UNCHANGED), digits[1])
    with pytest.raises(StreamerError, match="exists"):
        FolderSink(tmp_path, overwrite=False).save("x.png", as_float(digits[0]))


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_sink_writes_a_readable_video(tmp_path: Path, suffix: str) -> None:
    frames = as_float(np.stack([mosaic(2, 2, offset=4 * i) for i in range(6)]))  # 56x56
    path = tmp_path / f"out{suffix}"
    sink = VideoSink(path, fps=8.0)
    try:
        for f in frames:
            sink.add(f)
        sink.add(as_float(mosaic(1, 1)))  # another size: resized to the video's
    finally:
        sink.close()
    assert sink.frames == 7 and sink.resized == 1 and sink.size == (56, 56) and sink.drops() == {}
    src = VideoSource(path)
    got = np.stack([it.image for it in items_of(src)])
    assert src.rate == pytest.approx(8.0) and got.shape == (7, 56, 56)
    assert np.abs(got[:6] - frames).mean(axis=(1, 2)).max() < 0.05


def test_video_sink_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(StreamerError, match="no folder") as info:
        VideoSink(tmp_path / "missing" / "out.mp4", fps=10, size=(32, 32))
    assert str(tmp_path / "missing" / "out.mp4") in str(info.value)
    with pytest.raises(StreamerError, match="unknown video type"):
        VideoSink(tmp_path / "out.gif", fps=10)
