"""Caps on what input (files, options, model metadata) may ask of the engine, in one place.

Each bounds memory or work that would otherwise grow with a number read from outside: a corrupt header's
sampling rate, an image's declared size. A value past a cap is refused with one line naming it; the caps
that real data can reach have an option to raise them (see the README's "Bad input" table).
"""

from __future__ import annotations

MAX_FS = 100_000.0  # Hz: above any ECG recorder's or audio file's rate here: a corrupt header or a typo
MAX_IMAGE_PIXELS = 1 << 24  # pixels in one image (4096 x 4096) unless --max-pixels raises it
MAX_PIXELS_OPTION = 1 << 28  # what --max-pixels may raise it to (OpenCV's decoders are held to this too)
MAX_IMAGE_FILE_BYTES = 1 << 30  # an image file larger than this is not read at all
MAX_ARRAY_PIXELS = 1 << 28  # pixels in all the images of one array file (.npz, .npy, IDX) together: 1 GiB as float32
BLOCK_PIXELS = 1 << 24  # a block of images from a folder holds at most this many pixels (or one image)
MAX_CALL_VALUES = 1 << 18  # input values per model call: a larger batch is split (bounds the activations' memory)
