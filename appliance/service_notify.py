"""Telling systemd how the service is doing (``Type=notify``), when run under it.

The protocol is one datagram per message to the socket named in ``NOTIFY_SOCKET``; a
dependency for that would be larger than the code. Outside systemd every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_S = 0.1


class ServiceNotifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An address starting with "@" is in the abstract namespace.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        self.watchdog_s: float | None = None
        if watchdog_usec.isdigit() and (not watchdog_pid or watchdog_pid == str(os.getpid())):
            self.watchdog_s = int(watchdog_usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, message: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # Never wait long: a reader that stopped reading (its queue of datagrams
                # full) must not hold up the service, least of all its shutdown.
                sock.settimeout(NOTIFY_TIMEOUT_S)
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as exc:
            # systemd gone (shutting down) or a wrong path: the service still works.
            log.debug("could not notify systemd: %s", exc)

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")
