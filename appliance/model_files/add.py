"""Adding a model the user chose (a better GGUF on a device with internet), verified.

By path (copied) or by URL (downloaded, at provisioning time only), always with the
sha256 the user expects; recorded in MANIFEST.local in the models directory so that
``models list/verify`` and ``story.llama.model = NAME`` know it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from appliance.model_files.manifest import LOCAL_MANIFEST, ModelEntry, _entries, load_manifest

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\.gguf")
"""What an added model's file may be called: a GGUF, no path, no hidden file; so never
MANIFEST, MANIFEST.local, LICENSES or a model file Moodtale ships."""
INSTALLED_MODE = 0o644
"""Readable by the service user (the temporary copy is 0600)."""
SHA256 = re.compile(r"[0-9a-f]{64}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_local_manifest(models_dir: Path, entries: list[ModelEntry]) -> None:
    lines = ["# Models added with 'moodtale models add'. Edit with care.", ""]
    for entry in entries:
        lines += [
            "[[model]]",
            f"name = {_quote(entry.name)}",
            f"file = {_quote(entry.file)}",
            f"kind = {_quote(entry.kind)}",
            f"description = {_quote(entry.description)}",
            f"sha256 = {_quote(entry.sha256)}",
            f"size = {entry.size}",
            f"licence = {_quote(entry.licence)}",
        ]
        if entry.url:
            lines.append(f"url = {_quote(entry.url)}")
        lines.append("")
    target = models_dir / LOCAL_MANIFEST
    partial = target.with_suffix(".partial")
    partial.write_text("\n".join(lines))
    os.chmod(partial, INSTALLED_MODE)
    os.replace(partial, target)


def _target_name(name: str, sha256: str, path: Path | None, url: str | None) -> str:
    """Check the arguments; the file name the model gets in the models directory."""
    if not NAME.fullmatch(name):
        raise ValueError(f"model name {name!r}: use lower-case letters, digits, '.', '_', '-'")
    if not SHA256.fullmatch(sha256):
        raise ValueError("--sha256 must be 64 hexadecimal digits")
    if (path is None) == (url is None):
        raise ValueError("give exactly one of --path and --url")
    if name in load_manifest().entries:
        raise ValueError(f"{name!r} is a model Moodtale ships; choose another name")
    if path is not None:
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
        filename = path.name
    else:
        assert url is not None
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in {"http", "https"}:
            raise ValueError(f"{url}: only http and https URLs are supported")
        filename = Path(urllib.parse.unquote(parsed.path)).name or f"{name}.gguf"
    if not FILE_NAME.fullmatch(filename):
        raise ValueError(
            f"{filename!r}: an added model must be a .gguf file named with letters, digits, "
            "'.', '_', '+' or '-'"
        )
    return filename


def _refuse_collisions(models_dir: Path, name: str, filename: str) -> None:
    """A file Moodtale ships, or another model's, is never overwritten."""
    shipped = {entry.file for entry in load_manifest().entries.values()}
    if filename in shipped:
        raise ValueError(f"{filename} is a file Moodtale ships; rename your copy")
    local = models_dir / LOCAL_MANIFEST
    for entry in _entries(local) if local.is_file() else []:
        if entry.file == filename and entry.name != name:
            raise ValueError(f"{filename} is model {entry.name!r}'s file already; rename yours")
    ours = {e.file for e in (_entries(local) if local.is_file() else []) if e.name == name}
    if (models_dir / filename).exists() and filename not in ours:
        raise ValueError(f"{models_dir / filename} exists already; nothing was overwritten")


def _copy_hashing(source: BinaryIO, models_dir: Path) -> tuple[Path, str, int]:
    """Copy into a temporary file in ``models_dir``: (its path, sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=models_dir, prefix=".add-", delete=False) as out:
        partial = Path(out.name)
        try:
            while block := source.read(1 << 20):
                digest.update(block)
                size += len(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return partial, digest.hexdigest(), size


def add_model(
    models_dir: Path,
    name: str,
    sha256: str,
    *,
    path: Path | None = None,
    url: str | None = None,
    licence: str = "unknown",
    description: str = "",
    timeout_s: float = 60.0,
) -> ModelEntry:
    """Copy or download, verify, install atomically and record; raises ValueError."""
    sha256 = sha256.lower()
    filename = _target_name(name, sha256, path, url)
    models_dir.mkdir(parents=True, exist_ok=True)
    _refuse_collisions(models_dir, name, filename)
    source: BinaryIO = (
        path.open("rb") if path is not None else urllib.request.urlopen(str(url), timeout=timeout_s)
    )
    with source:
        partial, digest, size = _copy_hashing(source, models_dir)
    if digest != sha256:
        partial.unlink(missing_ok=True)
        raise ValueError(f"{path or url} has sha256 {digest}, not {sha256}: nothing was installed")
    os.chmod(partial, INSTALLED_MODE)
    os.replace(partial, models_dir / filename)
    entry = ModelEntry(
        name=name,
        file=filename,
        sha256=sha256,
        size=size,
        kind="llm",
        licence=licence,
        description=description or f"added from {path or url}",
        url=url,
    )
    local = models_dir / LOCAL_MANIFEST
    entries = [e for e in (_entries(local) if local.is_file() else []) if e.name != name]
    _write_local_manifest(models_dir, [*entries, entry])
    return entry
