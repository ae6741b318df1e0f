from __future__ import annotations

import numpy as np
import pytest

from appliance.events import EMOTION_LABELS, Box, Frame
from appliance.vision import Perception
from appliance.vision.expression import FerExpressionModel, square_face_crop
from tests.derived_images import (
    ASTRONAUT_FACE,
    CAMERAMAN_FACE,
    astronaut,
    cameraman,
    head,
    lit,
    mirrored,
    scaled,
    tiled,
)


def fer(perception: Perception) -> FerExpressionModel:
    assert isinstance(perception.expressions, FerExpressionModel)
    return perception.expressions


def only_face(perception: Perception, image: np.ndarray) -> dict[str, float]:
    (reading,) = perception.read(Frame(image, 0.0, 0, "test"))
    return reading.emotions.as_dict()


@pytest.mark.parametrize(
    "variant",
    [
        astronaut,
        lambda: mirrored(astronaut()),
        lambda: scaled(astronaut(), 0.7),
        lambda: lit(astronaut(), 0.5),
        lambda: lit(astronaut(), 1.2, 30),
    ],
    ids=["as-is", "mirrored", "smaller", "dim", "bright"],
)
def test_the_smiling_astronaut_reads_happy(perception: Perception, variant: object) -> None:
    assert callable(variant)
    emotions = only_face(perception, variant())
    assert max(emotions, key=emotions.__getitem__) == "happy"
    assert emotions["happy"] > 0.9


def test_the_smiling_astronaut_reads_happy_with_full_range(
    full_range_perception: Perception,
) -> None:
    assert only_face(full_range_perception, astronaut())["happy"] > 0.9


def test_the_cameraman_does_not_read_happy(perception: Perception) -> None:
    emotions = only_face(perception, cameraman())
    assert emotions["happy"] < 0.1
    assert max(emotions, key=emotions.__getitem__) in {"sad", "neutral"}


def test_probabilities_cover_the_seven_labels(perception: Perception) -> None:
    emotions = only_face(perception, cameraman())
    assert tuple(emotions) == EMOTION_LABELS
    assert all(p >= 0 for p in emotions.values())
    assert sum(emotions.values()) == pytest.approx(1.0, abs=1e-4)


def test_a_batch_reads_like_single_faces(perception: Perception) -> None:
    model = fer(perception)
    crops = np.stack(
        [
            square_face_crop(astronaut(), Box(178 / 512, 81 / 512, 94 / 512, 94 / 512), 0.25),
            square_face_crop(cameraman(), Box(180 / 512, 121 / 512, 84 / 512, 84 / 512), 0.25),
            square_face_crop(mirrored(astronaut()), Box(0.4, 0.16, 0.18, 0.18), 0.25),
        ]
    )
    together = model.classify_crops(crops)
    alone = [model.classify_crops(crops[i : i + 1])[0] for i in range(len(crops))]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.as_tuple(), b.as_tuple(), atol=1e-4)


def test_batches_larger_than_the_limit_are_split(perception: Perception) -> None:
    model = fer(perception)
    crop = square_face_crop(astronaut(), Box(178 / 512, 81 / 512, 94 / 512, 94 / 512), 0.25)
    many = np.stack([crop] * (model.max_batch + 3))
    results = model.classify_crops(many)
    assert len(results) == model.max_batch + 3
    assert all(r.dominant == "happy" for r in results)


def test_every_face_in_a_frame_gets_its_own_reading(perception: Perception) -> None:
    frame = tiled(
        [head(astronaut(), ASTRONAUT_FACE, 1.6), head(cameraman(), CAMERAMAN_FACE, 1.6)], 640, 480
    )
    readings = perception.read(Frame(frame, 1.0, 7, "test"))
    assert len(readings) == 2
    left, right = sorted(readings, key=lambda r: r.box.x)
    assert left.emotions.dominant == "happy"
    assert right.emotions.happy < 0.1


def test_no_face_no_classification(perception: Perception) -> None:
    assert perception.expressions.classify(astronaut(), []) == []


def test_crop_is_square_gray_and_centred() -> None:
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    image[50:150, 100:200] = 255  # a white square "face"
    crop = square_face_crop(image, Box(100 / 300, 50 / 200, 100 / 300, 100 / 200), margin=0.0)
    assert crop.shape == (64, 64) and crop.dtype == np.uint8
    assert crop[4:-4, 4:-4].min() == 255


def test_crop_beyond_the_edge_repeats_the_edge() -> None:
    """A face half out of frame is padded with its own edge, not with black."""
    image = np.full((100, 100, 3), 200, dtype=np.uint8)
    crop = square_face_crop(image, Box(0.8, -0.1, 0.4, 0.4), margin=0.5)
    assert crop.shape == (64, 64)
    assert crop.min() == crop.max() == 200


def test_crop_of_a_box_outside_the_image_is_blank() -> None:
    image = np.full((100, 100, 3), 200, dtype=np.uint8)
    crop = square_face_crop(image, Box(2.0, 2.0, 0.1, 0.1), margin=0.2)
    assert crop.shape == (64, 64)
