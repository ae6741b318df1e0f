"""One object that turns a Frame into FaceReadings."""

from __future__ import annotations

import time
from dataclasses import dataclass

from appliance.events import FaceReading, Frame
from appliance.vision.blazeface import FaceDetector
from appliance.vision.expression import ExpressionModel


@dataclass(slots=True)
class StageTimings:
    """Milliseconds spent in each stage on the last frame."""

    detect_ms: float = 0.0
    classify_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.detect_ms + self.classify_ms


class Perception:
    """Not thread-safe (LiteRT interpreters are not): owned by one perception thread."""

    def __init__(self, detector: FaceDetector, expressions: ExpressionModel) -> None:
        self.detector = detector
        self.expressions = expressions
        self.timings = StageTimings()

    def read(self, frame: Frame) -> list[FaceReading]:
        started = time.perf_counter()
        faces = self.detector.detect(frame.image)
        detected = time.perf_counter()
        emotions = self.expressions.classify(frame.image, [face.box for face in faces])
        classified = time.perf_counter()
        self.timings = StageTimings(
            detect_ms=(detected - started) * 1000, classify_ms=(classified - detected) * 1000
        )
        return [
            FaceReading(
                box=face.box,
                score=face.score,
                emotions=emotion,
                t=frame.t,
                frame_seq=frame.seq,
                keypoints=face.keypoints,
            )
            for face, emotion in zip(faces, emotions, strict=True)
        ]
