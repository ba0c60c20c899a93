"""A batch's messages are acked only once the broker holds all of its output, and batches close when full or due."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import pytest

from stream.batches import IDLE_FETCH_S, PendingBatch, deliver


def test_messages_are_acked_only_after_every_delivery_is_done() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        alert, changelog = loop.create_future(), loop.create_future()
        acked: list[int] = []

        async def handler(messages: Sequence[Any]) -> list[Awaitable[Any]]:
            return [alert, changelog]

        task = asyncio.create_task(deliver(handler, [1, 2, 3], acked.append))
        await asyncio.sleep(0.02)
        assert acked == []  # handled, but the broker has not acknowledged the output yet
        alert.set_result("alert-metadata")
        await asyncio.sleep(0.02)
        assert acked == []  # one delivery still outstanding
        changelog.set_result("changelog-metadata")
        await task
        assert acked == [1, 2, 3]

    asyncio.run(scenario())


def test_a_failed_delivery_or_handler_acks_nothing() -> None:
    async def failed_delivery(messages: Sequence[Any]) -> list[Awaitable[Any]]:
        future = asyncio.get_running_loop().create_future()
        future.set_exception(ConnectionError("broker gone"))
        return [future]

    async def crashing(messages: Sequence[Any]) -> list[Awaitable[Any]]:
        raise RuntimeError("bug")

    acked: list[int] = []
    with pytest.raises(ConnectionError):
        asyncio.run(deliver(failed_delivery, [1, 2], acked.append))
    with pytest.raises(RuntimeError):
        asyncio.run(deliver(crashing, [1, 2], acked.append))
    assert acked == []


def test_a_batch_is_due_when_full_or_within_s_after_the_previous_one() -> None:
    pending = PendingBatch(size=3, within_s=0.2)
    assert pending.wait_s() == IDLE_FETCH_S  # nothing pending: the fetch may idle
    pending.add("first after a quiet spell")
    assert pending.due()  # goes at once: the previous batch was long ago
    assert pending.take() == ["first after a quiet spell"]
    pending.add("a")
    assert not pending.due() and 0 < pending.wait_s() <= 0.2  # now it waits for company, at most within_s
    pending.add("b")
    pending.add("c")
    assert pending.due()  # full
    assert pending.take() == ["a", "b", "c"] and pending.messages == []
    pending.add("d")
    pending.last_taken = time.monotonic() - 0.3
    assert pending.due() and pending.wait_s() == 0.0
