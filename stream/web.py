"""The alert feed over HTTP, served by the worker: REST, Server-Sent Events and the operations page.

    GET  /                               the operations page (static HTML + JS, no build step)
    GET  /api/alerts                     list: ?state=open,acknowledged &asset= &fault= &severity= &site= &limit= &offset=
    GET  /api/alerts/{id}                one alert with its evidence and history
    POST /api/alerts/{id}/acknowledge    needs ``Authorization: Bearer TOKEN``; body {"by": "...", "note": "..."}
    POST /api/alerts/{id}/resolve        the same
    GET  /api/events                     SSE: "snapshot" (open alerts) then one "alert" event per change
    GET  /api/health                     liveness of the worker and its counters

Acknowledge and resolve do not touch the database: they send an AlertCommand to the
control topic, where the aggregation applies it to its state and publishes the
resulting alert change like any other (so escalation logic and the database agree).
They answer 202 with the command id; the change arrives on the SSE stream.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from forewarn.contracts import AlertCommand, AlertState
from stream.control import Command, encode_control
from stream.feed import AlertHub
from stream.sink import AsyncSink
from stream.store import AlertQuery

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
SSE_KEEPALIVE_S = 15.0
MAX_PAGE = 500
STATES = {s.value for s in AlertState}

CommandSender = Callable[[str, bytes], Awaitable[None]]
"""send(asset_id, encoded control message) onto the control topic."""


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def _http(status: int, message: str) -> web.HTTPException:
    error_class = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 404: web.HTTPNotFound, 409: web.HTTPConflict}
    return error_class.get(status, web.HTTPInternalServerError)(
        text=json.dumps({"error": message}), content_type="application/json"
    )


class FeedApi:
    """Request handlers; everything they need is passed in (no globals, no settings reads)."""

    def __init__(
        self, sink: AsyncSink, hub: AlertHub, send_command: CommandSender, token: str, stats: Callable[[], dict[str, Any]]
    ) -> None:
        self.sink = sink
        self.hub = hub
        self.send_command = send_command
        self.token = token
        self.stats = stats

    def routes(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.add_routes(
            [
                web.get("/", self.index),
                web.get("/api/alerts", self.list_alerts),
                web.get("/api/alerts/{alert_id}", self.get_alert),
                web.post("/api/alerts/{alert_id}/acknowledge", self.acknowledge),
                web.post("/api/alerts/{alert_id}/resolve", self.resolve),
                web.get("/api/events", self.events),
                web.get("/api/health", self.health),
            ]
        )
        return app

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok", "sse_clients": self.hub.clients, **self.stats()})

    async def list_alerts(self, request: web.Request) -> web.Response:
        q = request.query
        states = tuple(s for s in q.get("state", "").split(",") if s and s != "all")
        if any(s not in STATES for s in states):
            raise _http(400, f"state must be a comma-separated subset of {sorted(STATES)} or 'all'")
        try:
            limit = min(int(q.get("limit", "100")), MAX_PAGE)
            offset = int(q.get("offset", "0"))
        except ValueError as exc:
            raise _http(400, "limit and offset must be integers") from exc
        if limit < 1 or offset < 0:
            raise _http(400, "limit must be >= 1 and offset >= 0")
        query = AlertQuery(
            states=states,
            asset_id=q.get("asset"),
            site=q.get("site"),
            fault=q.get("fault"),
            severity=q.get("severity"),
            limit=limit,
            offset=offset,
        )
        alerts, total = await self.sink.list_alerts(query)
        return _json({"alerts": alerts, "total": total, "limit": limit, "offset": offset})

    async def get_alert(self, request: web.Request) -> web.Response:
        alert = await self.sink.get_alert(request.match_info["alert_id"])
        if alert is None:
            raise _http(404, f"no alert {request.match_info['alert_id']!r}")
        return _json(alert)

    async def acknowledge(self, request: web.Request) -> web.Response:
        return await self._command(request, "acknowledge")

    async def resolve(self, request: web.Request) -> web.Response:
        return await self._command(request, "resolve")

    async def _command(self, request: web.Request, action: str) -> web.Response:
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            raise _http(401, "acknowledge and resolve need 'Authorization: Bearer <token>' with the feed's API token")
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except (json.JSONDecodeError, ValueError) as exc:
                raise _http(400, "the body must be a JSON object") from exc
            if not isinstance(body, dict):
                raise _http(400, "the body must be a JSON object")
        try:
            command = AlertCommand(
                id=body.get("command_id") or uuid.uuid4().hex,
                alert_id=request.match_info["alert_id"],
                action=action,
                by=str(body.get("by") or "operator"),
                note=body.get("note"),
                ts=time.time(),
            )
        except ValidationError as exc:
            raise _http(400, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
        if command.alert_id.count(":") < 2:
            raise _http(400, f"{command.alert_id!r} is not an alert id (asset:fault:opened_ms)")
        await self.send_command(command.asset_id, encode_control(Command(command=command)))
        log.info("%s of %s by %s accepted (command %s)", action, command.alert_id, command.by, command.id)
        return _json({"command_id": command.id, "alert_id": command.alert_id, "action": action, "status": "accepted"}, 202)

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        queue = self.hub.subscribe()  # subscribe before the snapshot: nothing falls between the two
        try:
            alerts, _ = await self.sink.list_alerts(AlertQuery(states=("open", "acknowledged"), limit=MAX_PAGE))
            await response.write(_sse("snapshot", {"alerts": alerts}))
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if item is None:
                    break
                await response.write(_sse("alert", item, event_id=f"{item['id']}@{item['revision']}"))
        except ConnectionResetError:
            pass  # the client went away
        finally:
            self.hub.unsubscribe(queue)
        return response


def _sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()
