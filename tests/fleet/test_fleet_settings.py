"""Fleet settings: off by default, complete when on, secrets from a file or a credential."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from appliance.fleet.settings import CREDENTIAL_NAME, FleetSettings, device_name_from_host
from appliance.settings import ConfigError, Settings, load_settings, settings_as_toml


def test_fleet_mode_is_off_by_default() -> None:
    assert Settings().fleet.enabled is False


def test_fleet_mode_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODTALE_FLEET__ENABLED", "true")
    monkeypatch.setenv("MOODTALE_FLEET__VENUE", "main-stage")
    monkeypatch.setenv("MOODTALE_FLEET__LANDING_DIR", str(tmp_path))
    fleet = load_settings().fleet
    assert (fleet.enabled, fleet.venue, fleet.landing_dir) == (True, "main-stage", tmp_path)
    assert (fleet.rotate_s, fleet.max_spool_mb, fleet.retry_min_s, fleet.retry_max_s) == (
        10.0,
        64.0,
        1.0,
        60.0,
    )


def test_fleet_mode_without_a_landing_is_refused_in_a_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOODTALE_FLEET__ENABLED", "true")
    with pytest.raises(ConfigError, match=r"fleet\.landing_dir is needed"):
        load_settings()
    monkeypatch.setenv("MOODTALE_FLEET__LANDING", "blob")
    with pytest.raises(ConfigError, match=r"fleet\.blob_account_url .* is needed"):
        load_settings()


@pytest.mark.parametrize("device", ["_pi", ".pi", "a/b", "pi 7", ""])
def test_a_device_name_that_would_hide_or_misplace_files_is_refused(device: str) -> None:
    with pytest.raises(ValidationError):
        FleetSettings(device=device)


def test_the_device_name_defaults_to_a_safe_host_name() -> None:
    assert device_name_from_host("reading-room-2.local") == "reading-room-2"
    assert device_name_from_host("_weird host_") == "weird-host"
    assert device_name_from_host("...") == "moodtale"
    assert FleetSettings(device="pi-7").device_name == "pi-7"


def test_the_blob_secret_from_settings_a_file_or_the_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert FleetSettings(blob_key=SecretStr("k1")).resolved_blob_secret() == "k1"
    secret_file = tmp_path / "secret"
    secret_file.write_text("k2\n")
    assert FleetSettings(blob_secret_file=secret_file).resolved_blob_secret() == "k2"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / CREDENTIAL_NAME).write_text("k3\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert FleetSettings().resolved_blob_secret() == "k3"
    # A connection string in the credential is enough for a blob landing.
    assert FleetSettings(enabled=True, landing="blob").landing == "blob"


def test_the_commented_config_has_the_fleet_section_with_the_secret_masked(
    tmp_path: Path,
) -> None:
    settings = Settings(
        fleet=FleetSettings(
            enabled=True,
            landing="blob",
            blob_account_url="https://acct.blob.core.windows.net",
            blob_key=SecretStr("very-secret-key"),
        )
    )
    text = settings_as_toml(settings)
    assert "very-secret-key" not in text
    parsed = tomllib.loads(text)["fleet"]
    assert parsed["enabled"] is True and parsed["blob_key"] == "********"
    assert "# Where files land: dir (a local or mounted directory)" in text


def test_the_printed_defaults_load_back(tmp_path: Path) -> None:
    config = tmp_path / "moodtale.toml"
    config.write_text(settings_as_toml(Settings()))
    assert load_settings(config).fleet == FleetSettings()
