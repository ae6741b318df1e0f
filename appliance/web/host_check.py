"""Answer only to the device's own names: a defence against DNS rebinding.

A web page any LAN user visits can point a name of its own at the device's address
(DNS rebinding); the browser then lets that page read the device's answers, the reader's
moods and presence included, and send them anywhere. Such a request still carries the
attacker's name in ``Host:``, so only IP literals, ``localhost``, ``*.local`` (mDNS, the
LAN's own names), the device's host name and the names in ``web.allowed_hosts`` are
answered; any other name gets 421 Misdirected Request.
"""

from __future__ import annotations

import ipaddress
import socket

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from appliance.web.refusals import refuse


def host_name(host_header: str) -> str:
    """The name or address in a ``Host:`` value, without the port, lower case."""
    value = host_header.strip().lower()
    if value.startswith("["):  # [IPv6]:port
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def device_names(extra: list[str] | tuple[str, ...] = ()) -> frozenset[str]:
    hostname = socket.gethostname().lower()
    # "moodtale": the name the installer gives the device and Avahi announces.
    names = {hostname, hostname.split(".", 1)[0], "localhost", "moodtale"}
    names.update(name.lower().rstrip(".") for name in extra)
    return frozenset(name for name in names if name)


def name_allowed(name: str, allowed: frozenset[str]) -> bool:
    return is_ip_literal(name) or name in allowed or name.endswith((".local", ".localhost"))


class HostAllowlist:
    """421 for a request whose ``Host:`` is not one of the device's own names."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("host")
        # (HTTP/1.0 may send no Host at all; a browser always sends one.)
        if given is None or name_allowed(host_name(given), self.allowed):
            await self.app(scope, receive, send)
            return
        self.refused += 1
        await refuse(
            send,
            421,
            "this device answers only to its own names and addresses "
            "(add a name to web.allowed_hosts to use it)",
        )
