"""Still images on disk: which files count as images, and decoding them to RGB."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


class ImageReadError(ValueError):
    """A file that is missing, unreadable, or not an image."""


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def images_in(directory: Path) -> list[Path]:
    """Image files directly inside ``directory``, in name order."""
    return sorted(p for p in directory.iterdir() if p.is_file() and is_image_name(p))


def read_rgb(path: Path) -> NDArray[np.uint8]:
    """Decode an image file to H x W x 3 uint8 RGB (EXIF orientation applied)."""
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    # imdecode (not imread) so that a path with any characters works and errors are ours.
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ImageReadError(f"{path}: not an image OpenCV can decode")
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
