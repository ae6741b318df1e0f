"""/api/health tells a dead worker (503) and every answer, refusals included, carries the
page's security headers (nosniff among them). Real appliance, real HTTP."""

from __future__ import annotations

import socket
import threading
import time

import httpx

from appliance.daemon import Appliance
from tests.faults.test_hostile_web import EVENTS_REQUEST, read_head


def test_health_answers_503_while_a_worker_is_down_and_200_once_it_is_back(
    running: Appliance,
) -> None:
    base = f"http://127.0.0.1:{running.port}"
    assert httpx.get(base + "/api/health", timeout=10).status_code == 200
    # The main thread's loop, as `moodtale run` has it: it restarts dead workers.
    supervising = threading.Thread(target=running.run_until_stopped, daemon=True)
    supervising.start()
    perception = running.perception
    real_read = perception.read
    calls = {"n": 0}

    def read_that_breaks_once(frame):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the expression model broke")
        return real_read(frame)

    perception.read = read_that_breaks_once  # type: ignore[method-assign]
    seen: list[tuple[int, str]] = []
    deadline = time.monotonic() + 20
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            answer = client.get(base + "/api/health")
            seen.append((answer.status_code, answer.json()["detail"]))
            if answer.status_code == 503:
                break
            time.sleep(0.02)
        assert (503, "not running: perception") in seen, seen[-5:]
        # The supervisor starts it again (after 1 s): healthy once more.
        while time.monotonic() < deadline + 20:
            if client.get(base + "/api/health").status_code == 200:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("never healthy again")
    assert running.supervisor.workers["perception"].restarts == 1


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
"""What the README promises, written out here (not taken from the code)."""


def test_every_answer_carries_nosniff_and_the_other_security_headers(running: Appliance) -> None:
    base = f"http://127.0.0.1:{running.port}"
    answers = []
    with httpx.Client(timeout=10) as client:
        for path in (
            "/",
            "/static/app.js",
            "/static/style.css",
            "/api/status",
            "/api/story",
            "/api/health",
            "/openapi.json",
            "/no-such-page",
            "/static/../../etc/passwd",
        ):
            answers.append((path, client.get(base + path).headers))
        answers.append(("POST /api/story/new", client.post(base + "/api/story/new").headers))
        answers.append(("413", client.post(base + "/api/story/new", content=b"x" * 70_000).headers))
        answers.append(("421", client.get(base + "/", headers={"Host": "evil.example"}).headers))
    assert running.port is not None
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        sock.sendall(EVENTS_REQUEST)
        head = read_head(sock).decode().lower()
    for path, headers in answers:
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name) == value, (path, name, dict(headers))
    assert "x-content-type-options: nosniff" in head
