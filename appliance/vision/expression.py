"""Facial expression classification with the mini-Xception FER-2013 model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from appliance.events import Box, Emotions

FER_INPUT = 64


class ExpressionModel(Protocol):
    def classify(self, image: NDArray[np.uint8], boxes: Sequence[Box]) -> list[Emotions]:
        """Emotions for each face box of an RGB image, in the order of ``boxes``.
        Each model takes from the image the crop it needs."""
        ...


def square_face_crop(
    image: NDArray[np.uint8], box: Box, margin: float, size: int = FER_INPUT
) -> NDArray[np.uint8]:
    """A size x size grayscale crop centred on the face, its side the box's longer side
    grown by ``margin``. Parts outside the image repeat its edge rather than turn black,
    so a face at the border does not look half in shadow."""
    height, width = image.shape[:2]
    cx, cy = box.center
    side = max(box.w * width, box.h * height) * (1.0 + margin)
    side = max(side, 2.0)
    x0 = round(cx * width - side / 2)
    y0 = round(cy * height - side / 2)
    x1 = x0 + round(side)
    y1 = y0 + round(side)
    inner = image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    if inner.size == 0:
        return np.zeros((size, size), dtype=np.uint8)
    gray = cv2.cvtColor(np.ascontiguousarray(inner), cv2.COLOR_RGB2GRAY)
    pad = (max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0))
    if any(pad):
        gray = cv2.copyMakeBorder(gray, *pad, borderType=cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if gray.shape[0] > size else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(gray, (size, size), interpolation=interpolation), dtype=np.uint8)


class FerExpressionModel:
    """mini-Xception: 64x64 grayscale in [-1, 1] -> softmax over the seven labels.

    All faces of a frame go through one invoke. The model is built for a batch of one,
    so an interpreter is kept per batch size (the model is 93 kB): resizing one
    interpreter back and forth would reallocate its tensors on every change of face count.
    """

    def __init__(
        self,
        make_interpreter: Callable[[], Any],
        *,
        margin: float = 0.25,
        max_batch: int = 8,
    ) -> None:
        self._make_interpreter = make_interpreter
        self.margin = margin
        self.max_batch = max_batch
        self._by_batch: dict[int, Any] = {}
        self._interpreter_for(1)  # load now: a broken model fails at start, not on a face

    def _interpreter_for(self, batch: int) -> Any:
        interpreter = self._by_batch.get(batch)
        if interpreter is None:
            interpreter = self._make_interpreter()
            details = interpreter.get_input_details()[0]
            if int(details["shape"][0]) != batch:
                interpreter.resize_tensor_input(details["index"], [batch, FER_INPUT, FER_INPUT, 1])
                interpreter.allocate_tensors()
            self._by_batch[batch] = interpreter
        return interpreter

    def classify_crops(self, crops: NDArray[np.uint8]) -> list[Emotions]:
        """Emotions for a stack of 64x64 grayscale crops (N x 64 x 64 uint8)."""
        results: list[Emotions] = []
        for start in range(0, len(crops), self.max_batch):
            chunk = crops[start : start + self.max_batch]
            tensor = chunk.astype(np.float32)[..., None]
            tensor *= 1.0 / 127.5
            tensor -= 1.0
            interpreter = self._interpreter_for(len(chunk))
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
            interpreter.invoke()
            rows = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
            for row in np.clip(rows, 0.0, None):
                total = float(row.sum())
                results.append(Emotions.from_values(row / total if total > 0 else row))
        return results

    def classify(self, image: NDArray[np.uint8], boxes: Sequence[Box]) -> list[Emotions]:
        if not boxes:
            return []
        crops = np.stack([square_face_crop(image, box, self.margin) for box in boxes])
        return self.classify_crops(crops)
