"""Azurite, the Azure Storage emulator (npm), run by the tests on 127.0.0.1.

``scripts/setup --dev`` installs it in ``.tools/azurite``; one on the PATH also serves.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROJECT_AZURITE = REPO / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
"""The emulator's well-known development key (public, in Microsoft's documentation)."""


def azurite_blob() -> Path | None:
    if PROJECT_AZURITE.is_file():
        return PROJECT_AZURITE
    found = shutil.which("azurite-blob")
    return Path(found) if found else None


def account_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/{ACCOUNT}"


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={account_url(port)};"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_azurite(program: Path, port: int, workdir: Path) -> Iterator[None]:
    """Blob service only, in memory, no telemetry (it would try to reach the internet)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "azurite.log").open("wb")
    process = subprocess.Popen(
        [
            str(program),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--extentMemoryLimit",
            "256",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Azurite did not start: {(workdir / 'azurite.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
