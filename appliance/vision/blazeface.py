"""Face detection with BlazeFace (MediaPipe's short- and full-range .tflite models).

The post-processing MediaPipe runs in its calculator graph is done here in numpy:
SSD anchors, box and landmark decoding, weighted non-max suppression, and undoing the
letterbox that keeps the frame's aspect ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from appliance.events import Box

KEYPOINTS = 6


@dataclass(frozen=True, slots=True)
class DetectedFace:
    box: Box
    score: float
    keypoints: tuple[tuple[float, float], ...]


class FaceDetector(Protocol):
    def detect(self, image: NDArray[np.uint8]) -> list[DetectedFace]:
        """Faces in an RGB image, largest first."""
        ...


@dataclass(frozen=True, slots=True)
class BlazeFaceVariant:
    model: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]


# From MediaPipe's face_detection_{short,full}_range graphs (SsdAnchorsCalculator with
# fixed_anchor_size and interpolated_scale_aspect_ratio=1: two anchors per cell for
# each layer; short-range's three stride-16 layers share one grid, hence 6).
SHORT_RANGE = BlazeFaceVariant("blazeface-short-range", 128, (8, 16), (2, 6))
FULL_RANGE = BlazeFaceVariant("blazeface-full-range", 192, (4,), (1,))
VARIANTS = {"short-range": SHORT_RANGE, "full-range": FULL_RANGE}


def ssd_anchors(variant: BlazeFaceVariant) -> NDArray[np.float32]:
    """Anchor centres (x, y), normalized, in the order the model emits its rows."""
    rows = []
    for stride, per_cell in zip(variant.strides, variant.anchors_per_cell, strict=True):
        cells = math.ceil(variant.input_size / stride)
        ys, xs = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        rows.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(rows).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Where the image sits inside the square model input, in normalized input units."""

    left: float
    top: float
    width: float
    height: float


def letterbox(image: NDArray[np.uint8], size: int) -> tuple[NDArray[np.uint8], Letterbox]:
    """Scale to fit a size x size square keeping the aspect ratio; pad with black."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    left, top = (size - new_w) // 2, (size - new_h) // 2
    square = np.zeros((size, size, 3), dtype=np.uint8)
    square[top : top + new_h, left : left + new_w] = resized
    return square, Letterbox(left / size, top / size, new_w / size, new_h / size)


def iou_one_to_many(box: NDArray[np.float32], boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    """IoU of one (x0, y0, x1, y1) box with each row of ``boxes``."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    result: NDArray[np.float32] = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    return result


def weighted_nms(
    boxes: NDArray[np.float32],
    keypoints: NDArray[np.float32],
    scores: NDArray[np.float32],
    iou_threshold: float,
) -> list[tuple[NDArray[np.float32], NDArray[np.float32], float]]:
    """MediaPipe's weighted non-max suppression.

    Take the best remaining detection and every other one overlapping it by more than
    ``iou_threshold``; emit their score-weighted mean box and landmarks with the best
    score. Averaging the anchors that fired on one face steadies the box from frame to
    frame, which plain NMS (keep the best, drop the rest) does not.
    """
    remaining = np.argsort(-scores, kind="stable")
    kept = []
    while remaining.size:
        best = remaining[0]
        overlaps = iou_one_to_many(boxes[best], boxes[remaining])
        cluster = remaining[overlaps > iou_threshold]
        if cluster.size == 0:  # a degenerate (zero-area) box overlaps nothing, not even itself
            cluster = remaining[:1]
        weights = scores[cluster] / scores[cluster].sum()
        box = (boxes[cluster] * weights[:, None]).sum(axis=0)
        points = (keypoints[cluster] * weights[:, None, None]).sum(axis=0)
        kept.append((box, points, float(scores[best])))
        remaining = remaining[~np.isin(remaining, cluster)]
    return kept


class BlazeFaceDetector:
    def __init__(
        self,
        interpreter: Any,
        variant: BlazeFaceVariant,
        *,
        score_threshold: float = 0.5,
        nms_iou: float = 0.3,
        max_faces: int = 4,
    ) -> None:
        self._interpreter = interpreter
        self.variant = variant
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.max_faces = max_faces
        self._anchors = ssd_anchors(variant)
        self._input_index = interpreter.get_input_details()[0]["index"]
        outputs = {d["shape"][-1]: d["index"] for d in interpreter.get_output_details()}
        # Told apart by shape, not position: the two models name and order them differently.
        self._regressors_index = outputs[4 + 2 * KEYPOINTS]
        self._scores_index = outputs[1]
        expected = len(self._anchors)
        rows = int(interpreter.get_output_details()[0]["shape"][1])
        if rows != expected:
            raise ValueError(f"{variant.model}: model has {rows} anchors, expected {expected}")
        # Compare logits with the threshold's logit: no sigmoid over every anchor.
        clipped = min(max(score_threshold, 1e-6), 1 - 1e-6)
        self._logit_threshold = math.log(clipped / (1 - clipped))

    def detect(self, image: NDArray[np.uint8]) -> list[DetectedFace]:
        size = self.variant.input_size
        square, placement = letterbox(image, size)
        tensor = square.astype(np.float32)
        tensor *= 1.0 / 127.5
        tensor -= 1.0
        self._interpreter.set_tensor(self._input_index, tensor[None])
        self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._scores_index)[0, :, 0]
        candidates = np.nonzero(logits >= self._logit_threshold)[0]
        if candidates.size == 0:
            return []
        raw = self._interpreter.get_tensor(self._regressors_index)[0, candidates] / size
        anchors = self._anchors[candidates]
        scores = (1.0 / (1.0 + np.exp(-np.clip(logits[candidates], -100, 100)))).astype(np.float32)
        cx = raw[:, 0] + anchors[:, 0]
        cy = raw[:, 1] + anchors[:, 1]
        half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)
        points = raw[:, 4:].reshape(-1, KEYPOINTS, 2) + anchors[:, None, :]
        faces = []
        for box, kps, score in weighted_nms(boxes, points, scores, self.nms_iou):
            faces.append(self._to_image(box, kps, score, placement))
        faces.sort(key=lambda face: face.box.area, reverse=True)
        return faces[: self.max_faces]

    @staticmethod
    def _to_image(
        box: NDArray[np.float32], kps: NDArray[np.float32], score: float, placement: Letterbox
    ) -> DetectedFace:
        """From letterboxed model coordinates back to the original image, clipped to it."""
        xs = np.clip((box[[0, 2]] - placement.left) / placement.width, 0.0, 1.0)
        ys = np.clip((box[[1, 3]] - placement.top) / placement.height, 0.0, 1.0)
        points = tuple(
            (
                float(np.clip((x - placement.left) / placement.width, 0.0, 1.0)),
                float(np.clip((y - placement.top) / placement.height, 0.0, 1.0)),
            )
            for x, y in kps
        )
        return DetectedFace(
            box=Box(float(xs[0]), float(ys[0]), float(xs[1] - xs[0]), float(ys[1] - ys[0])),
            score=score,
            keypoints=points,
        )
