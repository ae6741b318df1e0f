"""The page's listening socket, set so that a client cannot make the device hold much."""

from __future__ import annotations

import contextlib
import socket

from appliance.web.settings import WebSettings

SEND_BUFFER_BYTES = 64 * 1024
"""Kernel send buffer per connection (Linux doubles it): plenty for the page and its
event stream on a LAN, and a client that stops reading ties up at most this much kernel
memory (autotuning would let it grow to megabytes)."""
BACKLOG = 128


def listening_socket(web: WebSettings) -> socket.socket:
    """Bound and listening, non-blocking; accepted connections inherit its options."""
    family = socket.AF_INET6 if ":" in web.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux: the device; elsewhere, skipped
            # Data unacknowledged for this long (a peer gone, or one whose window stays
            # shut because it never reads) ends the connection; the server then frees it.
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.IPPROTO_TCP,
                    socket.TCP_USER_TIMEOUT,
                    int(web.stalled_client_s * 1000),
                )
        sock.bind((web.host, web.port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"cannot serve the page on {web.host}:{web.port}: {exc}") from exc
    sock.setblocking(False)
    return sock
