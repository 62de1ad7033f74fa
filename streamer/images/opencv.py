"""OpenCV, for image files, video, cameras and resizing: the `images` extra (the base install has no OpenCV)."""

from __future__ import annotations

from typing import Any

from streamer.core.errors import need


def opencv() -> Any:
    return need("cv2", "image files, video, cameras and resizing", "images")
