"""In-memory stand-ins for the outside systems the edge agent's stages talk to, for unit tests only.

Integration tests use the real Mosquitto and tansu instead. There is deliberately no fake
model: everything that needs inference runs the shipped bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_agent.errors import DeliveryError
from edge_agent.publish import OutRecord


@dataclass
class FakeKafka:
    """A ``KafkaPort`` that keeps what it acknowledged; ``down`` refuses to connect, ``refuse`` nacks some records."""

    sent: list[OutRecord] = field(default_factory=list)
    down: bool = False
    refuse: set[bytes] = field(default_factory=set)
    """Values to nack (by exact bytes) while otherwise up."""
    calls: int = 0
    closed: int = 0

    async def send(self, records: Sequence[OutRecord]) -> list[bool]:
        self.calls += 1
        if self.down:
            raise DeliveryError("fake Kafka is down")
        ok = [value not in self.refuse for _, _, value in records]
        self.sent.extend(r for r, good in zip(records, ok, strict=True) if good)
        return ok

    async def close(self) -> None:
        self.closed += 1


@dataclass
class FakeMqtt:
    """An ``MqttPort`` that records publishes."""

    published: list[tuple[str, bytes, int, bool]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> bool:
        self.published.append((topic, payload, qos, retain))
        return True
