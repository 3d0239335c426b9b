"""The console's web server (Starlette on uvicorn): the page, its JSON API, server-sent events and images.

    GET /                      the page (plain HTML + JS from `static/`)
    GET /api/alerts?limit=N    recent alerts, newest first (optional camera=, event=)
    GET /api/cameras           cameras: status, fps, drops, live view, metrics endpoint
    GET /api/events            server-sent events: `alert` (id = stream id; resumes after Last-Event-ID),
                               `cameras` (every second), `redis` ({"ok": bool, "error": str})
    GET /live/<camera>.jpg     the camera's latest annotated frame (header X-Frame-Index: its frame number)
    GET /favicon.ico           the page's icon
    GET /snapshots/<id>        a snapshot's reduced frame; /snapshots/<id>/chip its chip

Missing pictures answer 404 with an SVG placeholder that says why; Redis down answers 503 (API: one JSON line,
page: a banner), and every request tries Redis again, so the console recovers by itself.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
from html import escape
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.config import redact_url
from pipeline.ui.store import CAMERA, SNAPSHOT_ID, ConsoleStore

log = logging.getLogger("pipeline.ui")

STATIC = Path(__file__).with_name("static")
BACKLOG = 100  # alerts sent to a page when it connects
MAX_LIMIT = 1000
NO_CACHE = {"Cache-Control": "no-store"}
RETRY = ExponentialBackoff(cap=5.0, base=0.5)  # seconds between tries while Redis is down


ICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
        b'fill="#1f2630"/><circle cx="8" cy="8" r="4" fill="none" stroke="#3fd35a" stroke-width="1.5"/>'
        b'<circle cx="8" cy="8" r="1" fill="#ff4d4d"/></svg>')


def placeholder(text: str, width: int = 320, height: int = 240) -> bytes:
    """A grey SVG saying `text`: what an <img> shows instead of a missing picture."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<rect width="100%" height="100%" fill="#2a2e35"/>'
            f'<text x="50%" y="50%" fill="#c9d1d9" font-family="sans-serif" font-size="14" text-anchor="middle" '
            f'dominant-baseline="middle">{escape(text)}</text></svg>').encode()


def _reason(e: Exception) -> str:
    return redact_url(str(e).splitlines()[0] if str(e) else type(e).__name__)


def _redis_down(e: Exception) -> JSONResponse:
    return JSONResponse({"error": f"redis unreachable: {_reason(e)}"}, status_code=503, headers=NO_CACHE)


def _image(data: bytes | None, missing: str, media_type: str = "image/jpeg") -> Response:
    if data is None:
        return Response(placeholder(missing), status_code=404, media_type="image/svg+xml", headers=NO_CACHE)
    return Response(data, media_type=media_type, headers=NO_CACHE)


def _sse(event: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def build_app(store: ConsoleStore, token: str | None = None) -> Any:
    """The ASGI app; with `token`, every request needs `Authorization: Bearer <token>` or basic auth whose
    password is the token (what a browser's login prompt sends)."""

    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=NO_CACHE)

    async def api_alerts(request: Request) -> Response:
        raw = request.query_params.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            return JSONResponse({"error": f"limit must be an integer from 1 to {MAX_LIMIT}"}, status_code=400)
        try:
            alerts = await store.recent(int(raw), request.query_params.get("camera") or None,
                                        request.query_params.get("event") or None)
        except (redis.RedisError, OSError) as e:
            return _redis_down(e)
        return JSONResponse([a.alert for a in alerts], headers=NO_CACHE)

    async def api_cameras(_: Request) -> Response:
        try:
            return JSONResponse(await store.cameras(), headers=NO_CACHE)
        except (redis.RedisError, OSError) as e:
            return _redis_down(e)

    async def live(request: Request) -> Response:
        camera = request.path_params["camera"]
        if not CAMERA.match(camera):
            return _image(None, "unknown camera")
        try:
            jpeg, index = await store.live_frame(camera)
        except (redis.RedisError, OSError):
            return Response(placeholder("Redis unreachable"), status_code=503, media_type="image/svg+xml")
        response = _image(jpeg, "no live view")
        if jpeg is not None and index is not None:
            response.headers["X-Frame-Index"] = str(index)  # the page's caption names the frame it shows
        return response

    async def snapshot(request: Request) -> Response:
        sid, part = request.path_params["sid"], request.path_params.get("part", "frame")
        if not SNAPSHOT_ID.match(sid) or part not in ("frame", "chip"):
            return _image(None, "no such snapshot")
        size = (96, 96) if part == "chip" else (320, 240)
        try:
            data = await store.snapshot(sid, part)
        except (redis.RedisError, OSError):
            return Response(placeholder("Redis unreachable", *size), status_code=503, media_type="image/svg+xml")
        if data is None:
            text = "expired" if part == "chip" else "snapshot expired or missing"
            return Response(placeholder(text, *size), status_code=404, media_type="image/svg+xml", headers=NO_CACHE)
        return _image(data, "")

    async def favicon(_: Request) -> Response:
        return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    async def events(request: Request) -> Response:
        return StreamingResponse(_event_stream(store, request.headers.get("last-event-id")),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    routes = [
        Route("/", index),
        Route("/api/alerts", api_alerts),
        Route("/api/cameras", api_cameras),
        Route("/api/events", events),
        Route("/favicon.ico", favicon),
        Route("/live/{camera}.jpg", live),
        Route("/snapshots/{sid}", snapshot),
        Route("/snapshots/{sid}/{part}", snapshot),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app: Any = Starlette(routes=routes)
    return RequireToken(app, token) if token else app


async def _event_stream(store: ConsoleStore, last_event_id: str | None):
    """Backlog (or what followed `last_event_id`), then every new alert as it is added; camera figures every
    second; Redis outages announced, retried with capped backoff, and their end announced."""
    yield "retry: 2000\n\n"
    cursor = last_event_id if last_event_id and len(last_event_id) < 64 else None
    redis_ok: bool | None = None
    failures = 0
    next_cameras = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            if redis_ok is not True:
                await store.ping()
                redis_ok, failures = True, 0
                yield _sse("redis", {"ok": True})
            if cursor is None:
                backlog = await store.recent(BACKLOG)
                cursor = backlog[0].id if backlog else "0-0"
                for a in reversed(backlog):
                    yield _sse("alert", a.alert, a.id)
            if loop.time() >= next_cameras:
                yield _sse("cameras", await store.cameras())
                next_cameras = loop.time() + 1.0
            for a in await store.follow(cursor, block_ms=500):
                cursor = a.id
                if a.alert:
                    yield _sse("alert", a.alert, a.id)
        except (redis.RedisError, OSError) as e:
            if redis_ok is not False:
                yield _sse("redis", {"ok": False, "error": f"Redis unreachable: {_reason(e)}"})
            else:
                yield ": still down\n\n"  # keeps the connection checked
            redis_ok = False
            await asyncio.sleep(RETRY.compute(failures))
            failures += 1


class RequireToken:
    """ASGI middleware: 401 (with a basic-auth challenge) unless the request carries the token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    def _ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), self.token)
        if scheme.lower() == "basic":
            try:
                _, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(password.encode(), self.token)
        return False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not self._ok(header):
                response = Response("authentication required\n", status_code=401, media_type="text/plain",
                                    headers={"WWW-Authenticate": 'Basic realm="ITD console", charset="UTF-8"'})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
