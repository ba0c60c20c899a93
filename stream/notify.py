"""Notifications: alert changes sent to webhooks and e-mail by rules (site, severity, fault, kind of change).

    aggregation ──on_change──> Notifier.submit (never blocks) ──queue──> delivery task
                                 │ rule matches? rate limit?             ├─> webhook: JSON POST, HMAC-SHA256 signed,
                                 │                                       │   retried with exponential backoff
                                 └─ low priority with digest: held  ─────└─> e-mail (SMTP, in a thread); daily digest

Only the worker that owns an asset decides its alerts, so each change is notified by one
worker; a replay after a crash may send a change again, which a receiver recognises by
``alert.id`` + ``alert.revision``. Alerts that are not annunciated (shelved, out of
service, suppressed by design) are not notified.

Webhook request: ``POST`` with body ``{"rule", "change", "alert": {...Alert...}}`` (or
``{"rule", "change": "digest", "alerts": [...]}``), headers ``X-Forewarn-Timestamp`` (Unix
seconds) and ``X-Forewarn-Signature: sha256=<hex>``, the HMAC-SHA256 of
``"<timestamp>.<body>"`` with the rule's secret. A 2xx answer is delivery; 408, 429 and 5xx
and connection errors are retried (``retries`` times, waiting 0.5 s, 1 s, 2 s, ...); other
answers are failures, counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import smtplib
import time
from collections import Counter, deque
from email.message import EmailMessage
from typing import Any

from forewarn.contracts import SEVERITY_ORDER, Alert, AlertState, Severity
from stream.config import NotifyRule, SmtpSettings

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
RETRYABLE = {408, 429}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature a receiver recomputes: HMAC-SHA256 of b"<timestamp>.<body>", hex."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def change_kind(alert: Alert, previous: tuple[str, str] | None) -> str:
    """What a change did, from the alert and the (state, severity) last seen of it."""
    if alert.state is AlertState.RESOLVED:
        return "resolved"
    if previous is None or alert.revision == 1:
        return "opened"
    state, severity = previous
    if SEVERITY_ORDER[alert.severity] > SEVERITY_ORDER[Severity(severity)]:
        return "escalated"
    if state != alert.state.value and alert.state is AlertState.ACKNOWLEDGED:
        return "acknowledged"
    return "updated"


class Notifier:
    """Rules applied to alert changes; delivery runs in one task started with ``start()``."""

    def __init__(self, rules: list[NotifyRule], smtp: SmtpSettings | None = None, component: str = "forewarn") -> None:
        self.rules = rules
        self.smtp = smtp
        self.component = component
        self.queue: asyncio.Queue[tuple[NotifyRule, str, dict[str, Any]] | None] = asyncio.Queue(QUEUE_SIZE)
        self.seen: dict[str, tuple[str, str]] = {}
        self.sent_times: dict[str, deque[float]] = {}
        self.digests: dict[str, list[dict[str, Any]]] = {}
        self.counters: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._digest_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.rules:
            self._task = asyncio.create_task(self._deliver(), name="forewarn-notify")
            self._digest_task = asyncio.create_task(self._digest_loop(), name="forewarn-notify-digest")

    async def stop(self) -> None:
        for task in (self._task, self._digest_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def submit(self, alert: Alert, now: float | None = None) -> None:
        """Called for every alert change (from the aggregation): match the rules and queue deliveries; never blocks."""
        if not self.rules:
            return
        now = time.time() if now is None else now
        kind = change_kind(alert, self.seen.get(alert.id))
        if alert.state is AlertState.RESOLVED:
            self.seen.pop(alert.id, None)
        else:
            self.seen[alert.id] = (alert.state.value, alert.severity.value)
        if alert.suppression is not None:
            return  # recorded, not annunciated
        for rule in self.rules:
            if not rule.matches(alert, kind):
                continue
            payload = alert.model_dump(mode="json")
            if rule.digest_below is not None and SEVERITY_ORDER[alert.severity] < SEVERITY_ORDER[Severity(rule.digest_below)]:
                self.digests.setdefault(rule.name, []).append(payload | {"change": kind})
                continue
            window = self.sent_times.setdefault(rule.name, deque())
            while window and now - window[0] >= 3600:
                window.popleft()
            if len(window) >= rule.max_per_hour:
                self.counters["rate_limited"] += 1
                if self.counters["rate_limited"] == 1 or self.counters["rate_limited"] % 100 == 0:
                    log.warning("notification rule %s is over %d an hour: dropping", rule.name, rule.max_per_hour)
                continue
            window.append(now)
            try:
                self.queue.put_nowait((rule, kind, {"alert": payload}))
            except asyncio.QueueFull:
                self.counters["dropped"] += 1

    def flush_digests(self) -> None:
        """Queue one digest per rule with what it held back (the daily digest calls this)."""
        for name, items in list(self.digests.items()):
            rule = next((r for r in self.rules if r.name == name), None)
            if rule is not None and items:
                with contextlib.suppress(asyncio.QueueFull):
                    self.queue.put_nowait((rule, "digest", {"alerts": items}))
            self.digests[name] = []

    async def _digest_loop(self) -> None:
        period = min((r.digest_every_s for r in self.rules if r.digest_below is not None), default=None)
        if period is None:
            return
        while True:
            await asyncio.sleep(period)
            self.flush_digests()

    async def _deliver(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while True:
                item = await self.queue.get()
                if item is None:
                    return
                rule, kind, content = item
                if rule.webhook_url:
                    await self._webhook(session, rule, kind, content)
                if rule.email_to and self.smtp is not None:
                    await self._email(rule, kind, content)

    async def _webhook(self, session: Any, rule: NotifyRule, kind: str, content: dict[str, Any]) -> None:
        import aiohttp

        body = json.dumps({"rule": rule.name, "change": kind, **content}, separators=(",", ":")).encode()
        delay = 0.5
        for attempt in range(rule.retries + 1):
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Forewarn-Timestamp": timestamp}
            if rule.secret is not None:
                headers["X-Forewarn-Signature"] = "sha256=" + sign(rule.secret.get_secret_value(), timestamp, body)
            try:
                async with session.post(str(rule.webhook_url), data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        self.counters["webhook_sent"] += 1
                        return
                    retry = response.status in RETRYABLE or response.status >= 500
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                retry, reason = True, f"{exc.__class__.__name__}: {exc}"
            if not retry or attempt == rule.retries:
                break
            self.counters["webhook_retries"] += 1
            await asyncio.sleep(delay)
            delay *= 2
        self.counters["webhook_failed"] += 1
        log.warning("webhook %s of rule %s failed (%s): %s", kind, rule.name, rule.webhook_url, reason)

    async def _email(self, rule: NotifyRule, kind: str, content: dict[str, Any]) -> None:
        assert self.smtp is not None
        message = email_message(rule, kind, content, self.smtp.from_addr)
        try:
            await asyncio.get_running_loop().run_in_executor(None, send_email, self.smtp, message)
            self.counters["email_sent"] += 1
        except (OSError, smtplib.SMTPException) as exc:
            self.counters["email_failed"] += 1
            log.warning("e-mail %s of rule %s failed: %s", kind, rule.name, exc)


def email_message(rule: NotifyRule, kind: str, content: dict[str, Any], from_addr: str) -> EmailMessage:
    """A plain-text e-mail of one alert change, or of a digest."""
    message = EmailMessage()
    message["From"] = from_addr
    message["To"] = ", ".join(rule.email_to)
    alerts = content.get("alerts") or [content["alert"]]
    if kind == "digest":
        message["Subject"] = f"[forewarn] digest: {len(alerts)} low-priority alert change(s)"
    else:
        a = alerts[0]
        message["Subject"] = f"[forewarn] {a['severity'].upper()} {kind}: {a['fault']} on {a['asset_id']} ({a['site']})"
    lines = []
    for a in alerts:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(a["updated_at"]))
        lines.append(f"{stamp}  {a['severity']:<8} {a.get('change', kind):<12} {a['site']}/{a['asset_id']}  {a['fault']}")
        lines.append(f"    alert {a['id']}, state {a['state']}, peak P {a['peak_probability']:.2f}")
    message.set_content("\n".join(lines) + "\n")
    return message


def send_email(smtp: SmtpSettings, message: EmailMessage) -> None:
    """Blocking SMTP delivery (run in a thread)."""
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username and smtp.password is not None:
            client.login(smtp.username, smtp.password.get_secret_value())
        client.send_message(message)
