"""The LAN web page and its API: ``create_app(view, hub, token)``.

Everything here is read-only except the story controls, which need the device token
(``Authorization: Bearer <token>``), compared in constant time. The app holds no state
of its own: what it shows comes from the ``ApplianceView`` on ``app.state``.

Any phone on the LAN may be slow, broken or hostile, so what one client can hold is
bounded: a request body (none of the endpoints takes one) past ``MAX_BODY_BYTES`` is
refused with 413 as soon as that is known and never kept; live event streams are capped
(``web.max_event_clients``: one more gets 429 with Retry-After, never uvicorn's 503); an
event-stream client that falls behind is dropped by the hub, and one that stops reading
is disconnected by the kernel (see ``listen.py``). What a client gets wrong is answered
with a 4xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, Security
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.device_token import token_matches
from appliance.web.event_hub import EventHub
from appliance.web.host_check import HostAllowlist, device_names
from appliance.web.refusals import refuse

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    # The page's own script and style only: no inline script, no CDN.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

MAX_BODY_BYTES = 16 * 1024
"""No endpoint takes a request body: a larger one is refused (413) without being kept."""
EVENTS_PATH = "/api/events"
DEFAULT_MAX_EVENT_CLIENTS = 64
DEFAULT_MAX_EVENT_CLIENTS_PER_ADDRESS = 4
EVENTS_RETRY_AFTER_S = 10
"""What a refused event-stream client is told to wait before trying again (the page's
app.js waits as long)."""
KEEPALIVE_S = 15.0
"""A comment on an event stream that has had nothing for this long."""


def sse_event(kind: str, data: str) -> bytes:
    """One server-sent event; ``data`` is one line (compact JSON)."""
    return f"event: {kind}\ndata: {data}\n\n".encode()


# -- what the API answers (so that the OpenAPI schema says something) -----------------------


class Problem(BaseModel):
    detail: str = Field(description="What was wrong with the request, in a sentence.")


class Health(BaseModel):
    ok: bool = Field(description="Every worker (camera, perception, story) is running.")
    detail: str = Field(description="Which workers are not running, when one is not.")


class PauseState(BaseModel):
    paused: bool = Field(description="Whether the story is now paused from the page.")


class NewStoryRequested(BaseModel):
    requested: bool = Field(description="A new story begins once the current turn stops.")


class TurnView(BaseModel):
    model_config = ConfigDict(extra="allow")

    idx: int
    text: str
    mood_label: str | None = Field(description="The mood the turn answered.")
    backend: str | None = Field(description="Which story backend wrote it.")


class StoryView(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    premise: str
    genre: str
    audience: str
    turns: list[TurnView] = Field(description="The turns told so far, oldest first.")


class StatusView(BaseModel):
    model_config = ConfigDict(extra="allow")

    camera: dict[str, Any]
    perception: dict[str, Any]
    mood: dict[str, Any]
    story: dict[str, Any]
    speech: dict[str, Any]
    workers: dict[str, Any]
    web: dict[str, Any]
    problems: list[str] = Field(description="What needs attention, in sentences.")
    uptime_s: float


class ApplianceView(Protocol):
    """What the page sees of the appliance, and the few things it may ask of it."""

    def status(self) -> dict[str, Any]: ...
    def story(self) -> dict[str, Any]: ...
    def snapshot(self) -> dict[str, Any]:
        """Recent state for a client that just connected: the mood timeline, the turn
        being written."""
        ...

    def new_story(self) -> dict[str, Any]: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def healthy(self) -> tuple[bool, str]: ...
    def audio_clip(self, seq: int) -> bytes | None:
        """A sentence's WAV, while it is kept (the last few), for a page that listens."""
        ...


# -- pure ASGI middleware (no buffering of streamed responses) ------------------------------


class SecurityHeaders:
    """The page's security headers on every answer, streamed ones included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413, never holding more than that
    of it: at once when Content-Length says so; a chunked body is read (up to
    ``max_bytes``, then refused) before the app sees the request. What follows a refusal
    is thrown away as it comes, briefly (see ``refuse``), and the connection closed."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else Headers()
        declared = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if declared is None and not chunked:
            await self.app(scope, receive, send)  # no body (or not HTTP)
        elif declared is not None and not declared.isdigit():
            # (h11 refuses these first; another server might not.)
            await refuse(send, 400, "Content-Length is not a number")
        elif declared is not None and (len(declared) > 12 or int(declared) > self.max_bytes):
            # A client waiting for "100 Continue" sends nothing more: nothing to throw away.
            waiting = headers.get("expect", "").lower() == "100-continue"
            await refuse(send, 413, self.too_large, discard=None if waiting else receive)
        elif declared is not None:
            await self.app(scope, receive, send)
        else:
            await self.read_chunked(scope, receive, send)

    @property
    def too_large(self) -> str:
        return f"a request body may be at most {self.max_bytes} bytes"

    async def read_chunked(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.max_bytes:
                await refuse(send, 413, self.too_large, discard=receive if more else None)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class EventStreamCap:
    """At most ``max_clients`` live event streams, and ``max_per_address`` from one client
    address (so one host cannot lock every phone out); one more is refused with 429 and
    Retry-After (uvicorn's own connection limit, above this, would answer 503)."""

    def __init__(
        self,
        app: ASGIApp,
        max_clients: int = DEFAULT_MAX_EVENT_CLIENTS,
        max_per_address: int = DEFAULT_MAX_EVENT_CLIENTS_PER_ADDRESS,
    ) -> None:
        self.app = app
        self.max_clients = max_clients
        self.max_per_address = max_per_address
        self.by_address: Counter[str] = Counter()
        self.refused = 0

    @property
    def active(self) -> int:
        return sum(self.by_address.values())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != EVENTS_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        if self.by_address[address] >= self.max_per_address:
            detail = f"{self.max_per_address} live pages are open from this address already"
        elif self.active >= self.max_clients:
            detail = f"{self.max_clients} live pages are open already"
        else:
            detail = ""
        if detail:
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                log.warning(
                    "%d live pages already: event stream refused (%d so far)",
                    self.active,
                    self.refused,
                )
            await refuse(
                send,
                429,
                f"{detail}; try again later",
                {"Retry-After": str(EVENTS_RETRY_AFTER_S)},
            )
            return
        self.by_address[address] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.by_address[address] -= 1
            if self.by_address[address] <= 0:
                del self.by_address[address]


# -- the app ----------------------------------------------------------------------------------

bearer = HTTPBearer(
    auto_error=False,
    description="The device token: `moodtale doctor` prints it; the install prints it too.",
)
PROBLEM = {"model": Problem}
CONTROL_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**PROBLEM, "description": "A request body was sent: these take none."},
    401: {**PROBLEM, "description": "The device token is missing or wrong."},
    413: {**PROBLEM, "description": "The request body is too large (it is not kept)."},
}


def create_app(
    view: ApplianceView,
    hub: EventHub,
    token: str,
    *,
    max_event_clients: int = DEFAULT_MAX_EVENT_CLIENTS,
    max_event_clients_per_address: int = DEFAULT_MAX_EVENT_CLIENTS_PER_ADDRESS,
    allowed_hosts: tuple[str, ...] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Live events are delivered on the server's own loop.
        hub.attach(asyncio.get_running_loop())
        yield
        hub.close()

    app = FastAPI(
        title="Moodtale", version="0.1.0", docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.view = view
    app.state.hub = hub
    app.state.token = token
    static = resources.files("appliance.web") / "static"
    # Added innermost first: every answer, the middleware's own refusals included, gets
    # the security headers.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(
        EventStreamCap,
        max_clients=max_event_clients,
        max_per_address=max_event_clients_per_address,
    )
    app.add_middleware(HostAllowlist, allowed=device_names(allowed_hosts))
    app.add_middleware(SecurityHeaders)

    def require_token(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> None:
        given = credentials.credentials if credentials is not None else None
        if not token_matches(given, request.app.state.token):
            raise HTTPException(
                status_code=401,
                detail="this needs the device token (moodtale doctor shows it)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def no_body(request: Request) -> None:
        # (BodyLimit has bounded what this reads.)
        if await request.body():
            raise HTTPException(status_code=400, detail="this takes no request body")

    controls = [Depends(require_token), Depends(no_body)]

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get(
        "/api/health",
        response_model=Health,
        responses={503: {"model": Health, "description": "A worker is not running."}},
    )
    def health(request: Request) -> JSONResponse:
        ok, why = request.app.state.view.healthy()
        return JSONResponse(Health(ok=ok, detail=why).model_dump(), status_code=200 if ok else 503)

    @app.get("/api/status", response_model=StatusView)
    def status(request: Request) -> dict[str, Any]:
        result: dict[str, Any] = request.app.state.view.status()
        return result

    @app.get("/api/story", response_model=StoryView)
    def story(request: Request) -> dict[str, Any]:
        result: dict[str, Any] = request.app.state.view.story()
        return result

    @app.get(
        EVENTS_PATH,
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-sent events: `hello` (where things stand), then "
                "every live event; a `: ping` comment when nothing has happened for a while.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            429: {
                "description": "Too many live pages are open; try again after Retry-After.",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                # (Problem is in the schema's components: the controls answer it.)
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            },
        },
    )
    async def events(
        request: Request,
        listen: Annotated[
            bool,
            Query(
                description="The page listens to the narration: it also gets an `audio` "
                "event as each sentence starts (its WAV at the event's `url`)."
            ),
        ] = False,
    ) -> StreamingResponse:
        # The stream begins with where things stand, then carries every live event.
        # (A plain stream, not FastAPI's EventSourceResponse, whose relay tasks fail
        # noisily when a client that stopped reading is disconnected.)
        snapshot = json.dumps(request.app.state.view.snapshot())
        hub: EventHub = request.app.state.hub

        async def stream() -> AsyncIterator[bytes]:
            yield sse_event("hello", snapshot)
            async for event in hub.subscribe(idle_s=KEEPALIVE_S, listening=listen):
                if event is None:
                    yield b": ping\n\n"
                else:
                    yield sse_event(event.kind, json.dumps(event.data))

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/api/audio/{seq}.wav",
        response_class=Response,
        responses={
            200: {
                "description": "One sentence of the narration, as a WAV file.",
                "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
            },
            404: {**PROBLEM, "description": "No such sentence, or no longer kept."},
        },
    )
    def audio(request: Request, seq: Annotated[int, FastApiPath(ge=1, le=2**53)]) -> Response:
        wav = request.app.state.view.audio_clip(seq)
        if wav is None:
            return JSONResponse(
                Problem(detail="no such sentence, or no longer kept").model_dump(),
                status_code=404,
            )
        return Response(wav, media_type="audio/wav", headers={"Cache-Control": "no-store"})

    @app.post(
        "/api/story/new",
        response_model=NewStoryRequested,
        dependencies=controls,
        responses=CONTROL_ERRORS,
    )
    def new_story(request: Request) -> dict[str, Any]:
        result: dict[str, Any] = request.app.state.view.new_story()
        return result

    @app.post(
        "/api/story/pause",
        response_model=PauseState,
        dependencies=controls,
        responses=CONTROL_ERRORS,
    )
    def pause(request: Request) -> PauseState:
        request.app.state.view.pause()
        return PauseState(paused=True)

    @app.post(
        "/api/story/resume",
        response_model=PauseState,
        dependencies=controls,
        responses=CONTROL_ERRORS,
    )
    def resume(request: Request) -> PauseState:
        request.app.state.view.resume()
        return PauseState(paused=False)

    return app
