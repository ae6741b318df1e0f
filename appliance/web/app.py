"""The LAN web page and its API: ``create_app(view, hub, token)``.

Everything here is read-only except the story controls, which need the device token
(``Authorization: Bearer <token>``), compared in constant time. The app holds no state
of its own: what it shows comes from the ``ApplianceView`` on ``app.state``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Protocol

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles

from appliance.device_token import token_matches
from appliance.web.event_hub import EventHub

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


def create_app(view: ApplianceView, hub: EventHub, token: str) -> FastAPI:
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

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def require_token(request: Request) -> None:
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else None
        if not token_matches(given, request.app.state.token):
            raise HTTPException(
                status_code=401,
                detail="this needs the device token (moodtale doctor shows it)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/api/health")
    def health(request: Request) -> JSONResponse:
        ok, why = request.app.state.view.healthy()
        return JSONResponse({"ok": ok, "detail": why}, status_code=200 if ok else 503)

    @app.get("/api/status")
    def status(request: Request) -> dict[str, Any]:
        result: dict[str, Any] = request.app.state.view.status()
        return result

    @app.get("/api/story")
    def story(request: Request) -> dict[str, Any]:
        result: dict[str, Any] = request.app.state.view.story()
        return result

    @app.get("/api/events", response_class=EventSourceResponse)
    async def events(request: Request) -> AsyncIterator[ServerSentEvent]:
        # The stream begins with where things stand, then carries every live event.
        snapshot = request.app.state.view.snapshot()
        yield ServerSentEvent(event="hello", raw_data=json.dumps(snapshot))
        async for event in request.app.state.hub.subscribe():
            yield ServerSentEvent(event=event.kind, raw_data=json.dumps(event.data))

    @app.post("/api/story/new")
    def new_story(request: Request) -> dict[str, Any]:
        require_token(request)
        result: dict[str, Any] = request.app.state.view.new_story()
        return result

    @app.post("/api/story/pause")
    def pause(request: Request) -> dict[str, Any]:
        require_token(request)
        request.app.state.view.pause()
        return {"paused": True}

    @app.post("/api/story/resume")
    def resume(request: Request) -> dict[str, Any]:
        require_token(request)
        request.app.state.view.resume()
        return {"paused": False}

    return app
