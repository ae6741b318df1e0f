"""What settings can say that only the file system can refute: paths that must exist.

A service given a model, frames or a key file that is not there should refuse to start
with a line naming the setting, not start and sit paused with a puzzle in its status.
"""

from __future__ import annotations

import os
from pathlib import Path

from appliance.settings import Settings


def _missing(key: str, path: Path, what: str) -> str:
    return f"setting {key!r} is invalid: {what} {path} does not exist"


def startup_problems(settings: Settings) -> list[str]:
    """One readable line per setting that names a path which is not there."""
    problems = []
    model = settings.story.llama.model
    if model.endswith(".gguf") or os.sep in model:  # a path, not a name from the manifest
        path = Path(model).expanduser()
        if not path.is_file():
            problems.append(_missing("story.llama.model", path, "the model file"))
    replay = settings.camera.replay.path
    if settings.camera.type == "replay" and replay is not None and not replay.exists():
        problems.append(_missing("camera.replay.path", replay, "the replay source"))
    key_file = settings.azure.api_key_file
    if key_file is not None and not key_file.is_file():
        problems.append(_missing("azure.api_key_file", key_file, "the key file"))
    secret_file = settings.fleet.blob_secret_file
    if settings.fleet.enabled and secret_file is not None and not secret_file.is_file():
        problems.append(_missing("fleet.blob_secret_file", secret_file, "the secret file"))
    # A missing fleet.landing_dir is not refused: it may be a share not mounted yet; rows
    # wait in the spool and the status says the landing is unreachable.
    return problems
