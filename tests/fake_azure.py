"""A local HTTP server that speaks the Azure OpenAI chat completions wire protocol.

Real HTTP on 127.0.0.1, for the official ``openai`` client, unmodified: deployment
paths, ``api-version``, the ``api-key`` header, JSON error bodies, streaming chunks as
server-sent events. It can be told to answer 429 with Retry-After, 500, hang, or send
malformed or failing chunks, one behaviour per request, in order. It accepts one key,
``api_key`` (``API_KEY`` unless told; change it to have the key in use refused: 401).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

API_KEY = "test-key-not-a-secret"
DEPLOYMENT = "story-gpt"
VISION_DEPLOYMENT = "vision-gpt"

Reply = Callable[[dict[str, Any]], str]


VISION_ANSWER = {
    "angry": 0.02,
    "disgust": 0.0,
    "fear": 0.03,
    "happy": 0.85,
    "sad": 0.02,
    "surprise": 0.05,
    "neutral": 0.03,
}


def default_reply(body: dict[str, Any]) -> str:
    """A story passage; for a request with a picture, the expression JSON."""
    content = (body.get("messages") or [{}])[-1].get("content")
    if isinstance(content, list):
        return json.dumps(VISION_ANSWER)
    return (
        "The little fox found a warm lantern glowing under the old oak tree. "
        "Its light danced over the water and showed a path of smooth stones. "
        "Pip followed the stones, humming a song his mother used to sing."
    )


@dataclass
class Recorded:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    """When the request arrived (time.monotonic())."""


@dataclass
class FakeAzure:
    """Start with ``start()``; ``behaviours`` are consumed one per request ('ok' after)."""

    reply: Reply = default_reply
    behaviours: deque[str] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    hang_s: float = 30.0
    api_key: str = API_KEY
    break_at_word: int = 3
    """Where a malformed, failing or stalled stream breaks: before this word of the reply
    (3: inside its first sentence; past a sentence's end: after whole sentences went out)."""

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def queue(self, *behaviours: str) -> None:
        self.behaviours.extend(behaviours)

    def start(self) -> FakeAzure:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                fake._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # -- protocol -------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        self.requests.append(
            Recorded(url.path, parse_qs(url.query), dict(handler.headers.items()), body)
        )
        problem = self._refusal(handler, url.path, parse_qs(url.query))
        if problem is not None:
            return self._error(handler, *problem)
        self._answer(handler, body, self.behaviours.popleft() if self.behaviours else "ok")
        return None

    def _answer(
        self, handler: BaseHTTPRequestHandler, body: dict[str, Any], behaviour: str
    ) -> None:
        if behaviour.startswith("429"):
            seconds = behaviour.partition(":")[2] or "1"
            return self._error(
                handler,
                429,
                "429",
                "Requests to the ChatCompletions_Create Operation have exceeded the rate limit.",
                headers={"retry-after": seconds},
            )
        if behaviour == "500":
            return self._error(handler, 500, "InternalServerError", "The server had an error.")
        if behaviour == "hang":
            time.sleep(self.hang_s)
            return self._error(handler, 504, "Timeout", "too late")
        text = self.reply(body)
        if not body.get("stream"):
            return self._json(handler, 200, self._completion(body, text))
        return self._stream(handler, body, text, behaviour)

    def _refusal(
        self, handler: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]
    ) -> tuple[int, str, str] | None:
        """What Azure answers to a wrong path, a missing api-version, a bad key or an
        unknown deployment; None when the request is fine."""
        parts = path.strip("/").split("/")
        shape = len(parts) == 5 and parts[:2] == ["openai", "deployments"]
        if not shape or parts[3:] != ["chat", "completions"] or "api-version" not in query:
            return 404, "404", "Resource not found"
        if handler.headers.get("api-key") != self.api_key:
            return (
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint.",
            )
        if parts[2] not in {DEPLOYMENT, VISION_DEPLOYMENT}:
            return 404, "DeploymentNotFound", "The API deployment for this resource does not exist."
        return None

    def _completion(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }

    def _stream(
        self, handler: BaseHTTPRequestHandler, body: dict[str, Any], text: str, behaviour: str
    ) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("connection", "close")
        handler.end_headers()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        try:
            handler.wfile.write(chunk({"role": "assistant", "content": ""}))
            pieces = text.split(" ")
            for index, word in enumerate(pieces):
                if behaviour == "malformed" and index == self.break_at_word:
                    handler.wfile.write(b'data: {"id": "chatcmpl-fake", "choices": [{"delt\n\n')
                    handler.wfile.flush()
                    return
                if behaviour == "error-midstream" and index == self.break_at_word:
                    error = {"error": {"code": "server_error", "message": "stream interrupted"}}
                    handler.wfile.write(f"data: {json.dumps(error)}\n\n".encode())
                    handler.wfile.flush()
                    return
                if behaviour == "stall-midstream" and index == self.break_at_word:
                    handler.wfile.flush()
                    time.sleep(self.hang_s)
                    return
                handler.wfile.write(chunk({"content": word if index == 0 else " " + word}))
                handler.wfile.flush()
            handler.wfile.write(chunk({}, finish="stop"))
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    def _json(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _error(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._json(handler, status, {"error": {"code": code, "message": message}}, headers)
