"""The systemd unit: valid for systemd itself (``systemd-analyze verify``, no warnings),
with the service type, watchdog, restart policy, user, hardening and devices the
appliance needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "moodtale.service"
INSTALLED_AT = "/opt/moodtale"


def unit_here(tmp_path: Path, text: str | None = None) -> Path:
    """The unit as installed, but pointing at this checkout (verify wants ExecStart= to
    exist and be executable)."""
    text = (text or UNIT.read_text()).replace(INSTALLED_AT, str(ROOT))
    path = tmp_path / "moodtale.service"
    path.write_text(text)
    return path


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False
    )


def test_systemd_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    checked = verify(unit_here(tmp_path))
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == ""


def test_the_check_would_catch_a_mistake(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("WatchdogSec=", "WatchdogSecs=")
    checked = verify(unit_here(tmp_path, broken))
    assert "Unknown key" in checked.stderr


def directives() -> dict[str, list[str]]:
    """``Section.Key`` to every value it is given (systemd keys may repeat)."""
    seen: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        seen.setdefault(f"{section}.{key}", []).append(value)
    return seen


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Service.Type", "notify"),
        ("Service.ExecStart", f"{INSTALLED_AT}/.venv/bin/moodtale run"),
        ("Service.Restart", "on-failure"),
        ("Service.RestartPreventExitStatus", "2"),
        ("Service.User", "moodtale"),
        ("Service.NoNewPrivileges", "yes"),
        ("Service.ProtectSystem", "strict"),
        ("Service.ProtectHome", "yes"),
        ("Service.PrivateTmp", "yes"),
        ("Service.ReadWritePaths", "/var/lib/moodtale"),
        ("Service.StateDirectory", "moodtale"),
        ("Service.DevicePolicy", "closed"),
        ("Install.WantedBy", "multi-user.target"),
    ],
)
def test_the_unit_says(key: str, value: str) -> None:
    assert directives()[key] == [value]


def test_credentials_are_named_as_the_code_reads_them() -> None:
    # systemd has no optional form of LoadCredential=: a '-' would become part of the
    # name (and a missing file still fails the start), so the installer lays the files down.
    from appliance.azure_openai.settings import CREDENTIAL_NAME as AZURE
    from appliance.fleet.settings import CREDENTIAL_NAME as FLEET

    assert sorted(directives()["Service.LoadCredential"]) == sorted(
        [f"{AZURE}:/etc/moodtale/{AZURE}", f"{FLEET}:/etc/moodtale/{FLEET}"]
    )


def test_frames_never_reach_disk_and_files_are_bounded() -> None:
    seen = directives()
    assert seen["Service.LimitCORE"] == ["0"]
    assert seen["Service.MemorySwapMax"] == ["0"]
    assert int(seen["Service.LimitNOFILE"][0]) >= 4096


def test_the_hardening_rates_ok() -> None:
    """systemd's own rating of the unit's exposure (10 is none of it hardened): 3.5 or
    better. The booted check (scripts/check-boot) proves the camera, sound, state and
    llama.cpp still work under it."""
    rated = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    line = next(x for x in rated.stdout.splitlines() if "Overall exposure level" in x)
    exposure = float(line.split(":")[1].split()[0])
    assert exposure <= 3.5, line
    # A directory (like /dev/dma_heap) is not a device: systemd would ignore it.
    assert all(
        value.split()[0].startswith(("char-", "block-")) or Path(value.split()[0]).is_char_device()
        for value in directives()["Service.DeviceAllow"]
    )


def test_watchdog_start_limit_memory_groups_and_devices() -> None:
    seen = directives()
    assert seen["Service.WatchdogSec"] and seen["Unit.StartLimitBurst"]
    assert seen["Unit.StartLimitIntervalSec"] and seen["Service.MemoryMax"]
    # The device groups come from the user (the installer's usermod), not from
    # SupplementaryGroups=, which fails the start where a group does not exist.
    assert "Service.SupplementaryGroups" not in seen
    allowed = " ".join(seen["Service.DeviceAllow"])
    for device in ("char-video4linux", "char-media", "char-dma_heap", "char-alsa"):
        assert device in allowed
