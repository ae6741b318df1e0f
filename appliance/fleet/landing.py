"""Where closed files land: a directory, or an Azure Blob container (``blob_landing``).

``deliver`` returns only once the landing holds the whole file under its final name, and
raises otherwise; delivering the same name again replaces it with the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from appliance.fleet.settings import FleetSettings
from appliance.fleet.spool import write_atomically


class LandingUnreachableError(OSError):
    """The landing cannot take files now; they wait in the spool."""


class Landing(Protocol):
    @property
    def description(self) -> str: ...

    def deliver(self, name: str, data: bytes) -> None: ...

    def close(self) -> None: ...


class DirectoryLanding:
    """A local or mounted directory. Each file is written under a hidden temporary name
    in the same directory, fsynced, then renamed: a reader (the job's landing source
    reads only names ending in .parquet) never sees half a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def description(self) -> str:
        return f"directory {self.path}"

    def deliver(self, name: str, data: bytes) -> None:
        # Not created when missing: that is usually a share that is not mounted, and
        # files written under the mount point would never reach the job.
        if not self.path.is_dir():
            raise LandingUnreachableError(f"the landing directory {self.path} is not there")
        write_atomically(self.path / name, data)

    def close(self) -> None:
        pass


def build_landing(settings: FleetSettings) -> Landing:
    if settings.landing == "blob":
        from appliance.fleet.blob_landing import BlobLanding

        return BlobLanding(settings)
    assert settings.landing_dir is not None  # the settings check this
    return DirectoryLanding(settings.landing_dir)
