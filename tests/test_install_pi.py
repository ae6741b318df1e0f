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
        f"{ROOT}/scripts/copy-checkout {ROOT} /opt/moodtale",
        "MOODTALE_PYTHON=/usr/bin/python3 /opt/moodtale/scripts/setup",
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
