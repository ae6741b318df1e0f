"""Commands run by hand on an installed device (as root, or as the login user): they see
the service's state, never make a second token there, and a file they may not read is
one line saying how to run them as the service user, not a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.settings import Settings
from tests.cli_process import moodtale_env

NOBODY = 65534


def test_an_installed_device_keeps_its_state_in_the_system_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc-moodtale"
    etc.mkdir()
    monkeypatch.setattr("appliance.settings.SYSTEM_ETC", etc)
    monkeypatch.setattr("appliance.settings.SYSTEM_STATE_DIR", tmp_path / "var-lib-moodtale")
    assert Settings().state_dir == tmp_path / "var-lib-moodtale"
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "from-systemd"))
    assert Settings().state_dir == tmp_path / "from-systemd"


def test_doctor_never_makes_a_token_in_the_services_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "var-lib-moodtale"
    state.mkdir()
    os.chown(state, NOBODY, NOBODY)  # the service user's, as on a device
    monkeypatch.setenv("MOODTALE_STATE_DIR", str(state))
    main(["doctor", "--no-settings"])
    out = capsys.readouterr().out
    assert not (state / "token").exists()
    assert "device token: in " in out and "sudo -u moodtale " in out and " doctor" in out
    # The service's own token is shown as it is (root can read it).
    (state / "token").write_text("the-services-token\n")
    main(["doctor", "--no-settings"])
    assert "device token: the-services-token" in capsys.readouterr().out


def without_capabilities(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``moodtale ARGS`` as root without its capabilities: held to file permissions like
    any login user."""
    return subprocess.run(
        [
            "setpriv",
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--",
            sys.executable,
            "-m",
            "appliance",
            *args,
        ],
        env=moodtale_env(**env),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv")
@pytest.mark.parametrize("args", [("story", "list"), ("story", "show")])
def test_state_it_may_not_read_is_one_line_not_a_traceback(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    state = tmp_path / "var-lib-moodtale"
    state.mkdir(mode=0o700)
    (state / "stories.sqlite3").write_bytes(b"")
    os.chown(state, NOBODY, NOBODY)  # the service user's, as on a device
    result = without_capabilities(*args, MOODTALE_STATE_DIR=str(state))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert ": permission denied. On an installed device, run it as the service user: " in lines[0]
    assert "sudo -u moodtale " in lines[0] and lines[0].endswith(" ".join(args))
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv")
def test_a_settings_file_it_may_not_read_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "moodtale.toml"
    config.write_text('log_level = "INFO"\n')
    os.chown(config, NOBODY, NOBODY)
    config.chmod(0o600)
    result = without_capabilities("models", "list", MOODTALE_CONFIG=str(config))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Permission denied" in lines[0], result.stderr
