"""Slow, broken and hostile web clients against the whole appliance, over real sockets:
hundreds of event streams that never read, a client that stops reading while events
flow, oversized and malformed bodies, path traversal, unknown methods and paths. The
pipeline is not slowed, memory stays bounded, and every refusal is a 4xx, never a 5xx."""

from __future__ import annotations

import contextlib
import gc
import select
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.daemon import Appliance
from appliance.web.app import EVENTS_RETRY_AFTER_S, MAX_BODY_BYTES, SECURITY_HEADERS
from appliance.web.event_hub import CLIENT_QUEUE
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir
from tests.faults.waiting import wait_until
from tests.sse_client import SSEClient

EVENTS_REQUEST = b"GET /api/events HTTP/1.1\r\nHost: moodtale\r\nAccept: text/event-stream\r\n\r\n"
CONTROLS = ("/api/story/new", "/api/story/pause", "/api/story/resume")
TEN_MB = 10 * 1024 * 1024


def rss_mb() -> float:
    """This process's resident memory: the appliance runs in it (what an earlier test
    left is collected first)."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def start(tmp_path: Path, **web: object) -> Appliance:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    settings = appliance_settings(tmp_path, frames, web={"host": "127.0.0.1", "port": 0, **web})
    appliance = Appliance(settings)
    appliance.start()
    # Memory settles once the story model has loaded and writes.
    wait_until(
        lambda: appliance.current_turn is not None or appliance.teller.turn_count > 0,
        120,
        "the story model writing",
    )
    return appliance


def connections(appliance: Appliance) -> int:
    """Connections the web server holds open."""
    assert appliance.web_server is not None
    return len(appliance.web_server.server_state.connections)


def exchange(appliance: Appliance, request: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes (nothing normalises the path), read until the server closes."""
    assert appliance.port is not None
    with socket.create_connection(("127.0.0.1", appliance.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    line = answer.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), answer[:200]
    return int(line.split()[1])


def read_head(sock: socket.socket) -> bytes:
    """An answer's status line and headers."""
    sock.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


# -- event streams ------------------------------------------------------------------------------


def test_hundreds_of_idle_event_streams_neither_slow_the_pipeline_nor_hold_memory(
    tmp_path: Path,
) -> None:
    cap, attackers = 200, 300
    # (All from one address here, standing for many hosts: the per-address caps, tested
    # in test_hostile_lan.py, are raised.)
    appliance = start(
        tmp_path,
        max_event_clients=cap,
        max_event_clients_per_address=attackers,
        max_connections=attackers + 100,
        max_connections_per_address=attackers + 100,
    )
    base = f"http://127.0.0.1:{appliance.port}"
    idle: list[socket.socket] = []
    reader = SSEClient(base + "/api/events")
    try:
        reader.start()
        reader.wait_for(lambda events: any(e.kind == "hello" for e in events), timeout=30)
        fps_before, latency_before = measure(appliance, base, seconds=8)
        rss_before = rss_mb()

        for _ in range(attackers):  # each sends its request, then never reads
            sock = socket.create_connection(("127.0.0.1", appliance.port), timeout=10)
            sock.sendall(EVENTS_REQUEST)
            idle.append(sock)
        wait_until(lambda: appliance.hub.client_count == cap, 20, f"{cap} live streams")
        received = reader.received
        fps_during, latency_during = measure(appliance, base, seconds=8)
        rss_growth = rss_mb() - rss_before
        before_ms = statistics.median(latency_before) * 1000
        during_ms = statistics.median(latency_during) * 1000
        print(
            f"\nperception {fps_before:.1f} fps before, {fps_during:.1f} with {attackers} "
            f"idle stream requests ({cap - 1} served); /api/status median {before_ms:.0f} ms "
            f"before, {during_ms:.0f} ms during (worst {max(latency_during) * 1000:.0f} ms); "
            f"RSS +{rss_growth:.1f} MB"
        )
        assert fps_during >= 0.6 * fps_before
        assert statistics.median(latency_during) < 1.0
        assert max(latency_during) < 5.0
        assert rss_growth < 100
        assert reader.received > received, "the live page stopped getting events"
        assert reader.error is None

        # Past the cap: 429 with Retry-After (uvicorn's own limit, a 503, is never reached).
        heads = [read_head(sock) for sock in idle]
        served = [h for h in heads if h.startswith(b"HTTP/1.1 200 ")]
        refused = [h for h in heads if h.startswith(b"HTTP/1.1 429 ")]
        assert (len(served), len(refused)) == (cap - 1, attackers - cap + 1)
        assert all(f"retry-after: {EVENTS_RETRY_AFTER_S}".encode() in h for h in refused)
        one_more = httpx.get(base + "/api/events", timeout=10)
        assert one_more.status_code == 429
        assert one_more.headers["retry-after"] == str(EVENTS_RETRY_AFTER_S)
        assert "live pages" in one_more.json()["detail"]
        assert one_more.headers["x-frame-options"] == SECURITY_HEADERS["X-Frame-Options"]

        # They leave: their slots and connections are freed, and a page gets in again.
        for sock in idle:
            sock.close()
        idle.clear()
        wait_until(lambda: appliance.hub.client_count == 1, 20, "the idle streams freed")
        wait_until(lambda: connections(appliance) <= 3, 20, "their connections closed")
        with httpx.stream("GET", base + "/api/events", timeout=10) as again:
            assert again.status_code == 200
            assert next(again.iter_lines()) == "event: hello"
    finally:
        for sock in idle:
            sock.close()
        reader.close()
        appliance.shutdown()


def measure(appliance: Appliance, base: str, seconds: float) -> tuple[float, list[float]]:
    """Frames perceived per second over ``seconds``, and /api/status latencies meanwhile."""
    latencies: list[float] = []
    frames, began = appliance.frames_perceived, time.monotonic()
    with httpx.Client(base_url=base, timeout=10) as client:
        while time.monotonic() - began < seconds:
            asked = time.monotonic()
            assert client.get("/api/status").status_code == 200
            latencies.append(time.monotonic() - asked)
            time.sleep(0.25)
    return (appliance.frames_perceived - frames) / (time.monotonic() - began), latencies


def test_a_client_that_never_reads_is_dropped_and_disconnected(tmp_path: Path) -> None:
    appliance = start(tmp_path, stalled_client_s=5)
    base = f"http://127.0.0.1:{appliance.port}"
    reader = SSEClient(base + "/api/events")
    stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    flood_n = 4 * CLIENT_QUEUE
    try:
        reader.start()
        reader.wait_for(lambda events: any(e.kind == "hello" for e in events), timeout=30)
        # A small receive window, and the request; then it never reads again.
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", appliance.port))
        stuck.sendall(EVENTS_REQUEST)
        wait_until(lambda: appliance.hub.client_count == 2, 10, "both streams live")
        held = connections(appliance)
        rss_before = rss_mb()

        def flood() -> None:  # a story far faster than any real one: ~400 events/s
            for i in range(flood_n):
                appliance.hub.publish("flood", {"i": i, "text": "lorem ipsum " * 30})
                if i % 40 == 39:
                    time.sleep(0.1)

        flooding = threading.Thread(target=flood, name="flood")
        began = time.monotonic()
        flooding.start()
        wait_until(lambda: appliance.hub.clients_dropped == 1, 30, "the stuck client dropped")
        dropped_after = time.monotonic() - began
        assert appliance.hub.client_count == 1
        # Its connection is then cut (TCP user timeout: data unacknowledged for 5 s).
        wait_until(lambda: connections(appliance) == held - 1, 30, "its connection closed")
        cut_after = time.monotonic() - began
        flooding.join()
        reader.wait_for(
            lambda events: sum(e.kind == "flood" for e in events) == flood_n, timeout=30
        )
        rss_growth = rss_mb() - rss_before
        print(
            f"\nnever-reading client dropped by the hub after {dropped_after:.1f} s, "
            f"disconnected after {cut_after:.1f} s; RSS +{rss_growth:.1f} MB"
        )
        assert rss_growth < 100
        assert appliance.hub.clients_dropped == 1, "the reading page was dropped too"
        assert reader.error is None

        # The stuck client finds its connection reset, having been sent little.
        stuck.settimeout(10)
        got = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := stuck.recv(65536):
                got += len(chunk)
        assert got < 1024 * 1024
    finally:
        stuck.close()
        reader.close()
        appliance.shutdown()


# -- one appliance for the rest -----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    appliance = start(tmp_path_factory.mktemp("hostile"))
    try:
        yield appliance
    finally:
        appliance.shutdown()


def test_oversized_bodies_are_refused_before_they_are_read(served: Appliance) -> None:
    base = f"http://127.0.0.1:{served.port}"
    auth = {"Authorization": f"Bearer {served.token}"}
    story_before = served.teller.story.id
    big = b"x" * TEN_MB
    rss_before = rss_mb()
    for headers in ({}, auth):
        for path in CONTROLS:
            answer = httpx.post(base + path, content=big, headers=headers, timeout=30)
            assert answer.status_code == 413, (path, answer.text)
            assert str(MAX_BODY_BYTES) in answer.json()["detail"]
            assert answer.headers["content-security-policy"]

            def chunks() -> Iterator[bytes]:
                for _ in range(TEN_MB // 65536):
                    yield b"y" * 65536

            chunked = httpx.post(base + path, content=chunks(), headers=headers, timeout=30)
            assert chunked.status_code == 413, (path, chunked.text)
    # A huge Content-Length is answered at once: the server does not wait for the body.
    # (h11 itself answers 400 to a Content-Length of more than 20 digits.)
    for length, expect in (
        (TEN_MB, ""),
        (10**20 - 1, ""),
        (TEN_MB, "Expect: 100-continue\r\n"),
    ):
        request = (
            f"POST /api/story/new HTTP/1.1\r\nHost: moodtale\r\nAuthorization: Bearer "
            f"{served.token}\r\nContent-Type: application/json\r\n{expect}"
            f"Content-Length: {length}\r\n\r\n{{"
        ).encode()
        assert served.port is not None
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            asked = time.monotonic()
            sock.sendall(request)
            head = read_head(sock)
            assert time.monotonic() - asked < 1.0
        assert status_of(head) == 413, head
        assert b"100 Continue" not in head
    # A chunked body is refused once it passes the limit, long before 10 MB is sent.
    sent = send_chunked_until_answered(served, f"Bearer {served.token}")
    assert sent < TEN_MB
    assert served.teller.story.id == story_before
    assert served.story_loop.state != "paused"
    assert rss_mb() - rss_before < 50


def send_chunked_until_answered(appliance: Appliance, authorization: str) -> int:
    """Stream a chunked body until the server answers; how much had been sent."""
    assert appliance.port is not None
    with socket.create_connection(("127.0.0.1", appliance.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/story/pause HTTP/1.1\r\nHost: moodtale\r\nAuthorization: "
            + authorization.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"4000\r\n" + b"z" * 0x4000 + b"\r\n"
        sent = 0
        answer = b""
        while sent < 2 * TEN_MB:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                with contextlib.suppress(ConnectionResetError):
                    answer = sock.recv(65536)
                break
            assert writable, "the server neither read nor answered"
            try:
                sent += sock.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        if not answer:
            with contextlib.suppress(ConnectionResetError):
                answer = sock.recv(65536)
        assert status_of(answer) == 413
        return sent


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"paused": ', b"\xff\xfe\x00", b"[1, 2", b"null", b'{"paused": true}', b"'}"],
)
def test_malformed_json_bodies_are_a_4xx(served: Appliance, body: bytes) -> None:
    base = f"http://127.0.0.1:{served.port}"
    json_type = {"Content-Type": "application/json"}
    auth = {**json_type, "Authorization": f"Bearer {served.token}"}
    for path in CONTROLS:
        refused = httpx.post(base + path, content=body, headers=json_type, timeout=10)
        assert refused.status_code == 401, (path, refused.text)
        # The controls take no body: sent one, the right token still gets a 400.
        bad = httpx.post(base + path, content=body, headers=auth, timeout=10)
        assert bad.status_code == 400, (path, bad.text)
        assert bad.json()["detail"] == "this takes no request body"
    for path in ("/api/status", "/api/story", "/api/health"):
        # (GET ignores a body; it must not trip anything.)
        answer = httpx.request("GET", base + path, content=body, headers=json_type, timeout=10)
        assert answer.status_code == 200, (path, answer.text)
    assert served.story_loop.state != "paused", "a refused request paused the story"


def test_path_traversal_never_leaves_the_static_folder(served: Appliance) -> None:
    token_file = served.settings.state_dir / "token"
    up = "../" * 12
    targets = [
        "/static/../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2fetc/passwd",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/%252e%252e/%252e%252e/etc/passwd",
        "/static/..%5c..%5cetc%5cpasswd",
        "/static/....//....//etc/passwd",
        "/static/.%2e/.%2e/etc/passwd",
        "/static/%c0%ae%c0%ae/etc/passwd",
        "//etc/passwd",
        "/static//etc/passwd",
        "/..;/etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "http://127.0.0.1/../../etc/passwd",
        # What sits next to the static folder: the app's own source.
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/../__init__.py",
        "/static/app.js%00.py",
        "/static/%00",
        "/static/" + "a" * 5000,
        # The device token, by absolute path and by climbing.
        f"/static/{up}{str(token_file).lstrip('/')}",
        f"/static/%2e%2e/{up}{str(token_file).lstrip('/')}",
        f"/{token_file}",
        f"/static/{token_file}",
    ]
    for target in targets:
        answer = exchange(
            served,
            f"GET {target} HTTP/1.1\r\nHost: moodtale\r\nConnection: close\r\n\r\n".encode(),
        )
        assert 400 <= status_of(answer) < 500, (target, answer[:300])
        assert b"root:" not in answer, target
        assert served.token.encode() not in answer, target
        assert b"def create_app" not in answer and b"import" not in answer, target
    # (The real files are served.)
    assert status_of(exchange(served, b"GET /static/app.js HTTP/1.0\r\n\r\n")) == 200


def test_unknown_methods_paths_and_garbage_are_4xx(served: Appliance) -> None:
    for method in ("FOO", "TRACE", "OPTIONS", "DELETE", "PUT", "PATCH", "PROPFIND", "HEAD"):
        for path in ("/api/status", "/api/story/new", "/api/events", "/"):
            request = f"{method} {path} HTTP/1.1\r\nHost: moodtale\r\nConnection: close\r\n\r\n"
            code = status_of(exchange(served, request.encode()))
            assert code == 405, (method, path, code)
    for path in ("/api/nothing", "/api/story/new/more", "/api/events/x", "/docs", "/.env", "/x"):
        answer = exchange(served, f"GET {path} HTTP/1.0\r\nHost: moodtale\r\n\r\n".encode())
        assert status_of(answer) == 404, path
    for garbage in (
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(64),  # a TLS hello
        b"GET /api/status HTTP/1.1\r\n\r\n",  # no Host
        b"GET /static/\xc0\xae HTTP/1.1\r\nHost: m\r\n\r\n",
        b"POST /api/story/new HTTP/1.1\r\nHost: m\r\nContent-Length: -1\r\n\r\n",
        b"POST /api/story/new HTTP/1.1\r\nHost: m\r\nContent-Length: ten\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: m\r\nX: " + b"h" * 70_000,  # a header that never ends
    ):
        code = status_of(exchange(served, garbage))
        assert 400 <= code < 500, (garbage[:40], code)
    health = httpx.get(f"http://127.0.0.1:{served.port}/api/health", timeout=10)
    assert health.status_code == 200
