"""Expressions from Azure OpenAI, when the local model is missing or failing.

Only with ``azure.vision_fallback = true``: otherwise frames never leave the device. Even
then only a small face crop is sent (96x96 JPEG), never the frame, at most
``vision_max_per_minute`` times a minute. The deployment is asked for the same seven
probabilities as the local model, as JSON (structured output). Between calls each face
keeps its last answer; a face never answered reads neutral.

(Azure Face would be the obvious service, but Microsoft retired its emotion attributes
in June 2023.)
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from appliance.azure_openai.resilience import AzureCaller, AzureUnavailableError, make_client
from appliance.azure_openai.settings import AzureSettings
from appliance.events import EMOTION_LABELS, Box, Emotions
from appliance.vision.expression import ExpressionModel

log = logging.getLogger(__name__)

CROP_SIZE = 96
NEUTRAL = Emotions(neutral=1.0)
SCHEMA = {
    "type": "object",
    "properties": {label: {"type": "number"} for label in EMOTION_LABELS},
    "required": list(EMOTION_LABELS),
    "additionalProperties": False,
}
PROMPT = (
    "Rate the facial expression of the face in this picture. Give the probability of "
    "each of: angry, disgust, fear, happy, sad, surprise, neutral. They sum to 1."
)


MIN_CROP_PX = 8
"""A crop smaller than this on a side holds no face to read: nothing is sent."""


def face_jpeg(image: NDArray[np.uint8], box: Box, margin: float = 0.25) -> bytes | None:
    """A CROP_SIZE square colour crop around the face, as JPEG bytes; None when the box
    leaves no crop worth sending (off the frame, or a few pixels): never the frame."""
    height, width = image.shape[:2]
    cx, cy = box.center
    side = max(box.w * width, box.h * height) * (1 + margin)
    x0, y0 = max(0, round(cx * width - side / 2)), max(0, round(cy * height - side / 2))
    x1, y1 = min(width, round(cx * width + side / 2)), min(height, round(cy * height + side / 2))
    if x1 - x0 < MIN_CROP_PX or y1 - y0 < MIN_CROP_PX:
        return None
    crop = image[y0:y1, x0:x1]
    small = cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    if not ok:
        raise ValueError("could not encode the face crop")
    return bytes(data)


def parse_emotions(content: str | None) -> Emotions:
    """The model's JSON answer as Emotions (clipped, normalized); ValueError if unusable."""
    values = json.loads(content or "")
    if not isinstance(values, dict):
        raise ValueError("expected a JSON object of probabilities")
    row = np.array([float(values.get(label, 0.0)) for label in EMOTION_LABELS])
    row = np.clip(np.nan_to_num(row, nan=0.0), 0.0, None)
    total = float(row.sum())
    if total <= 0:
        raise ValueError("all probabilities are zero")
    return Emotions.from_values(row / total)


class AzureExpressionModel:
    def __init__(
        self,
        settings: AzureSettings,
        caller: AzureCaller | None = None,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.deployment = settings.vision_deployment or settings.deployment
        self.caller = caller or AzureCaller(settings)
        self._client = client or make_client(settings)
        self._clock = clock
        self.min_interval = 60.0 / settings.vision_max_per_minute
        self._last_call = -float("inf")
        self._known: list[tuple[Box, Emotions]] = []
        self.calls = 0

    def _remembered(self, box: Box) -> Emotions:
        best = max(self._known, key=lambda known: known[0].iou(box), default=None)
        if best is not None and best[0].iou(box) > 0.3:
            return best[1]
        return NEUTRAL

    def _ask(self, jpeg: bytes) -> Emotions:
        url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()

        def call() -> Emotions:
            response = self._client.chat.completions.create(
                model=self.deployment,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": PROMPT},
                            {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
                        ],
                    }
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "expression", "strict": True, "schema": SCHEMA},
                },
                max_tokens=120,
                temperature=0,
            )
            # Inside the call: a malformed answer counts as a failure of the call.
            return parse_emotions(response.choices[0].message.content)

        return self.caller.call("expression", call)

    def classify(self, image: NDArray[np.uint8], boxes: Sequence[Box]) -> list[Emotions]:
        results = []
        for box in boxes:
            emotions = self._remembered(box)
            now = self._clock()
            if now - self._last_call >= self.min_interval and self.caller.unavailable_for() == 0:
                jpeg = face_jpeg(image, box)
                if jpeg is None:  # no face crop to send: nothing is sent
                    results.append(emotions)
                    continue
                self._last_call = now
                self.calls += 1
                try:
                    emotions = self._ask(jpeg)
                except AzureUnavailableError as exc:
                    log.warning("Azure expression reading failed: %s", exc.problem)
            results.append(emotions)
        self._known = list(zip(boxes, results, strict=True))
        return results


class FallbackExpressionModel:
    """The local model while it works; Azure (when allowed) while it does not. The local
    model is rebuilt and tried again every ``retry_s``."""

    def __init__(
        self,
        make_local: Callable[[], ExpressionModel],
        azure: AzureExpressionModel | None,
        retry_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_local = make_local
        self.azure = azure
        self.retry_s = retry_s
        self._clock = clock
        self.local: ExpressionModel | None = None
        self.local_problem: str | None = None
        self._retry_at = 0.0
        self._try_local()

    @property
    def in_use(self) -> str:
        return "local" if self.local is not None else "azure" if self.azure else "none"

    def _try_local(self) -> None:
        try:
            self.local = self._make_local()
        except Exception as exc:  # a missing/corrupt file, a runtime that will not load
            self._local_failed(exc)
        else:
            if self.local_problem:
                log.info("local expression model is back")
            self.local_problem = None

    def _local_failed(self, exc: Exception) -> None:
        self.local = None
        self.local_problem = str(exc)
        self._retry_at = self._clock() + self.retry_s
        log.warning(
            "local expression model unavailable (%s)%s",
            exc,
            "; using Azure" if self.azure else "",
        )

    def classify(self, image: NDArray[np.uint8], boxes: Sequence[Box]) -> list[Emotions]:
        if self.local is None and self._clock() >= self._retry_at:
            self._try_local()
        if self.local is not None:
            try:
                return self.local.classify(image, boxes)
            except Exception as exc:
                self._local_failed(exc)
        if self.azure is not None:
            return self.azure.classify(image, boxes)
        raise RuntimeError(f"no expression model: {self.local_problem}")
