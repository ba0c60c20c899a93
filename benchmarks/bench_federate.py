"""Federated fine-tuning on C-MAPSS FD001: 4 sites as separate Flower processes vs centralised vs each site alone.

    python benchmarks/bench_federate.py DATASETS [--work DIR] [--seeds 0 1 2] [--rounds 5] [--steps 30] [--splits even life]

DATASETS holds ``cmapss/`` (../shared/datasets/README.md). Run with the checkout's .venv; the
server and the sites run from FOREWARN_FEDERATE_PYTHON (default .venv-federate/bin/python,
which scripts/test makes).

The protocol: the training file's 100 units are split into a *vendor* fifth (every fifth unit),
on which `forewarn model train` (quick profile, short schedule) makes the base bundle every
site starts from, and 80 site units shared by 4 sites, either evenly (unit k to site k mod 4) or
by operating life (site 1 the 20 shortest-lived units ... site 4 the 20 longest). From the
same base, the same local schedule (``--steps`` per round, batch 32, lr 3e-4):

    federated     `forewarn federate server` + 4 `forewarn federate site` processes, FedAvg, --rounds rounds
    centralised   all 80 units pooled in one place, 4 x rounds x steps steps (the sites' steps together)
    site alone    each site on its own units, rounds x steps steps (its share of the federation's work)

Each model is scored on the test file's 100 units: RUL RMSE (cycles) at each unit's last cycle,
prediction and truth capped at 125, as the literature reports it. Bytes: what each site sent and
received per round (the weights, float32). Rounds to 5 %: the first round whose aggregate is
within 5 % of the centralised RMSE. Everything is resumable: results already in --work are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FOREWARN = [sys.executable, "-m", "forewarn.cli"]
SITES = 4
CAP = 125.0
BASE_SET = ["steps=30", "teacher_windows=3000", "teacher_steps=60", "student_steps=300", "max_windows=6000"]


def _run(args: list[str], **kw: Any) -> None:
    print("$ " + " ".join(args[2:] if args[:2] == FOREWARN[:2] else args), file=sys.stderr, flush=True)
    subprocess.run(args, check=True, cwd=ROOT, **kw)


def subset(src: Path, out: Path, assets: set[str]) -> Path:
    """A dataset directory holding only ``assets`` of ``src``: their messages, episodes and metadata."""
    if (out / "meta.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name in ("messages.jsonl", "labels.jsonl"):
        with (src / name).open() as fh, (out / name).open("w") as dst:
            dst.writelines(line for line in fh if json.loads(line).get("asset_id") in assets)
    meta = json.loads((src / "meta.json").read_text())
    meta["assets"] = {k: v for k, v in meta["assets"].items() if k in assets}
    rul = meta.get("extra", {}).get("rul")
    if rul:
        rul["assets"] = {k: v for k, v in rul["assets"].items() if k in assets}
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def lives(train: Path) -> dict[str, int]:
    """Cycles of each training unit (its operating life)."""
    counts: dict[str, int] = {}
    with (train / "messages.jsonl").open() as fh:
        for line in fh:
            asset = json.loads(line)["asset_id"]
            counts[asset] = counts.get(asset, 0) + 1
    return counts


def site_splits(train: Path, work: Path) -> tuple[Path, dict[str, list[Path]]]:
    """The vendor's units and, per split, the 4 sites' dataset directories."""
    life = lives(train)
    units = sorted(life)
    vendor = set(units[4::5])
    rest = [u for u in units if u not in vendor]
    splits = {
        "even": [set(rest[i::SITES]) for i in range(SITES)],
        "life": [set(u) for u in np.array_split(np.array(sorted(rest, key=lambda u: (life[u], u))), SITES)],
    }
    dirs = {
        name: [subset(train, work / "sites" / name / f"site{i + 1}", s) for i, s in enumerate(parts)]
        for name, parts in splits.items()
    }
    return subset(train, work / "vendor", vendor), dirs


def base_bundle(vendor: Path, work: Path) -> Path:
    out = work / "base"
    if not (out / "student.npz").exists():
        args = ["model", "train", str(vendor), "--out", str(out), "--profile", "quick", "--seed", "0", "--no-progress"]
        _run([*FOREWARN, *args, *(x for s in BASE_SET for x in ("--set", s)), "--run-dir", str(work / "base.run")])
    return out


class Scorer:
    """RUL RMSE of an FP32 student on the test units' last windows (the windows cut once)."""

    def __init__(self, bundle_path: Path, test: Path, cache: Path) -> None:
        from models.data import load_tables
        from models.prepare import _featurise
        from models.runtime import Bundle

        self.bundle = Bundle.load(bundle_path)
        table = load_tables([test], self.bundle.spec, cache / "windows", every=1)
        last: dict[str, int] = {}
        for i, (asset, end) in enumerate(zip(table.asset_ids, table.ends, strict=True)):
            if asset not in last or end > table.ends[last[asset]]:
                last[asset] = i
        rows = np.array(sorted(last.values()))
        rul = json.loads((test / "meta.json").read_text())["extra"]["rul"]["assets"]
        self.truth = np.array([min(float(rul[table.asset_ids[i]]["rul_cycles"]), CAP) for i in rows])
        self.data, _ = _featurise(
            self.bundle.featuriser(), table.take(rows), self.bundle.labels, cache / f"test-{self.bundle.version}.npz"
        )

    def rmse(self, weights_path: Path | None = None, model: Any = None) -> float:
        from models.config import ModelConfig
        from models.model import load_weights
        from models.train import infer

        if model is None:
            assert weights_path is not None
            model = load_weights(ModelConfig.from_dict(self.bundle.model_config), weights_path)
        hours = np.minimum(infer(model, self.data)["ttf_hours"], CAP)  # one cycle is one hour (--cycle-s 3600)
        return float(np.sqrt(np.mean((hours - self.truth) ** 2)))


def local(base: Path, dirs: list[Path], steps: int, seed: int, cache: Path, scorer: Scorer) -> float:
    """Fine-tune the base student on ``dirs`` pooled, in this process, for ``steps`` steps; its test RMSE."""
    from models.federate.local import LocalConfig, load_student, local_fit, site_data
    from models.train import Arrays

    bundle, model = load_student(base)
    parts = [site_data(bundle, [d], cache / d.parent.name / d.name, seed).train for d in dirs]
    pooled = Arrays(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("sensors", "tokens", "y", "ttf")))
    local_fit(model, pooled, LocalConfig(steps=steps), seed)
    return scorer.rmse(model=model)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def federated(base: Path, dirs: list[Path], rounds: int, steps: int, seed: int, out: Path, cache: Path) -> dict[str, Any]:
    """One federation of separate processes (server + a site per directory); its bundle's record."""
    if (out / "bundle" / "metrics.json").exists():
        return json.loads((out / "bundle" / "config.json").read_text())["federated"]  # type: ignore[no-any-return]
    python = os.environ.get("FOREWARN_FEDERATE_PYTHON", str(ROOT / ".venv-federate" / "bin" / "python"))
    out.mkdir(parents=True, exist_ok=True)
    tokens = {f"site{i + 1}": f"bench-token-site{i + 1}-{seed}-0123456789" for i in range(len(dirs))}
    (out / "sites.toml").write_text("[sites]\n" + "".join(f'{k} = "{v}"\n' for k, v in tokens.items()))
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [python, "-m", "forewarn.cli", "federate"]
    server_args = [
        "server",
        "--from",
        str(base),
        "--out",
        str(out / "bundle"),
        "--rounds",
        str(rounds),
        "--min-sites",
        str(len(dirs)),
    ]
    server_args += ["--sites", str(out / "sites.toml"), "--address", f"127.0.0.1:{port}", "--steps", str(steps)]
    server_args += ["--save-rounds", str(out / "rounds")]
    procs = [
        subprocess.Popen(
            ["nice", "-n", "10", *cmd, *server_args], stdout=(out / "server.log").open("w"), stderr=subprocess.STDOUT, env=env
        )
    ]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and procs[0].poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    for (name, token), d in zip(tokens.items(), dirs, strict=True):
        env_site = {**env, "FOREWARN_FEDERATE_TOKEN": token}
        args = ["site", str(d), "--from", str(base), "--server", f"127.0.0.1:{port}", "--name", name, "--seed", str(seed)]
        args += ["--work", str(cache / d.parent.name / d.name)]
        log = (out / f"{name}.log").open("w")
        procs.append(subprocess.Popen(["nice", "-n", "10", *cmd, *args], stdout=log, stderr=subprocess.STDOUT, env=env_site))
    codes = [p.wait(timeout=3600) for p in procs]
    if any(codes):
        raise RuntimeError(f"federation in {out} failed: exit codes {codes}; see its logs")
    return json.loads((out / "bundle" / "config.json").read_text())["federated"]  # type: ignore[no-any-return]


def run_split(split: str, base: Path, dirs: list[Path], seed: int, args: argparse.Namespace, scorer: Scorer) -> dict[str, Any]:
    work: Path = args.work
    tag = f"{split}-s{seed}-r{args.rounds}x{args.steps}"
    path = work / "results" / f"{tag}.json"
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    cache = work / "cache"
    total = args.rounds * args.steps
    result: dict[str, Any] = {"split": split, "seed": seed, "rounds": args.rounds, "steps": args.steps}
    result["base"] = scorer.rmse(base / "student.npz")
    result["centralised"] = local(base, dirs, SITES * total, seed, cache, scorer)
    result["alone"] = [local(base, [d], total, seed, cache, scorer) for d in dirs]
    record = federated(base, dirs, args.rounds, args.steps, seed, work / "fed" / tag, cache)
    rounds_dir = work / "fed" / tag / "rounds"
    result["federated_by_round"] = [scorer.rmse(rounds_dir / f"round-{r:03d}.npz") for r in range(1, args.rounds + 1)]
    result["federated"] = result["federated_by_round"][-1]
    within = [r + 1 for r, v in enumerate(result["federated_by_round"]) if v <= 1.05 * result["centralised"]]
    result["rounds_to_5pct"] = within[0] if within else None
    per_site = [s["bytes_sent"] + s["bytes_received"] for r in record["history"] for s in r["sites"].values()]
    result["bytes_per_site_round"] = statistics.mean(per_site)
    result["adopted"] = sum(s.get("adopted", False) for r in record["history"] for s in r["sites"].values())
    result["decisions"] = sum(len(r["sites"]) for r in record["history"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def _ms(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| split | base | centralised | federated (FedAvg) | each site alone (best / worst) "
        "| rounds to 5 % | MB per site per round | seeds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for split in dict.fromkeys(r["split"] for r in results):
        rs = [r for r in results if r["split"] == split]
        best, worst = [min(r["alone"]) for r in rs], [max(r["alone"]) for r in rs]
        reach = [r["rounds_to_5pct"] for r in rs]
        lines.append(
            f"| {split} | {_ms([r['base'] for r in rs])} | {_ms([r['centralised'] for r in rs])} "
            f"| {_ms([r['federated'] for r in rs])} "
            f"| {_ms(best)} / {_ms(worst)} | {', '.join('-' if x is None else str(x) for x in reach)} "
            f"| {statistics.mean(r['bytes_per_site_round'] for r in rs) / 1e6:.2f} | {len(rs)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_federate")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--splits", nargs="+", default=["even", "life"], choices=["even", "life"])
    args = parser.parse_args()
    work: Path = args.work
    data = work / "fd001"
    if not (data / "test" / "meta.json").exists():
        _run(
            [
                *FOREWARN,
                "data",
                "import",
                "cmapss",
                str(args.datasets / "cmapss"),
                "--subset",
                "FD001",
                "--out",
                str(data),
                "--force",
            ]
        )
    vendor, dirs = site_splits(data / "train", work)
    base = base_bundle(vendor, work)
    scorer = Scorer(base, data / "test", work / "cache" / "test")
    results = [run_split(split, base, dirs[split], seed, args, scorer) for seed in args.seeds for split in args.splits]
    (work / "results" / f"table-r{args.rounds}x{args.steps}.md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
