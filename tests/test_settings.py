from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from appliance.settings import ConfigError, Settings, load_settings, settings_as_toml


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_are_the_embedded_appliance() -> None:
    settings = load_settings()
    assert settings.camera.type == "auto"
    assert settings.camera.replay.path is None
    assert settings.vision.detector == "short-range"
    assert settings.vision.threads == 1
    assert settings.models_dir.joinpath("MANIFEST").is_file()


def test_environment_sets_nested_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODTALE_CAMERA__TYPE", "replay")
    monkeypatch.setenv("MOODTALE_CAMERA__REPLAY__FPS", "7.5")
    monkeypatch.setenv("MOODTALE_VISION__MAX_FACES", "2")
    settings = load_settings()
    assert settings.camera.type == "replay"
    assert settings.camera.replay.fps == 7.5
    assert settings.camera.replay.loop is True  # untouched siblings keep their defaults
    assert settings.vision.max_faces == 2


def test_toml_file_and_environment_beats_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "moodtale.toml",
        '[camera]\ntype = "replay"\n[camera.replay]\nfps = 5\nseconds_per_image = 9\n'
        '[vision]\ndetector = "full-range"\n',
    )
    settings = load_settings(config)
    assert settings.camera.replay.fps == 5
    assert settings.vision.detector == "full-range"
    monkeypatch.setenv("MOODTALE_CAMERA__REPLAY__FPS", "12")
    settings = load_settings(config)
    assert settings.camera.replay.fps == 12
    assert settings.camera.replay.seconds_per_image == 9  # merged, not replaced


def test_config_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "c.toml", 'log_level = "DEBUG"\n')
    monkeypatch.setenv("MOODTALE_CONFIG", str(config))
    assert load_settings().log_level == "DEBUG"


def test_system_config_is_used_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "etc.toml", "[vision]\nthreads = 2\n")
    monkeypatch.setattr("appliance.settings.SYSTEM_CONFIG", config)
    assert load_settings().vision.threads == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bogus = 1\n", "unknown setting 'bogus'"),
        ("[camera]\nbogus = 1\n", "unknown setting 'camera.bogus'"),
        ("[camera.replay]\nfsp = 10\n", "unknown setting 'camera.replay.fsp'"),
        ('[camera]\ntype = "webcam"\n', "setting 'camera.type' is invalid"),
        ("[vision]\nmax_faces = 0\n", "greater than or equal to 1"),
        ('[vision]\nthreads = "many"\n', "'vision.threads'"),
    ],
)
def test_bad_file_settings_read_like_sentences(tmp_path: Path, text: str, expected: str) -> None:
    config = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert expected in message
    assert str(config) in message
    assert len(message.splitlines()) == 1


def test_the_setup_scripts_own_variables_are_not_mistakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every MOODTALE_ variable the scripts read (MOODTALE_PYTHON, MOODTALE_SETUP_LOG, ...)
    is handed on by scripts/run and install-pi to moodtale: none may stop it. Read from the
    scripts themselves, so a new one cannot be forgotten."""
    scripts = Path(__file__).parents[1] / "scripts"
    text = "".join(
        p.read_text() for p in [*scripts.iterdir(), *scripts.glob("lib/*")] if p.is_file()
    )
    names = set(re.findall(r"\bMOODTALE_[A-Z_]+", text))
    assert {"MOODTALE_PYTHON", "MOODTALE_SETUP_LARGE_MODEL", "MOODTALE_SETUP_LOG"} <= names
    settings = {f"MOODTALE_{field.upper()}" for field in Settings.model_fields} | {
        "MOODTALE_CONFIG"
    }
    for name in names:
        if not any(name == s or name.startswith(s + "__") for s in settings):
            monkeypatch.setenv(name, "0")
    load_settings()
    monkeypatch.setenv("MOODTALE_PYTHN", "/usr/bin/python3")
    with pytest.raises(ConfigError, match="unknown setting MOODTALE_PYTHN"):
        load_settings()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("MOODTALE_BOGUS", "1", "unknown setting MOODTALE_BOGUS"),
        ("MOODTALE_CAMERA__BOGUS", "1", "unknown setting 'camera.bogus'"),
        ("MOODTALE_VISION__MAX_FACES", "lots", "setting 'vision.max_faces' is invalid"),
        ("MOODTALE_CAMERA__REPLAY__FPS", "-1", "greater than 0"),
        ("MOODTALE_LOG_LEVEL", "LOUD", "'log_level'"),
    ],
)
def test_bad_environment_settings_read_like_sentences(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)
    assert key in str(caught.value)


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path / "broken.toml", "[camera\n"))


def _fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, field in model.model_fields.items():
        found.append((prefix + name, field.description))
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _fields(annotation, prefix + name + ".")
    return found


def test_every_setting_is_described() -> None:
    fields = _fields(Settings)
    assert len(fields) > 20
    undescribed = [name for name, description in fields if not description]
    assert undescribed == []


def test_effective_settings_print_as_a_loadable_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOODTALE_CAMERA__REPLAY__FPS", "11")
    settings = load_settings()
    text = settings_as_toml(settings)
    assert "# Frames delivered per second." in text
    tomllib.loads(text)
    config = write(tmp_path / "printed.toml", text)
    monkeypatch.delenv("MOODTALE_CAMERA__REPLAY__FPS")
    assert load_settings(config) == settings


def test_the_command_refuses_bad_settings_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "config"],
        env={"MOODTALE_VISION__THREADS": "0", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("moodtale: bad configuration: setting 'vision.threads' is invalid")
    assert "MOODTALE_VISION__THREADS" in line
    assert result.stdout == ""


def test_the_service_refuses_to_start_on_bad_settings_one_line_each(tmp_path: Path) -> None:
    config = tmp_path / "moodtale.toml"
    config.write_text('[story]\nbogus = 1\n[web]\nport = "eighty"\n')
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(config), "run"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith("moodtale: bad configuration: ") for line in lines)
    assert "unknown setting 'story.bogus'" in result.stderr
    assert "setting 'web.port' is invalid" in result.stderr


def test_the_service_refuses_to_start_on_paths_that_are_not_there(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "run"],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "MOODTALE_STORY__LLAMA__MODEL": str(tmp_path / "gone.gguf"),
            "MOODTALE_CAMERA__TYPE": "replay",
            "MOODTALE_CAMERA__REPLAY__PATH": str(tmp_path / "no-frames"),
            "MOODTALE_AZURE__API_KEY_FILE": str(tmp_path / "no-key"),
            "MOODTALE_FLEET__ENABLED": "true",
            "MOODTALE_FLEET__LANDING": "blob",
            "MOODTALE_FLEET__BLOB_ACCOUNT_URL": "https://example.blob.core.windows.net",
            "MOODTALE_FLEET__BLOB_SECRET_FILE": str(tmp_path / "no-blob-secret"),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert [line.split(":")[2].strip().split("'")[1] for line in lines] == [
        "story.llama.model",
        "camera.replay.path",
        "azure.api_key_file",
        "fleet.blob_secret_file",
    ]
    assert all(line.startswith("moodtale: bad configuration: ") for line in lines)
    assert f"{tmp_path / 'gone.gguf'} does not exist" in lines[0]
    assert result.stdout == ""


def test_the_azure_key_comes_from_settings_a_file_or_a_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.azure_openai.settings import CREDENTIAL_NAME, AzureSettings

    def azure(**more: object) -> AzureSettings:
        base = {"endpoint": "https://x.openai.azure.com", "deployment": "d"}
        return AzureSettings.model_validate({**base, **more})

    assert not azure().configured
    assert azure(api_key="k1").resolved_key() == "k1"
    key_file = tmp_path / "key"
    key_file.write_text("k2\n")
    assert azure(api_key_file=key_file).resolved_key() == "k2"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / CREDENTIAL_NAME).write_text("k3")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = azure()
    assert settings.resolved_key() == "k3" and settings.configured


def test_the_azure_key_is_masked_when_settings_are_printed(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "config"],
        env={
            "MOODTALE_AZURE__API_KEY": "super-secret-key-123",
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "super-secret-key-123" not in result.stdout + result.stderr
    assert 'api_key = "********"' in result.stdout


@pytest.mark.parametrize(
    ("endpoint", "accepted"),
    [
        ("https://x.openai.azure.com", True),
        ("https://x.openai.azure.com/", True),
        ("http://127.0.0.1:8123", True),  # a local stand-in (the tests' own)
        ("http://[::1]:8123", True),
        ("http://localhost:8123", True),
        ("http://x.openai.azure.com", False),  # the key would go in clear
        ("http://192.168.1.5:8080", False),
        ("ftp://x.openai.azure.com", False),
        ("x.openai.azure.com", False),
        ("https://", False),
    ],
)
def test_the_azure_endpoint_never_sends_the_key_in_clear(endpoint: str, accepted: bool) -> None:
    from pydantic import ValidationError

    from appliance.azure_openai.settings import AzureSettings

    if accepted:
        assert AzureSettings(endpoint=endpoint).endpoint == endpoint
    else:
        with pytest.raises(ValidationError, match="https://"):
            AzureSettings(endpoint=endpoint)
