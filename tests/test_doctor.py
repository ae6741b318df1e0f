from __future__ import annotations

import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.commands.doctor import check_azure
from appliance.settings import Settings
from tests.cli_process import moodtale, moodtale_env
from tests.fake_azure import API_KEY, DEPLOYMENT, FakeAzure
from tests.story.conftest import TEST_MODEL

FIXTURES = Path(__file__).parent / "fixtures"


def test_doctor_reports_plainly_and_shows_the_token(tmp_path: Path) -> None:
    env = moodtale_env(
        MOODTALE_STATE_DIR=str(tmp_path / "state"),
        MOODTALE_CAMERA__TYPE="replay",
        MOODTALE_CAMERA__REPLAY__PATH=str(FIXTURES / "astronaut.png"),
        MOODTALE_AZURE__API_KEY="secret-key-123",
    )
    result = moodtale("doctor", env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "ok       model qwen2.5-coder-0.5b-instruct" in out
    assert "ok       LiteRT runs the face and expression models" in out
    # auto: the 1.5B where it is here and fast enough, else the 0.5B, and why.
    assert "ok       llama.cpp loads qwen2.5-coder-" in out
    assert "note     story model auto: qwen2.5-coder-" in out
    assert "ok       camera replay" in out and "640x" not in out  # the fixture's own size
    assert "ok       state directory" in out
    token_file = tmp_path / "state" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert f"device token: {token_file.read_text().strip()}" in out
    assert "[camera.replay]" in out  # the effective settings follow
    assert "secret-key-123" not in out
    assert out.rstrip().endswith("all good")


def test_doctor_fails_on_what_is_broken(tmp_path: Path) -> None:
    empty_models = tmp_path / "models"
    empty_models.mkdir()
    env = moodtale_env(
        MOODTALE_STATE_DIR=str(tmp_path / "state"),
        MOODTALE_MODELS_DIR=str(empty_models),
        MOODTALE_CAMERA__TYPE="replay",
        MOODTALE_CAMERA__REPLAY__PATH=str(tmp_path / "no-such-frames"),
    )
    result = moodtale("doctor", "--no-settings", env=env, timeout=120)
    assert result.returncode == 1
    assert (
        "BROKEN   model blazeface-short-range is missing; fix it with: moodtale models fetch"
        in (result.stdout)
    )
    assert "BROKEN   camera" in result.stdout and "does not exist" in result.stdout
    assert "BROKEN   LiteRT" in result.stdout and "BROKEN   llama.cpp" in result.stdout
    assert "something needed is broken" in result.stdout


# -- Azure: one real 1-token call to the configured deployment --------------------------


@pytest.fixture
def fake_azure() -> Iterator[FakeAzure]:
    server = FakeAzure(hang_s=3.0).start()
    yield server
    server.stop()


def closed_port_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now


def doctor_with_azure(
    tmp_path: Path, endpoint: str, key: str = API_KEY, **more: str
) -> subprocess.CompletedProcess[str]:
    settings = {
        "MOODTALE_STATE_DIR": str(tmp_path / "state"),
        "MOODTALE_CAMERA__TYPE": "replay",
        "MOODTALE_CAMERA__REPLAY__PATH": str(FIXTURES / "astronaut.png"),
        "MOODTALE_STORY__LLAMA__MODEL": TEST_MODEL,
        "MOODTALE_AZURE__ENDPOINT": endpoint,
        "MOODTALE_AZURE__DEPLOYMENT": DEPLOYMENT,
        "MOODTALE_AZURE__API_KEY": key,
        "MOODTALE_AZURE__TIMEOUT_S": "2",
    }
    env = moodtale_env(**{**settings, **more})
    return moodtale("doctor", env=env, timeout=120)


def azure_line(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line[9:].startswith("Azure OpenAI")]
    return line


def test_doctor_calls_azure_once_and_says_it_works(tmp_path: Path, fake_azure: FakeAzure) -> None:
    result = doctor_with_azure(tmp_path, fake_azure.endpoint)
    assert result.returncode == 0, result.stdout + result.stderr
    assert azure_line(result.stdout) == (
        f"ok       Azure OpenAI {fake_azure.endpoint} deployment {DEPLOYMENT}: "
        "reachable and authorised"
    )
    (call,) = fake_azure.requests  # one small call, no retries
    assert call.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert call.body["max_tokens"] == 1
    assert API_KEY not in result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("all good")


def test_a_refused_key_is_a_warning_while_the_local_model_works(
    tmp_path: Path, fake_azure: FakeAzure
) -> None:
    wrong = "wrong-key-5f1c9e0b7d"
    result = doctor_with_azure(tmp_path, fake_azure.endpoint, key=wrong)
    assert result.returncode == 0, result.stdout + result.stderr
    line = azure_line(result.stdout)
    assert line.startswith(f"WARNING  Azure OpenAI {fake_azure.endpoint} deployment {DEPLOYMENT}:")
    assert "not authorised: the key was refused (401)" in line
    assert "the fallback will not work" in line
    assert len(fake_azure.requests) == 1
    assert wrong not in result.stdout + result.stderr  # neither the line nor the settings
    assert result.stdout.rstrip().endswith("all good")


def test_unreachable_azure_is_broken_when_the_story_depends_on_it(tmp_path: Path) -> None:
    endpoint = closed_port_endpoint()
    result = doctor_with_azure(tmp_path, endpoint, MOODTALE_STORY__BACKEND="azure")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "note     llama.cpp not used: story.backend is azure" in result.stdout
    assert azure_line(result.stdout) == (
        f"BROKEN   Azure OpenAI {endpoint} deployment {DEPLOYMENT}: unreachable "
        "(connection refused); the story depends on it (story.backend is azure)"
    )
    assert "something needed is broken" in result.stdout


def test_a_server_error_is_broken_without_a_local_model(
    tmp_path: Path, fake_azure: FakeAzure
) -> None:
    fake_azure.queue("500")
    missing = tmp_path / "missing.gguf"
    result = doctor_with_azure(
        tmp_path, fake_azure.endpoint, MOODTALE_STORY__LLAMA__MODEL=str(missing)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "WARNING  llama.cpp:" in result.stdout and "the story will come from Azure" in (
        result.stdout
    )
    assert azure_line(result.stdout) == (
        f"BROKEN   Azure OpenAI {fake_azure.endpoint} deployment {DEPLOYMENT}: reachable, "
        "but Azure answered with a server error (500); the story depends on it "
        "(no working local model)"
    )
    assert len(fake_azure.requests) == 1  # not retried


def test_doctor_says_when_azure_is_not_configured(tmp_path: Path) -> None:
    assert check_azure(Settings(), local_ok=True) == (
        True,
        "note     Azure OpenAI not configured (no fallback)",
    )
    ok, line = check_azure(Settings(story={"backend": "azure"}), local_ok=False)  # type: ignore[arg-type]
    assert not ok and line.startswith("BROKEN   Azure OpenAI not configured")


@pytest.mark.parametrize(
    ("behaviour", "changes", "healthy", "expected"),
    [
        (
            "429:7",
            {},
            True,
            "WARNING  {subject}: reachable and authorised, but rate limited "
            "right now (429; Azure asks to wait 7 s)",
        ),
        (
            "ok",
            {"deployment": "no-such"},
            True,
            "WARNING  Azure OpenAI {endpoint} deployment "
            "no-such: deployment no-such not found (404); check azure.deployment; the fallback "
            "will not work",
        ),
        (
            "hang",
            {"timeout_s": 0.5},
            False,
            "BROKEN   {subject}: unreachable (no answer within "
            "0.5 s); the story depends on it (no working local model)",
        ),
    ],
)
def test_azure_answers_in_plain_words(
    fake_azure: FakeAzure,
    behaviour: str,
    changes: dict[str, object],
    healthy: bool,
    expected: str,
) -> None:
    fake_azure.queue(behaviour)
    azure = {"endpoint": fake_azure.endpoint, "deployment": DEPLOYMENT, "api_key": API_KEY}
    settings = Settings(azure={**azure, **changes})  # type: ignore[arg-type]
    ok, line = check_azure(settings, local_ok=behaviour != "hang")
    subject = f"Azure OpenAI {fake_azure.endpoint} deployment {DEPLOYMENT}"
    assert (ok, line) == (healthy, expected.format(subject=subject, endpoint=fake_azure.endpoint))
