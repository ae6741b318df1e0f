"""Where the page is served."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Serve the page and its API on the LAN.")
    host: str = Field(
        default="0.0.0.0",
        min_length=1,
        description="Address to listen on (0.0.0.0: every interface, so phones on the LAN "
        "can reach it; 127.0.0.1: this device only).",
    )
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port (0: any free one).")
    timeline_minutes: int = Field(
        default=5, ge=1, le=60, description="How much mood history the page shows."
    )
