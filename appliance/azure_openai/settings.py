"""Azure OpenAI settings. The key is a secret: from settings, a file, or a systemd credential."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from appliance.credentials import read_secret, secret_file

CREDENTIAL_NAME = "azure-openai-key"


class AzureSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(
        default=None,
        description="Azure OpenAI endpoint, e.g. https://NAME.openai.azure.com. "
        "Unset: no Azure fallback.",
    )
    deployment: str | None = Field(
        default=None, description="Chat deployment used when the local story model fails."
    )
    api_version: str = Field(default="2024-10-21", description="Azure OpenAI API version.")
    api_key: SecretStr | None = Field(default=None, description="API key (a secret; never logged).")
    api_key_file: Path | None = Field(
        default=None,
        description="File holding the API key. Unset: the systemd credential "
        f"'{CREDENTIAL_NAME}' ($CREDENTIALS_DIRECTORY) when present.",
    )
    timeout_s: float = Field(
        default=15.0, gt=0, le=300, description="Timeout of each call and each streamed read."
    )
    max_retries: int = Field(
        default=2,
        ge=0,
        le=5,
        description="Retries of a failed call (5xx, connection), backing off.",
    )
    max_retry_wait_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="A 429 asking to wait longer than this is not waited for in the call: "
        "the fallback reports 'busy' and is not called again until then.",
    )
    circuit_failures: int = Field(
        default=3, ge=1, le=100, description="Consecutive failures that open the circuit breaker."
    )
    circuit_open_s: float = Field(
        default=60.0, gt=0, le=3600, description="How long an open circuit refuses calls."
    )
    vision_fallback: bool = Field(
        default=False,
        description="Send downscaled face crops to Azure when the local expression model is "
        "missing or failing. Off unless you turn it on: frames otherwise never leave the device.",
    )
    vision_deployment: str | None = Field(
        default=None,
        description="Vision-capable chat deployment for expressions (unset: the chat deployment).",
    )
    vision_max_per_minute: int = Field(
        default=20, ge=1, le=600, description="At most this many Azure expression calls a minute."
    )

    @field_validator("endpoint")
    @classmethod
    def key_never_in_clear(cls, endpoint: str | None) -> str | None:
        """The key travels in a header: only over https, except to this machine itself (a
        local stand-in, as the tests run)."""
        if endpoint is None:
            return None
        parts = urlsplit(endpoint)
        if parts.scheme == "https" and parts.hostname:
            return endpoint
        if parts.scheme == "http" and is_loopback(parts.hostname or ""):
            return endpoint
        raise ValueError(
            "must be an https:// address (http:// would send the key in clear; "
            "it is allowed only to this machine itself, e.g. http://127.0.0.1:PORT)"
        )

    def resolved_key(self) -> str | None:
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        return read_secret(secret_file(self.api_key_file, CREDENTIAL_NAME))

    @property
    def configured(self) -> bool:
        return bool(self.endpoint and self.deployment and self.resolved_key())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
