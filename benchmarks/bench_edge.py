"""Edge agent benchmarks: batched inference on one core, ingest samples/s per process, added latency per window.

    python benchmarks/bench_edge.py [--quick] [--runs 5] [--json]

The bars (DESIGN.md): >= 1,000 windows/s batched inference on one core; >= 200k sensor
samples/s ingest per process with batched payloads; p99 added latency per window <= 20 ms.
The measuring process is pinned to one CPU; the broker and the publisher use the other.
Every figure is the median of --runs after a warm-up, next to a baseline from the same run:

1. inference: the shipped bundle through ``Scorer`` (featurise, ONNX Runtime with one
   thread, FaultPrediction), per batch size; baseline batch size 1. The model's own share
   (``Predictor.predict`` alone) is shown beside it.
2. ingest: a backlog held by a private Mosquitto for the gateway's persistent session,
   drained through the daemon's own stages (paho callback decode, Inbox, WindowStage, acks);
   baselines: the same backlog received by a bare paho client (no decoding) and the decode
   + windowing cost in-process without MQTT. A sample is one channel value at one timestamp.
3. latency: the daemon (``EdgeDaemon``, no Kafka) fed by a publisher process at a live pace
   (every message completes one window) and at ten times that; exact per-window latency
   from the arrival of the completing message to the prediction committed in the outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from demo.brokers import free_port, stop_process_group, wait_for_port
from edge_agent.config import EdgeSettings
from edge_agent.daemon import EdgeDaemon
from edge_agent.infer import Scorer
from edge_agent.ingest import Inbox, MqttLink, TopicRouter, admit
from edge_agent.metrics import EdgeMetrics
from edge_agent.window import AssetPolicy, WindowStage
from forewarn.contracts import Telemetry, encode
from models.runtime import Bundle, Predictor, default_bundle_path
from models.windowing import Window, WindowSpec, windows_from_messages

T0 = 1_767_225_600.0
CPU_AGENT, CPU_OTHERS = 0, 1


# ---------------------------------------------------------------------------------------- workload


def telemetry(
    spec: WindowSpec, site: str, assets: int, minutes: int, per_message: int = 60, channels: int | None = None
) -> list[Telemetry]:
    """Per asset, one message per `per_message` seconds of 1 Hz data on the bundle's channels; time order."""
    rng = np.random.default_rng(7)
    names = spec.channels[: channels or len(spec.channels)]
    out = []
    for step in range(minutes * 60 // per_message):
        start = T0 + step * per_message
        for a in range(assets):
            values = 50.0 + rng.normal(0.0, 1.0, size=(len(names), per_message))
            out.append(
                Telemetry(
                    site=site, asset_id=f"a{a}", asset_type="pump", seq=step,
                    timestamps=[start + i for i in range(per_message)],
                    channels={c: [round(float(v), 3) for v in values[k]] for k, c in enumerate(names)},
                )
            )  # fmt: skip
    return out


def samples(messages: Sequence[Telemetry]) -> int:
    return sum(len(m.timestamps) * len(m.channels) for m in messages)


def topic(m: Telemetry) -> str:
    return f"forewarn/{m.site}/{m.asset_id}/telemetry"


def median_of(runs: int, measure: Callable[[], float]) -> float:
    measure()  # warm-up
    return statistics.median(measure() for _ in range(runs))


# ---------------------------------------------------------------------------------------- 1. inference


def bench_inference(bundle: Path, spec: WindowSpec, runs: int, quick: bool) -> list[dict[str, Any]]:
    windows: list[Window] = list(windows_from_messages(telemetry(spec, "p1", 20, 40 if quick else 70), spec))
    rows = []
    for batch in (1, 16, 64, 256):
        scorer = Scorer(bundle, "bench", threads=1, batch_size=batch)
        scorer.load()
        predictor = Predictor(Bundle.load(bundle), threads=1, max_batch=batch)

        def full(s: Scorer = scorer) -> float:
            started = time.perf_counter()
            s.score(windows)
            return len(windows) / (time.perf_counter() - started)

        def model(p: Predictor = predictor, b: int = batch) -> float:
            started = time.perf_counter()
            for i in range(0, len(windows), b):
                p.predict(windows[i : i + b])
            return len(windows) / (time.perf_counter() - started)

        rows.append({"batch": batch, "windows_per_s": median_of(runs, full), "model_only_per_s": median_of(runs, model)})
    base = rows[0]["windows_per_s"]
    for row in rows:
        row["vs_batch_1"] = row["windows_per_s"] / base
    return rows


# ---------------------------------------------------------------------------------------- 2. ingest


class Mosquitto:
    """A private broker that queues a large backlog for a persistent session."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        (directory / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_queued_bytes 0\n"
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-c", str(directory / "mosquitto.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        os.sched_setaffinity(self.process.pid, {CPU_OTHERS})
        wait_for_port("127.0.0.1", self.port, 10, self.process)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process_group(self.process)


def publish_all(port: int, payloads: Sequence[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(t, p, qos=1) for t, p in payloads]
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


def _subscribe_once(port: int, client_id: str, site: str) -> None:
    """Create the persistent session (and its subscription) that will hold the backlog."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(f"forewarn/{site}/+/telemetry", qos=1)[1]
    time.sleep(0.3)
    c.loop_stop()
    c.disconnect()


def drain_with_stages(broker: Mosquitto, spec: WindowSpec, client_id: str, site: str, count: int) -> float:
    """Seconds for the daemon's ingest stages to decode, window and ack ``count`` queued messages."""
    settings = EdgeSettings(site=site, mqtt={"url": broker.url}, edge={"client_id": client_id, "gateway_id": "bench"})
    metrics = EdgeMetrics()
    inbox = Inbox(settings.edge.inbox_max_bytes)
    stage = WindowStage(spec, AssetPolicy(), metrics)
    link = MqttLink(settings, inbox, metrics, ("forewarn/gateways/bench/status", b""), lambda: b"")

    async def run() -> float:
        inbox.bind(asyncio.get_running_loop())
        started = None
        done = 0
        link.start()
        while done < count:
            batch = await inbox.get(2000, timeout=10)
            if not batch:
                raise RuntimeError(f"ingest stalled at {done}/{count}")
            started = started or batch[0].arrived
            for d in batch:
                assert d.message is not None, d.rejected
                stage.add(d.message, d.arrived)
            stage.ready()
            for d in batch:
                link.ack(d)
            done += len(batch)
        return time.perf_counter() - (started or time.perf_counter())

    try:
        return asyncio.run(run())
    finally:
        link.stop()


def drain_raw(broker: Mosquitto, client_id: str, count: int) -> float:
    """Seconds for a bare paho client (auto-ack, no decoding) to receive ``count`` queued messages."""
    got = threading.Event()
    seen = [0, 0.0]

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        if seen[0] == 0:
            seen[1] = time.perf_counter()
        seen[0] += 1
        if seen[0] >= count:
            got.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.on_message = on_message
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    if not got.wait(120):
        raise RuntimeError(f"raw receive stalled at {seen[0]}/{count}")
    elapsed = time.perf_counter() - float(seen[1])
    c.loop_stop()
    c.disconnect()
    return elapsed


def bench_ingest(spec: WindowSpec, runs: int, quick: bool, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    shapes = [("60 ts x 25 ch", 60, None), ("50 ts x 4 ch", 50, 4)]
    for label, per_message, channels in shapes:
        messages = telemetry(spec, "bench", 20, 30 if quick else 60, per_message, channels)
        payloads = [(topic(m), encode(m)) for m in messages]
        n = samples(messages)
        router = TopicRouter(EdgeSettings().topics)

        def in_process(payloads: list[tuple[str, bytes]] = payloads, router: TopicRouter = router, n: int = n) -> float:
            stage = WindowStage(spec, AssetPolicy(), EdgeMetrics())
            started = time.perf_counter()
            for t, p in payloads:
                stage.add(admit(t, p, router, 1 << 20))
                stage.ready()
            return n / (time.perf_counter() - started)

        broker = Mosquitto(workdir)
        try:
            staged: list[float] = []
            raw: list[float] = []
            for run in range(runs + 1):  # the first is the warm-up
                for kind, results in (("stages", staged), ("raw", raw)):
                    client_id = f"bench-{kind}-{run}"
                    _subscribe_once(broker.port, client_id, "bench")
                    publisher = mp.get_context("spawn").Process(target=_publisher_main, args=(broker.port, payloads))
                    publisher.start()
                    publisher.join()
                    seconds = (
                        drain_with_stages(broker, spec, client_id, "bench", len(payloads))
                        if kind == "stages"
                        else drain_raw(broker, client_id, len(payloads))
                    )
                    if run:
                        results.append(n / seconds)
        finally:
            broker.stop()
        row: dict[str, Any] = {
            "payload": label,
            "bytes": len(payloads[0][1]),
            "samples_per_s": statistics.median(staged),
            "messages_per_s": statistics.median(staged) / (n / len(payloads)),
            "raw_paho_samples_per_s": statistics.median(raw),
            "in_process_samples_per_s": median_of(runs, in_process),
        }
        row["vs_raw_paho"] = row["samples_per_s"] / row["raw_paho_samples_per_s"]
        rows.append(row)
    return rows


def _publisher_main(port: int, payloads: Sequence[tuple[str, bytes]]) -> None:
    os.sched_setaffinity(0, {CPU_OTHERS})
    publish_all(port, payloads)


# ---------------------------------------------------------------------------------------- 3. latency


class _Recorder:
    """Stands in for the latency histogram so that every observation is kept exactly."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def observe(self, value: float) -> None:
        self.values.append(value)


def _paced_publisher(port: int, payloads: Sequence[tuple[str, bytes]], rate: float) -> None:
    os.sched_setaffinity(0, {CPU_OTHERS})
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.perf_counter()
    for i, (t, p) in enumerate(payloads):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client.publish(t, p, qos=1)
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()


def bench_latency(bundle: Path, spec: WindowSpec, runs: int, quick: bool, workdir: Path) -> list[dict[str, Any]]:
    assets, live_rate = 100, 100.0  # 100 assets, one message a second each at 60x: 100 windows/s
    loads = (
        ("100 assets at 60x real time (100 windows/s)", live_rate, 6 if quick else 12, "FULL"),
        ("10x that (1,000 windows/s, one core ~saturated)", 10 * live_rate, 4 if quick else 8, "FULL"),
        ("10x that (1,000 windows/s, one core ~saturated)", 10 * live_rate, 4 if quick else 8, "NORMAL"),
    )
    rows = []
    for label, rate, seconds, sync in loads:
        warm = 11  # minutes of data before the first window completes
        minutes = warm + int(seconds * rate / assets)
        site = f"lat{int(rate)}"
        payloads = [(topic(m), encode(m)) for m in telemetry(spec, site, assets, minutes)]
        figures = []
        for _ in range(runs):
            broker = Mosquitto(workdir)
            try:
                settings = EdgeSettings(
                    site=site, state_dir=Path(tempfile.mkdtemp(dir=workdir)), mqtt={"url": broker.url}, kafka={"bootstrap": ""},
                    edge={"gateway_id": "bench", "model": str(bundle), "metrics_enabled": False, "outbox_sync": sync},
                )  # fmt: skip
                daemon = EdgeDaemon(settings)
                recorder = _Recorder()
                daemon.metrics.window_latency_seconds = recorder  # type: ignore[assignment]
                measured = assets * (minutes - warm - 1)  # every window but each asset's first (the warm-up)
                ms = 1000.0 * np.array(asyncio.run(_run_daemon(daemon, broker.port, payloads, rate, measured, recorder, assets)))
            finally:
                broker.stop()
            figures.append((len(ms), *np.percentile(ms, [50, 99]), ms.max()))
        count, p50, p99, peak = (statistics.median(f[i] for f in figures) for i in range(4))
        rows.append({"load": label, "outbox_sync": sync, "windows": int(count), "p50_ms": p50, "p99_ms": p99, "max_ms": peak})
    return rows


async def _run_daemon(
    daemon: EdgeDaemon,
    port: int,
    payloads: Sequence[tuple[str, bytes]],
    rate: float,
    measured: int,
    recorder: _Recorder,
    assets: int,
) -> list[float]:
    """Feed the daemon at ``rate`` messages/s; the first window of every asset (and ORT's first runs) is a warm-up."""
    logging.getLogger("edge_agent.daemon").setLevel(logging.ERROR)  # the "no Kafka" warning, on purpose here
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    while not daemon.link.connected:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    skip = assets * 12  # minutes 0..11: the messages up to each asset's first window
    warm = mp.get_context("spawn").Process(target=_paced_publisher, args=(port, payloads[:skip], rate))
    warm.start()
    await asyncio.to_thread(warm.join)
    while len(recorder.values) < assets:
        await asyncio.sleep(0.05)
    recorder.values.clear()
    publisher = mp.get_context("spawn").Process(target=_paced_publisher, args=(port, payloads[skip:], rate))
    publisher.start()
    await asyncio.to_thread(publisher.join)
    deadline = time.monotonic() + 30
    while len(recorder.values) < measured and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await task
    return recorder.values


# ---------------------------------------------------------------------------------------- report


def table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    if not rows:
        return
    keys = list(rows[0])
    cells = [[_fmt(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="measured runs per figure (median), after one warm-up")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (about a minute)")
    parser.add_argument("--json", action="store_true", help="also print one JSON object with every figure")
    parser.add_argument("--only", choices=["inference", "ingest", "latency"], help="run one section")
    parser.add_argument("--model", type=Path, default=default_bundle_path(), help="bundle (default: the shipped one)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {CPU_AGENT})  # "on one core"
    bundle: Path = args.model
    spec = Bundle.load(bundle).spec
    runs = 3 if args.quick and args.runs == 5 else args.runs
    print(f"bundle {Bundle.load(bundle).version} ({len(spec.channels)} channels, {spec.steps} steps); pinned to CPU {CPU_AGENT}")
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "inference"):
            results["inference"] = bench_inference(bundle, spec, runs, args.quick)
            table("1. batched inference on one core (windows/s; bar >= 1,000)", results["inference"])
        if args.only in (None, "ingest"):
            results["ingest"] = bench_ingest(spec, max(1, runs - 2), args.quick, Path(tmp))
            table("2. ingest per process through Mosquitto (samples/s; bar >= 200,000)", results["ingest"])
        if args.only in (None, "latency"):
            results["latency"] = bench_latency(bundle, spec, runs, args.quick, Path(tmp))
            table("3. added latency per window, arrival -> prediction in the outbox (bar: p99 <= 20 ms)", results["latency"])
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
