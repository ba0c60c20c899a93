"""Every Forewarn benchmark in one run, printed as ONE table: median and spread of several runs, each figure
beside a baseline measured in the same run, and the machine it ran on.

    benchmarks/run [--quick] [--json] [--only ITEM ...] [--runs N]

Items (``--only`` picks some; the default runs all but ``scaling``, which ``--only scaling`` adds):

- simulator: channel-samples/s published to Mosquitto, batched (10 s per message) vs unbatched; asset-days
  written per minute by ``forewarn simulate --out`` vs generation alone (no JSON, no disk);
- model: the shipped INT8 student at batch 1 and batched vs an FP32 student of the same shape (the
  training run's when ``--run-dir`` names one, with its teacher; else random weights), one thread; bundle size;
- edge: ``forewarn edge score`` on a simulated plant as a whole process (windows per CPU-second) vs the
  model alone on the same windows; the cost of each stage per window (parse, window, featurise, model,
  evidence + contract, encode);
- ingest: samples/s drained from a Mosquitto backlog through the daemon's stages vs a bare paho-mqtt
  subscriber on the same broker;
- latency: added latency per window (arrival of the completing message -> prediction committed in the
  outbox) of the daemon fed at 10x a plant's live rate (and faster), vs the model's own batch-1 time;
- rss: the edge agent's resident memory with 500 and 5,000 assets buffered vs the same process holding none;
- outbox: durable writes/s vs bare sqlite3 inserts, and the replay of a 6-hour outage backlog at the
  configured rate and unpaced vs the outbox's take+delete alone (to an in-memory Kafka port);
- stream: predictions/s one ``forewarn stream worker`` folds on tansu vs a bare aiokafka consumer of the same
  topic; deciding prediction -> alert row p50/p99 vs a bare produce -> consume round trip;
- scaling: the same figures at two or three points of assets (``--assets``: windows per core and RSS),
  channels, samples per message, window length and cores.

"Per core" figures divide by the CPU time the measuring process used (user + system, all its threads),
not wall time: the project's machines are shared, and CPU time is what a gateway's core would spend. The
table says how loaded the machine was (load average before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

ITEMS = ("simulator", "model", "edge", "ingest", "latency", "rss", "outbox", "stream", "scaling")
DEFAULT_ITEMS = ITEMS[:-1]
CPU_AGENT, CPU_OTHERS = 0, 1


# ------------------------------------------------------------------------------------------ table


@dataclass
class Row:
    """One figure of the table: every run's value and the same-run baseline's."""

    item: str
    figure: str
    unit: str
    values: list[float]
    baseline: str = ""
    baseline_values: list[float] = field(default_factory=list)
    target: str = ""
    higher_is_better: bool = True

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline_values) if self.baseline_values else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_median
        return self.median / base if base else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "median": self.median,
            "min": min(self.values),
            "max": max(self.values),
            "baseline_median": self.baseline_median,
            "ratio": self.ratio,
        }


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def spread(values: Sequence[float]) -> str:
    return f"{fmt(min(values))}-{fmt(max(values))} (n={len(values)})" if len(values) > 1 else "(n=1)"


def render(rows: Sequence[Row]) -> str:
    """A Markdown table (pastes into the README as it is)."""
    head = ["item", "figure", "median", "spread", "unit", "baseline (same run)", "baseline", "ratio", "target"]
    lines = [head]
    for r in rows:
        base = r.baseline_median
        lines.append(
            [
                r.item,
                r.figure,
                fmt(r.median),
                spread(r.values),
                r.unit,
                r.baseline or "-",
                fmt(base),
                f"{r.ratio:.2f}x" if r.ratio is not None else "-",
                r.target or "-",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }


def cpu_now() -> float:
    """CPU seconds this process used so far (all threads)."""
    return time.process_time()


@contextlib.contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """Pin this process to ``cpus`` (where it can) for the duration."""
    try:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cpus & before or before)
    except (AttributeError, OSError):
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def others_cpu() -> set[int]:
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        return set()
    return {CPU_OTHERS} if CPU_OTHERS in cpus and len(cpus) > 1 else cpus


def forewarn_cmd() -> list[str]:
    return [sys.executable, "-m", "forewarn.cli"]


def simulate(out: Path, assets: int, duration: str, scenario: str = "demo", seed: int = 1) -> dict[str, Any]:
    """`forewarn simulate --out` as users run it; its JSON summary."""
    cmd = [*forewarn_cmd(), "simulate", "--scenario", scenario, "--assets", str(assets), "--duration", duration]
    done = subprocess.run([*cmd, "--seed", str(seed), "--out", str(out), "--json"], check=True, capture_output=True, text=True)
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


# ------------------------------------------------------------------------------------------ model


def bench_model(ctx: Context) -> list[Row]:
    import bench_models

    from models.runtime import Bundle, Predictor

    bundle = Bundle.load(ctx.model)
    predictor = Predictor(bundle, threads=1)
    windows = bench_models.demo_windows(bundle, hours=1.5 if ctx.quick else 3.0)
    feats = predictor.featuriser(windows)
    graphs: dict[str, Path] = {}
    if ctx.run_dir:
        for name, label in (("teacher", "teacher FP32"), ("student", "FP32 student")):
            if (ctx.run_dir / f"{name}.onnx").exists():
                graphs[label] = ctx.run_dir / f"{name}.onnx"
    tmp = tempfile.TemporaryDirectory()
    if "FP32 student" not in graphs:
        with contextlib.suppress(ImportError):  # torch is in the train extra
            ref = bench_models.random_reference(bundle, Path(tmp.name))
            graphs["FP32 student"] = next(p for k, p in ref.items() if k.startswith("FP32"))
    graphs["INT8 student (shipped)"] = bundle.onnx_path
    vocab_map = _teacher_vocab(bundle) if "teacher FP32" in graphs else None
    calls = 60 if ctx.quick else 300
    results: dict[str, tuple[list[float], list[float]]] = {}
    for label, path in graphs.items():
        vm = vocab_map if label.startswith("teacher") else None
        b1 = [bench_models.time_graph(path, feats, 1, calls, vm) for _ in range(ctx.runs)]  # ms/window
        b64 = [1e3 / bench_models.time_graph(path, feats, 64, max(6, calls // 10), vm) for _ in range(ctx.runs)]
        results[label] = (b1, b64)
    rows = []
    fp32 = results.get("FP32 student")
    shipped = "INT8 student (shipped)"
    basis = "FP32 student, same shape" + ("" if ctx.run_dir else " (random weights)")
    for label, (b1, b64) in results.items():
        versus = fp32 if fp32 is not None and label != "FP32 student" else None
        rows.append(
            Row(
                "model",
                f"{label}, batch 1, one thread",
                "ms/window",
                b1,
                basis if versus else "",
                versus[0] if versus else [],
                higher_is_better=False,
            )
        )
        rows.append(
            Row("model", f"{label}, batch 64, one thread", "windows/s", b64, basis if versus else "", versus[1] if versus else [])
        )
    int8_b1 = results[shipped][0]
    rows.append(
        Row(
            "model",
            f"INT8 student as the gateway runs it (batch {predictor.max_batch} per call, {len(windows)} windows)",
            "windows/s",
            [_predictor_rate(predictor, feats) for _ in range(ctx.runs)],
            "INT8 batch 1 (bare session)",
            [1e3 / v for v in int8_b1],
        )
    )
    size = sum(p.stat().st_size for p in bundle.path.iterdir() if p.is_file()) / 1e6
    rows.append(
        Row("model", f"bundle {bundle.version} on disk (model.onnx {bundle.onnx_path.stat().st_size / 1e6:.2f} MB)", "MB", [size],
            "FP32 student graph" if fp32 else "", [graphs["FP32 student"].stat().st_size / 1e6] if fp32 else [],
            higher_is_better=False)
    )  # fmt: skip
    tmp.cleanup()
    return rows


def _predictor_rate(predictor: Any, feats: Any) -> float:
    predictor.run(feats)
    started = time.perf_counter()  # wall clock, as bench_models.time_graph (the baseline) times
    predictor.run(feats)
    return len(feats.sensors) / (time.perf_counter() - started)


def _teacher_vocab(bundle: Any) -> Any:
    import numpy as np

    from models.tokenizer import base_tokenizer_path

    vocab = bundle.tokenizer.tokenizer.get_vocab()
    full = json.loads(base_tokenizer_path().read_text())["model"]["vocab"]
    vocab_map = np.zeros(len(vocab), dtype=np.int64)
    for token, i in vocab.items():
        vocab_map[i] = full[token]
    return vocab_map


# ------------------------------------------------------------------------------------------ edge


def edge_dataset(ctx: Context, assets: int) -> Path:
    out = ctx.workdir / f"plant-{assets}"
    if not out.exists():
        simulate(out, assets, "1h")
    return out


def stage_costs(directory: Path, bundle_path: Path, batch: int) -> dict[str, float]:
    """CPU seconds of each stage of `edge score` over a dataset, measured in one pass, and the windows scored."""
    from edge_agent.infer import Scorer
    from edge_agent.metrics import EdgeMetrics
    from edge_agent.window import AssetPolicy, WindowStage
    from forewarn.contracts import encode
    from forewarn.dataset import iter_messages, read_meta
    from models.runtime import Bundle, Predictor

    scorer = Scorer(bundle_path, "bench", threads=1, batch_size=batch)
    scorer.load()
    predictor = Predictor(Bundle.load(bundle_path), threads=1)
    stage = WindowStage(
        scorer.spec, AssetPolicy(max_assets=100_000, rated_currents=read_meta(directory).rated_currents()), EdgeMetrics()
    )
    cost = dict.fromkeys(("parse", "window", "featurise", "model", "predictions", "encode"), 0.0)
    windows = 0
    pending: list[Any] = []
    clock = time.thread_time

    def score(batch_windows: list[Any]) -> None:
        nonlocal windows
        t0 = clock()
        feats = predictor.featuriser(batch_windows)
        t1 = clock()
        predictor.run(feats)
        t2 = clock()
        scored = scorer.score(batch_windows)  # featurise + model + evidence + contract, as edge score runs it
        t3 = clock()
        for p in scored.predictions:
            encode(p)
        t4 = clock()
        cost["featurise"] += t1 - t0
        cost["model"] += t2 - t1
        cost["predictions"] += max(0.0, (t3 - t2) - (t2 - t0))
        cost["encode"] += t4 - t3
        windows += len(batch_windows)

    messages = iter_messages(directory)
    while True:
        t0 = clock()
        message = next(messages, None)
        t1 = clock()
        cost["parse"] += t1 - t0
        if message is None:
            break
        stage.add(message)
        pending.extend(w for w, _ in stage.ready())
        cost["window"] += clock() - t1
        while len(pending) >= batch:
            score(pending[:batch])
            del pending[:batch]
    t0 = clock()
    pending.extend(stage.flush())
    cost["window"] += clock() - t0
    for at in range(0, len(pending), batch):
        score(pending[at : at + batch])
    return {**cost, "windows": float(windows)}


def edge_score_process(directory: Path, model: Path, out: Path) -> tuple[int, float, float]:
    """(windows, CPU seconds, wall seconds) of `forewarn edge score` as a whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [*forewarn_cmd(), "edge", "score", str(directory), "--model", str(model), "--out", str(out), "--threads", "1", "--json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return int(summary["windows"]), cpu, wall


def bench_edge_path(ctx: Context) -> list[Row]:
    from models.runtime import Bundle

    assets = 20 if ctx.quick else 100
    data = edge_dataset(ctx, assets)
    batch = 64
    bundle = Bundle.load(ctx.model)
    whole, wall, costs = [], [], []
    with pinned({CPU_AGENT}):
        stage_costs(edge_dataset(ctx, 2), ctx.model, batch)  # warm-up: imports, ONNX Runtime, page cache
        for _ in range(ctx.runs):
            windows, cpu, seconds = edge_score_process(data, ctx.model, ctx.workdir / "scored.jsonl")
            whole.append(windows / cpu)
            wall.append(windows / seconds)
            costs.append(stage_costs(data, ctx.model, batch))
    model_rate = [c["windows"] / c["model"] for c in costs]
    label = f"{assets}-asset hour, {int(costs[0]['windows']):,} windows, bundle {bundle.version}"
    rows = [
        Row("edge", f"`edge score` whole process, per core ({label})", "windows/s", whole, "model alone (Predictor.run)",
            model_rate,
            ">= 2,000; >= 1/1.5 of model"),
        Row("edge", "`edge score` whole process, wall clock (shared machine)", "windows/s", wall, "model alone", model_rate),
    ]  # fmt: skip
    total = [sum(v for k, v in c.items() if k != "windows") / c["windows"] * 1e6 for c in costs]
    for stage in ("parse", "window", "featurise", "model", "predictions", "encode"):
        per = [c[stage] / c["windows"] * 1e6 for c in costs]
        name = {
            "parse": "parse: JSON line -> contract (decode_input)",
            "window": "window: sequence checks, step aggregates, history",
            "featurise": "featurise: window -> sensor tokens + log pieces",
            "model": "model: ONNX Runtime session, one thread",
            "predictions": "predictions: evidence, probabilities, FaultPrediction",
            "encode": "encode: FaultPrediction -> JSON bytes",
        }[stage]
        rows.append(Row("edge", f"stage cost, {name}", "us/window", per, "all stages", total, higher_is_better=False))
    return rows


# ------------------------------------------------------------------------------------------ ingest


def bench_ingest(ctx: Context) -> list[Row]:
    import bench_edge

    from edge_agent.config import EdgeSettings
    from edge_agent.ingest import TopicRouter, admit
    from edge_agent.metrics import EdgeMetrics
    from edge_agent.window import AssetPolicy, WindowStage
    from forewarn.contracts import encode
    from models.runtime import Bundle

    spec = Bundle.load(ctx.model).spec
    rows = []
    shapes = [("60 ts x 25 ch", 60, None)] if ctx.quick else [("60 ts x 25 ch", 60, None), ("50 ts x 4 ch", 50, 4)]
    for label, per_message, channels in shapes:
        messages = bench_edge.telemetry(spec, "bench", 20, 20 if ctx.quick else 60, per_message, channels)
        payloads = [(bench_edge.topic(m), encode(m)) for m in messages]
        n = bench_edge.samples(messages)
        broker = bench_edge.Mosquitto(ctx.workdir)
        staged: list[float] = []
        raw: list[float] = []
        try:
            with pinned({CPU_AGENT}):
                for run in range(ctx.runs + 1):  # the first is the warm-up
                    for kind, results in (("stages", staged), ("raw", raw)):
                        client_id = f"bench-{kind}-{run}"
                        bench_edge._subscribe_once(broker.port, client_id, "bench")
                        publisher = mp.get_context("spawn").Process(
                            target=bench_edge._publisher_main, args=(broker.port, payloads)
                        )
                        publisher.start()
                        publisher.join()
                        seconds = (
                            bench_edge.drain_with_stages(broker, spec, client_id, "bench", len(payloads))
                            if kind == "stages"
                            else bench_edge.drain_raw(broker, client_id, len(payloads))
                        )
                        if run:
                            results.append(n / seconds)
        finally:
            broker.stop()
        rows.append(Row("ingest", f"MQTT backlog through the daemon's stages ({label} per message)", "samples/s", staged,
                        "bare paho-mqtt subscriber, same broker", raw, ">= 1,000,000"))  # fmt: skip
        router = TopicRouter(EdgeSettings().topics)

        def in_process(payloads: list[tuple[str, bytes]] = payloads, router: TopicRouter = router, n: int = n) -> float:
            stage = WindowStage(spec, AssetPolicy(), EdgeMetrics())
            started = cpu_now()
            for t, p in payloads:
                stage.add(admit(t, p, router, 1 << 20))
                stage.ready()
            return n / (cpu_now() - started)

        def decode_only(payloads: list[tuple[str, bytes]] = payloads, router: TopicRouter = router, n: int = n) -> float:
            started = cpu_now()
            for t, p in payloads:
                admit(t, p, router, 1 << 20)
            return n / (cpu_now() - started)

        in_process()
        rows.append(
            Row("ingest", f"decode + window in-process, per core, no MQTT ({label})", "samples/s",
                [in_process() for _ in range(ctx.runs)], "decode (admit) alone", [decode_only() for _ in range(ctx.runs)])
        )  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------ latency


class _Recorder:
    def __init__(self) -> None:
        self.values: list[float] = []

    def observe(self, value: float) -> None:
        self.values.append(value)


async def _feed_daemon(
    daemon: Any, port: int, payloads: Sequence[tuple[str, bytes]], assets: int, rate: float, recorder: _Recorder
) -> list[float]:
    """Warm the daemon up with each asset's first window (fast), then feed the rest at ``rate`` messages/s."""
    import bench_edge

    logging.getLogger("edge_agent.daemon").setLevel(logging.ERROR)  # "no Kafka": on purpose here
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    while not daemon.link.connected:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    skip = assets * 12  # minutes 0..11: up to each asset's first window
    warm = mp.get_context("spawn").Process(target=bench_edge._paced_publisher, args=(port, payloads[:skip], 2000.0))
    warm.start()
    await asyncio.to_thread(warm.join)
    deadline = time.monotonic() + 60
    while len(recorder.values) < assets and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    # The warm-up outpaces the daemon: wait until its backlog is scored (no window for half a second).
    seen = -1
    while seen != len(recorder.values) and time.monotonic() < deadline:
        seen = len(recorder.values)
        await asyncio.sleep(0.5)
    recorder.values.clear()
    measured = len(payloads) - skip
    publisher = mp.get_context("spawn").Process(target=bench_edge._paced_publisher, args=(port, payloads[skip:], rate))
    publisher.start()
    await asyncio.to_thread(publisher.join)
    deadline = time.monotonic() + 30
    while len(recorder.values) < measured and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await task
    return recorder.values


def bench_latency(ctx: Context) -> list[Row]:
    import bench_edge
    import numpy as np

    from edge_agent.config import EdgeSettings
    from edge_agent.daemon import EdgeDaemon
    from forewarn.contracts import encode
    from models.runtime import Bundle, Predictor

    bundle = Bundle.load(ctx.model)
    spec = bundle.spec
    # A plant's live rate: every asset completes one window a minute (hop 60 s). 200 assets -> 3.3 windows/s.
    ten = 200 / 60 * 10
    loads = [("10x live, 200 assets (33 windows/s)", 200, ten, 6 if ctx.quick else 15, "FULL")]
    loads.append(("10x live, 200 assets, outbox_sync=NORMAL", 200, ten, 6 if ctx.quick else 15, "NORMAL"))
    loads.append(("60x live, 100 assets (100 windows/s)", 100, 100.0, 4 if ctx.quick else 10, "FULL"))
    if not ctx.quick:
        loads.append(("600x live, 100 assets (1,000 windows/s)", 100, 1000.0, 6, "FULL"))
    predictor = Predictor(bundle, threads=1)
    rows = []
    for label, assets, rate, seconds, sync in loads:
        minutes = 12 + max(1, int(seconds * rate / assets))
        site = f"lat{int(rate)}"
        payloads = [(bench_edge.topic(m), encode(m)) for m in bench_edge.telemetry(spec, site, assets, minutes)]
        p50, p99, model_ms = [], [], []
        for _ in range(ctx.runs):
            broker = bench_edge.Mosquitto(ctx.workdir)
            try:
                settings = EdgeSettings(
                    site=site, state_dir=Path(tempfile.mkdtemp(dir=ctx.workdir)), mqtt={"url": broker.url},
                    kafka={"bootstrap": ""},
                    edge={"gateway_id": "bench", "model": str(ctx.model), "metrics_enabled": False, "max_assets": 10_000,
                          "outbox_sync": sync},
                )  # fmt: skip
                daemon = EdgeDaemon(settings)
                recorder = _Recorder()
                daemon.metrics.window_latency_seconds = recorder  # type: ignore[assignment]
                # Not pinned: the daemon's paho, event loop and ONNX Runtime threads may use every core, as deployed.
                ms = 1000.0 * np.array(asyncio.run(_feed_daemon(daemon, broker.port, payloads, assets, rate, recorder)))
            finally:
                broker.stop()
            if len(ms):
                p50.append(float(np.percentile(ms, 50)))
                p99.append(float(np.percentile(ms, 99)))
            model_ms.append(_model_b1_ms(predictor, bundle, spec))
        if p50:
            rows.append(
                Row("latency", f"added latency p50, {label}", "ms", p50, "model alone, batch 1", model_ms, higher_is_better=False)
            )
            target = "<= 10 (at 10x live)" if label.startswith("10x") else ""
            rows.append(Row("latency", f"added latency p99, {label}", "ms", p99, "model alone, batch 1", model_ms, target, False))
    return rows


def _model_b1_ms(predictor: Any, bundle: Any, spec: Any) -> float:
    import bench_edge

    from models.windowing import windows_from_messages

    windows = list(windows_from_messages(bench_edge.telemetry(spec, "m", 5, 14), spec))[:20]
    feats = predictor.featuriser(windows)
    predictor.run(feats)
    times = []
    for i in range(len(windows)):
        one = type(feats)(feats.sensors[i : i + 1], feats.tokens[i : i + 1], feats.line_index[i : i + 1])
        t0 = time.perf_counter()
        predictor.run(one)
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


# ------------------------------------------------------------------------------------------ rss


RSS_SCRIPT = r"""
import json, sys, time
from pathlib import Path
assets, minutes, model = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
import edge_agent.daemon  # every module the agent imports (paho, aiokafka, prometheus, ORT)
from edge_agent.config import EdgeSettings
from edge_agent.infer import Scorer
from edge_agent.ingest import TopicRouter, admit
from edge_agent.metrics import EdgeMetrics
from edge_agent.window import AssetPolicy, WindowStage
from forewarn.contracts import Telemetry, encode
import numpy as np

def rss():
    fields = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines() if ":" in l)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

scorer = Scorer(model, "bench", threads=1, batch_size=64)
scorer.load()
spec = scorer.spec
stage = WindowStage(spec, AssetPolicy(max_assets=max(1, assets)), EdgeMetrics())
router = TopicRouter(EdgeSettings().topics)
rng = np.random.default_rng(1)
windows = 0
t0 = 1_767_225_600.0
for step in range(minutes if assets else 0):
    for a in range(assets):
        values = 50.0 + rng.normal(0.0, 1.0, size=(len(spec.channels), 60))
        m = Telemetry(site="s", asset_id=f"a{a}", asset_type="centrifugal_pump", seq=step,
                      timestamps=[t0 + step * 60 + i for i in range(60)],
                      channels={c: values[k].round(3).tolist() for k, c in enumerate(spec.channels)})
        stage.add(admit(f"forewarn/s/a{a}/telemetry", encode(m), router, 1 << 20))
        ready = [w for w, _ in stage.ready()]
        if ready:
            windows += len(scorer.score(ready).predictions)
now, peak = rss()
print(json.dumps({"assets": stage.asset_count, "windows": windows, "rss_mb": now, "peak_mb": peak}))
"""


def _rss(assets: int, minutes: int, model: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(assets), str(minutes), str(model)], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_rss(ctx: Context) -> list[Row]:
    rows = []
    base = [_rss(0, 0, ctx.model)["rss_mb"] for _ in range(max(1, ctx.runs - 1))]
    for assets, minutes in ((500, 12), (5000, 3 if ctx.quick else 12)):
        got = _rss(assets, minutes, ctx.model)
        what = (
            f"one window scored per asset ({int(got['windows']):,})"
            if got["windows"]
            else "buffers filled, no window complete yet"
        )
        rows.append(
            Row("rss", f"edge agent RSS, {assets:,} assets buffered ({minutes} min of 25-channel data each; {what})", "MB",
                [got["rss_mb"]], "same process, model loaded, no asset", base, "<= 150" if assets == 5000 else "", False)
        )  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------ outbox


def _prediction_records(n: int, assets: int) -> list[Any]:
    from edge_agent.outbox import Record
    from forewarn.contracts import encode
    from stream.synthetic import prediction

    out = []
    for i in range(n):
        p = prediction(f"a{i % assets}", 1_767_225_600.0 + 60 * (i // assets), "normal", 0.97)
        out.append(Record(p.id, "prediction", "forewarn.predictions", p.asset_id.encode(), encode(p)))
    return out


class _InstantPort:
    """A Kafka port that acknowledges every record at once: what the gateway's side of a replay costs."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, records: Sequence[tuple[str, bytes | None, bytes]]) -> list[bool]:
        await asyncio.sleep(0)  # a real port suspends while the broker answers
        self.sent += len(records)
        return [True] * len(records)

    async def close(self) -> None:
        return None


def bench_outbox(ctx: Context) -> list[Row]:
    from edge_agent.metrics import EdgeMetrics
    from edge_agent.outbox import _SCHEMA, Outbox
    from edge_agent.publish import KafkaPublisher

    n, batch = (2_000 if ctx.quick else 20_000), 64
    records = _prediction_records(n, 200)
    rows = []
    syncs: tuple[Literal["FULL", "NORMAL"], ...] = ("FULL", "NORMAL")
    for sync in syncs:
        ours, bare = [], []
        for run in range(ctx.runs + 1):
            path = ctx.workdir / f"outbox-{sync}-{run}.db"
            outbox = Outbox(path, EdgeMetrics(), 1 << 40, 1e9, sync)
            outbox.start()
            started = time.perf_counter()
            for at in range(0, n, batch):
                outbox.put(records[at : at + batch])
            rate = n / (time.perf_counter() - started)
            outbox.stop()
            db = sqlite3.connect(ctx.workdir / f"bare-{sync}-{run}.db", isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={sync}")
            db.executescript(_SCHEMA)
            started = time.perf_counter()
            for at in range(0, n, batch):
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    "INSERT OR IGNORE INTO outbox (id, kind, topic, key, value, created, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(r.id, r.kind, r.topic, r.key, r.value, time.time(), len(r.value)) for r in records[at : at + batch]],
                )
                db.execute("COMMIT")
            bare_rate = n / (time.perf_counter() - started)
            db.close()
            if run:
                ours.append(rate)
                bare.append(bare_rate)
        rows.append(Row("outbox", f"durable writes, synchronous={sync}, batches of {batch}", "predictions/s", ours,
                        "bare sqlite3 executemany, same schema", bare))  # fmt: skip

    # A 6-hour outage: every asset's prediction a minute for 6 h, stored before the uplink returns.
    assets = 25 if ctx.quick else 200
    backlog = _prediction_records(assets * 360, assets)
    unpaced: list[float] = []
    paced: list[float] = []
    alone: list[float] = []
    configured = 200.0  # EdgeSection.replay_rate's default
    template = ctx.workdir / "replay-template.db"
    stored = Outbox(template, EdgeMetrics(), 1 << 40, 1e9, "NORMAL", clock=lambda: time.time() - 7 * 3600)
    stored.start()
    for at in range(0, len(backlog), 500):
        stored.put(backlog[at : at + 500])
    stored.stop()  # closing the last connection checkpoints the WAL: one file to copy
    for run in range(ctx.runs + 1):
        for mode in ("alone", "unpaced", "paced"):
            path = ctx.workdir / f"replay-{mode}-{run}.db"
            shutil.copyfile(template, path)
            outbox = Outbox(path, EdgeMetrics(), 1 << 40, 1e9, "NORMAL")
            outbox.start()
            if mode == "alone":
                started = time.perf_counter()
                while rows_ := outbox.take(500):
                    outbox.delete(r.seq for r in rows_)
                rate = len(backlog) / (time.perf_counter() - started)
            else:
                rate_limit = 1e9 if mode == "unpaced" else configured
                port = _InstantPort()
                publisher = KafkaPublisher(outbox, port, EdgeMetrics(), batch=500, historical_after_s=120.0,
                                           replay_rate=rate_limit, backoff_max_s=1.0, clock=time.time)  # fmt: skip
                if mode == "unpaced":
                    rate = asyncio.run(_replay(publisher, port, len(backlog)))
                else:  # the bucket starts with a second's worth: time the steady pace after it
                    rate = asyncio.run(_replay(publisher, port, int(configured * (2 if ctx.quick else 6)), int(configured)))
            outbox.stop()
            if run:
                {"alone": alone, "unpaced": unpaced, "paced": paced}[mode].append(rate)
    minutes = len(backlog) / statistics.median(paced) / 60
    rows.append(Row("outbox", f"6 h outage replay ({assets} assets, {len(backlog):,} rows), unpaced, to an instant Kafka port",
                    "rows/s", unpaced, "outbox take + delete alone", alone))  # fmt: skip
    rows.append(Row("outbox", f"6 h outage replay at the configured replay_rate={configured:.0f}/s (drains in {minutes:.0f} min)",
                    "rows/s", paced, "configured replay_rate", [configured]))  # fmt: skip
    return rows


async def _replay(publisher: Any, port: _InstantPort, limit: int, skip: int = 0) -> float:
    """Rows/s the publisher sends until ``limit``, timed from the ``skip``-th (past the token bucket's first second)."""
    publisher.start()
    started, first = time.perf_counter(), 0
    if skip:
        while port.sent < skip:
            await asyncio.sleep(0.001)
        started, first = time.perf_counter(), port.sent
    while port.sent < limit:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    await publisher.stop(0.1)
    return (port.sent - first) / elapsed


# ------------------------------------------------------------------------------------------ stream


def bench_stream(ctx: Context) -> list[Row]:
    import uuid

    import bench_stream

    from demo.brokers import TansuBroker

    n = 8_000 if ctx.quick else 60_000
    topic = f"bench-predictions-{uuid.uuid4().hex[:6]}"
    rows = []
    with TansuBroker() as started, tempfile.TemporaryDirectory(dir=ctx.workdir) as tmp:
        broker: Any = started
        worker = bench_stream.Worker(broker.bootstrap, Path(tmp), topic)
        worker.start()
        try:
            worker.wait(lambda: worker.processed() == 0, 60)
            batches = [bench_stream.workload(2_000 if ctx.quick else 10_000, 200)]
            batches += [bench_stream.workload(n, 200, offset=10_000 + r * n) for r in range(ctx.runs)]
            measured = [bench_stream.run_throughput(worker, broker, topic, b) for b in batches][1:]
            everything = [m for b in batches for m in b]
            base_topic = f"{topic}-baseline"
            asyncio.run(bench_stream.produce(broker.bootstrap, base_topic, everything[:n]))
            raw = [asyncio.run(bench_stream.consume_rate(broker.bootstrap, base_topic, n, False)) for _ in range(ctx.runs)]
            latency = bench_stream.latency(worker, broker.bootstrap, topic, 8 if ctx.quick else 30)
            trip = asyncio.run(_round_trips(broker.bootstrap, f"{topic}-trip", 8 if ctx.quick else 30))
        finally:
            worker.stop()
    rows.append(Row("stream", "predictions folded/s, one worker (tansu, SQLite)", "predictions/s", [m.rate for m in measured],
                    "bare aiokafka consumer, same broker", raw, ">= 30,000 (Apache Kafka)"))  # fmt: skip
    lat = [1000 * x for x in latency]
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
    trips = [1000 * x for x in trip]
    rows.append(Row("stream", "deciding prediction -> alert row, p50", "ms", [statistics.median(lat)],
                    "bare produce -> poll round trip p50", [statistics.median(trips)], higher_is_better=False))  # fmt: skip
    rows.append(Row("stream", f"deciding prediction -> alert row, p99 ({len(lat)} alerts)", "ms", [q[98]],
                    "bare produce -> poll round trip p50", [statistics.median(trips)], higher_is_better=False))  # fmt: skip
    return rows


async def _round_trips(bootstrap: str, topic: str, samples: int) -> list[float]:
    """Seconds from send_and_wait to a consumer polling the record, one record at a time."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    await producer.send_and_wait(topic, b"warm")
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="latest", enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await consumer.start()
    out = []
    try:
        await consumer.getmany(timeout_ms=500)
        for _ in range(samples):
            sent = time.perf_counter()
            await producer.send_and_wait(topic, b"x")
            got: dict[Any, list[Any]] = {}
            while not got:
                got = await consumer.getmany(timeout_ms=1000)
            out.append(time.perf_counter() - sent)
    finally:
        await consumer.stop()
        await producer.stop()
    return out


# ------------------------------------------------------------------------------------------ simulator


def bench_simulator(ctx: Context) -> list[Row]:
    import bench_simulators

    assets, seconds = (100, 120.0) if ctx.quick else (500, 600.0)
    batched, unbatched, sustained = [], [], []
    with pinned(others_cpu()):
        bench_simulators.live_run(min(assets, 50), 60, 10.0, 0.0)  # warm-up
        for _ in range(ctx.runs):
            b = bench_simulators.live_run(assets, seconds, 10.0, 0.0)
            u = bench_simulators.live_run(assets, seconds / 5, 1.0, 0.0)
            batched.append(b["samples_s"])
            unbatched.append(u["samples_s"])
            sustained.append(b["x_realtime"] * assets)
    rows = [
        Row("simulator", f"channel-samples/s published, {assets} assets, 10 s per message (QoS 0, Mosquitto)", "samples/s",
            batched, "unbatched (1 sample per message)", unbatched),
        Row("simulator", "assets one publisher sustains at 1 Hz (x real time x assets)", "assets", sustained, "", [], ">= 500"),
    ]  # fmt: skip
    out_assets, duration = (50, "1h") if ctx.quick else (100, "6h")
    hours = 1.0 if duration == "1h" else 6.0
    written, generated = [], []
    for run in range(ctx.runs + 1):
        out = ctx.workdir / f"sim-{run}"
        started = time.perf_counter()
        summary = simulate(out, out_assets, duration, scenario="plant200")
        wall = time.perf_counter() - started  # the whole command: start-up, generation, JSON, disk
        shutil.rmtree(out)
        plant = bench_simulators._plant(out_assets, 10.0)
        started = time.perf_counter()
        for _ in plant.messages(hours * 3600):
            pass
        gen = time.perf_counter() - started
        if run:
            written.append(float(summary["asset_days"]) / wall * 60)
            generated.append(out_assets * hours / 24 / gen * 60)
    rows.append(Row("simulator", f"asset-days written per minute (`simulate --out`, plant200, {out_assets} assets x {duration})",
                    "asset-days/min", written, "generation alone (no JSON, no disk)", generated,
                    ">= 20 (100 in 5 min)"))  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------ scaling


def bench_scaling(ctx: Context) -> list[Row]:
    """The edge's per-core figures at two or three points of each dimension, each measured (never extrapolated)."""
    import bench_edge
    import numpy as np

    from edge_agent.config import EdgeSettings
    from edge_agent.ingest import TopicRouter, admit
    from edge_agent.metrics import EdgeMetrics
    from edge_agent.window import AssetPolicy, WindowStage
    from forewarn.contracts import encode
    from models.runtime import Bundle, Predictor

    bundle = Bundle.load(ctx.model)
    spec = bundle.spec
    rows = []
    with pinned({CPU_AGENT}):
        # assets: the whole path's cost per window as the plant grows
        points = ctx.assets or ((10, 30) if ctx.quick else (10, 30, 100))
        base: list[float] = []
        for assets in points:
            data = edge_dataset(ctx, assets)
            rates = []
            for _ in range(ctx.runs):
                c = stage_costs(data, ctx.model, 64)
                rates.append(c["windows"] / sum(v for k, v in c.items() if k != "windows"))
            base = base or rates
            rows.append(
                Row(
                    "scaling",
                    f"edge path in-process per core, {assets} assets x 1 h",
                    "windows/s",
                    rates,
                    f"{points[0]} assets",
                    base,
                )
            )
        # assets: the edge agent's memory once every asset has scored its first window (12 min of data each)
        base = []
        for assets in points:
            rss = [_rss(assets, 12, ctx.model)["rss_mb"]]
            base = base or rss
            rows.append(Row("scaling", f"edge agent RSS, {assets:,} assets, one window scored each", "MB", rss,
                            f"{points[0]:,} assets", base, higher_is_better=False))  # fmt: skip
        # channels and samples per message: ingest cost per sample
        router = TopicRouter(EdgeSettings().topics)
        base = []
        for channels, per_message in ((4, 60), (25, 10), (25, 60)):
            messages = bench_edge.telemetry(spec, "bench", 20, 20, per_message, channels)
            payloads = [(bench_edge.topic(m), encode(m)) for m in messages]
            n = bench_edge.samples(messages)
            rates = []
            for _ in range(ctx.runs + 1):
                stage = WindowStage(spec, AssetPolicy(), EdgeMetrics())
                started = cpu_now()
                for t, p in payloads:
                    stage.add(admit(t, p, router, 1 << 20))
                    stage.ready()
                rates.append(n / (cpu_now() - started))
            rates = rates[1:]
            base = base or rates
            figure = f"ingest decode + window per core, {channels} ch x {per_message} samples/message"
            rows.append(Row("scaling", figure, "samples/s",
                            rates, "4 ch x 60 samples", base))  # fmt: skip
        # window length: the window stage alone (the model's input is fixed by the bundle), same data and step
        data = edge_dataset(ctx, 10)
        base = []
        for factor in (0.5, 1.0, 2.0):
            cut = dataclasses.replace(spec, length_s=spec.length_s * factor, steps=round(spec.steps * factor))
            rates = [_window_rate(data, cut) for _ in range(ctx.runs)]
            base = base or rates
            figure = f"window stage alone per core, {cut.length_s:.0f} s windows ({cut.steps} steps)"
            rows.append(Row("scaling", figure, "windows/s", rates, f"{spec.length_s * 0.5:.0f} s windows", base))
    # cores: ONNX Runtime intra-op threads, batched
    windows = list(
        __import__("models.windowing", fromlist=["x"]).windows_from_messages(bench_edge.telemetry(spec, "m", 40, 14), spec)
    )
    base = []
    for threads in (1, 2):
        predictor = Predictor(bundle, threads=threads, max_batch=64)
        feats = predictor.featuriser(windows)
        predictor.run(feats)
        rates = []
        for _ in range(ctx.runs):
            started = time.perf_counter()
            predictor.run(feats)
            rates.append(len(windows) / (time.perf_counter() - started))
        base = base or rates
        rows.append(
            Row("scaling", f"model batched (64), {threads} ORT thread(s), wall clock", "windows/s", rates, "1 thread", base)
        )
    del np
    return rows


def _window_rate(directory: Path, spec: Any) -> float:
    """Windows per CPU-second of the window stage alone (sequence checks, aggregates, history) over a dataset."""
    from edge_agent.metrics import EdgeMetrics
    from edge_agent.window import AssetPolicy, WindowStage
    from forewarn.dataset import iter_messages, read_meta

    messages = list(iter_messages(directory))
    stage = WindowStage(spec, AssetPolicy(rated_currents=read_meta(directory).rated_currents()), EdgeMetrics())
    windows = 0
    started = cpu_now()
    for message in messages:
        stage.add(message)
        windows += len(stage.ready())
    return windows / (cpu_now() - started)


# ------------------------------------------------------------------------------------------ main


@dataclass
class Context:
    quick: bool
    runs: int
    model: Path
    run_dir: Path | None
    workdir: Path
    assets: tuple[int, ...] = ()  # the scaling item's plant sizes; empty: its defaults


RUNNERS: dict[str, Callable[[Context], list[Row]]] = {
    "simulator": bench_simulator,
    "model": bench_model,
    "edge": bench_edge_path,
    "ingest": bench_ingest,
    "latency": bench_latency,
    "rss": bench_rss,
    "outbox": bench_outbox,
    "stream": bench_stream,
    "scaling": bench_scaling,
}


def main(argv: Sequence[str] | None = None) -> int:
    from models.runtime import default_bundle_path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 3 runs: a few minutes on 2 cores")
    parser.add_argument("--json", action="store_true", help="also print one JSON object (machine, rows) as the last line")
    parser.add_argument("--only", nargs="+", choices=ITEMS, metavar="ITEM", help=f"run only these items: {', '.join(ITEMS)}")
    parser.add_argument("--runs", type=int, help="measured runs per figure after a warm-up (default 3 quick, 5 full)")
    parser.add_argument("--model", type=Path, default=default_bundle_path(), help="bundle (default: the shipped one)")
    parser.add_argument("--run-dir", type=Path, help="a training run directory: time its teacher.onnx and student.onnx too")
    parser.add_argument("--assets", nargs="+", type=int, metavar="N",
                        help="plant sizes the scaling item measures (default 10 30, full 10 30 100)")  # fmt: skip
    args = parser.parse_args(argv)
    items = list(args.only or DEFAULT_ITEMS)
    runs = args.runs or (3 if args.quick else 5)
    info = machine()
    rows: list[Row] = []
    failures: dict[str, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="forewarn-bench-") as tmp:
        ctx = Context(args.quick, runs, args.model, args.run_dir, Path(tmp), tuple(args.assets or ()))
        for item in items:
            t0 = time.perf_counter()
            try:
                rows += RUNNERS[item](ctx)
            except Exception as exc:  # one broken item must not cost the others' figures
                failures[item] = f"{type(exc).__name__}: {exc}"
                print(f"benchmarks/run: {item} failed: {traceback.format_exc()}", file=sys.stderr)
            print(f"benchmarks/run: {item} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    info["load_after"] = [round(x, 2) for x in os.getloadavg()]
    info["seconds"] = round(time.perf_counter() - started, 1)
    print(
        f"Forewarn benchmarks ({'quick' if args.quick else 'full'}, {runs} runs after a warm-up) on {info['cpu']}, "
        f"{info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']}; load average {info['load_before'][0]} "
        f"before, {info['load_after'][0]} after; {info['seconds']:.0f} s"
    )
    print()
    print(render(rows))
    for item, reason in failures.items():
        print(f"\n{item}: not measured ({reason})")
    if args.json:
        print(json.dumps({"machine": info, "rows": [r.as_dict() for r in rows], "failed": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
