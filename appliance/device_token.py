"""The device token: what a LAN client must show to change anything (new story, pause).

Generated on first start and kept in the state directory, readable by the service user
only. Compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "token"


class TokenNotOursError(PermissionError):
    """The token lives in a state directory another user owns (the service's)."""


def load_or_create_token(state_dir: Path, *, only_if_ours: bool = False) -> str:
    """The token kept in ``state_dir``, made if there is none. With ``only_if_ours``
    (a command run by hand), none is made in a directory another user owns: a token
    made there by root would be one the service cannot read, and not the one it uses."""
    path = state_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    if only_if_ours and state_dir.exists() and state_dir.stat().st_uid != os.geteuid():
        raise TokenNotOursError(f"{state_dir} belongs to another user", str(path))
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return token


def token_matches(given: str | None, token: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode(), token.encode())
