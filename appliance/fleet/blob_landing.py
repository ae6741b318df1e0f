"""An Azure Blob Storage container as the landing (``pip install 'moodtale[azure]'``).

Each file is one Put Blob, which commits whole or not at all, with overwrite: a resend
of the same name is the same blob. The SDK's own retries are off; the sender backs off.
The secret never reaches a log line or a status: error texts are scrubbed of it and of
URL query strings (where a SAS token would travel).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from appliance.fleet.landing import LandingUnreachableError
from appliance.fleet.settings import FleetSettings, is_connection_string

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-ndjson"
AZURE_REQUEST_LOGGER = "azure.core.pipeline.policies.http_logging_policy"
SECRET_KEYS = frozenset({"accountkey", "sharedaccesssignature", "sig"})
QUERY_STRING = re.compile(r"\?[^\s'\"<>)]*")


class BlobLanding:
    def __init__(self, settings: FleetSettings) -> None:
        try:
            from azure.storage.blob import ContainerClient, ContentSettings
        except ImportError as exc:
            raise RuntimeError(
                "the Blob landing needs azure-storage-blob: pip install 'moodtale[azure]'"
            ) from exc
        # The SDK logs every request at INFO: keep the journal for what matters.
        request_logger = logging.getLogger(AZURE_REQUEST_LOGGER)
        if request_logger.level == logging.NOTSET:
            request_logger.setLevel(logging.WARNING)
        secret = settings.resolved_blob_secret()
        self._secrets = [s for s in _secret_parts(secret) if s]
        options: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": settings.blob_timeout_s,
            "read_timeout": settings.blob_timeout_s,
        }
        if secret is not None and is_connection_string(secret):
            self._client = ContainerClient.from_connection_string(
                secret, settings.blob_container, **options
            )
        elif settings.blob_account_url:
            self._client = ContainerClient(
                settings.blob_account_url, settings.blob_container, credential=secret, **options
            )
        else:
            raise RuntimeError(
                "the Blob landing needs fleet.blob_account_url or a connection string"
            )
        self._content = ContentSettings(content_type=CONTENT_TYPE)
        self.prefix = settings.blob_prefix
        self._container_checked = False

    @property
    def description(self) -> str:
        return f"Azure Blob container {self.scrub(self._client.url)}"

    def deliver(self, name: str, data: bytes) -> None:
        from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

        try:
            try:
                self._upload(name, data)
            except ResourceNotFoundError as exc:
                if _error_code(exc) != "ContainerNotFound" or self._container_checked:
                    raise
                self._create_container()
                self._upload(name, data)
        except HttpResponseError as exc:
            raise LandingUnreachableError(
                f"Blob storage refused {name}: HTTP {exc.status_code} "
                f"{_error_code(exc) or exc.reason or ''}".rstrip()
            ) from None
        except AzureError as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise LandingUnreachableError(
                f"Blob storage unreachable: {self.scrub(first_line)}"
            ) from None

    def _upload(self, name: str, data: bytes) -> None:
        self._client.upload_blob(
            self.prefix + name, data, overwrite=True, content_settings=self._content
        )

    def _create_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        self._container_checked = True
        try:
            self._client.create_container()
            log.info("created the Blob container %s", self.scrub(self._client.container_name))
        except ResourceExistsError:
            pass

    def scrub(self, text: str) -> str:
        text = QUERY_STRING.sub("?…", text)
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    def close(self) -> None:
        self._client.close()


def _error_code(exc: Exception) -> str | None:
    code = getattr(exc, "error_code", None)  # set by the storage SDK, not declared
    return str(code) if code else None


def _secret_parts(secret: str | None) -> list[str]:
    """The secret and the secret values inside it (a connection string's key or
    signature, a SAS token's signature)."""
    if not secret:
        return []
    parts = [secret]
    for piece in re.split(r"[;&?]", secret):
        key, _, value = piece.partition("=")
        if key.strip().lower() in SECRET_KEYS and value:
            parts.append(value)
    return sorted(parts, key=len, reverse=True)
