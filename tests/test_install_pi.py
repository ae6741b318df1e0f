"""scripts/install-pi, as far as this machine allows: no Raspberry Pi and no systemd as
PID 1 here, so the installer is run with --dry-run (it prints every step and changes
nothing) and the files it installs are checked on their own."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "scripts" / "install-pi"


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTALLER), "--dry-run", *args], capture_output=True, text=True, check=False
    )


def test_the_install_plan() -> None:
    plan = dry_run()
    assert plan.returncode == 0, plan.stderr
    steps = plan.stdout
    for expected in (
        "apt_update",
        "apt_install python3-venv python3-pip espeak-ng alsa-utils avahi-daemon",
        "useradd --system --user-group --home-dir /var/lib/moodtale",
        "usermod -aG video moodtale",
        "usermod -aG audio moodtale",
        f"{ROOT}/scripts/copy-checkout {ROOT} /opt/moodtale",
        "MOODTALE_PYTHON=/usr/bin/python3 MOODTALE_SETUP_LOG=/var/log/moodtale-install.log "
        "/opt/moodtale/scripts/setup",
        "runuser -u moodtale -- /opt/moodtale/.venv/bin/moodtale models verify",
        "install -d -m 0750 -o moodtale -g moodtale /var/lib/moodtale",
        "install -m 0644 /opt/moodtale/systemd/moodtale.service "
        "/etc/systemd/system/moodtale.service",
        "/opt/moodtale/systemd/moodtale-avahi.xml /etc/avahi/services/moodtale.service",
        # The credentials the unit loads: a missing file would fail every start.
        "install -m 0600 -o root -g root /dev/null /etc/moodtale/azure-openai-key",
        "install -m 0600 -o root -g root /dev/null /etc/moodtale/fleet-blob-secret",
    ):
        assert expected in steps, expected
    # The settings file is written only when absent.
    assert "/etc/moodtale/moodtale.toml" in steps


def test_the_uninstall_plan_keeps_settings_and_stories_unless_purged() -> None:
    plain = dry_run("--uninstall")
    assert plain.returncode == 0, plain.stderr
    assert "rm -rf /opt/moodtale" in plain.stdout
    assert "/var/lib/moodtale" not in plain.stdout
    purge = dry_run("--uninstall", "--purge")
    assert "rm -rf /etc/moodtale /var/lib/moodtale" in purge.stdout


def test_bad_arguments_are_refused() -> None:
    assert dry_run("--frobnicate").returncode == 2
    assert dry_run("--purge").returncode == 2


def test_the_settings_file_it_writes_changes_nothing_until_edited(tmp_path: Path) -> None:
    written = subprocess.run(
        [sys.executable, "-m", "appliance", "config", "--commented"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    ).stdout
    assert tomllib.loads(written) == {}
    assert "# [story.llama]" in written
    # Uncommenting a table and a key gives a working setting.
    edited = written.replace("# [web]", "[web]").replace("# port = 8080", "port = 9090", 1)
    assert tomllib.loads(edited)["web"]["port"] == 9090


def test_the_avahi_service_announces_the_page() -> None:
    group = ET.parse(ROOT / "systemd" / "moodtale-avahi.xml").getroot()
    service = group.find("service")
    assert service is not None
    assert service.findtext("type") == "_http._tcp"
    assert service.findtext("port") == "8080"


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def test_only_what_git_tracks_is_copied_and_the_models_stay(tmp_path: Path) -> None:
    src, dest = tmp_path / "checkout", tmp_path / "opt"
    (src / "appliance").mkdir(parents=True)
    (src / "appliance" / "app.py").write_text("tracked\n")
    (src / "README.md").write_text("tracked\n")
    git(src, "init", "-q")
    git(src, "add", ".")
    git(src, "commit", "-q", "-m", "x")
    (src / "appliance" / "app.py").write_text("edited, not committed\n")
    # What must never reach /opt, where all can read it:
    (src / "azure-key.txt").write_text("a stray secret\n")
    (src / ".tools").mkdir()
    (src / ".tools" / "thing").write_text("x\n")
    (src / "appliance" / "scratch.py").write_text("untracked\n")
    # What an earlier install left that must stay, and a file git no longer tracks:
    (dest / "models").mkdir(parents=True)
    (dest / "models" / "story.gguf").write_text("model\n")
    (dest / "models" / "MANIFEST.local").write_text("[[model]]\n")  # models added there
    (dest / ".venv").mkdir()
    (dest / ".venv" / "python").write_text("venv\n")
    (dest / "old.py").write_text("removed from git\n")
    copied = subprocess.run(
        [str(ROOT / "scripts" / "copy-checkout"), str(src), str(dest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [
        ".venv/python",
        "README.md",
        "appliance/app.py",
        "models/MANIFEST.local",
        "models/story.gguf",
    ]
    assert (dest / "appliance" / "app.py").read_text() == "edited, not committed\n"
    assert (dest / "README.md").stat().st_mode & 0o044 == 0o044  # readable by the service


# --- the release and its Python -----------------------------------------------------------


def os_release(version: int, codename: str) -> str:
    """/etc/os-release as Debian (and Raspberry Pi OS, which keeps Debian's) writes it."""
    return (
        f'PRETTY_NAME="Debian GNU/Linux {version} ({codename})"\nNAME="Debian GNU/Linux"\n'
        f'VERSION_ID="{version}"\nVERSION_CODENAME={codename}\nID=debian\n'
    )


BOOKWORM, TRIXIE, BULLSEYE = (
    os_release(12, "bookworm"),
    os_release(13, "trixie"),
    os_release(11, "bullseye"),
)


def a_system(tmp_path: Path, os_release: str, python: str, *, pi: bool) -> dict[str, str]:
    """A release file, a Raspberry Pi OS marker or none, and a python3 that says it is
    the given version: the environment the installer reads them from."""
    (tmp_path / "os-release").write_text(os_release)
    if pi:
        (tmp_path / "rpi-issue").write_text("Raspberry Pi reference 2025-10-01\n")
    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\necho {python}\n")
    fake.chmod(0o755)
    return {
        "PATH": "/usr/bin:/bin",
        "MOODTALE_OS_RELEASE": str(tmp_path / "os-release"),
        "MOODTALE_RPI_ISSUE": str(tmp_path / "rpi-issue"),
        "MOODTALE_SYSTEM_PYTHON": str(fake),
    }


def installer_on(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTALLER), "--dry-run"], capture_output=True, text=True, check=False, env=env
    )


def test_the_installer_names_raspberry_pi_os_trixie_and_uses_its_python_3_13(
    tmp_path: Path,
) -> None:
    env = a_system(tmp_path, TRIXIE, "3.13.5", pi=True)
    plan = installer_on(env)
    assert plan.returncode == 0, plan.stderr
    first = plan.stderr.splitlines()[0]
    assert first.startswith("install-pi: on Raspberry Pi OS (Debian 13 trixie), "), first
    assert first.endswith(f"Python 3.13.5 ({env['MOODTALE_SYSTEM_PYTHON']})"), first
    assert "note:" not in plan.stderr
    # The venv is made from that Python: the one python3-picamera2 is built for.
    assert f"MOODTALE_PYTHON={env['MOODTALE_SYSTEM_PYTHON']} " in plan.stdout


def test_the_installer_names_plain_debian_bookworm_and_its_python_3_11(tmp_path: Path) -> None:
    env = a_system(tmp_path, BOOKWORM, "3.11.2", pi=False)
    plan = installer_on(env)
    assert plan.returncode == 0, plan.stderr
    first = plan.stderr.splitlines()[0]
    assert first.startswith("install-pi: on Debian 12 bookworm, "), first
    assert "Python 3.11.2" in first and "Raspberry Pi OS" not in first
    assert f"MOODTALE_PYTHON={env['MOODTALE_SYSTEM_PYTHON']} " in plan.stdout


def test_a_python_that_is_not_the_releases_own_is_pointed_out(tmp_path: Path) -> None:
    plan = installer_on(a_system(tmp_path, TRIXIE, "3.11.9", pi=True))
    assert plan.returncode == 0, plan.stderr
    assert "note: trixie ships Python 3.13, but" in plan.stderr
    assert "is 3.11.9" in plan.stderr


def test_a_release_too_old_for_moodtale_is_refused_in_plain_words(tmp_path: Path) -> None:
    plan = installer_on(a_system(tmp_path, BULLSEYE, "3.9.2", pi=True))
    assert plan.returncode == 1
    lines = plan.stderr.splitlines()
    assert lines[0].startswith("install-pi: on Raspberry Pi OS (Debian 11 bullseye)"), lines
    assert "needs Python 3.11 or newer" in lines[1]
    assert plan.stdout == "", "nothing is done"


def test_setup_refuses_a_python_too_old_and_says_what_it_found(tmp_path: Path) -> None:
    env = a_system(tmp_path, BULLSEYE, "3.9.2", pi=False)
    env["MOODTALE_PYTHON"] = env.pop("MOODTALE_SYSTEM_PYTHON")
    env["HOME"] = str(tmp_path)
    env["MOODTALE_SETUP_LOG"] = str(tmp_path / "setup.log")
    done = subprocess.run(
        [str(ROOT / "scripts" / "setup")], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith("setup: on Debian 11 bullseye"), lines
    assert "needs Python 3.11 or newer" in lines[1]
    assert len(lines) == 2, "nothing else is done"


# --- steps: one line each, the tools' output in a log named on failure ---------------------


def steps_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """Run BODY with the steps library, its input a terminal-like pipe that stays open and
    never says anything (as a person at a console who is not asked would)."""
    script = (
        "set -euo pipefail\n"
        "say() { printf 'test: %s\\n' \"$*\" >&2; }\n"
        f"source {ROOT / 'scripts' / 'lib' / 'steps.sh'}\n"
        f"step_log_start {tmp_path / 'logs' / 'install.log'}\n" + body
    )
    silent, kept_open = os.pipe()
    try:
        return subprocess.run(
            ["bash", "-c", script],
            stdin=silent,
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
    finally:
        os.close(silent)
        os.close(kept_open)


def test_a_step_says_what_it_does_and_its_tools_talk_only_to_the_log(tmp_path: Path) -> None:
    done = steps_script(
        tmp_path, "step 'installing things' sh -c 'echo pip says a lot; echo more >&2'\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "test: installing things\n"
    assert done.stdout == ""
    log = (tmp_path / "logs" / "install.log").read_text()
    assert "installing things" in log and "pip says a lot" in log and "more" in log


def test_a_failed_step_stops_the_script_even_where_a_failure_is_allowed(tmp_path: Path) -> None:
    """A failed step is the end of the script, also when called where bash's -e is off (in
    a condition or before ||): an install never goes on past a step that failed."""
    done = steps_script(tmp_path, "quietly false || echo went on\necho after\n")
    assert done.returncode == 1
    assert "went on" not in done.stdout and "after" not in done.stdout


def test_a_step_never_waits_for_an_answer_nobody_can_give(tmp_path: Path) -> None:
    """A tool that asks (dpkg about a config file, say) reads nothing: its output goes to
    the log, so nobody would see the question."""
    done = steps_script(tmp_path, "step 'asking' sh -c 'read answer && echo got $answer'\n")
    assert done.returncode == 1, "end of input, at once"


def test_a_failed_step_names_the_log_and_shows_its_last_lines(tmp_path: Path) -> None:
    done = steps_script(
        tmp_path,
        "step 'one' true\n"
        "step 'building' sh -c 'seq 1 40; echo error: no compiler; exit 3'\n"
        "echo not reached\n",
    )
    assert done.returncode == 1
    assert "not reached" not in done.stdout
    err = done.stderr
    assert "test: FAILED (exit 3)" in err
    assert f"the whole log is {tmp_path / 'logs' / 'install.log'}" in err
    assert "    error: no compiler" in err
    assert "    40" in err and "    20" not in err, "the last lines, not all of them"
