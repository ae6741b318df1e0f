"""``moodtale run`` as systemd runs it: a child process, READY and WATCHDOG on the
notify socket, the page served, SIGTERM or SIGINT ending it with status 0 in time."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.appliance_run.conftest import HAPPY, SAD, replay_dir
from tests.cli_process import moodtale_env, start_moodtale
from tests.story.conftest import TEST_MODEL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_env(tmp_path: Path, frames: Path, port: int, **more: str) -> dict[str, str]:
    """``moodtale run`` on replayed frames, the tests' model, WAV speech, on ``port``."""
    return moodtale_env(
        MOODTALE_STATE_DIR=str(tmp_path / "state"),
        MOODTALE_CAMERA__TYPE="replay",
        MOODTALE_CAMERA__REPLAY__PATH=str(frames),
        MOODTALE_STORY__LLAMA__MODEL=TEST_MODEL,
        MOODTALE_STORY__LLAMA__N_CTX="1024",
        MOODTALE_SPEECH__OUTPUT="wav",
        MOODTALE_SPEECH__WAV_DIR=str(tmp_path / "wav"),
        MOODTALE_WEB__HOST="127.0.0.1",
        MOODTALE_WEB__PORT=str(port),
        **more,
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_notifies_and_stops_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    port = free_port()
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(0.5)
    env = run_env(tmp_path, frames, port, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="2000000")
    process = start_moodtale("run", env=env)
    try:
        messages: list[str] = []
        deadline = time.monotonic() + 60
        while not any("WATCHDOG=1" in m for m in messages):
            assert time.monotonic() < deadline, messages
            assert process.poll() is None, process.communicate()[0]
            with contextlib.suppress(TimeoutError):
                messages.append(notify.recv(4096).decode())
        assert any(m.startswith("READY=1") for m in messages)
        assert any("STATUS=" in m for m in messages)
        page = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10)
        assert page.json()["ok"] is True
        # A turn gets told, so the stop below lands mid-story.
        deadline = time.monotonic() + 60
        while not list((tmp_path / "wav").glob("*.wav")):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        process.send_signal(stop_signal)
        started = time.monotonic()
        output, _ = process.communicate(timeout=10)
        assert process.returncode == 0, output
        assert time.monotonic() - started < 5
        assert f"http://127.0.0.1:{port}/" in output
        token = (tmp_path / "state" / "token").read_text().strip()
        assert token not in output  # not a terminal: the token stays out of the journal
        assert "moodtale doctor" in output
    finally:
        process.kill()
        process.wait()
        notify.close()
