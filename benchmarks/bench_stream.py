"""Stream worker benchmarks on a local tansu: predictions/s per worker, alert-row latency, duplicates under replay.

    python benchmarks/bench_stream.py [--predictions 60000] [--runs 3] [--assets 200] [--latency-samples 30]
                                      [--delivery batched|agent]

One `forewarn stream worker` process (the product, as deployed) on a fresh tansu broker
and a SQLite database, on the delivery path ``--delivery`` (``stream.delivery``). Prints tables:

1. throughput: predictions/s the worker folds (median of --runs after a warm-up), next to
   baselines measured in the same run on the same topic: an aiokafka consumer alone,
   the same plus contract decoding, and the CPU cost per prediction of decode and rules
   in-process; and the CPU the worker and tansu used while it folded. The gap between
   them says what limits the worker.
2. latency: from the deciding prediction's produce time to its alert row (revision 1)
   written in the database (``alert_events.written_at``), p50/p99.
3. replay: the whole input produced again; alert rows and history entries before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from demo.brokers import TansuBroker, free_port, stop_process_group
from forewarn.contracts import FaultPrediction, decode, encode
from stream.config import RuleSettings
from stream.rules import apply_prediction
from stream.state import EntityState
from stream.synthetic import prediction

T0 = time.time() - 86_400


def workload(n: int, assets: int, offset: int = 0) -> list[tuple[bytes, bytes]]:
    """n predictions round-robin over the assets, in window order per asset; every 10th asset develops a fault."""
    out = []
    for i in range(offset, offset + n):
        a, step = i % assets, i // assets
        faulty = a % 10 == 0 and step % 50 >= 20
        p = prediction(f"bench-{a}", T0 + 10 * step, "imbalance" if faulty else "normal", 0.93)
        out.append((p.asset_id.encode(), encode(p)))
    return out


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_batch_size=1_000_000)
    await producer.start()
    started = time.perf_counter()
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return len(messages) / (time.perf_counter() - started)


async def consume_rate(bootstrap: str, topic: str, total: int, decode_values: bool) -> float:
    """Baseline: one plain consumer reading (and optionally decoding) the whole topic."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batches:
                started = time.perf_counter()
            for records in batches.values():
                for record in records:
                    if decode_values:
                        decode(record.value or b"", FaultPrediction)
                seen += len(records)
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - (started or time.perf_counter()))


def cpu_costs(messages: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    """Microseconds per prediction: contract decoding, and the rules folding it into state."""
    sample = messages[:20_000]
    started = time.perf_counter()
    decoded = [decode(v, FaultPrediction) for _, v in sample]
    decode_us = (time.perf_counter() - started) / len(sample) * 1e6
    rules, states = RuleSettings(), {}
    started = time.perf_counter()
    for p in decoded:
        state = states.setdefault(p.asset_id, EntityState(kind="asset", id=p.asset_id, site=p.site))
        apply_prediction(state, p, rules, time.time())
    rules_us = (time.perf_counter() - started) / len(sample) * 1e6
    return decode_us, rules_us


class Worker:
    def __init__(self, bootstrap: str, state_dir: Path, topic: str, delivery: str = "batched") -> None:
        suffix = uuid.uuid4().hex[:6]
        self.port = free_port()
        self.state_dir = state_dir
        self.env = dict(
            os.environ,
            FOREWARN_KAFKA_BOOTSTRAP=bootstrap,
            FOREWARN_STATE_DIR=str(state_dir),
            FOREWARN_TOPICS_KAFKA_PREDICTIONS=topic,
            FOREWARN_TOPICS_KAFKA_ALERTS=f"bench-alerts-{suffix}",
            FOREWARN_STREAM=json.dumps(
                {
                    "app_id": f"bench-{suffix}",
                    "control_topic": f"bench-control-{suffix}",
                    "web_port": self.port,
                    "mqtt_publish": False,
                    "delivery": delivery,
                }
            ),
            FOREWARN_LOGGING_LEVEL="WARNING",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.state_dir / "worker.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "forewarn.cli", "stream", "worker"],
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.wait(lambda: self.health() is not None, 60)

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def processed(self) -> int:
        return int((self.health() or {}).get("predictions", 0))

    @staticmethod
    def wait(check, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not get there in time")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            finally:
                stop_process_group(self.process)

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.state_dir / "forewarn.db")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    rate: float
    """Predictions folded per second, from the worker's first to its last prediction of the run."""
    worker_cores: float
    """CPU the worker process used meanwhile, in cores (1.0 = one core busy)."""
    broker_cores: float


def run_throughput(worker: Worker, broker: TansuBroker, topic: str, batch: list[tuple[bytes, bytes]]) -> Run:
    """Produce a batch and time the worker folding it (from its first to its last prediction)."""
    assert worker.process is not None and broker.process is not None
    pids = worker.process.pid, broker.process.pid
    before = worker.processed()
    target = before + len(batch)
    asyncio.run(produce(broker.bootstrap, topic, batch))
    worker.wait(lambda: worker.processed() > before, 60)
    first, cpu = time.perf_counter(), [cpu_seconds(pid) for pid in pids]
    start_count = worker.processed()
    worker.wait(lambda: worker.processed() >= target, 300)
    elapsed = time.perf_counter() - first
    used = [(cpu_seconds(pid) - c) / elapsed for pid, c in zip(pids, cpu, strict=True)]
    return Run((target - start_count) / elapsed, *used)


def latency(worker: Worker, bootstrap: str, topic: str, samples: int) -> list[float]:
    """Seconds from producing the deciding (third) hit to the alert's first row in the database."""

    async def one(i: int) -> float:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        await producer.start()
        try:
            asset, now = f"lat-{i}", time.time()
            for step in range(3):
                p = prediction(asset, now - 30 + 10 * step, "misalignment", 0.95, produced_at=time.time())
                sent_at = time.time()
                await producer.send_and_wait(topic, encode(p), key=asset.encode())
        finally:
            await producer.stop()
        deadline = time.time() + 20
        with worker.db() as conn:
            while time.time() < deadline:
                row = conn.execute(
                    "select written_at from alert_events where alert_id like ? and revision = 1", (f"{asset}:misalignment:%",)
                ).fetchone()
                if row:
                    return float(row[0]) - sent_at
                await asyncio.sleep(0.02)
        raise TimeoutError(f"no alert row for {asset}")

    out = []
    for i in range(samples):
        out.append(asyncio.run(one(i)))
        time.sleep(0.1)
    return out


def counts(worker: Worker) -> tuple[int, int]:
    with worker.db() as conn:
        return conn.execute("select count(*) from alerts").fetchone()[0], conn.execute(
            "select count(*) from alert_events"
        ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", type=int, default=60_000, help="predictions per timed run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--assets", type=int, default=200)
    parser.add_argument("--latency-samples", type=int, default=30)
    parser.add_argument("--delivery", choices=["batched", "agent"], default="batched", help="the worker's delivery path")
    args = parser.parse_args()

    topic = f"bench-predictions-{uuid.uuid4().hex[:6]}"
    with TansuBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        bootstrap = broker.bootstrap
        worker = Worker(bootstrap, Path(tmp), topic, args.delivery)
        worker.start()
        try:
            worker.wait(lambda: worker.processed() == 0, 60)
            runs = [workload(10_000, args.assets)]  # warm-up first
            for r in range(args.runs):
                runs.append(workload(args.predictions, args.assets, offset=10_000 + r * args.predictions))
            measured = [run_throughput(worker, broker, topic, batch) for batch in runs]
            rates = [m.rate for m in measured]
            total = sum(len(b) for b in runs)
            everything = [m for b in runs for m in b]
            produce_rate = asyncio.run(produce(bootstrap, f"{topic}-baseline", everything[:50_000]))
            raw_rate = asyncio.run(consume_rate(bootstrap, f"{topic}-baseline", 50_000, False))
            decode_rate = asyncio.run(consume_rate(bootstrap, f"{topic}-baseline", 50_000, True))
            decode_us, rules_us = cpu_costs(everything)

            lat = latency(worker, bootstrap, topic, args.latency_samples)

            time.sleep(6)  # let pending minor updates (minor_update_s) land before counting
            alerts_before, events_before = counts(worker)
            processed = worker.processed()
            asyncio.run(produce(bootstrap, topic, everything))  # a full replay of everything
            worker.wait(lambda: worker.processed() >= processed + total, 600)
            time.sleep(3)
            alerts_after, events_after = counts(worker)
            health = worker.health() or {}
        finally:
            worker.stop()

    median = statistics.median(rates[1:])
    print(f"\nstream worker throughput (one worker, tansu, 2-core machine, delivery {health.get('delivery')})")
    print(f"{'what':<52} {'rate':>14}")
    print(f"{f'worker: predictions folded/s (median of {args.runs} runs)':<52} {median:>12,.0f}/s")
    print(f"{'  runs (warm-up first)':<52} {', '.join(f'{r:,.0f}' for r in rates):>14}")
    print(f"{'baseline: aiokafka producer alone':<52} {produce_rate:>12,.0f}/s")
    print(f"{'baseline: aiokafka consumer alone':<52} {raw_rate:>12,.0f}/s")
    print(f"{'baseline: consumer + contract decode':<52} {decode_rate:>12,.0f}/s")
    print(f"{'cpu: decode per prediction':<52} {decode_us:>11.1f} us")
    print(f"{'cpu: rules per prediction':<52} {rules_us:>11.1f} us")
    print(f"{'worker / (consumer + decode)':<52} {median / decode_rate:>13.2f}x")
    worker_cores = statistics.median(m.worker_cores for m in measured[1:])
    broker_cores = statistics.median(m.broker_cores for m in measured[1:])
    print(f"{'cpu: worker process while folding (all threads)':<52} {worker_cores:>9.2f} cores")
    print(f"{'cpu: worker per prediction (all threads)':<52} {worker_cores / median * 1e6:>11.1f} us")
    print(f"{'cpu: tansu while the worker folds':<52} {broker_cores:>9.2f} cores")

    q = statistics.quantiles(lat, n=100)
    print("\nalert row latency: deciding prediction produced -> alert row written")
    print(f"{'samples':<20} {len(lat):>8}")
    print(f"{'p50':<20} {statistics.median(lat) * 1000:>6.0f} ms")
    print(f"{'p99':<20} {q[98] * 1000:>6.0f} ms")
    print(f"{'max':<20} {max(lat) * 1000:>6.0f} ms")

    print(f"\nreplay of every prediction ({total}) through the same worker")
    print(f"{'':<24} {'before':>8} {'after':>8}")
    print(f"{'alert rows':<24} {alerts_before:>8} {alerts_after:>8}")
    print(f"{'alert history entries':<24} {events_before:>8} {events_after:>8}")
    print(f"{'duplicate alerts':<24} {alerts_after - alerts_before:>17}")
    print(f"{'replayed predictions ignored as duplicate/late (worker counters)':<24}: {json.dumps(health)}")


if __name__ == "__main__":
    main()
