"""What one LAN client may hold of the device's connections.

uvicorn closes an idle keep-alive connection only after a first response, and the TCP
user timeout fires only on unacknowledged data: a client that connects and never sends a
byte (or trickles its request headers) would hold its socket, and its file descriptor,
for ever. A few hundred of those from one host made every page answer 503, and past the
open-files limit the camera could no longer be opened. So every connection here must
finish sending its request headers within ``header_timeout_s`` (after connecting, and
again after each response), each client address may hold ``max_per_address``
connections and the server ``max_total``; past those a connection is answered at once
(429 or 503, ``Connection: close``) and closed, so it costs the device nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10


def refusal(status: int, reason: str) -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n"
        f"Retry-After: {RETRY_AFTER_S}\r\n\r\n"
    ).encode()


@dataclass
class ConnectionBudget:
    """Counts shared by every connection of one server (all on its event loop)."""

    max_total: int
    max_per_address: int
    header_timeout_s: float
    by_address: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    closed_silent: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_address.values())

    def admit(self, address: str) -> bytes | None:
        """None when ``address`` may open one more connection (now counted), else the
        answer to close it with."""
        if self.by_address[address] >= self.max_per_address:
            answer = refusal(429, "Too Many Requests")
        elif self.total >= self.max_total:
            answer = refusal(503, "Service Unavailable")
        else:
            self.by_address[address] += 1
            return None
        self.refused += 1
        if self.refused == 1 or self.refused % 1000 == 0:
            log.warning(
                "connection refused (%d from one address at most, %d in all; %d refused so far)",
                self.max_per_address,
                self.max_total,
                self.refused,
            )
        return answer

    def release(self, address: str) -> None:
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def describe(self) -> dict[str, int]:
        return {
            "connections": self.total,
            "refused": self.refused,
            "closed_silent": self.closed_silent,
        }


def guarded_h11(budget: ConnectionBudget) -> type[H11Protocol]:
    """uvicorn's h11 protocol, held to ``budget``."""

    class GuardedH11Protocol(H11Protocol):
        admitted_from: str | None = None
        deadline: asyncio.TimerHandle | None = None
        armed_for: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = self.client[0] if self.client else "unknown"
            answer = budget.admit(address)
            if answer is not None:
                transport.write(answer)
                transport.close()
                return
            self.admitted_from = address
            self.arm()

        def arm(self) -> None:
            """The next request's headers must arrive within the timeout."""
            if self.deadline is not None:
                self.deadline.cancel()
            self.armed_for = self.cycle
            self.deadline = self.loop.call_later(budget.header_timeout_s, self.on_deadline)

        def on_deadline(self) -> None:
            self.deadline = None
            waiting = self.cycle is None or self.cycle.response_complete
            if self.cycle is self.armed_for and waiting and not self.transport.is_closing():
                budget.closed_silent += 1
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self.arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None
            if self.admitted_from is not None:
                budget.release(self.admitted_from)
                self.admitted_from = None
            super().connection_lost(exc)

    return GuardedH11Protocol
