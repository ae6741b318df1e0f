from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx

from appliance.daemon import Appliance


def test_state_changing_endpoints_need_the_device_token(running: Appliance) -> None:
    base = f"http://127.0.0.1:{running.port}"
    for path in ("/api/story/new", "/api/story/pause", "/api/story/resume"):
        refused = httpx.post(base + path, timeout=10)
        assert refused.status_code == 401, path
        wrong = httpx.post(base + path, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401, path
    story_before = httpx.get(base + "/api/story", timeout=10).json()["id"]
    assert running.teller.story.id == story_before

    auth = {"Authorization": f"Bearer {running.token}"}
    assert httpx.post(base + "/api/story/pause", headers=auth, timeout=10).json() == {
        "paused": True
    }
    deadline = time.monotonic() + 30
    while running.story_loop.state != "paused":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert httpx.get(base + "/api/status", timeout=10).json()["story"]["state"] == "paused"
    assert httpx.post(base + "/api/story/resume", headers=auth, timeout=10).status_code == 200
    assert httpx.post(base + "/api/story/new", headers=auth, timeout=10).status_code == 200
    deadline = time.monotonic() + 30
    while httpx.get(base + "/api/story", timeout=10).json()["id"] == story_before:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_token_file_is_private_and_kept(running: Appliance, tmp_path: Path) -> None:
    token_file = tmp_path / "state" / "token"
    assert token_file.read_text().strip() == running.token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(running.token) >= 20


def test_read_only_endpoints_and_page(running: Appliance) -> None:
    base = f"http://127.0.0.1:{running.port}"
    health = httpx.get(base + "/api/health", timeout=10)
    assert health.status_code == 200 and health.json()["ok"] is True
    page = httpx.get(base + "/", timeout=10)
    assert page.status_code == 200 and "<title>Moodtale</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert httpx.get(base + asset, timeout=10).status_code == 200
    story = httpx.get(base + "/api/story", timeout=10).json()
    assert set(story) >= {"id", "premise", "turns"}
    status = httpx.get(base + "/api/status", timeout=10).json()
    assert running.token not in str(status)
    assert httpx.get(base + "/static/../device_token.py", timeout=10).status_code == 404
    assert httpx.get(base + "/api/nothing", timeout=10).status_code == 404
