"""Test images derived from the public-domain fixtures: flips, crops, scales, lighting,
several faces in one frame."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from appliance.camera.image_files import read_rgb

FIXTURES = Path(__file__).parent / "fixtures"
Image = NDArray[np.uint8]

# Where BlazeFace short-range puts the faces in the 512x512 originals (x, y, w, h in
# pixels), checked against the pictures by eye: the astronaut's face spans roughly
# x 175-270, y 80-175; the cameraman's x 180-265, y 120-205.
ASTRONAUT_FACE = (178, 81, 94, 94)
CAMERAMAN_FACE = (180, 121, 84, 84)
FACE_FREE = ("coffee.jpg", "rocket.jpg", "brick.jpg", "chelsea.jpg")


def fixture(name: str) -> Image:
    return read_rgb(FIXTURES / name)


def astronaut() -> Image:
    return fixture("astronaut.png")


def cameraman() -> Image:
    return fixture("camera.png")


def scaled(image: Image, factor: float) -> Image:
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def lit(image: Image, gain: float, offset: float = 0.0) -> Image:
    return np.asarray(cv2.convertScaleAbs(image, alpha=gain, beta=offset), dtype=np.uint8)


def mirrored(image: Image) -> Image:
    out: Image = np.ascontiguousarray(image[:, ::-1])
    return out


def cropped(image: Image, x: int, y: int, w: int, h: int) -> Image:
    out: Image = np.ascontiguousarray(image[y : y + h, x : x + w])
    return out


def head(image: Image, face: tuple[int, int, int, int], factor: float = 2.2) -> Image:
    """A square around a face, ``factor`` times its size, edge-replicated where it leaves
    the picture."""
    x, y, w, h = face
    side = round(max(w, h) * factor)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    padded = np.asarray(
        cv2.copyMakeBorder(image, side, side, side, side, cv2.BORDER_REPLICATE), dtype=np.uint8
    )
    return cropped(padded, x0 + side, y0 + side, side, side)


def tiled(images: list[Image], width: int, height: int, background: int = 90) -> Image:
    """The images laid out in a grid on a width x height frame, each fitted into its cell."""
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cell_w, cell_h = width // cols, height // rows
    canvas = np.full((height, width, 3), background, dtype=np.uint8)
    for index, image in enumerate(images):
        r, c = divmod(index, cols)
        side = min(cell_w, cell_h)
        fitted = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
        y0 = r * cell_h + (cell_h - side) // 2
        x0 = c * cell_w + (cell_w - side) // 2
        canvas[y0 : y0 + side, x0 : x0 + side] = fitted
    return canvas


def on_canvas(image: Image, width: int, height: int, x: int, y: int) -> Image:
    """The image pasted at (x, y) on a larger mid-grey canvas."""
    canvas = np.full((height, width, 3), 90, dtype=np.uint8)
    h, w = image.shape[:2]
    canvas[y : y + h, x : x + w] = image
    return canvas
