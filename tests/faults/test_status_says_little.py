"""What the LAN is told: /api/status and the page's status events carry plain words, never
a file path, an exception text or an error body; the details are in the journal (the log),
once. Real appliance, real HTTP, a camera that goes and a model file deleted."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from appliance.daemon import Appliance
from tests.faults.test_model_file_faults import MODEL_FILE, models, start  # noqa: F401
from tests.faults.waiting import wait_until
from tests.sse_client import SSEClient

DETAILS = ("Errno", "Traceback", "Error:", "/dev/", ".gguf", ".sqlite3", "sha256")


def leaks(text: str, tmp_path: Path) -> list[str]:
    found = [d for d in DETAILS if d in text]
    if str(tmp_path) in text or "/tmp/" in text:
        found.append("a path")
    return found


def test_the_lan_is_told_plain_words_and_the_journal_the_details(
    tmp_path: Path,
    models: Path,  # noqa: F811 (the fixture)
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    appliance: Appliance = start(tmp_path, models)
    base = f"http://127.0.0.1:{appliance.port}"
    page = SSEClient(base + "/api/events")
    try:
        page.start()
        wait_until(lambda: appliance.teller.turn_count >= 1, 120, "a first turn")
        (models / MODEL_FILE).unlink()  # the local model's file goes
        frames = next(tmp_path.glob("frames*"))
        frames.rename(tmp_path / "unplugged")  # and the camera
        wait_until(lambda: appliance.camera.state == "lost", 15, "camera lost")
        wait_until(
            lambda: any("Local story model" in p for p in appliance.status()["problems"]),
            60,
            "the model file missed",
        )
        status = httpx.get(base + "/api/status", timeout=10).json()
        text = json.dumps(status)
        assert leaks(text, tmp_path) == [], text
        assert any(p.startswith("camera lost; trying again") for p in status["problems"])
        assert any("Local story model: it cannot be used now" in p for p in status["problems"])
        assert status["camera"]["source"] == "replayed pictures"
        page.wait_for(lambda events: sum(e.kind == "status" for e in events) >= 3, timeout=30)
        streamed = " ".join(
            json.dumps(e.data) for e in page.events if e.kind in ("status", "hello")
        )
        assert leaks(streamed, tmp_path) == [], streamed[:2000]
        # The details went to the journal, each once.
        journal = "\n".join(r.getMessage() for r in caplog.records)
        assert str(frames) in journal and MODEL_FILE in journal
        camera_lines = [r for r in caplog.records if r.getMessage().startswith("camera lost: ")]
        assert len(camera_lines) == 1
    finally:
        page.close()
        appliance.shutdown()
