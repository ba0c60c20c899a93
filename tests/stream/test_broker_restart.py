"""A worker whose Kafka broker restarts empty (tansu keeps its data in memory) re-creates its topics and goes on
folding predictions into alerts, and its health says so meanwhile."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

from demo.brokers import TansuBroker
from tests.stream.conftest import RunningWorker
from tests.stream.test_worker import FAULT, episode


def partition_counts(bootstrap: str, topic: str) -> int | None:
    """How many partitions the topic has on the broker (None: it does not exist)."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def ask() -> int | None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            if topic not in await admin.list_topics():
                return None
            (described,) = await admin.describe_topics([topic])
            return len(described["partitions"]) or None
        finally:
            await admin.close()

    try:
        return asyncio.run(ask())
    except Exception:  # the broker is still starting
        return None


def test_the_worker_survives_a_broker_restart(mqtt_url: str, tmp_path: Path) -> None:
    broker = TansuBroker(log_file=tmp_path / "tansu.log")
    broker.start()
    worker = RunningWorker(broker.bootstrap, tmp_path / "state", mqtt_url)
    (tmp_path / "state").mkdir()
    # two partitions where the broker would auto-create four: a topic the worker did not make would not fit its table
    worker.env["FOREWARN_KAFKA_PARTITIONS"] = "2"
    stream = json.loads(worker.env["FOREWARN_STREAM"]) | {"topic_check_s": 1, "stop_deadline_s": 3}
    del stream["recovery_stall_s"]  # the default: the worker asks the broker whether it is tansu
    worker.env["FOREWARN_STREAM"] = json.dumps(stream)
    try:
        worker.start()
        assert "changelog recovery watchdog: ends a recovery stalled 60 s" in worker.log.read_text()
        worker.produce(episode("bounce-1", time.time() - 300))
        worker.wait_for(lambda: worker.alerts_of("bounce-1"), 30, "the first alert")
        broker.stop()
        broker = TansuBroker(port=broker.port, log_file=tmp_path / "tansu2.log")
        broker.start()  # the same address, nothing in it: no topics, no groups, no offsets
        counts = worker.wait_for(lambda: partition_counts(broker.bootstrap, worker.predictions), 60, "the topic back")
        assert counts == 2  # re-created by the worker, with its own partition count
        worker.produce(episode("bounce-2", time.time() - 200))
        (alert,) = worker.wait_for(lambda: worker.alerts_of("bounce-2"), 90, "an alert after the restart")
        assert alert["fault"] == FAULT
        health = worker.wait_for(lambda: worker.get("/api/health"), 30, "health")
        assert health["status"] == "ok" and health["topics_recreated"] >= 5

        # SIGTERM while an alert write hangs on a locked database: the worker still ends within its deadline
        lock = sqlite3.connect(tmp_path / "state" / "forewarn.db", timeout=1)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            worker.produce(episode("bounce-3", time.time() - 100))
            worker.wait_for(lambda: worker.request("GET", "/api/health")[0] == 503, 30, "the write to hang")
            took = worker.stop()
        finally:
            lock.rollback()
            lock.close()
        # the clean stop waits for the sink's batch (its offsets must not move unwritten): stream.stop_deadline_s ends it
        assert took < 8 and worker.process is not None and worker.process.returncode in (0, 3), (took, worker.process)
        if worker.process.returncode == 3:
            assert "did not stop within 3 s" in worker.log.read_text()
    finally:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop()
        broker.stop()
