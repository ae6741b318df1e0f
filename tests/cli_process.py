"""Running the real ``moodtale`` command in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def moodtale_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MOODTALE_")}
    env.update(settings)
    return env


def moodtale(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *map(str, args)],
        env=env or moodtale_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_moodtale(
    *args: str | Path, env: dict[str, str], stderr: int = subprocess.STDOUT
) -> subprocess.Popen[str]:
    """Started in the background, stdout piped (stderr merged into it unless told)."""
    return subprocess.Popen(
        [sys.executable, "-m", "appliance", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
