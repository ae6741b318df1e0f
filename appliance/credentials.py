"""Secrets given as a file: a path in the settings, or a systemd credential
(``LoadCredential=NAME:...`` puts it in ``$CREDENTIALS_DIRECTORY/NAME``)."""

from __future__ import annotations

import os
from pathlib import Path


def secret_file(explicit: Path | None, credential: str) -> Path | None:
    """``explicit`` if given, else the systemd credential ``credential`` if present."""
    if explicit is not None:
        return explicit
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        candidate = Path(directory) / credential
        return candidate if candidate.is_file() else None
    return None


def read_secret(path: Path | None) -> str | None:
    """The secret in ``path`` (whitespace trimmed); None when there is none to read."""
    if path is None:
        return None
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
