"""models/MANIFEST: every model file with its sha256, where it comes from and its licence."""

from __future__ import annotations

import enum
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
MANIFEST_PATH = REPO_MODELS_DIR / "MANIFEST"
LOCAL_MANIFEST = "MANIFEST.local"
"""Models the user added (``moodtale models add``), kept in the models directory."""

# Verified files, by (path, size, mtime): a 500 MB model is hashed once per process,
# not on every load. A file rewritten in place gets a new mtime and is hashed again.
_verified: dict[tuple[str, int, int], str] = {}


class ModelFileError(RuntimeError):
    """A model file is missing or corrupt. The message names it and the command that fixes it."""

    def __init__(self, name: str, path: Path, problem: str) -> None:
        super().__init__(
            f"model {name!r} ({path}) {problem}; fix it with: moodtale models fetch {name}"
        )
        self.name = name
        self.path = path
        self.problem = problem


class ModelState(enum.Enum):
    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"


@dataclass(frozen=True, slots=True)
class PackageMember:
    """A file inside a wheel on PyPI. ``platform``/``python`` pin which wheel, so every
    host downloads the same bytes whatever its own platform."""

    package: str
    version: str
    member: str
    platform: str | None = None
    python: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    file: str
    sha256: str
    size: int
    kind: str
    licence: str
    description: str
    sources: tuple[PackageMember, ...] = ()
    """The file is these members joined in order (one member for most models)."""
    licence_file: str | None = None
    url: str | None = None
    """Where a user-added model was downloaded from (``moodtale models add --url``)."""
    optional: bool = False
    """Fetched only when asked for by name (a large alternative model)."""

    def path_in(self, models_dir: Path) -> Path:
        return models_dir / self.file

    def state_in(self, models_dir: Path) -> ModelState:
        path = self.path_in(models_dir)
        if not path.is_file():
            return ModelState.MISSING
        stat = path.stat()
        if stat.st_size != self.size:
            return ModelState.CORRUPT
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        digest = _verified.get(key) or sha256_of(path)
        if digest != self.sha256:
            return ModelState.CORRUPT
        _verified[key] = digest
        return ModelState.OK

    def require(self, models_dir: Path) -> Path:
        """The path of the intact file, or a ``ModelFileError`` that says how to fix it."""
        state = self.state_in(models_dir)
        path = self.path_in(models_dir)
        if state is ModelState.MISSING:
            raise ModelFileError(self.name, path, "is missing")
        if state is ModelState.CORRUPT:
            raise ModelFileError(self.name, path, "is corrupt (its sha256 does not match)")
        return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    def __init__(self, entries: list[ModelEntry]) -> None:
        self.entries = {entry.name: entry for entry in entries}

    def __getitem__(self, name: str) -> ModelEntry:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries))
            raise KeyError(f"no model named {name!r} in the manifest (known: {known})") from None

    def __iter__(self) -> Any:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)


def _entry(raw: dict[str, Any], origin: Path) -> ModelEntry:
    try:
        sources = tuple(PackageMember(**source) for source in raw.pop("sources", []))
        return ModelEntry(sources=sources, **raw)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"bad model entry {raw.get('name', '?')!r} in {origin}: {exc}") from exc


def _entries(path: Path) -> list[ModelEntry]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    return [_entry(dict(raw), path) for raw in data.get("model", [])]


def load_manifest(path: Path = MANIFEST_PATH, models_dir: Path | None = None) -> Manifest:
    """The shipped manifest, plus the models the user added in ``models_dir``."""
    entries = _entries(path)
    if models_dir is not None and (models_dir / LOCAL_MANIFEST).is_file():
        shipped = {entry.name for entry in entries}
        entries += [e for e in _entries(models_dir / LOCAL_MANIFEST) if e.name not in shipped]
    return Manifest(entries)
