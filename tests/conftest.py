from __future__ import annotations

from pathlib import Path

import pytest

from appliance.model_files.manifest import REPO_MODELS_DIR
from appliance.vision import Perception, VisionSettings, build_perception


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return REPO_MODELS_DIR


@pytest.fixture(scope="session")
def perception(models_dir: Path) -> Perception:
    """The default perception: BlazeFace short-range and the FER model, real files."""
    return build_perception(VisionSettings(max_faces=8), models_dir)


@pytest.fixture(scope="session")
def full_range_perception(models_dir: Path) -> Perception:
    return build_perception(VisionSettings(detector="full-range", max_faces=8), models_dir)


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see only the settings they set: no MOODTALE_ variables from the shell, no
    /etc/moodtale file, state in a temporary directory."""
    import os

    for key in list(os.environ):
        if key.upper().startswith("MOODTALE_"):
            monkeypatch.delenv(key)
    monkeypatch.setattr("appliance.settings.SYSTEM_CONFIG", tmp_path / "no-such.toml")
    monkeypatch.setattr("appliance.settings.SYSTEM_ETC", tmp_path / "no-such-etc")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
