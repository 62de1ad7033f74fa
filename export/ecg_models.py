"""Dense autoencoders for 140-sample ECG beats, and their training recipes (presets).

`lecture` reproduces TensorFlow's "Intro to Autoencoders" anomaly detector. `default` is the shipped
model; every choice in it was made on a validation part of the training split, never on the test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BEAT_LENGTH = 140


@dataclass(frozen=True)
class Preset:
    """Architecture plus training recipe of one ECG autoencoder."""

    name: str  # model name in the metadata
    encoder: tuple[int, ...]  # Dense widths, relu
    decoder: tuple[int, ...]  # Dense widths, relu; a Dense(140, sigmoid) output follows
    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    loss: str = "mae"
    # Fraction of the training split held out (stratified) for early stopping and the threshold;
    # 0 = train on all training normals and set the threshold on them, as the lecture does.
    validation_fraction: float = 0.0
    patience: int | None = None  # early stopping on validation-normal loss; None = fixed epochs
    # "mean_std": lecture rule, mean + 1 std of the training normals' scores.
    # "max_f1_percentile": the percentile of validation-normal scores that maximises F1 on the
    # validation part (normals and anomalies of the training split).
    threshold: str = "mean_std"


PRESETS: dict[str, Preset] = {
    "lecture": Preset(name="ecg5000-lecture", encoder=(32, 16, 8), decoder=(16, 32), epochs=20,
                      batch_size=512),
    # Wider, with a 16-wide bottleneck, small batches (more updates per epoch) and long training with
    # early stopping: the lecture's 20 epochs x 4 batches is far from converged.
    "default": Preset(name="ecg5000", encoder=(128, 64, 16), decoder=(64, 128), epochs=300,
                      batch_size=64, validation_fraction=0.2, patience=30,
                      threshold="max_f1_percentile"),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown ECG preset {name!r}; choose from {sorted(PRESETS)}") from None


def build_autoencoder(preset: Preset, length: int = BEAT_LENGTH) -> Any:
    """Compiled Keras model (None, length) -> (None, length); outputs in [0, 1] like min-max inputs."""
    import keras

    inputs = keras.Input(shape=(length,), name="beat")
    x = inputs
    for width in (*preset.encoder, *preset.decoder):
        x = keras.layers.Dense(width, activation="relu")(x)
    outputs = keras.layers.Dense(length, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name=preset.name.replace("-", "_"))
    model.compile(optimizer=keras.optimizers.Adam(preset.learning_rate), loss=preset.loss)
    return model
