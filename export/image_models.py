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


PRESETS: dict[str, Preset] = {
    "lecture": Preset(name="denoise-lecture", encoder=(16, 24, 32), decoder=(16, 8, 4), skips=False,
                      head_kernel=1, loss="binary_crossentropy", epochs=30, batch_size=1024),
    # Dense 1024-768-768-1024 plus two tilings of per-strip MLPs (hidden 128), int8 MatMuls: the fastest
    # candidate meeting both targets on validation (22.05 dB / SSIM 0.887 at sigma 0.5 after 50 epochs; final
    # validation loss 0.11876 against the U-Net's 0.11883). See benchmarks/results_images.md.
    "default": Preset(name="denoise", dense=(768, 768), strips=128, loss="binary_crossentropy", epochs=50,
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
    """Compiled Keras model (None, side, side) -> (None, side, side), outputs in [0, 1]."""
    import keras

    inputs = keras.Input(shape=(side, side), name="image")
    if preset.dense:
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


def macs(model: Any) -> int:
    """Multiply-accumulates per image of the Dense, Conv2D and Conv2DTranspose layers (the model's cost)."""
    import keras

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
