"""Denoising autoencoders (dense or convolutional) for 32x32 grayscale images, and their training recipes.

`default` is the shipped model: a dense autoencoder on the flattened image whose logits get local
corrections from small MLPs over 4-row strips (two tilings), MatMuls only, quantised to int8 after export.
`unet` is a small conv U-Net of about the same quality, 3-4x slower in onnxruntime (its convolutions run at
a third of the MatMuls' speed per multiply-add). `lecture` reproduces the lecture's model; `fast` is a
smaller dense model, faster but below the quality goals. Every choice was made on the validation split
(see `export/train_images.py`), never on the test images.

Models take (batch, 32, 32) float32 in [0, 1] and return (batch, 32, 32): Reshape layers at both ends add
and drop the channel axis, so the runtime passes plain (n, 32, 32) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SIDE = 32  # pixels
STRIP_ROWS = 4  # rows per strip of the dense models' local path


@dataclass(frozen=True)
class Preset:
    """Architecture plus training recipe of one image denoising autoencoder."""

    name: str  # model name in the metadata
    loss: str  # "binary_crossentropy" or "mse"
    epochs: int
    batch_size: int
    # convolutional models
    encoder: tuple[int, ...] = ()  # Conv2D widths, 3x3, stride 2, same, LeakyReLU
    decoder: tuple[int, ...] = ()  # Conv2DTranspose widths, 3x3, stride 2, same, ReLU
    skips: bool = False  # concatenate each decoder stage with the encoder map (or the input) of the same size
    head_kernel: int = 1  # kernel of the final Conv2D(1, sigmoid)
    # dense models (used when `dense` is not empty; the conv fields are then ignored)
    dense: tuple[int, ...] = ()  # hidden Dense widths (ReLU) on the flattened image, then Dense(side * side)
    input_skip: int = 0  # > 0: a linear Conv2D(1, input_skip x input_skip) of the input is added to the logits
    strips: int = 0  # > 0: hidden width of the per-strip MLPs added to the logits (see `_strip_mlp`)
    int8: bool = False  # ship onnxruntime's dynamic int8 quantisation of the MatMuls (figures re-measured)
    learning_rate: float = 1e-3
    fresh_noise: bool = False  # new noise every epoch (augmentation) instead of one fixed noisy copy
    lr_decay: bool = False  # cosine decay of the learning rate to 5 % over the run
    # any-size models (fully convolutional, noise-level blind; see `build_any_size`)
    any_size: bool = False  # (batch, H, W) for any H, W divisible by SIZE_MULTIPLE
    widths: tuple[int, ...] = ()  # channels at full, 1/2 and 1/4 resolution
    sigma_range: tuple[float, float] = (0.0, 0.0)  # training noise: sigma uniform in this range, per image


PRESETS: dict[str, Preset] = {
    "lecture": Preset(name="denoise-lecture", encoder=(16, 24, 32), decoder=(16, 8, 4), skips=False,
                      head_kernel=1, loss="binary_crossentropy", epochs=30, batch_size=1024),
    # Dense 1024-768-768-1024 plus two tilings of per-strip MLPs (hidden 128), int8 MatMuls: the fastest
    # candidate meeting both targets on validation (22.05 dB / SSIM 0.887 at sigma 0.5 after 50 epochs; final
    # validation loss 0.11876 against the U-Net's 0.11883). See benchmarks/results_images.md.
    # The shipped default: a fully convolutional U-Net for any size divisible by 4 (native 28x28 digits included),
    # trained blind to the noise level (sigma uniform in [0.05, 0.8] per image) on native 28x28 digits and on
    # 32x32 resized ones, noise added at each image's own size. See export/train_blind.py.
    "default": Preset(name="denoise", widths=(16, 32, 48), loss="binary_crossentropy", epochs=14, batch_size=128,
                      learning_rate=2e-3, fresh_noise=True, lr_decay=True, any_size=True,
                      sigma_range=(0.05, 0.8)),
    "dense": Preset(name="denoise-dense", dense=(768, 768), strips=128, loss="binary_crossentropy", epochs=50,
                      batch_size=256, learning_rate=2e-3, fresh_noise=True, lr_decay=True, int8=True),
    # BCE, not MSE: with MSE the sigmoid head collapsed to an all-black output within 3 epochs (validation
    # PSNR 10.4 dB), while BCE reached 20.5 dB after 3 epochs (validation, sigma 0.5). 40 epochs, not 24:
    # final validation loss 0.11883 against 0.11963.
    "unet": Preset(name="denoise-unet", encoder=(16, 32, 32), decoder=(32, 16, 8), skips=True, head_kernel=3,
                   loss="binary_crossentropy", epochs=40, batch_size=128, learning_rate=2e-3,
                   fresh_noise=True, lr_decay=True),
    # About 2x the lecture model's images/s in onnxruntime (the U-Net: 0.4x) but below the quality targets:
    # validation 21.27 dB / SSIM 0.864 at sigma 0.5 after 30 epochs (U-Net 22.05 / 0.891 on test). See the
    # candidates in benchmarks/results_images.md.
    "fast": Preset(name="denoise-fast", dense=(512, 512), loss="binary_crossentropy", epochs=30, batch_size=256,
                   learning_rate=2e-3, fresh_noise=True, lr_decay=True),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown image preset {name!r}; choose from {sorted(PRESETS)}") from None


def build_autoencoder(preset: Preset, steps_per_epoch: int = 1, side: int = SIDE) -> Any:
    """Compiled Keras model (None, side, side) -> (None, side, side), outputs in [0, 1] (any-size presets:
    (None, None, None) -> the same shape)."""
    import keras

    inputs = keras.Input(shape=(None, None) if preset.any_size else (side, side), name="image")
    if preset.any_size:
        outputs = _any_size_unet(preset, inputs)
    elif preset.dense:
        outputs = _dense(preset, inputs, side)
    else:
        outputs = _conv(preset, inputs, side)
    model = keras.Model(inputs, outputs, name=preset.name.replace("-", "_"))
    rate: Any = preset.learning_rate
    if preset.lr_decay:
        rate = keras.optimizers.schedules.CosineDecay(preset.learning_rate, preset.epochs * steps_per_epoch,
                                                      alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=preset.loss)
    return model


def _dense(preset: Preset, inputs: Any, side: int) -> Any:
    """Dense autoencoder on the flattened image (MatMul only, several times cheaper per MAC than the convs in
    onnxruntime), optionally with a small linear conv of the input added to the logits (local detail)."""
    from keras import layers

    x = layers.Reshape((side * side,))(inputs)
    for width in preset.dense:
        x = layers.Dense(width, activation="relu")(x)
    logits = layers.Dense(side * side)(x)
    if preset.strips:
        for offset in (False, True):
            logits = layers.Add()([logits, _strip_mlp(inputs, preset.strips, side, offset)])
    if preset.input_skip:
        local = layers.Conv2D(1, preset.input_skip, padding="same")(layers.Reshape((side, side, 1))(inputs))
        logits = layers.Add()([logits, layers.Reshape((side * side,))(local)])
    return layers.Reshape((side, side), name="denoised")(layers.Activation("sigmoid")(logits))


def _strip_mlp(inputs: Any, hidden: int, side: int, offset: bool) -> Any:
    """Local detail for the dense model: one small MLP shared by all strips of STRIP_ROWS full rows.

    In row-major order a strip is a plain reshape, so the path is two MatMuls with no transposes (which cost
    onnxruntime more than the MatMuls themselves). With `offset` the strips start half a strip lower (zero rows
    padded above and below, cropped after), so every row boundary sits inside some strip.
    """
    from keras import layers

    rows = STRIP_ROWS
    x = inputs
    n = side // rows
    if offset:
        x = layers.ZeroPadding1D((rows // 2, rows // 2))(x)
        n += 1
    x = layers.Reshape((n, rows * side))(x)
    x = layers.Dense(hidden, activation="relu")(x)
    x = layers.Reshape((n * rows, side))(layers.Dense(rows * side)(x))
    if offset:
        x = layers.Cropping1D((rows // 2, rows // 2))(x)
    return layers.Reshape((side * side,))(x)


def _conv(preset: Preset, inputs: Any, side: int) -> Any:
    from keras import layers

    x = layers.Reshape((side, side, 1))(inputs)
    maps = [x]  # same-size maps for the skip connections, finest first
    for width in preset.encoder:
        x = layers.LeakyReLU()(layers.Conv2D(width, 3, strides=2, padding="same")(x))
        maps.append(x)
    maps.pop()  # the bottleneck itself
    for width in preset.decoder:
        x = layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")(x)
        if preset.skips and maps:
            x = layers.Concatenate()([x, maps.pop()])
    x = layers.Conv2D(1, preset.head_kernel, padding="same", activation="sigmoid")(x)
    return layers.Reshape((side, side), name="denoised")(x)


SIZE_MULTIPLE = 4  # two stride-2 levels: an any-size model takes sides divisible by 4 (28 and 32 both are)


def _any_size_unet(preset: Preset, inputs: Any) -> Any:
    """Fully convolutional U-Net, two levels (widths c0, c1, c2 at full, 1/2, 1/4 resolution), 3x3 kernels,
    ReLU, skips by concatenation (the input itself joins the last one), sigmoid head: no layer knows the
    image size, so the exported graph takes (batch, H, W) for any H, W divisible by SIZE_MULTIPLE."""
    import keras
    from keras import layers

    c0, c1, c2 = preset.widths

    def conv(width: int, x: Any, strides: int = 1) -> Any:
        return layers.Conv2D(width, 3, strides=strides, padding="same", activation="relu")(x)

    def up(width: int, x: Any) -> Any:
        return layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")(x)

    x0 = layers.Lambda(lambda t: keras.ops.expand_dims(t, -1), name="add_channel")(inputs)
    f0 = conv(c0, x0)
    f1 = conv(c1, conv(c1, f0, strides=2))
    f2 = conv(c2, conv(c2, f1, strides=2))
    u1 = conv(c1, layers.Concatenate()([up(c1, f2), f1]))
    u0 = conv(c0, layers.Concatenate()([up(c0, u1), f0, x0]))
    out = layers.Conv2D(1, 3, padding="same", activation="sigmoid")(u0)
    return layers.Lambda(lambda t: keras.ops.squeeze(t, -1), name="denoised")(out)


def macs(model: Any, side: int | None = None) -> int:
    """Multiply-accumulates per image of the Dense, Conv2D and Conv2DTranspose layers (the model's cost); an
    any-size model is counted at `side` x `side`."""
    import keras

    if side is not None and model.input_shape[1] is None:
        return _macs_any_size(model, side)
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):  # a Dense on (strips, features) runs once per strip
            total += int(np.prod(layer.input.shape[1:-1] or (1,))) * layer.input.shape[-1] * layer.units
        elif isinstance(layer, keras.layers.Conv2DTranspose):  # each input pixel scatters one kernel
            _, h, w, c_in = layer.input.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * c_in * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * layer.input.shape[-1] * c_out
    return int(total)



def _macs_any_size(model: Any, side: int) -> int:
    """MACs per side x side image of an any-size model: those of the same architecture built for that size."""
    import keras

    inputs = keras.Input(shape=(side, side))
    return macs(keras.Model(inputs, _any_size_unet(_preset_of(model), inputs)))


def _preset_of(model: Any) -> Preset:
    return next(p for p in PRESETS.values() if p.any_size and p.name.replace("-", "_") == model.name)
