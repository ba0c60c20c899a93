"""Gateway health: a retained ``GatewayStatus`` on ``forewarn/gateways/<id>/status``.

Three messages keep the retained status true whatever happens to the gateway:
- on every (re)connect the MQTT link publishes ``online`` (the "birth");
- every ``status_interval_s`` a fresh ``online`` status carries the live figures (model
  version, assets, windows scored, outbox depth, uplink), so a subscriber sees a stale
  ``ts`` if the gateway hangs without disconnecting;
- the broker publishes the last-will ``offline`` when the connection dies without a clean
  goodbye (kill -9, power cut, network), and a clean stop publishes ``offline`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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
