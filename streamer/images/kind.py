"""The image stream kind: images (one at a time or in batches) -> the model's size (resize or tiles) ->
denoising autoencoder -> back to their own size, with PSNR and SSIM whenever a clean reference comes along.

Images that already have the model's size travel as one array (no per-image Python work on the data path
but the event itself), so a stream of them runs at onnxruntime's batched speed; across streams, every
image ready in a tick goes into one model call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamer.core.errors import ModelError, StreamError
from streamer.core.kind import Chunk, Key
from streamer.core.model import Model
from streamer.core.modelmeta import IMAGE_TASK
from streamer.images import sizing
from streamer.images.events import ImageEvent
from streamer.images.quality import psnr_db, ssim

SSIM_MIN_SIDE = 11  # the Gaussian SSIM window; smaller images get PSNR only
OPTIONS = ("add_noise", "seed")
RANGE_TOLERANCE = 1e-6  # pixels must lie in [0, 1] (the model's normalisation), up to rounding


ANY_SIZE = "any"  # metadata image.size of a model that takes (n, H, W) at any H, W (multiples of multiple_of)


@dataclass(frozen=True)
class ModelSize:
    """What image sizes a model takes: one fixed (h, w), or any size (sides multiples of `multiple`, images
    with a side above `max_side` tiled)."""

    hw: tuple[int, int]  # fixed models: their size; any-size models: the tile (max_side, max_side)
    any_size: bool = False
    multiple: int = 1


def model_size(model: Model) -> ModelSize:
    """The model's image size from its metadata (`image`: height and width, or size "any" with multiple_of and
    max_side)."""
    try:
        image = model.meta["image"]
        if image.get("size") == ANY_SIZE:
            side = int(image["max_side"])
            return ModelSize((side, side), True, max(1, int(image["multiple_of"])))
        return ModelSize((int(image["height"]), int(image["width"])))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(model.path, f"image size not described in metadata ({exc})") from None


def model_image_size(model: Model) -> tuple[int, int]:
    """A fixed-size model's (h, w); an any-size model's tile size."""
    return model_size(model).hw


def frame_name(index: int) -> str:
    return f"frame_{index:06d}"


@dataclass
class Group:
    """Consecutive images of one size (and with or without references) from one stream."""

    names: list[str]
    images: np.ndarray  # (n, h, w) float32 in [0, 1]
    clean: np.ndarray | None


@dataclass
class _ImageStream:
    key: Key
    add_noise: float | None
    rng: np.random.Generator
    seed: int
    count: int = 0  # images taken


@dataclass
class _Unit:
    """Images that go through the model together: a stack of model-sized images, or one planned image."""

    stream: _ImageStream
    first: int  # stream index of the first image
    group: Group
    noisy: np.ndarray
    plan: sizing.Plan | None
    tiles: np.ndarray


@dataclass
class ImageWork:
    inputs: np.ndarray
    units: list[_Unit] = field(default_factory=list)


@dataclass
class SizedImageWork:
    """An any-size model's tick: one group of model inputs per input shape (`GroupedWork`); `order[k]` is the
    unit whose inputs come k-th across the groups, so each stream's events keep their order."""

    groups: list[np.ndarray]
    units: list[_Unit]
    order: list[int]
    inputs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))


class ImageKind:
    """Image streams on one denoiser. Options per stream: `add_noise` (sigma: the given images are the clean
    references and noise `clip(x + sigma N(0,1), 0, 1)` is added, seeded by `seed`)."""

    task = IMAGE_TASK

    def __init__(self, model: Model) -> None:
        self.model = model
        self.size = model_size(model)
        self.hw = self.size.hw
        shape = model.input_shape[1:]
        expected = [] if self.size.any_size else list(self.hw)
        if [d for d in shape if isinstance(d, int)] != expected:
            raise ModelError(model.path, f"model input {shape} does not match its image size "
                                         f"{ANY_SIZE if self.size.any_size else self.hw}")
        self.streams: dict[Key, _ImageStream] = {}

    # --- streams -------------------------------------------------------------------------------------------
    def open(self, key: Key, options: Mapping[str, Any]) -> None:
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise StreamError(key, f"unknown image stream options {sorted(unknown)}", expected=", ".join(OPTIONS))
        sigma = options.get("add_noise")
        if sigma is not None and not 0 < float(sigma) <= 2:
            raise StreamError(key, "add_noise sigma out of range", expected="0 < sigma <= 2", got=sigma)
        seed = int(options.get("seed") or 0)
        self.streams[key] = _ImageStream(key, None if sigma is None else float(sigma), np.random.default_rng(seed),
                                         seed)

    def close(self, key: Key) -> None:
        del self.streams[key]

    def reset(self, key: Key) -> None:
        s = self.streams[key]
        s.count = 0
        s.rng = np.random.default_rng(s.seed)

    def save(self, key: Key) -> dict[str, Any]:
        s = self.streams[key]
        return {"count": s.count, "rng": s.rng.bit_generator.state}

    def restore(self, key: Key, state: Mapping[str, Any]) -> None:
        s = self.streams[key]
        s.count = int(state["count"])
        s.rng.bit_generator.state = dict(state["rng"])

    def counters(self, key: Key) -> dict[str, int]:
        return {}

    def describe(self, key: Key) -> dict[str, Any]:
        s = self.streams[key]
        return {"images": s.count, "model_size": ANY_SIZE if self.size.any_size else self.hw,
                "add_noise": s.add_noise}

    # --- data ----------------------------------------------------------------------------------------------
    def check(self, key: Key, chunk: Chunk) -> list[Group]:
        """The chunk as groups of equal-sized images; refuses what is not a grayscale image in [0, 1]."""
        s = self.streams[key]
        images = _as_images(key, chunk.samples, "image")
        n = sum(len(g) for g in images)
        clean_given = chunk.extras.get("clean")
        cleans = _as_images(key, clean_given, "clean reference") if clean_given is not None else None
        names = chunk.extras.get("names")
        if names is not None and len(names) != n:
            raise StreamError(key, "names do not match the images", expected=f"{n} names", got=len(names))
        if chunk.start is not None and int(chunk.start) != s.count:
            raise StreamError(key, "chunk does not continue the stream", expected=f"start {s.count}",
                              got=f"start {chunk.start}")
        flat_clean = [c for g in cleans for c in g] if cleans is not None else None
        if flat_clean is not None and len(flat_clean) != n:
            raise StreamError(key, "clean references do not match the images", expected=f"{n} references",
                              got=len(flat_clean))
        groups: list[Group] = []
        i = 0
        for stack in images:
            ref = np.stack(flat_clean[i:i + len(stack)]) if flat_clean is not None else None
            if ref is not None and ref.shape != stack.shape:
                raise StreamError(key, "a clean reference differs in size from its image",
                                  expected=stack.shape[1:], got=ref.shape[1:])
            label = list(names[i:i + len(stack)]) if names is not None else [frame_name(s.count + i + j)
                                                                               for j in range(len(stack))]
            groups.append(Group(label, stack, ref))
            i += len(stack)
        return groups

    def frame(self, prepared: Mapping[Key, list[Group]]) -> ImageWork | SizedImageWork:
        units = []
        for key, groups in prepared.items():
            s = self.streams[key]
            for g in groups:
                noisy = g.images
                if s.add_noise is not None:  # the given images are the clean references
                    g = Group(g.names, g.images, g.images)
                    noise = s.rng.standard_normal(g.images.shape, dtype=np.float32)
                    noisy = np.clip(g.images + np.float32(s.add_noise) * noise, 0.0, 1.0)
                units += self._units(s, g, noisy)
        return self._work(units)

    def _units(self, s: _ImageStream, g: Group, noisy: np.ndarray) -> list[_Unit]:
        first = s.count
        s.count += len(noisy)
        if self.size.any_size and max(noisy.shape[1:]) <= self.hw[0]:  # at its own size, padded to the multiple
            return [_Unit(s, first, g, noisy, None, sizing.pad_to_multiple(noisy, self.size.multiple))]
        if noisy.shape[1:] == self.hw and not self.size.any_size:
            return [_Unit(s, first, g, noisy, None, noisy)]
        plan = sizing.plan(noisy.shape[1:], self.hw, resize=not self.size.any_size)
        out = []
        for j in range(len(noisy)):  # each planned image is its own unit (its tiles travel together)
            sub = Group(g.names[j:j + 1], g.images[j:j + 1], None if g.clean is None else g.clean[j:j + 1])
            out.append(_Unit(s, first + j, sub, noisy[j:j + 1], plan, sizing.to_model(noisy[j], plan)))
        return out

    def frame_end(self, keys: Iterable[Key]) -> ImageWork | SizedImageWork:
        return self._work([])

    def _work(self, units: list[_Unit]) -> ImageWork | SizedImageWork:
        if self.size.any_size:
            return _sized_work(units)
        if not units:
            return ImageWork(np.zeros((0, *self.hw), np.float32), [])
        inputs = units[0].tiles if len(units) == 1 else np.concatenate([u.tiles for u in units])
        return ImageWork(inputs, units)

    def judge(self, work: ImageWork | SizedImageWork, outputs: np.ndarray) -> dict[Key, list[Any]]:
        per_unit = _split_sized(work, outputs) if isinstance(work, SizedImageWork) else _split(work, outputs)
        events: dict[Key, list[Any]] = {}
        for u, out in zip(work.units, per_unit):
            if u.plan is not None:
                denoised = sizing.from_model(out, u.plan)[None]
            else:  # at the model's size, or an any-size model's padded input: cropped back
                denoised = np.ascontiguousarray(out[:, :u.noisy.shape[1], :u.noisy.shape[2]])
            events.setdefault(u.stream.key, []).extend(self._events(u, denoised))
        return events

    def _events(self, u: _Unit, denoised: np.ndarray) -> list[ImageEvent]:
        n = len(denoised)
        psnr: Sequence[float | None] = [None] * n
        psnr_noisy, ss, ss_noisy = psnr, psnr, psnr
        clean = u.group.clean
        if clean is not None:
            psnr, psnr_noisy = psnr_db(clean, denoised).tolist(), psnr_db(clean, u.noisy).tolist()
            if min(denoised.shape[1:]) >= SSIM_MIN_SIDE:
                ss, ss_noisy = ssim(clean, denoised).tolist(), ssim(clean, u.noisy).tolist()
        resized = u.plan is not None and u.plan.kind == "resize"
        tiled = u.plan is not None and u.plan.kind == "tiles"
        return [ImageEvent(u.stream.key, u.first + i, u.group.names[i], denoised[i], u.noisy[i],
                           None if clean is None else clean[i], psnr[i], psnr_noisy[i], ss[i], ss_noisy[i],
                           resized, tiled) for i in range(n)]


def _split(work: ImageWork, outputs: np.ndarray) -> list[np.ndarray]:
    """The model outputs of each unit of a fixed-size model's tick, in unit order."""
    out, offset = [], 0
    for u in work.units:
        out.append(outputs[offset:offset + len(u.tiles)])
        offset += len(u.tiles)
    return out


def _sized_work(units: list[_Unit]) -> SizedImageWork:
    """Units grouped by input shape (first appearance first), one model call per group."""
    shapes: dict[tuple[int, ...], list[int]] = {}
    for i, u in enumerate(units):
        shapes.setdefault(u.tiles.shape[1:], []).append(i)
    order = [i for members in shapes.values() for i in members]
    groups = [units[m[0]].tiles if len(m) == 1 else np.concatenate([units[i].tiles for i in m])
              for m in shapes.values()]
    return SizedImageWork(groups, units, order)


def _split_sized(work: SizedImageWork, flat: np.ndarray) -> list[np.ndarray]:
    """The pool's flattened outputs (group after group) back to each unit's (tiles, h, w), in unit order."""
    per_unit: list[np.ndarray] = [np.zeros(0, np.float32)] * len(work.units)
    offset = 0
    for i in work.order:
        tiles = work.units[i].tiles
        per_unit[i] = flat[offset:offset + tiles.size].reshape(tiles.shape)
        offset += tiles.size
    return per_unit


def _as_images(key: Key, value: Any, what: str) -> list[np.ndarray]:
    """(h, w), (n, h, w) or a list of (h, w) -> stacks of equal-sized consecutive images, float32, checked."""
    if isinstance(value, np.ndarray) and value.ndim == 3:
        stacks = [value]
    elif isinstance(value, np.ndarray) and value.ndim == 2:
        stacks = [value[None]]
    elif isinstance(value, (list, tuple)):
        runs: list[list[np.ndarray]] = []
        for item in value:
            a = np.asarray(item)
            if a.ndim != 2:
                raise StreamError(key, f"each {what} must be grayscale (h, w)", got=f"shape {a.shape}")
            if runs and runs[-1][-1].shape == a.shape:
                runs[-1].append(a)
            else:
                runs.append([a])
        stacks = [np.stack(run) for run in runs]
    else:
        shape = getattr(value, "shape", type(value).__name__)
        raise StreamError(key, f"{what}s must be (h, w), (n, h, w) or a list of (h, w) arrays", got=shape)
    out = []
    for s in stacks:
        a = np.asarray(s, dtype=np.float32)
        if a.size == 0 or min(a.shape[1:]) < 1:
            raise StreamError(key, f"empty {what}", got=f"shape {a.shape}")
        if not np.isfinite(a).all():
            raise StreamError(key, f"non-finite pixel (NaN or inf) in a {what}")
        lo, hi = float(a.min()), float(a.max())
        if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            raise StreamError(key, f"{what} pixels outside [0, 1] (scale 8-bit images by 1/255)",
                              expected="[0, 1]", got=f"[{lo:g}, {hi:g}]")
        out.append(a)
    return out
