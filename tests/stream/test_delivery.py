"""The delivery path: the batched path's Faust internals exist in this Faust, a Faust without them gets the agent path,
and the agent path acks a batch only after its output is delivered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport import consumer as faust_consumer

from stream.agents import aggregate_agent
from stream.transport import (
    BATCH_HOOKS,
    FETCH_WAIT_HOOKS,
    StreamFaustApp,
    _BatchingTransport,
    _Transport,
    choose_delivery,
    missing_hooks,
)


def test_the_installed_faust_has_every_internal_the_batched_path_and_the_fetch_wait_need() -> None:
    """Fails on a Faust (or aiokafka) upgrade that renamed one: CI says so before a worker falls back."""
    assert missing_hooks(BATCH_HOOKS) == []
    assert missing_hooks(FETCH_WAIT_HOOKS) == []

    async def consumer_attributes() -> set[str]:
        return set(vars(AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")))

    assert "_fetch_max_wait_ms" in asyncio.run(consumer_attributes())


def test_a_renamed_internal_is_reported_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(faust_consumer.Consumer, "_drain_messages")
    assert missing_hooks(BATCH_HOOKS) == ["Consumer._drain_messages"]


def test_batched_falls_back_to_the_agent_path_with_a_warning_when_faust_lacks_its_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="stream.transport"):
        assert choose_delivery("batched", []) == "batched"
        assert choose_delivery("agent", []) == "agent"
        assert not caplog.records
        assert choose_delivery("batched", ["Consumer._drain_messages"]) == "agent"
    assert "Consumer._drain_messages" in caplog.text and "agent path" in caplog.text


def test_only_the_batched_path_gets_the_batching_consumer() -> None:
    agent = StreamFaustApp("delivery-test", broker="kafka://127.0.0.1:9", store="memory://")
    agent.topics.add(agent.topic("delivery-test-in"))
    assert type(agent.transport) is _Transport

    async def handler(messages: Sequence[Any]) -> list[Awaitable[Any]]:
        return []

    batched = StreamFaustApp("delivery-test", broker="kafka://127.0.0.1:9", store="memory://")
    batched.route_batches(batched.topic("delivery-test-in"), handler, size=10, within_s=0.05)
    assert type(batched.transport) is _BatchingTransport


class Message:
    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.acked_by: Any = None

    def ack(self, consumer: Any) -> bool:
        self.acked_by = consumer
        return True


class Event:
    def __init__(self, offset: int) -> None:
        self.message = Message(offset)


class Stream:
    """What the agent uses of a Faust stream: ``noack_take``, a batch at a time."""

    def __init__(self, batches: list[list[Event]]) -> None:
        self.batches = batches

    async def noack_take(self, size: int, within_s: float) -> AsyncIterator[list[Event]]:
        for batch in self.batches:
            yield batch


class App:
    consumer = "the consumer"

    def __init__(self) -> None:
        self.crashed: BaseException | None = None

    async def crash(self, exc: BaseException) -> None:
        self.crashed = exc


def test_the_agent_path_acks_a_batch_after_its_output_and_crashes_the_app_with_a_failed_one_unacked() -> None:
    first, second = [Event(0), Event(1)], [Event(2)]
    seen: list[list[int]] = []

    async def handler(messages: Sequence[Any]) -> list[Awaitable[Any]]:
        seen.append([m.offset for m in messages])
        if len(seen) == 2:
            raise RuntimeError("the broker refused the batch's output")
        assert all(m.acked_by is None for m in messages), "nothing acked before the handler ran"
        return [asyncio.sleep(0)]

    app = App()
    agent = aggregate_agent(app, handler, size=10, within_s=0.05)
    with pytest.raises(RuntimeError):
        asyncio.run(agent(Stream([first, second])))
    assert seen == [[0, 1], [2]]
    assert [e.message.acked_by for e in first] == ["the consumer", "the consumer"]
    assert second[0].message.acked_by is None and isinstance(app.crashed, RuntimeError)
