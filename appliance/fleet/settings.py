"""Fleet settings: who this device is, where its rows land, how much it keeps while offline.

The Blob secret (a connection string, an account key or a SAS token) comes from settings,
a file, or the systemd credential ``fleet-blob-secret``, and is never logged.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from appliance.credentials import read_secret, secret_file

CREDENTIAL_NAME = "fleet-blob-secret"
DEVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
"""Device names start file names, which Spark skips when they start with ``.`` or ``_``."""
CONNECTION_STRING_KEYS = re.compile(
    r"(^|;)\s*(AccountName|BlobEndpoint|SharedAccessSignature|DefaultEndpointsProtocol)\s*=",
    re.IGNORECASE,
)

LandingType = Literal["dir", "blob"]


def device_name_from_host(hostname: str) -> str:
    short = hostname.partition(".")[0]
    name = re.sub(r"[^A-Za-z0-9._-]", "-", short).strip("._-")[:63]
    return name or "moodtale"


class FleetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="Publish one mood summary a second (venue, device, faces, sums of "
        "probabilities) for a venue-wide story told by the fleet's Spark job.",
    )
    venue: str = Field(
        default="default",
        min_length=1,
        max_length=200,
        description="The venue (room, stage, shop) this device reads; devices with the same "
        "venue share one story.",
    )
    device: str | None = Field(
        default=None,
        pattern=DEVICE_NAME,
        description="This device's name in the rows and the file names (letters, digits, "
        "'.', '_', '-'; not starting with '.' or '_'). Unset: the host name.",
    )
    landing: LandingType = Field(
        default="dir",
        description="Where files land: dir (a local or mounted directory) or blob (an "
        "Azure Blob Storage container).",
    )
    landing_dir: Path | None = Field(
        default=None,
        description="Landing directory (landing = dir). It is not created: a directory "
        "that is missing (a share not mounted) counts as unreachable and rows wait.",
    )
    blob_account_url: str | None = Field(
        default=None,
        description="Blob service URL, e.g. https://ACCOUNT.blob.core.windows.net "
        "(landing = blob; unset: the one in the connection string).",
    )
    blob_container: str = Field(
        default="moodtale-fleet",
        pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
        description="Blob container the files land in (created when missing and allowed).",
    )
    blob_prefix: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9._-]+/)*$",
        description="Folder inside the container, ending in '/' (empty: the top).",
    )
    blob_connection_string: SecretStr | None = Field(
        default=None,
        description="Storage connection string (a secret; never logged).",
    )
    blob_key: SecretStr | None = Field(
        default=None,
        description="Storage account key or SAS token, used with blob_account_url "
        "(a secret; never logged).",
    )
    blob_secret_file: Path | None = Field(
        default=None,
        description="File holding the connection string, account key or SAS token. Unset: "
        f"the systemd credential '{CREDENTIAL_NAME}' ($CREDENTIALS_DIRECTORY) when present.",
    )
    blob_timeout_s: float = Field(
        default=20.0, gt=0, le=300, description="Timeout of each Blob connection and read."
    )
    rotate_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Seconds between landing files: the file being filled is closed and sent "
        "this often while rows come (and at shutdown).",
    )
    max_spool_mb: float = Field(
        default=64.0,
        gt=0,
        le=100_000,
        description="Rows waiting for the landing are kept on disk up to this size; past "
        "it the oldest files are dropped (counted and shown in status). About 20 MB a day.",
    )
    retry_min_s: float = Field(
        default=1.0, gt=0, le=600, description="First wait after a failed delivery."
    )
    retry_max_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Longest wait between deliveries while the landing is unreachable "
        "(the wait doubles from retry_min_s up to this).",
    )

    @model_validator(mode="after")
    def _landing_is_complete(self) -> FleetSettings:
        if not self.enabled:
            return self
        if self.landing == "dir" and self.landing_dir is None:
            raise ValueError("fleet.landing_dir is needed when fleet.landing is 'dir'")
        if self.landing == "blob" and not (
            self.blob_account_url or self.blob_connection_string or self._secret_path()
        ):
            raise ValueError(
                "fleet.blob_account_url (or a connection string) is needed when "
                "fleet.landing is 'blob'"
            )
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("fleet.retry_max_s must not be less than fleet.retry_min_s")
        return self

    def _secret_path(self) -> Path | None:
        return secret_file(self.blob_secret_file, CREDENTIAL_NAME)

    @property
    def device_name(self) -> str:
        return self.device or device_name_from_host(socket.gethostname())

    def resolved_blob_secret(self) -> str | None:
        """The connection string, account key or SAS token, wherever it was given."""
        for given in (self.blob_connection_string, self.blob_key):
            if given is not None and given.get_secret_value().strip():
                return given.get_secret_value().strip()
        return read_secret(self._secret_path())


def is_connection_string(secret: str) -> bool:
    return CONNECTION_STRING_KEYS.search(secret) is not None
