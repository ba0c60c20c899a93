"""The alert feed over HTTP, served by the worker: REST, Server-Sent Events and the operations page.

    GET  /                               the operations page (static HTML + JS, no build step)
    GET  /api/alerts                     list: ?state=open,acknowledged &asset= &fault= &severity= &site= &limit= &offset=
    GET  /api/alerts/{id}                one alert with its evidence and history
    POST /api/alerts/{id}/acknowledge    needs ``Authorization: Bearer TOKEN``; body {"by", "note", "verdict", "found_fault"}
    POST /api/alerts/{id}/resolve        the same
    POST /api/alerts/{id}/shelve         body {"minutes", "reason", "by"}; /unshelve returns it early
    POST /api/assets/{asset}/out-of-service   body {"reason", "by"}; /in-service ends it
    GET  /api/events                     SSE: "snapshot" (open alerts) then one "alert" event per change
    GET  /api/health                     liveness of the worker and its counters
    GET  /api/kpis?hours=24              alarm-system KPIs (stream.kpis)

Acknowledge and resolve do not touch the database: they send an AlertCommand to the
control topic, where the aggregation applies it to its state and publishes the
resulting alert change like any other (so escalation logic and the database agree).
They answer with what happened: 200 and the changed alert once its change comes back
through the feed's tail of ``forewarn.alerts``; 404 for an alert the database does not
know, 409 when there is nothing to do (already resolved, already acknowledged), 504 when
no worker applied it in time. ``{"wait": false}`` in the body: 202 as soon as it is sent.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from forewarn.contracts import AlertCommand, AlertState, AssetCommand
from stream.config import ApiToken
from stream.control import AssetControl, Command, encode_control
from stream.errors import DatabaseError
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
    error_class = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
    }
    return error_class.get(status, web.HTTPInternalServerError)(
        text=json.dumps({"error": message}), content_type="application/json"
    )


class FeedApi:
    """Request handlers; everything they need is passed in (no globals, no settings reads)."""

    def __init__(
        self,
        sink: AsyncSink,
        hub: AlertHub,
        send_command: CommandSender,
        token: str,
        stats: Callable[[], dict[str, Any]],
        wait_s: float = 10.0,
        api_tokens: Sequence[ApiToken] = (),
        read_auth: bool = False,
    ) -> None:
        self.sink = sink
        self.hub = hub
        self.send_command = send_command
        self.stats = stats
        self.wait_s = wait_s
        self.read_auth = read_auth
        # token -> (holder's name or None for the shared token, role)
        self.holders: list[tuple[bytes, str | None, str]] = [(token.encode(), None, "operator")]
        self.holders += [(t.token.get_secret_value().encode(), t.name, t.role) for t in api_tokens]

    def routes(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024, middlewares=[self._guard_reads])
        app.add_routes(
            [
                web.get("/", self.index),
                web.get("/api/alerts", self.list_alerts),
                web.get("/api/alerts/{alert_id}", self.get_alert),
                web.post("/api/alerts/{alert_id}/acknowledge", self.acknowledge),
                web.post("/api/alerts/{alert_id}/resolve", self.resolve),
                web.post("/api/alerts/{alert_id}/shelve", self.shelve),
                web.post("/api/alerts/{alert_id}/unshelve", self.unshelve),
                web.post("/api/assets/{asset_id}/{action:out-of-service|in-service}", self.asset_command),
                web.get("/api/events", self.events),
                web.get("/api/health", self.health),
                web.get("/api/kpis", self.kpis),
            ]
        )
        return app

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def health(self, request: web.Request) -> web.Response:
        """200 while ok or starting; 503 when degraded (the problems say what is wrong)."""
        stats = {"status": "ok", "problems": [], "sse_clients": self.hub.clients, **self.stats()}
        return _json(stats, 503 if stats["status"] == "degraded" else 200)

    async def kpis(self, request: web.Request) -> web.Response:
        try:
            hours = float(request.query.get("hours", "24"))
        except ValueError as exc:
            raise _http(400, "hours must be a number") from exc
        if not 0 < hours <= 24 * 90:
            raise _http(400, "hours must be in (0, 2160]")
        return _json(await self.sink.kpis(hours))

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

    def _holder(self, request: web.Request) -> tuple[str | None, str] | None:
        """(name, role) of the token the request carries (header, or ``access_token`` for EventSource); None: none valid."""
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        given = given or request.query.get("access_token", "")
        found = None
        for token, name, role in self.holders:  # compare with every token: the time says nothing about which matched
            if given and hmac.compare_digest(given.encode(), token):
                found = (name, role)
        return found

    def _authorise(self, request: web.Request) -> str | None:
        """An operator action: 401 without a valid token, 403 with a viewer's; returns the holder's name (if named)."""
        holder = self._holder(request)
        if holder is None:
            raise _http(401, "operator actions need 'Authorization: Bearer <token>' with an operator's token")
        if holder[1] != "operator":
            raise _http(403, f"{holder[0]} is a viewer: acting on alerts needs an operator's token")
        return holder[0]

    @web.middleware
    async def _guard_reads(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """With ``read_auth``, every read of alert data needs a valid token of any role (the page and health do not)."""
        open_paths = ("/", "/api/health")
        if self.read_auth and request.method == "GET" and request.path not in open_paths and self._holder(request) is None:
            raise _http(401, "reading the alert feed needs 'Authorization: Bearer <token>' (or ?access_token=)")
        return await handler(request)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except (json.JSONDecodeError, ValueError) as exc:
                raise _http(400, "the body must be a JSON object") from exc
            if not isinstance(body, dict):
                raise _http(400, "the body must be a JSON object")
        return body

    async def shelve(self, request: web.Request) -> web.Response:
        return await self._command(request, "shelve")

    async def unshelve(self, request: web.Request) -> web.Response:
        return await self._command(request, "unshelve")

    async def _command(self, request: web.Request, action: str) -> web.Response:
        holder = self._authorise(request)
        body = await self._body(request)
        try:
            command = AlertCommand(
                id=body.get("command_id") or uuid.uuid4().hex,
                alert_id=request.match_info["alert_id"],
                action=action,
                by=holder or str(body.get("by") or "operator"),  # a personal token names its holder
                note=body.get("note") or body.get("reason"),
                ts=time.time(),
                verdict=body.get("verdict"),
                found_fault=body.get("found_fault"),
                minutes=body.get("minutes"),
            )
        except ValidationError as exc:
            raise _http(400, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
        if command.alert_id.count(":") < 2:
            raise _http(400, f"{command.alert_id!r} is not an alert id (asset:fault:opened_ms)")
        revision = await self._check_actionable(command)
        answer: dict[str, Any] = {"command_id": command.id, "alert_id": command.alert_id, "action": action}
        if body.get("wait") is False:
            await self.send_command(command.asset_id, encode_control(Command(command=command)))
            log.info("%s of %s by %s sent (command %s)", action, command.alert_id, command.by, command.id)
            return _json(answer | {"status": "accepted"}, 202)
        outcome = await self._send_and_wait(command, revision)
        if outcome is None:
            log.warning("%s of %s by %s: no worker applied it within %.0f s", action, command.alert_id, command.by, self.wait_s)
            message = (
                f"{action} of {command.alert_id} was sent but no worker applied it within {self.wait_s:.0f} s "
                "(no worker owns the asset, or the alert is no longer active there)"
            )
            return _json(answer | {"status": "not_applied", "error": message}, 504)
        log.info("%s of %s by %s: now %s", action, command.alert_id, command.by, outcome["state"])
        if action != "resolve" and outcome["state"] == AlertState.RESOLVED.value:
            message = f"{command.alert_id} resolved ({outcome.get('resolution')}) before it could be {action}d"
            return _json(answer | {"status": "resolved", "error": message, "alert": outcome}, 409)
        status = {"shelve": "shelved", "unshelve": "unshelved"}.get(action, outcome["state"])
        return _json(answer | {"status": status, "alert": outcome}, 200)

    async def asset_command(self, request: web.Request) -> web.Response:
        """Out of service / in service: sent to the asset's worker (202: it applies to whatever alerts the asset has)."""
        holder = self._authorise(request)
        body = await self._body(request)
        action = "out_of_service" if request.match_info["action"] == "out-of-service" else "in_service"
        try:
            command = AssetCommand(
                id=body.get("command_id") or uuid.uuid4().hex,
                asset_id=request.match_info["asset_id"],
                action=action,
                by=holder or str(body.get("by") or "operator"),
                note=body.get("note") or body.get("reason"),
                ts=time.time(),
            )
        except ValidationError as exc:
            raise _http(400, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
        await self.send_command(command.asset_id, encode_control(AssetControl(command=command)))
        log.info("%s: %s by %s (command %s)", command.asset_id, action, command.by, command.id)
        answer = {"command_id": command.id, "asset_id": command.asset_id, "action": action, "status": "sent"}
        return _json(answer, 202)

    async def _check_actionable(self, command: AlertCommand) -> int:
        """Refuse a command that cannot change anything (404, 409); returns the stored revision (0: unknown)."""
        try:
            stored = await self.sink.get_alert(command.alert_id)
        except DatabaseError as exc:  # the database is down: the worker's state decides
            log.warning("cannot check %s before %s: %s", command.alert_id, command.action, exc)
            return 0
        if stored is None:
            raise _http(404, f"no alert {command.alert_id!r}")
        late_verdict = command.action == "resolve" and command.verdict is not None
        if stored["state"] == AlertState.RESOLVED.value and late_verdict:
            return int(stored["revision"])  # resolved already: the verdict is recorded on it
        if stored["state"] == AlertState.RESOLVED.value:
            how = f" ({stored['resolution']})" if stored.get("resolution") else ""
            raise _http(409, f"{command.alert_id} is already resolved{how}: nothing to {command.action}")
        if command.action == "acknowledge" and stored["state"] == AlertState.ACKNOWLEDGED.value:
            raise _http(409, f"{command.alert_id} is already acknowledged by {stored['acknowledged_by']}")
        if command.action == "unshelve" and stored.get("suppression") != "shelved":
            raise _http(409, f"{command.alert_id} is not shelved")
        return int(stored["revision"])

    async def _send_and_wait(self, command: AlertCommand, revision: int) -> dict[str, Any] | None:
        """Send the command, then wait for the alert change that carries its effect (any worker's, via the feed tail)."""

        def done(item: dict[str, Any]) -> bool:
            if item["state"] == AlertState.RESOLVED.value:
                return True
            if command.action == "acknowledge":
                return bool(item["state"] == AlertState.ACKNOWLEDGED.value)
            if command.action == "shelve":
                return bool(item.get("suppression") == "shelved")
            if command.action == "unshelve":
                return bool(item.get("suppression") != "shelved")
            return False

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        queue = self.hub.subscribe()  # before sending: the change cannot slip between the two
        try:
            await self.send_command(command.asset_id, encode_control(Command(command=command)))
            while (remaining := deadline - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    return None
                if item is None:  # dropped as a slow client: listen again
                    self.hub.unsubscribe(queue)
                    queue = self.hub.subscribe()
                    continue
                if item["id"] == command.alert_id and item["revision"] > revision and done(item):
                    await self._stored(command.alert_id, item["revision"], deadline)
                    return item
            return None
        finally:
            self.hub.unsubscribe(queue)

    async def _stored(self, alert_id: str, revision: int, deadline: float) -> None:
        """Wait (until the deadline) for the database to hold the revision, so a reader right after the answer sees it."""
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            try:
                stored = await self.sink.get_alert(alert_id)
            except DatabaseError:
                return  # the change happened; the sink writes it once the database is back
            if stored is not None and stored["revision"] >= revision:
                return
            await asyncio.sleep(0.05)

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
