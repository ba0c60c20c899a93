"""Gateway health: a retained ``GatewayStatus`` on ``forewarn/gateways/<id>/status``.

Three messages keep the retained status true whatever happens to the gateway:
- on every (re)connect the MQTT link publishes ``online`` (the "birth");
- every ``status_interval_s`` a fresh ``online`` status carries the live figures (model
  version, assets, windows scored, outbox depth, uplink), so a subscriber sees a stale
  ``ts`` if the gateway hangs without disconnecting;
- the broker publishes the last-will ``offline`` when the connection dies without a clean
  goodbye (kill -9, power cut, network), and a clean stop publishes ``offline`` itself.

An online gateway that scores nothing is not healthy: ``InputWatch`` notices when nothing
has been placed in a window for ``edge.input_quiet_s`` (nothing arrives on the
subscriptions, e.g. a site id that differs from the publishers', or everything that
arrives is refused) and the status carries that as its ``warning``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from edge_agent.publish import MqttPort
from forewarn.contracts import GatewayStatus, encode


@dataclass(frozen=True)
class Vitals:
    """The live figures a status reports, read from the daemon when a status is built."""

    model_version: str | None
    assets: int
    windows_scored: int
    outbox_depth: int
    uplink: bool
    warning: str | None = None
    previous_model_version: str | None = None
    rollout: str | None = None
    """The last rollout's outcome (edge_agent.rollout)."""


class Health:
    """Builds and periodically publishes the gateway's retained status."""

    def __init__(
        self,
        gateway_id: str,
        site: str,
        topic: str,
        interval_s: float,
        vitals: Callable[[], Vitals],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway_id = gateway_id
        self.site = site
        self.topic = topic
        self.interval_s = interval_s
        self.vitals = vitals
        self.clock = clock
        self.started = clock()
        self._task: asyncio.Task[None] | None = None

    def status(self, state: Literal["online", "offline"]) -> bytes:
        now = self.clock()
        if state == "offline":
            return encode(GatewayStatus(gateway_id=self.gateway_id, site=self.site, state="offline", ts=now))
        v = self.vitals()
        return encode(
            GatewayStatus(
                gateway_id=self.gateway_id,
                site=self.site,
                state="online",
                ts=now,
                model_version=v.model_version,
                uptime_s=max(0.0, now - self.started),
                assets=v.assets,
                windows_scored=v.windows_scored,
                outbox_depth=v.outbox_depth,
                uplink="up" if v.uplink else "down",
                warning=v.warning,
                previous_model_version=v.previous_model_version,
                rollout=v.rollout,
            )
        )

    def will(self) -> tuple[str, bytes]:
        """The last-will: what the broker says for us if we vanish."""
        return self.topic, self.status("offline")

    def birth(self) -> bytes:
        return self.status("online")

    def start(self, mqtt: MqttPort) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(mqtt), name="health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, mqtt: MqttPort) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            mqtt.publish(self.topic, self.status("online"), qos=1, retain=True)


class InputWatch:
    """Says when a gateway has placed no message in a window for ``quiet_s``, and why it thinks so.

    ``saw`` is told what each pipeline step received and placed; ``check`` returns a line to
    log when the verdict changes (a new warning, or input placed again), else None. The
    current warning is ``warning`` (None while messages are placed).
    """

    def __init__(self, quiet_s: float, subscriptions: list[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s = quiet_s
        self.subscriptions = subscriptions
        self.clock = clock
        self.last_placed = clock()
        self.received = 0
        """Messages received since the last one placed."""
        self.refusals: Counter[str] = Counter()
        self.warning: str | None = None
        self._kind = ""

    def saw(self, received: int, placed: int) -> None:
        if placed:
            self.last_placed = self.clock()
            self.received = 0
            self.refusals.clear()
        else:
            self.received += received

    def restart(self) -> None:
        """Start counting again (while the broker is away, silence says nothing about the subscriptions)."""
        self.last_placed = self.clock()
        self.received = 0

    def refused(self, reason: str) -> None:
        self.refusals[reason] += 1

    def check(self) -> str | None:
        """The line to log if the verdict changed since the last check, else None."""
        if self.quiet_s <= 0:
            return None
        quiet = self.clock() - self.last_placed
        if quiet < self.quiet_s:
            if self.warning is None:
                return None
            self.warning, self._kind = None, ""
            return "messages are placed in windows again: scoring resumed"
        where = " and ".join(self.subscriptions)
        kind = "silent" if self.received == 0 else "refused"
        if kind == "silent":
            warning = (
                f"nothing received on {where} for {quiet:.0f} s: check that the machines publish to this site "
                "(the site level of their topics) and this broker"
            )
        else:
            reasons = ", ".join(f"{reason} {count}" for reason, count in self.refusals.most_common())
            warning = (
                f"{self.received} message{'' if self.received == 1 else 's'} received in {quiet:.0f} s on {where}, "
                "none placed in a window "
                f"(refused: {reasons or 'none'}; see the dead letters)"
            )
        changed = kind != self._kind
        self.warning, self._kind = warning, kind
        return warning if changed else None
