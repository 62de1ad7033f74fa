"""Caps on what input (files, options, model metadata) may ask of the engine, in one place.

Each bounds memory or work that would otherwise grow with a number read from outside: a corrupt header's
sampling rate, an image's declared size. A value past a cap is refused with one line naming it; the caps
that real data can reach have an option to raise them (see the README's "Bad input" table).
"""

from __future__ import annotations

MAX_FS = 100_000.0  # Hz: above any ECG recorder's or audio file's rate here: a corrupt header or a typo
