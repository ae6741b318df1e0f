"""The device token and the Azure key never appear in the logs, the page, its API, the
settings as printed, or the output of ``moodtale run``, ``config`` and ``doctor``
(doctor shows the token on purpose; the key, never).

The whole appliance runs against the local Azure server with a distinctive key, the
story told by Azure (``story.backend = "azure"``), through its error paths too (5xx,
429, then the key refused), with everything logged at DEBUG, the openai and httpx
loggers included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.daemon import Appliance
from appliance.settings import Settings, settings_as_toml
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir
from tests.appliance_run.test_moodtale_run import free_port
from tests.cli_process import moodtale, moodtale_env
from tests.fake_azure import DEPLOYMENT, FakeAzure
from tests.sse_client import SSEClient
from tests.story.conftest import TEST_MODEL, smol_story

KEY = "azkey-Moodtale-7c41d9e2b05f4a8e-DO-NOT-SHOW"
"""Distinctive: any trace of it in output is a leak."""
KEY_REFUSED_BY_THE_SERVER = "someone-elses-key"
FIXTURES = Path(__file__).parent / "fixtures"
TOKEN_FILE = "token"
LIBRARY_LOGGERS = (
    "openai",
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "uvicorn",
    "fastapi",
    "appliance",
)


@pytest.fixture
def fake_azure() -> Iterator[FakeAzure]:
    server = FakeAzure(api_key=KEY).start()
    yield server
    server.stop()


class Everything(logging.Handler):
    """Every record, formatted with its traceback, as the journal would get it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextlib.contextmanager
def all_logging_at_debug(handler: Everything) -> Iterator[Callable[[str], None]]:
    """Everything at DEBUG to ``handler``, on the root logger; the function it yields
    adds it to a logger that does not propagate (uvicorn sets its own up on start)."""
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in LIBRARY_LOGGERS)]
    levels = [lg.level for lg in loggers]
    also: list[logging.Logger] = []

    def add_to(name: str) -> None:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        also.append(logger)

    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield add_to
    finally:
        root.removeHandler(handler)
        for lg in also:
            lg.removeHandler(handler)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def wait_until(test: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def azure_on_the_fake(fake: FakeAzure, **changes: object) -> dict[str, object]:
    return {
        "endpoint": fake.endpoint,
        "deployment": DEPLOYMENT,
        "api_key": KEY,
        "timeout_s": 2.0,
        "max_retries": 1,
        "max_retry_wait_s": 1.0,
        **changes,
    }


def everything_the_page_serves(base: str, token: str) -> list[str]:
    """Every read-only answer (headers too), the first events of the stream, and the
    answers to the story controls, with the token and without."""
    seen = []
    for path in ("/", "/static/app.js", "/api/status", "/api/story", "/api/health"):
        answer = httpx.get(base + path, timeout=10)
        seen += [path, str(answer.headers), answer.text]
    schema = httpx.get(base + "/openapi.json", timeout=10)
    assert schema.status_code == 200
    seen.append(schema.text)
    for headers in ({"Authorization": f"Bearer {token}"}, {"Authorization": "Bearer nope"}):
        for action in ("pause", "resume"):
            answer = httpx.post(f"{base}/api/story/{action}", headers=headers, timeout=10)
            seen += [str(answer.headers), answer.text]
    events = SSEClient(base + "/api/events")
    events.start()
    try:
        got = events.wait_for(lambda e: len(e) >= 4, 30)
    finally:
        events.close()
    assert got[0].kind == "hello"
    seen += [json.dumps([(e.kind, e.data) for e in got])]
    return seen


def test_the_running_appliance_never_shows_the_token_or_the_key(
    tmp_path: Path, fake_azure: FakeAzure, capfd: pytest.CaptureFixture[str]
) -> None:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    story = smol_story(backend="azure", reading_wpm=0, sentences_per_turn=2)
    settings = appliance_settings(
        tmp_path, frames, story=story, azure=azure_on_the_fake(fake_azure), log_level="DEBUG"
    )
    # A failed call (500, retried, 500), then a rate limit retried at once, then answers.
    fake_azure.queue("500", "500", "429:0")
    logs = Everything()
    seen: list[str] = []
    with all_logging_at_debug(logs) as also_log:
        appliance = Appliance(settings)
        try:
            appliance.start()
            if not logging.getLogger("uvicorn").propagate:
                also_log("uvicorn")
            token = appliance.token
            base = f"http://127.0.0.1:{appliance.port}"

            def told_by_azure() -> bool:
                turns = httpx.get(base + "/api/story", timeout=10).json()["turns"]
                return any(turn["backend"] == f"azure {DEPLOYMENT}" for turn in turns)

            wait_until(told_by_azure, 90, "a turn told by Azure")
            seen += everything_the_page_serves(base, token)
            # Now the key is refused: the story has nothing left and says why.
            fake_azure.api_key = KEY_REFUSED_BY_THE_SERVER
            wait_until(
                lambda: "refused the key" in httpx.get(base + "/api/status", timeout=10).text,
                60,
                "the refused key reported on /api/status",
            )
            seen += everything_the_page_serves(base, token)
            seen += [repr(appliance.settings), str(appliance.settings)]
        finally:
            appliance.shutdown()
    out, err = capfd.readouterr()
    journal = "\n".join([logs.text, out, err])

    # The paths that could leak were taken, and logged.
    assert any(r.headers.get("api-key") == KEY for r in fake_azure.requests)
    assert "HTTP Response: POST 500" in logs.text and "HTTP Response: POST 401" in logs.text
    assert "Azure refused the key for story (401)" in logs.text
    assert "rate limited" in logs.text
    assert any("refused the key" in s for s in seen)
    for secret in (KEY, token):
        assert secret not in journal
        for text in seen:
            assert secret not in text, text[:2000]


def test_settings_as_printed_never_show_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "azure-key"
    key_file.write_text(KEY + "\n")
    for azure in ({"api_key": KEY}, {"api_key_file": key_file}):
        settings = Settings(azure={"endpoint": "https://x.openai.azure.com", **azure})  # type: ignore[arg-type]
        assert settings.azure.resolved_key() == KEY
        for text in (
            repr(settings),
            str(settings),
            repr(settings.azure),
            settings_as_toml(settings),
            settings.model_dump_json(),
            str(settings.model_dump()),
        ):
            assert KEY not in text


def test_moodtale_config_never_shows_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "azure-key"
    key_file.write_text(KEY)
    for env in (
        {"MOODTALE_AZURE__API_KEY": KEY},
        {"MOODTALE_AZURE__API_KEY_FILE": str(key_file)},
    ):
        for args in (("config",), ("config", "--commented")):
            result = moodtale(*args, env=moodtale_env(**env), timeout=60)
            assert result.returncode == 0, result.stderr
            assert KEY not in result.stdout + result.stderr
    # A key that is not even a string (a TOML number, a list) is refused, not echoed.
    config = tmp_path / "moodtale.toml"
    for value in ("738112904455617", f'["{KEY}"]'):
        config.write_text(f"[azure]\napi_key = {value}\n")
        result = moodtale("--config", config, "config", env=moodtale_env(), timeout=60)
        assert result.returncode == 2
        assert "setting 'azure.api_key' is invalid" in result.stderr
        assert value not in result.stderr and KEY not in result.stderr


@pytest.mark.parametrize("refused", [False, True])
def test_doctor_shows_the_token_never_the_key(
    tmp_path: Path, fake_azure: FakeAzure, refused: bool
) -> None:
    if refused:
        fake_azure.api_key = KEY_REFUSED_BY_THE_SERVER
    env = moodtale_env(
        MOODTALE_STATE_DIR=str(tmp_path / "state"),
        MOODTALE_CAMERA__TYPE="replay",
        MOODTALE_CAMERA__REPLAY__PATH=str(FIXTURES / "astronaut.png"),
        MOODTALE_STORY__LLAMA__MODEL=TEST_MODEL,
        MOODTALE_AZURE__ENDPOINT=fake_azure.endpoint,
        MOODTALE_AZURE__DEPLOYMENT=DEPLOYMENT,
        MOODTALE_AZURE__API_KEY=KEY,
        MOODTALE_LOG_LEVEL="DEBUG",
    )
    result = moodtale("doctor", env=env, timeout=120)
    token = (tmp_path / "state" / TOKEN_FILE).read_text().strip()
    assert f"device token: {token}" in result.stdout  # on purpose: doctor is how one gets it
    assert ("the key was refused (401)" in result.stdout) is refused
    assert KEY not in result.stdout + result.stderr
    assert 'api_key = "********"' in result.stdout


def test_moodtale_run_output_has_neither_the_token_nor_the_key(
    tmp_path: Path, fake_azure: FakeAzure
) -> None:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    port = free_port()
    fake_azure.queue("500", "500")
    env = moodtale_env(
        MOODTALE_LOG_LEVEL="DEBUG",
        MOODTALE_STATE_DIR=str(tmp_path / "state"),
        MOODTALE_CAMERA__TYPE="replay",
        MOODTALE_CAMERA__REPLAY__PATH=str(frames),
        MOODTALE_STORY__BACKEND="azure",
        MOODTALE_STORY__READING_WPM="0",
        MOODTALE_SPEECH__OUTPUT="wav",
        MOODTALE_SPEECH__WAV_DIR=str(tmp_path / "wav"),
        MOODTALE_WEB__HOST="127.0.0.1",
        MOODTALE_WEB__PORT=str(port),
        MOODTALE_AZURE__ENDPOINT=fake_azure.endpoint,
        MOODTALE_AZURE__DEPLOYMENT=DEPLOYMENT,
        MOODTALE_AZURE__API_KEY=KEY,
        MOODTALE_AZURE__TIMEOUT_S="2",
        MOODTALE_AZURE__MAX_RETRIES="1",
    )
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("w") as out_file, stderr.open("w") as err_file:  # files: not a TTY
        process = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run"], env=env, stdout=out_file, stderr=err_file
        )
    base = f"http://127.0.0.1:{port}"

    def status() -> dict[str, Any]:
        assert process.poll() is None, stdout.read_text() + stderr.read_text()
        try:
            result: dict[str, Any] = httpx.get(base + "/api/status", timeout=5).json()
        except httpx.HTTPError:
            return {}
        return result

    try:
        wait_until(lambda: status().get("story", {}).get("turns", 0) > 0, 90, "a turn")
        fake_azure.api_key = KEY_REFUSED_BY_THE_SERVER
        wait_until(lambda: "refused the key" in json.dumps(status()), 60, "the key refused")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
    out, err = stdout.read_text(), stderr.read_text()
    token = (tmp_path / "state" / TOKEN_FILE).read_text().strip()
    assert "Device token: run `moodtale doctor` to see it." in out
    assert "Azure refused the key for story (401)" in out  # logged to stdout (the journal)
    for secret in (KEY, token):
        assert secret not in out and secret not in err
