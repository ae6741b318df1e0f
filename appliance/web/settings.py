"""Where the page is served, and how much of the device a LAN client may hold."""

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
    max_event_clients: int = Field(
        default=64,
        ge=1,
        le=1000,
        description="Live pages (event streams) served at once; one more is refused with "
        "429 and Retry-After until one closes, and the rest of the API still answers.",
    )
    stalled_client_s: float = Field(
        default=30.0,
        ge=1.0,
        le=600.0,
        description="A client that reads nothing for this long while the device has data "
        "for it is disconnected (TCP user timeout); a page reconnects by itself.",
    )
    max_event_clients_per_address: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="Live pages served at once to one client address (a phone, a laptop): "
        "one host cannot lock the others out.",
    )
    max_connections: int = Field(
        default=256,
        ge=8,
        le=4096,
        description="Open connections in all; one more is answered 503 and closed at once.",
    )
    max_connections_per_address: int = Field(
        default=32,
        ge=2,
        le=4096,
        description="Open connections from one client address; one more is answered 429 "
        "and closed at once.",
    )
    header_timeout_s: float = Field(
        default=5.0,
        ge=0.5,
        le=120.0,
        description="A connection that has not sent its request headers this long after "
        "connecting (or after its last answer) is closed: idle sockets hold nothing.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Names the page may be reached by besides IP addresses, localhost, "
        "*.local and this device's host name (DNS rebinding: any other Host: gets 421).",
    )
