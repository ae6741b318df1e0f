from __future__ import annotations

import stat
from pathlib import Path

from tests.cli_process import moodtale, moodtale_env

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
    assert "ok       llama.cpp loads qwen2.5-coder-0.5b-instruct" in out
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
