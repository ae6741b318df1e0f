from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.events import Box, Frame
from appliance.vision import Perception, VisionSettings, build_perception
from appliance.vision.blazeface import (
    FULL_RANGE,
    SHORT_RANGE,
    BlazeFaceDetector,
    letterbox,
    ssd_anchors,
    weighted_nms,
)
from tests.derived_images import (
    ASTRONAUT_FACE,
    CAMERAMAN_FACE,
    FACE_FREE,
    Image,
    astronaut,
    cameraman,
    cropped,
    fixture,
    head,
    lit,
    mirrored,
    on_canvas,
    scaled,
    tiled,
)


def detect(perception: Perception, image: Image) -> list[Box]:
    detector = perception.detector
    assert isinstance(detector, BlazeFaceDetector)
    return [face.box for face in detector.detect(image)]


def pixel_box(face: tuple[int, int, int, int], width: int, height: int) -> Box:
    x, y, w, h = face
    return Box(x / width, y / height, w / width, h / height)


def test_anchor_grids_match_the_models() -> None:
    short = ssd_anchors(SHORT_RANGE)
    full = ssd_anchors(FULL_RANGE)
    assert short.shape == (896, 2)
    assert full.shape == (2304, 2)
    # Stride 8 on 128 px: a 16x16 grid, two anchors per cell, the first at the cell centre.
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[1], short[0])
    # Then the 8x8 stride-16 grid with six anchors per cell.
    np.testing.assert_allclose(short[512], [0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(full[-1], [47.5 / 48, 47.5 / 48])
    assert ((short > 0) & (short < 1)).all()


def test_letterbox_keeps_the_aspect_ratio() -> None:
    wide = np.full((100, 400, 3), 200, dtype=np.uint8)
    square, placement = letterbox(wide, 128)
    assert square.shape == (128, 128, 3)
    assert placement.width == pytest.approx(1.0)
    assert placement.height == pytest.approx(32 / 128)
    assert placement.top == pytest.approx(48 / 128)
    # Black bars above and below, the picture in between.
    assert square[:48].max() == 0 and square[80:].max() == 0
    assert square[48:80].min() == 200


def test_weighted_nms_merges_overlaps_by_score() -> None:
    boxes = np.array(
        [[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]], dtype=np.float32
    )
    points = np.zeros((3, 6, 2), dtype=np.float32)
    points[1] += 0.5
    scores = np.array([0.9, 0.3, 0.7], dtype=np.float32)
    kept = weighted_nms(boxes, points, scores, iou_threshold=0.3)
    assert len(kept) == 2
    (box, kps, score), (other, _, other_score) = kept
    assert score == pytest.approx(0.9)  # the best score, not the mean
    np.testing.assert_allclose(box, [0.1 + 0.02 * 0.25, 0.1, 0.3 + 0.02 * 0.25, 0.3], atol=1e-6)
    np.testing.assert_allclose(kps, 0.5 * 0.25, atol=1e-6)
    np.testing.assert_allclose(other, boxes[2])
    assert other_score == pytest.approx(0.7)


def test_weighted_nms_keeps_separate_faces_apart() -> None:
    boxes = np.array([[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.7, 0.7]], dtype=np.float32)
    kept = weighted_nms(boxes, np.zeros((2, 6, 2), np.float32), np.array([0.6, 0.8]), 0.3)
    assert [round(score, 2) for _, _, score in kept] == [0.8, 0.6]


def test_finds_the_astronaut_where_she_is(perception: Perception) -> None:
    faces = perception.detector.detect(astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    assert face.box.iou(pixel_box(ASTRONAUT_FACE, 512, 512)) > 0.8
    # Landmarks: her right eye appears left of her left eye, both in the box's upper half,
    # the mouth below the nose.
    right_eye, left_eye, nose, mouth = face.keypoints[:4]
    assert right_eye[0] < left_eye[0]
    for x, y in (right_eye, left_eye):
        assert face.box.x < x < face.box.x + face.box.w
        assert face.box.y < y < face.box.y + face.box.h / 2
    assert mouth[1] > nose[1]


def test_finds_the_cameraman(perception: Perception) -> None:
    boxes = detect(perception, cameraman())
    assert len(boxes) == 1
    assert boxes[0].iou(pixel_box(CAMERAMAN_FACE, 512, 512)) > 0.7


def test_a_mirrored_picture_gives_a_mirrored_box(perception: Perception) -> None:
    (box,) = detect(perception, astronaut())
    (flipped,) = detect(perception, mirrored(astronaut()))
    expected = Box(1 - box.x - box.w, box.y, box.w, box.h)
    assert flipped.iou(expected) > 0.85


@pytest.mark.parametrize("factor", [0.6, 1.0, 1.7])
def test_the_box_follows_the_face_at_any_scale(perception: Perception, factor: float) -> None:
    (box,) = detect(perception, scaled(astronaut(), factor))
    assert box.iou(pixel_box(ASTRONAUT_FACE, 512, 512)) > 0.75


@pytest.mark.parametrize(
    ("gain", "offset"), [(0.45, 0), (1.3, 40), (0.6, 60)], ids=["dim", "bright", "washed-out"]
)
def test_faces_survive_poor_lighting(perception: Perception, gain: float, offset: float) -> None:
    (box,) = detect(perception, lit(astronaut(), gain, offset))
    assert box.iou(pixel_box(ASTRONAUT_FACE, 512, 512)) > 0.75


def test_a_crop_moves_the_box(perception: Perception) -> None:
    x0, y0 = 60, 20
    image = cropped(astronaut(), x0, y0, 320, 300)
    (box,) = detect(perception, image)
    x, y, w, h = ASTRONAUT_FACE
    assert box.iou(pixel_box((x - x0, y - y0, w, h), 320, 300)) > 0.75


@pytest.mark.parametrize(("width", "height", "x", "y"), [(900, 300, 550, 0), (300, 900, 0, 560)])
def test_letterboxing_is_undone(
    perception: Perception, width: int, height: int, x: int, y: int
) -> None:
    """A face far off-centre in a very wide or very tall frame lands where it is."""
    portrait = head(astronaut(), ASTRONAUT_FACE)  # the face in the middle, 94/207 of the side
    side = 300
    image = on_canvas(scaled(portrait, side / portrait.shape[0]), width, height, x, y)
    (box,) = detect(perception, image)
    face = round(side * ASTRONAUT_FACE[2] / portrait.shape[0])
    offset = (side - face) // 2
    assert box.iou(pixel_box((x + offset, y + offset, face, face), width, height)) > 0.75


@pytest.mark.parametrize("count", [2, 3, 4])
def test_several_faces_in_one_frame(perception: Perception, count: int) -> None:
    heads = [head(astronaut(), ASTRONAUT_FACE, 1.6), head(cameraman(), CAMERAMAN_FACE, 1.6)]
    heads += [mirrored(h) for h in heads]
    boxes = detect(perception, tiled(heads[:count], 640, 480))
    assert len(boxes) == count
    # One face per grid cell.
    cells = {(int(b.center[0] * 2), int(b.center[1] * (1 if count <= 2 else 2))) for b in boxes}
    assert len(cells) == count


def test_max_faces_keeps_the_largest(models_dir: Path) -> None:
    portrait = head(astronaut(), ASTRONAUT_FACE, 1.6)
    frame = np.full((480, 640, 3), 90, dtype=np.uint8)
    for side, (x, y) in ((280, (0, 0)), (230, (390, 10)), (180, (300, 290))):
        frame[y : y + side, x : x + side] = scaled(portrait, side / portrait.shape[0])
    everyone = detect(build_perception(VisionSettings(max_faces=8), models_dir), frame)
    assert len(everyone) == 3
    assert [b.area for b in everyone] == sorted((b.area for b in everyone), reverse=True)
    kept = detect(build_perception(VisionSettings(max_faces=2), models_dir), frame)
    assert len(kept) == 2
    for mine, theirs in zip(kept, everyone[:2], strict=True):
        assert mine.iou(theirs) > 0.99
    assert all(b.center[1] < 0.5 for b in kept)  # the smallest face, at the bottom, is dropped


@pytest.mark.parametrize("name", FACE_FREE)
def test_no_face_where_there_is_none(
    perception: Perception, full_range_perception: Perception, name: str
) -> None:
    image = fixture(name)
    assert detect(perception, image) == []
    assert detect(full_range_perception, image) == []


def test_full_range_finds_faces_too_far_for_short_range(
    perception: Perception, full_range_perception: Perception
) -> None:
    far = on_canvas(scaled(astronaut(), 0.4), 640, 480, 220, 120)
    assert detect(perception, far) == []
    (box,) = detect(full_range_perception, far)
    x, y, w, h = ASTRONAUT_FACE
    expected = (220 + round(x * 0.4), 120 + round(y * 0.4), round(w * 0.4), round(h * 0.4))
    # Full-range boxes run a little larger than short-range ones: same place, looser fit.
    assert box.iou(pixel_box(expected, 640, 480)) > 0.5
    assert abs(box.center[0] - (expected[0] + expected[2] / 2) / 640) < 0.01
    assert abs(box.center[1] - (expected[1] + expected[3] / 2) / 480) < 0.02


def test_a_blank_frame_has_no_face(perception: Perception) -> None:
    for value in (0, 128, 255):
        blank = np.full((480, 640, 3), value, dtype=np.uint8)
        assert perception.read(Frame(blank, 0.0, 0, "test")) == []
