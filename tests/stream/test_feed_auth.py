"""A feed configured for read auth serves nothing without a token, lets viewers read, and lets only operators act,
recording a personal token's holder as the person who acted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from stream.config import ApiToken
from stream.control import decode_control
from stream.feed import AlertHub
from stream.sink import AsyncSink
from stream.store import AlertStore
from stream.web import FeedApi
from tests.stream.test_store import alert

SHARED = "shared-operator-token"
VIEWER = ApiToken(name="vic", token=SecretStr("viewer-token-0123456789"), role="viewer")
OPERATOR = ApiToken(name="ana", token=SecretStr("operator-token-0123456789"), role="operator")


def test_reads_need_a_token_and_writes_an_operators(tmp_path: Path) -> None:
    store = AlertStore(f"sqlite:///{tmp_path / 'feed.db'}")
    store.create_all()
    store.write([alert(1)])
    sent: list[bytes] = []

    async def send(asset_id: str, value: bytes) -> None:
        sent.append(value)

    api = FeedApi(AsyncSink(store), AlertHub(), send, SHARED, dict, 1.0, [VIEWER, OPERATOR], read_auth=True)

    async def scenario() -> None:
        async with TestClient(TestServer(api.routes())) as client:

            def bearer(token: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {token}"}

            assert (await client.get("/api/alerts")).status == 401
            assert (await client.get("/api/kpis", headers=bearer("wrong-token-0123456789"))).status == 401
            assert (await client.get("/api/events?access_token=nope")).status == 401
            assert (await client.get("/api/health")).status == 200 and (await client.get("/")).status == 200
            viewer = bearer(VIEWER.token.get_secret_value())
            listed = await client.get("/api/alerts", headers=viewer)
            assert listed.status == 200 and (await listed.json())["total"] == 1
            path = f"/api/alerts/{alert(1).id}/acknowledge"
            assert (await client.post(path, json={"wait": False}, headers=viewer)).status == 403
            operator = bearer(OPERATOR.token.get_secret_value())
            answer = await client.post(path, json={"wait": False, "by": "someone-else"}, headers=operator)
            assert answer.status == 202
            (command,) = [decode_control(v) for v in sent]
            assert command.kind == "command" and command.command.by == "ana"  # the token's holder, not a typed name
            shared = await client.post(path, json={"wait": False, "by": "bo"}, headers=bearer(SHARED))
            assert shared.status == 202 and decode_control(sent[-1]).command.by == "bo"  # type: ignore[union-attr]

    try:
        asyncio.run(scenario())
    finally:
        store.close()
