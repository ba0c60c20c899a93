"""A plant's on-call engineer gets each alert that matters once, on a real local webhook (signed, retried after a
failure, rate-limited) and by e-mail through a real local SMTP server, low-priority ones in a digest."""

from __future__ import annotations

import asyncio
import email
import json
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from forewarn.contracts import AlertState, Severity
from stream.config import NotifyRule, SmtpSettings
from stream.notify import Notifier, sign
from tests.stream.test_store import alert

SECRET = "shared-webhook-secret"


async def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_webhook_is_signed_retried_filtered_and_rate_limited() -> None:
    seen: list[tuple[int, dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        status = 500 if not seen else 200  # the first delivery fails once: it must be retried
        seen.append((status, dict(request.headers), body))
        return web.Response(status=status)

    async def scenario() -> Notifier:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        rule = NotifyRule(
            name="oncall",
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret=SecretStr(SECRET),
            sites=["plant1"],
            min_severity="medium",
            max_per_hour=2,
        )
        notifier = Notifier([rule])
        notifier.start()
        try:
            notifier.submit(alert(1, severity=Severity.LOW))  # below min_severity
            notifier.submit(alert(1, id="p1:imbalance:2", site="plant9"))  # another site
            notifier.submit(alert(1, id="p1:imbalance:3", suppression="shelved"))  # not annunciated
            notifier.submit(alert(1))  # opened: sent (after one retry)
            notifier.submit(alert(2))  # an update of the same severity: not a change this rule wants
            notifier.submit(alert(3, severity=Severity.HIGH))  # escalated: sent
            notifier.submit(alert(1, id="p2:imbalance:1", asset_id="p2"))  # a third within the hour: rate-limited
            await wait_until(lambda: notifier.counters["webhook_sent"] == 2)
            await asyncio.sleep(0.3)  # nothing else arrives
        finally:
            await notifier.stop()
            await runner.cleanup()
        return notifier

    notifier = asyncio.run(scenario())
    assert [status for status, _, _ in seen] == [500, 200, 200]
    assert seen[0][2] == seen[1][2]  # the retry is the same delivery
    changes = [json.loads(body)["change"] for _, _, body in seen[1:]]
    assert changes == ["opened", "escalated"]
    for _, headers, body in seen:
        assert headers["X-Forewarn-Signature"] == "sha256=" + sign(SECRET, headers["X-Forewarn-Timestamp"], body)
    assert json.loads(seen[1][2])["alert"]["id"] == alert(1).id
    assert notifier.counters["rate_limited"] == 1 and notifier.counters["webhook_retries"] == 1


def test_email_goes_through_smtp_with_low_priority_in_a_digest() -> None:
    received: list[bytes] = []

    async def smtp_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Just enough SMTP (RFC 5321) for smtplib: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""
        writer.write(b"220 test ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                data = b""
                while (chunk := await reader.readline()) != b".\r\n":
                    data += chunk
                received.append(data)
                writer.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(smtp_session, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        rule = NotifyRule(name="mail", email_to=["oncall@plant.example"], digest_below="medium", changes=["opened", "resolved"])
        notifier = Notifier([rule], SmtpSettings(host="127.0.0.1", port=port, from_addr="forewarn@plant.example"))
        notifier.start()
        try:
            notifier.submit(alert(1, severity=Severity.LOW))  # low: held for the digest
            notifier.submit(alert(1, id="p3:cavitation:1", asset_id="p3", fault="cavitation", severity=Severity.CRITICAL))
            await wait_until(lambda: len(received) == 1)
            notifier.submit(alert(2, severity=Severity.LOW, state=AlertState.RESOLVED, resolved_at=1_800_000_010.0))
            notifier.flush_digests()
            await wait_until(lambda: len(received) == 2)
        finally:
            await notifier.stop()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
    urgent, digest = (email.message_from_bytes(m) for m in received)
    assert urgent["Subject"] == "[forewarn] CRITICAL opened: cavitation on p3 (plant1)"
    assert urgent["To"] == "oncall@plant.example"
    assert digest["Subject"] == "[forewarn] digest: 2 low-priority alert change(s)"
    body = digest.get_payload()
    assert "opened" in body and "resolved" in body and "p1:imbalance" in body
