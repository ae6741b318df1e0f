"""``moodtale analyze``: faces and expressions in still images."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.camera.image_files import ImageReadError, images_in, read_rgb
from appliance.events import Frame
from appliance.vision import Perception


@dataclass(slots=True)
class ImageAnalysis:
    path: str
    faces: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "faces": self.faces, "error": self.error}


def expand_paths(paths: Iterable[Path]) -> Iterator[tuple[Path, str | None]]:
    """Each file to analyse, with an error already known for it (a directory with no
    images, a path that does not exist). Directories are walked in name order."""
    for path in paths:
        if path.is_dir():
            found = False
            for image in _images_below(path):
                found = True
                yield image, None
            if not found:
                yield path, "directory contains no image files"
        else:
            yield path, None


def _images_below(directory: Path) -> Iterator[Path]:
    yield from images_in(directory)
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        yield from _images_below(sub)


def analyze_image(perception: Perception, path: Path, seq: int = 0) -> ImageAnalysis:
    result = ImageAnalysis(path=str(path))
    try:
        image = read_rgb(path)
    except ImageReadError as exc:
        result.error = str(exc)
        return result
    frame = Frame(image=image, t=time.monotonic(), seq=seq, source="analyze")
    for reading in perception.read(frame):
        result.faces.append(
            {
                "box": list(reading.box.to_pixels(frame.width, frame.height)),
                "score": round(reading.score, 4),
                "emotions": {k: round(v, 4) for k, v in reading.emotions.as_dict().items()},
                "label": reading.emotions.dominant,
            }
        )
    return result


def describe(analysis: ImageAnalysis) -> str:
    """The human-readable form of one image's result."""
    if analysis.error:
        return f"{analysis.path}: error: {analysis.error}"
    count = len(analysis.faces)
    lines = [f"{analysis.path}: {count} face{'s' if count != 1 else ''}"]
    for index, face in enumerate(analysis.faces, start=1):
        x, y, w, h = face["box"]
        top = sorted(face["emotions"].items(), key=lambda kv: kv[1], reverse=True)[:3]
        others = ", ".join(f"{label} {p:.2f}" for label, p in top)
        lines.append(
            f"  face {index}: {face['label']} at x={x} y={y} w={w} h={h} "
            f"(detector {face['score']:.2f}; {others})"
        )
    return "\n".join(lines)
