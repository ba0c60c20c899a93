"""Simulator benchmarks: live publishing of a 500-asset plant on one core, and dataset writing speed.

    python benchmarks/bench_simulators.py [--assets 500] [--sim-seconds 600] [--runs 3] [--realtime-s 60]
                                          [--out-assets 100] [--out-days 1] [--skip-live] [--skip-out]

Prints two tables.

1. live: the simulator process pinned to one CPU core publishes ``--assets`` assets at 1 Hz
   (1 sample/s of every channel) to the real Mosquitto (127.0.0.1:1883, QoS 0, batched
   10 s per message), as fast as it can: "x real time" >= 1 means one core sustains that
   plant at 1 Hz. Baseline in the same run: the same plant unbatched (1 sample per
   message). A separate mosquitto_sub counts what arrived. Then a real-time run (speed 1)
   for ``--realtime-s`` seconds gives the share of one core the plant costs when paced.
   Median of ``--runs`` runs after a warm-up.
2. out: ``forewarn simulate --scenario plant200 --assets N --duration Nd --out DIR`` as a
   subprocess (the command users run), timed end to end, against the target of 100
   asset-days in 5 minutes; baseline in the same run: generation alone (no JSON, no disk)
   for a tenth of the asset-days, scaled.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from forewarn.settings import MqttSettings, TopicSettings
from simulators.config import SimulatorSection, SimulatorSettings
from simulators.plant import Plant
from simulators.publish import Publisher, publish_stream
from simulators.scenario import load_scenario

MQTT_URL = "mqtt://127.0.0.1:1883"
START = 1_767_225_600.0  # 2026-01-01


def _pin_one_core() -> str:
    try:
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned"


def _plant(assets: int, batch_s: float, seed: int = 1) -> Plant:
    scenario = load_scenario("plant200").with_horizon(86400).with_assets(assets).with_batch(batch_s)
    return Plant(scenario, seed=seed, start=START)


def live_run(assets: int, sim_seconds: float, batch_s: float, speed: float) -> dict[str, float]:
    """Publish one run; returns wall and CPU seconds, throughput and what a subscriber received."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    topics = TopicSettings(mqtt_telemetry=prefix + "/{site}/{asset}/telemetry", mqtt_log=prefix + "/{site}/{asset}/log")
    settings = SimulatorSettings(
        mqtt=MqttSettings(url=MQTT_URL), topics=topics, simulator=SimulatorSection(qos=0, max_pending=2000)
    )
    plant = _plant(assets, batch_s)
    sink = tempfile.NamedTemporaryFile(prefix="bench-sub-", suffix=".txt", delete=False)  # noqa: SIM115
    subscriber = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-t", f"{prefix}/#", "-F", "%t"], stdout=sink)
    time.sleep(0.5)
    try:
        with Publisher(settings) as publisher:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            stats = publish_stream(plant.messages(sim_seconds), publisher, speed, stats_every_s=1e9)
            while publisher.pending and time.perf_counter() - wall0 < 600:
                time.sleep(0.001)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        time.sleep(1.0)
    finally:
        subscriber.terminate()
        subscriber.wait(5)
        sink.close()
    received = sum(1 for _ in open(sink.name, "rb"))  # noqa: SIM115
    os.unlink(sink.name)
    rows = stats.samples  # channel-samples
    return {
        "wall": wall,
        "cpu": cpu,
        "x_realtime": sim_seconds / wall,
        "msgs_s": stats.published / wall,
        "samples_s": rows / wall,
        "asset_samples_s": assets * sim_seconds / wall,
        "published": stats.published,
        "dropped": stats.dropped,
        "received": received,
    }


def bench_live(args: argparse.Namespace) -> None:
    print(f"\n## live publishing, {args.assets} assets at 1 Hz to Mosquitto (QoS 0), simulator {_pin_one_core()}\n")
    live_run(min(args.assets, 50), 60, 10.0, 0.0)  # warm-up
    header = (
        "| mode | samples/message | runs | wall s | x real time | msgs/s | asset-samples/s | channel-samples/s | CPU/wall "
        "| received/published |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    results = {}
    for mode, batch in (("batched, max speed", 10.0), ("baseline: unbatched, max speed", 1.0)):
        runs = [live_run(args.assets, args.sim_seconds, batch, 0.0) for _ in range(args.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results[mode] = med
        print(
            f"| {mode} | {int(batch)} | {args.runs} | {med['wall']:.1f} | {med['x_realtime']:.1f} | {med['msgs_s']:,.0f} | "
            f"{med['asset_samples_s']:,.0f} | {med['samples_s']:,.0f} | {med['cpu'] / med['wall']:.2f} | "
            f"{int(med['received']):,}/{int(med['published']):,} |"
        )
    paced = live_run(args.assets, args.realtime_s, 10.0, 1.0)
    print(
        f"| paced at real time (speed 1) | 10 | 1 | {paced['wall']:.1f} | 1 (paced) | {paced['msgs_s']:,.0f} | "
        f"{paced['asset_samples_s']:,.0f} | {paced['samples_s']:,.0f} | {paced['cpu'] / paced['wall']:.3f} | "
        f"{int(paced['received']):,}/{int(paced['published']):,} |"
    )
    ratio = results["batched, max speed"]["x_realtime"] / results["baseline: unbatched, max speed"]["x_realtime"]
    print(
        f"\nbatched vs unbatched: {ratio:.1f}x; one core sustains "
        f"{results['batched, max speed']['x_realtime'] * args.assets:,.0f} assets at 1 Hz (target >= 500); "
        f"paced at 1 Hz the plant costs {100 * paced['cpu'] / paced['wall']:.1f}% of one core"
    )


def bench_out(args: argparse.Namespace) -> None:
    asset_days = args.out_assets * args.out_days
    print(f"\n## dataset writing: {asset_days:g} asset-days (`forewarn simulate --out`)\n")
    forewarn = shutil.which("forewarn") or str(Path(sys.executable).with_name("forewarn"))
    # Baseline: generation only (the same plant, a tenth of the time), in-process.
    plant = _plant(args.out_assets, 10.0)
    t0 = time.perf_counter()
    generated = sum(1 for _ in plant.messages(args.out_days * 86400 / 10))
    gen_s = (time.perf_counter() - t0) * 10
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        out = Path(tmp) / "ds"
        cmd = [
            forewarn,
            "simulate",
            "--scenario",
            "plant200",
            "--assets",
            str(args.out_assets),
            "--duration",
            f"{args.out_days}d",
            "--seed",
            "1",
            "--start",
            str(START),
            "--out",
            str(out),
            "--json",
        ]
        warm = [forewarn, "simulate", "--scenario", "test", "--duration", "600", "--out", str(Path(tmp) / "warm")]
        subprocess.run(warm, check=True, capture_output=True)  # warm-up: imports, page cache
        t0 = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.iterdir())
        lines = done.stdout.strip().splitlines()[-1]
    print("| what | asset-days | wall s | MB written | target s | headroom |")
    print("|---|---|---|---|---|---|")
    print(
        f"| forewarn simulate --out (end to end) | {asset_days:g} | {wall:.1f} | {size / 1e6:,.0f} | 300 | "
        f"{300 * asset_days / 100 / wall:.1f}x |"
    )
    print(
        f"| baseline: generation only (no JSON, no disk), a tenth of the duration x 10 | {asset_days:g} | "
        f"{gen_s:.1f} | - | - | - |"
    )
    print(
        f"\ncommand: {' '.join(cmd[1:])}\nsummary: {lines}\nserialisation and disk take "
        f"{100 * max(0.0, wall - gen_s) / wall:.0f}% of the end-to-end time ({generated:,} messages in the baseline slice)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--sim-seconds", type=float, default=600.0, help="source seconds per max-speed live run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--realtime-s", type=float, default=60.0)
    parser.add_argument("--out-assets", type=int, default=100)
    parser.add_argument("--out-days", type=float, default=1.0)
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-out", action="store_true")
    args = parser.parse_args()
    if not args.skip_out:
        bench_out(args)  # first, before pinning this process to one core (the subprocess is not pinned either way)
    if not args.skip_live:
        bench_live(args)


if __name__ == "__main__":
    main()
