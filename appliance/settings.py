"""Every knob of the appliance, validated and described.

Sources, highest priority first: environment (``MOODTALE_`` prefix, ``__`` between
levels: ``MOODTALE_CAMERA__REPLAY__FPS=10``), then the TOML file (``--config``,
``MOODTALE_CONFIG``, or ``/etc/moodtale/moodtale.toml`` when it exists), then defaults.
Unknown keys are errors in both, so a typo never silently does nothing.
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from appliance.azure_openai.settings import AzureSettings
from appliance.camera.settings import CameraSettings
from appliance.fleet.settings import FleetSettings
from appliance.model_files.manifest import REPO_MODELS_DIR
from appliance.mood.settings import MoodSettings
from appliance.speech.settings import SpeechSettings
from appliance.story.settings import StorySettings
from appliance.vision.settings import VisionSettings
from appliance.web.settings import WebSettings

ENV_PREFIX = "MOODTALE_"
CONFIG_ENV = "MOODTALE_CONFIG"
SYSTEM_ETC = Path("/etc/moodtale")
"""Made by scripts/install-pi: its presence means the appliance is installed here."""
SYSTEM_CONFIG = SYSTEM_ETC / "moodtale.toml"
SYSTEM_STATE_DIR = Path("/var/lib/moodtale")
SERVICE_USER = "moodtale"

_config_file: ContextVar[Path | None] = ContextVar("moodtale_config_file", default=None)


class ConfigError(ValueError):
    """Configuration that cannot be used; ``str()`` is readable sentences, one per problem."""


def installed_here() -> bool:
    """scripts/install-pi has installed the appliance on this system (/etc/moodtale)."""
    return SYSTEM_ETC.is_dir()


def default_state_dir() -> Path:
    # systemd's StateDirectory= sets STATE_DIRECTORY; on an installed device, a command
    # run by hand (doctor, story) sees the service's state, not a new one of its own;
    # otherwise the XDG place.
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if installed_here():
        return SYSTEM_STATE_DIR
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "moodtale"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="How much the appliance logs (to stdout, i.e. journald)."
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Where the appliance keeps what it must remember (stories, token).",
    )
    models_dir: Path = Field(
        default=REPO_MODELS_DIR,
        description="Directory holding the model files listed in models/MANIFEST.",
    )
    camera: CameraSettings = Field(
        default_factory=CameraSettings, description="Where frames come from."
    )
    vision: VisionSettings = Field(
        default_factory=VisionSettings, description="Face detection and expression reading."
    )
    story: StorySettings = Field(
        default_factory=StorySettings, description="The story and the local story model."
    )
    azure: AzureSettings = Field(
        default_factory=AzureSettings, description="Azure OpenAI, the fallback (optional)."
    )
    mood: MoodSettings = Field(
        default_factory=MoodSettings,
        description="How face readings become the reader's mood (smoothing, shifts).",
    )
    speech: SpeechSettings = Field(
        default_factory=SpeechSettings, description="Narration: voice and sound output."
    )
    web: WebSettings = Field(default_factory=WebSettings, description="The LAN web page.")
    fleet: FleetSettings = Field(
        default_factory=FleetSettings,
        description="Fleet mode: one mood summary a second to a landing shared by many "
        "devices, for one story per venue (off unless enabled).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def config_file_in_use(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        return explicit
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return SYSTEM_CONFIG if SYSTEM_CONFIG.is_file() else None


SETUP_ENV = {
    "PYTHON",
    "LLAMA_CMAKE_ARGS",
    "SETUP_LARGE_MODEL",
    "SETUP_LOG",
    "SYSTEM_PYTHON",
    "OS_RELEASE",
    "RPI_ISSUE",
    "CHECK_DIR",
}
"""MOODTALE_ variables that the scripts read (scripts/setup: the interpreter for the venv,
the llama-cpp-python build flags, whether to fetch the larger story model, its log;
install-pi: the system Python, the release files; check-boot and check-distro: their
directory): not settings, but not mistakes either. scripts/run and install-pi pass them on
to ``moodtale``."""


def _unknown_env_keys(environ: Mapping[str, str]) -> list[str]:
    """pydantic-settings ignores MOODTALE_ variables naming no top-level field
    (it does catch unknown nested ones): catch those too."""
    known = {name.upper() for name in Settings.model_fields} | {"CONFIG"} | SETUP_ENV
    unknown = []
    for key in environ:
        if key.upper().startswith(ENV_PREFIX):
            head = key[len(ENV_PREFIX) :].split("__", 1)[0].upper()
            if head not in known:
                unknown.append(key)
    return sorted(unknown)


def _env_name(loc: tuple[str | int, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc)


def _is_secret(loc: tuple[str | int, ...]) -> bool:
    """Whether ``loc`` names a secret setting (a ``SecretStr``): its value is never echoed,
    even a malformed one (it may still be most of the key)."""
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return False
        kinds = typing.get_args(field.annotation) or (field.annotation,)
        if SecretStr in kinds:
            return True
        nested = [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)]
        if not nested:
            return False
        model = nested[0]
    return False


def _explain(exc: ValidationError, environ: Mapping[str, str], config_file: Path | None) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(part) for part in loc)
        env_name = _env_name(loc)
        origin = (
            f"from {env_name}"
            if env_name in {k.upper() for k in environ}
            else f"from {config_file}"
            if config_file
            else "default"
        )
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting {key!r} ({origin}): there is no such setting")
            continue
        value = error.get("input")
        shown = "" if isinstance(value, dict) or _is_secret(loc) else f", got {value!r}"
        message = error["msg"][0].lower() + error["msg"][1:]
        lines.append(f"setting {key!r} is invalid ({origin}): {message}{shown}")
    return "\n".join(lines)


def load_settings(config: Path | None = None) -> Settings:
    """The effective settings, or a ``ConfigError`` whose lines each name a key and its problem."""
    environ = os.environ
    config_file = config_file_in_use(config, environ)
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        try:
            with config_file.open("rb") as f:
                tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"config file {config_file} cannot be read: {exc}") from exc
    unknown = _unknown_env_keys(environ)
    if unknown:
        raise ConfigError(
            "\n".join(
                f"unknown setting {key} in the environment: there is no such setting"
                for key in unknown
            )
        )
    token = _config_file.set(config_file)
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_explain(exc, environ, config_file)) from None
    finally:
        _config_file.reset(token)


def _toml_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return '"********"' if value.get_secret_value() else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _toml_lines(model: BaseModel, table: str) -> Iterator[str]:
    nested = []
    if table:
        yield f"\n[{table}]"
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            nested.append((name, value))
            continue
        if field.description:
            yield f"# {field.description}"
        if value is None:
            yield f"# {name} ="
        else:
            yield f"{name} = {_toml_value(value)}"
    for name, value in nested:
        yield from _toml_lines(value, f"{table}.{name}" if table else name)


def settings_as_toml(settings: BaseModel) -> str:
    """The settings as a commented TOML file (secrets masked): what ``moodtale config``
    prints, and a valid config file to start from."""
    return "\n".join(_toml_lines(settings, "")) + "\n"
