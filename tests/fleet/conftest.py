"""What the fleet publisher tests share: settings, known readings, the landed rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.events import Box, Emotions, FaceReading, MoodSummary
from appliance.fleet.publisher import FleetPublisher
from appliance.fleet.rows import decode_landing_file, landing_file_seq
from appliance.fleet.settings import FleetSettings

DEVICE = "pi-7"
VENUE = "reading-room"


def fleet_settings(tmp_path: Path, **changes: object) -> FleetSettings:
    """Fast settings for tests: files rotate every 0.1 s, retries from 0.05 s."""
    values: dict[str, object] = {
        "enabled": True,
        "venue": VENUE,
        "device": DEVICE,
        "landing_dir": tmp_path / "landing",
        "rotate_s": 0.1,
        "retry_min_s": 0.05,
        "retry_max_s": 0.2,
        **changes,
    }
    return FleetSettings.model_validate(values)


def reading(**emotions: float) -> FaceReading:
    return FaceReading(box=Box(0.2, 0.2, 0.3, 0.3), score=0.9, emotions=Emotions(**emotions), t=0.0)


HAPPY_FACE = reading(happy=0.75, neutral=0.25)
SAD_FACE = reading(sad=0.5, neutral=0.375, angry=0.125)


def one_row_per_second(publisher: FleetPublisher, seconds: range, start: float = 1.7e9) -> None:
    """A frame with one happy face in each second (each a row once the next one starts)."""
    for second in seconds:
        publisher.observe([HAPPY_FACE], start + second + 0.5)


def landed_files(landing: Path) -> list[Path]:
    """The landing's files in sequence order (temporaries, starting with '.', left out)."""
    files = [p for p in landing.iterdir() if not p.name.startswith(".")]
    return sorted(files, key=lambda p: landing_file_seq(p.name) or -1)


def landed_rows(landing: Path) -> list[MoodSummary]:
    return [row for path in landed_files(landing) for row in decode_landing_file(path.read_bytes())]


def seconds_of(rows: list[MoodSummary], start: float = 1.7e9) -> list[int]:
    return [row.second - int(start) for row in rows]


@pytest.fixture
def publishers() -> Iterator[list[FleetPublisher]]:
    """Publishers a test made, closed at its end even when it fails."""
    made: list[FleetPublisher] = []
    yield made
    for publisher in made:
        publisher.close(timeout=2.0)
