"""The whole appliance with fleet mode on: replayed frames, real models, rows in the landing."""

from __future__ import annotations

from pathlib import Path

from appliance.daemon import Appliance
from appliance.events import MoodSummary
from tests.appliance_run.conftest import EMPTY, HAPPY, appliance_settings, replay_dir
from tests.faults.waiting import wait_until
from tests.fleet.conftest import landed_rows


def test_the_appliance_publishes_a_row_a_second_with_the_faces_it_sees(tmp_path: Path) -> None:
    frames = replay_dir(tmp_path, HAPPY, EMPTY)  # a face for 2 s, an empty room for 2 s
    landing = tmp_path / "landing"
    landing.mkdir()
    fleet = {
        "enabled": True,
        "venue": "reading-room",
        "device": "pi-test",
        "landing_dir": landing,
        "rotate_s": 1.0,
    }
    appliance = Appliance(appliance_settings(tmp_path, frames, seconds_per_image=2.0, fleet=fleet))
    appliance.start()
    try:

        def seen_both() -> bool:
            rows = landed_rows(landing)
            return any(r.faces > 0 for r in rows) and any(r.faces == 0 for r in rows)

        wait_until(seen_both, 120, "rows with a face and rows of the empty room")
        status = appliance.status()
        assert status["fleet"]["rows_published"] > 0
        assert appliance.fleet is not None and appliance.fleet.status()["last_error"] is None
        assert not any(p.startswith("Fleet") for p in status["problems"])
    finally:
        appliance.shutdown()

    rows = landed_rows(landing)
    assert {(r.venue, r.device) for r in rows} == {("reading-room", "pi-test")}
    seconds = [r.second for r in rows]
    assert seconds == sorted(set(seconds))  # one row a second, in order
    with_faces: list[MoodSummary] = [r for r in rows if r.faces > 0]
    for row in with_faces:
        # faces counts readings; the sums over them are probabilities summed.
        assert abs(sum(row.emotion_sums.as_tuple()) - row.faces) < 1e-3 * row.faces
    assert max(r.faces for r in with_faces) >= 2  # several frames a second read the face
    assert all(r.emotion_sums.as_tuple() == (0.0,) * 7 for r in rows if r.faces == 0)
