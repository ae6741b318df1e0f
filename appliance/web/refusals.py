"""Answers the web middleware gives itself, before (or instead of) the app."""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.types import Receive, Send

LINGER_S = 2.0
LINGER_BYTES = 32 * 1024 * 1024
"""After a 413, the rest of the body is thrown away for up to this long, this much."""


async def refuse(
    send: Send,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    discard: Receive | None = None,
) -> None:
    """A JSON error answered by the middleware itself, then the connection is closed.

    With ``discard``, what the client is still sending of its body is read and thrown
    away for a moment (``LINGER_S``, ``LINGER_BYTES``) after the answer has gone out:
    closing a socket with unread data resets the connection, and the client would see
    that instead of the answer (a client that reads as it sends sees it at once)."""
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    if discard is None:
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.body", "body": body, "more_body": True})
    thrown_away = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LINGER_S):
            while thrown_away < LINGER_BYTES:
                message = await discard()
                if message["type"] != "http.request":
                    break  # the client has gone
                thrown_away += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
    await send({"type": "http.response.body", "body": b""})
