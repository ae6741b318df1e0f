"""scripts/install-pi, as far as this machine allows: no Raspberry Pi and no systemd as
PID 1 here, so the installer is run with --dry-run (it prints every step and changes
nothing) and the files it installs are checked on their own."""

from __future__ import annotations

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
        "apt-get install",
        "espeak-ng alsa-utils avahi-daemon",
        "useradd --system --user-group --home-dir /var/lib/moodtale",
        "usermod -aG video moodtale",
        "usermod -aG audio moodtale",
        "rsync -a --delete --chown=root:root --chmod=go-w,go+rX --exclude .venv --exclude .git "
        "--exclude __pycache__ --exclude .pytest_cache --exclude .mypy_cache --exclude "
        ".ruff_cache --exclude /models/*.gguf --exclude /models/MANIFEST.local --exclude "
        f"/models/.fetch-* {ROOT}/ /opt/moodtale/",
        "MOODTALE_PYTHON=/usr/bin/python3 /opt/moodtale/scripts/setup",
        "runuser -u moodtale -- /opt/moodtale/.venv/bin/moodtale models verify",
        "install -d -m 0750 -o moodtale -g moodtale /var/lib/moodtale",
        "install -m 0644 /opt/moodtale/systemd/moodtale.service "
        "/etc/systemd/system/moodtale.service",
        "/opt/moodtale/systemd/moodtale-avahi.xml /etc/avahi/services/moodtale.service",
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
