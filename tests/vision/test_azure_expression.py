"""Expressions from Azure when the local model is missing or failing, and only when the
user allowed it: against the local Azure OpenAI stand-in, through the official client."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.azure_openai.resilience import AzureCaller
from appliance.events import Box, Frame
from appliance.model_files import ModelFileError
from appliance.vision import VisionSettings, build_perception
from appliance.vision.azure_expression import (
    CROP_SIZE,
    AzureExpressionModel,
    FallbackExpressionModel,
    face_jpeg,
    parse_emotions,
)
from tests.derived_images import ASTRONAUT_FACE, astronaut
from tests.fake_azure import FakeAzure
from tests.story.conftest import azure_settings

FACE = Box(*(v / 512 for v in ASTRONAUT_FACE))


@pytest.fixture
def fake_azure() -> Iterator[FakeAzure]:
    server = FakeAzure().start()
    yield server
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def model(server: FakeAzure, clock: Clock | None = None, **changes: object) -> AzureExpressionModel:
    settings = azure_settings(server, vision_fallback=True, **changes)
    return AzureExpressionModel(
        settings, caller=AzureCaller(settings, jitter=lambda: 0.0), clock=clock or Clock()
    )


def test_asks_for_the_seven_probabilities_from_a_small_crop(fake_azure: FakeAzure) -> None:
    (emotions,) = model(fake_azure).classify(astronaut(), [FACE])
    assert emotions.dominant == "happy"
    assert sum(emotions.as_tuple()) == pytest.approx(1.0)
    (call,) = fake_azure.requests
    content = call.body["messages"][0]["content"]
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    jpeg = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (CROP_SIZE, CROP_SIZE, 3)
    # What was sent is the face (with its margin), not the whole frame made small.
    sent = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float32)
    x, y, w, h = ASTRONAUT_FACE
    side = round(max(w, h) * 1.25)  # the face and a quarter around it
    x0, y0 = x + w // 2 - side // 2, y + h // 2 - side // 2
    face = astronaut()[y0 : y0 + side, x0 : x0 + side]
    like_face = cv2.resize(face, (CROP_SIZE, CROP_SIZE)).astype(np.float32)
    like_frame = cv2.resize(astronaut(), (CROP_SIZE, CROP_SIZE)).astype(np.float32)
    to_face = float(np.abs(sent - like_face).mean())
    to_frame = float(np.abs(sent - like_frame).mean())
    assert to_face < 12 < to_frame, (to_face, to_frame)
    schema = call.body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert set(schema["schema"]["required"]) == {
        "angry",
        "disgust",
        "fear",
        "happy",
        "sad",
        "surprise",
        "neutral",
    }


def test_calls_are_rate_limited_and_faces_keep_their_last_answer(fake_azure: FakeAzure) -> None:
    clock = Clock()
    azure = model(fake_azure, clock, vision_max_per_minute=6)  # one call every 10 s
    first = azure.classify(astronaut(), [FACE])
    clock.now += 2
    moved = Box(FACE.x + 0.01, FACE.y, FACE.w, FACE.h)
    second = azure.classify(astronaut(), [moved])
    assert len(fake_azure.requests) == 1
    assert second == first
    clock.now += 10
    azure.classify(astronaut(), [moved])
    assert len(fake_azure.requests) == 2


def test_a_face_never_answered_reads_neutral(fake_azure: FakeAzure) -> None:
    fake_azure.queue("500", "500", "500")
    (emotions,) = model(fake_azure).classify(astronaut(), [FACE])
    assert emotions.dominant == "neutral"


def test_a_malformed_answer_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_emotions("not json")
    with pytest.raises(ValueError):
        parse_emotions(json.dumps({"happy": 0, "sad": 0}))
    assert parse_emotions(json.dumps({"sad": 2.0, "happy": -1})).dominant == "sad"


def test_the_local_model_is_used_while_it_works(fake_azure: FakeAzure, models_dir: Path) -> None:
    perception = build_perception(
        VisionSettings(), models_dir, azure=azure_settings(fake_azure, vision_fallback=True)
    )
    (reading,) = perception.read(Frame(astronaut(), 0.0, 0, "test"))
    assert reading.emotions.dominant == "happy"
    assert isinstance(perception.expressions, FallbackExpressionModel)
    assert perception.expressions.in_use == "local"
    assert fake_azure.requests == []


def test_a_missing_local_model_hands_over_to_azure_and_comes_back(
    fake_azure: FakeAzure, models_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models, ignore=shutil.ignore_patterns("*.gguf"))
    (models / "emotion_model_quantized.tflite").rename(tmp_path / "aside.tflite")
    perception = build_perception(
        VisionSettings(), models, azure=azure_settings(fake_azure, vision_fallback=True)
    )
    expressions = perception.expressions
    assert isinstance(expressions, FallbackExpressionModel)
    assert expressions.in_use == "azure"
    assert "emotion_model_quantized.tflite" in (expressions.local_problem or "")
    (reading,) = perception.read(Frame(astronaut(), 0.0, 0, "test"))
    assert reading.emotions.dominant == "happy"
    assert len(fake_azure.requests) == 1
    (tmp_path / "aside.tflite").rename(models / "emotion_model_quantized.tflite")
    expressions.retry_s = 0.0
    expressions._retry_at = 0.0
    perception.read(Frame(astronaut(), 0.0, 1, "test"))
    assert expressions.in_use == "local"
    assert len(fake_azure.requests) == 1


def test_without_consent_nothing_is_sent(
    fake_azure: FakeAzure, models_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models, ignore=shutil.ignore_patterns("*.gguf"))
    (models / "emotion_model_quantized.tflite").unlink()
    with pytest.raises(ModelFileError):
        build_perception(VisionSettings(), models, azure=azure_settings(fake_azure))
    assert fake_azure.requests == []


def test_a_local_model_that_fails_while_running_hands_over(fake_azure: FakeAzure) -> None:
    class Broken:
        def classify(self, image: object, boxes: object) -> list[object]:
            raise RuntimeError("interpreter crashed")

    fallback = FallbackExpressionModel(Broken, model(fake_azure), retry_s=3600)  # type: ignore[arg-type]
    assert fallback.in_use == "local"
    (emotions,) = fallback.classify(astronaut(), [FACE])
    assert emotions.dominant == "happy"
    assert fallback.in_use == "azure"
    assert fallback.local_problem == "interpreter crashed"


@pytest.mark.parametrize(
    "box",
    [
        Box(1.2, 1.2, 0.1, 0.1),  # off the frame: the crop would be empty
        Box(-0.5, 0.3, 0.05, 0.05),
        Box(0.5, 0.5, 0.0005, 0.0005),  # a pixel or two
    ],
)
def test_no_face_crop_means_nothing_is_sent_never_the_frame(
    fake_azure: FakeAzure, box: Box
) -> None:
    azure = model(fake_azure)
    (emotions,) = azure.classify(astronaut(), [box])
    assert fake_azure.requests == [] and azure.calls == 0
    assert emotions.dominant == "neutral"
    assert face_jpeg(astronaut(), box) is None
