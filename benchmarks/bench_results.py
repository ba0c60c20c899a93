"""The README's Results table: Forewarn on public datasets, through the product's own commands.

    python benchmarks/bench_results.py DATASETS [--work DIR] [--rows fd001 cwru-random ...] [--seeds 0 1 2]

DATASETS is the folder holding ``cmapss/``, ``cwru_12k_DE_0hp/`` and ``hdfs_sessions/`` (see
../shared/datasets/README.md). Each row runs ``forewarn data import``, then per seed ``forewarn
model train`` (quick profile, with the row's overrides, the test split as ``--holdout``) and
reads the held-out evaluation the training wrote (``model evaluate``'s JSON, with the simple
baselines fitted on the same training windows). A bundle already in ``--work`` is reused, so an
interrupted run resumes. Figures are the mean and spread (sample standard deviation) over the
seeds; the published figure and its source stand beside ours.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FOREWARN = [sys.executable, "-m", "forewarn.cli"]


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    importer: list[str]
    """``forewarn data import`` arguments after SRC, before --out."""
    source: str
    """Dataset folder under DATASETS."""
    train: list[str]
    """``model train`` overrides (--set ...)."""
    metric: str
    """``rul_rmse`` (lower is better), ``macro_f1`` or ``anomaly_auroc``."""
    published: str


ROWS = {
    row.name: row
    for row in (
        Row(
            "fd001",
            "C-MAPSS FD001 RUL RMSE, last cycle, cap 125",
            ["cmapss", "--subset", "FD001"],
            "cmapss",
            [
                *("--set", "steps=30", "--set", "max_windows=20000"),
                *("--set", "teacher_windows=15000", "--set", "teacher_steps=200", "--set", "student_steps=1500"),
            ],
            "rul_rmse",
            "12.2 reproducible SOTA; MS-DCNN 11.4; LSTM 16.1 (datasets README)",
        ),
        Row(
            "fd003",
            "C-MAPSS FD003 RUL RMSE, last cycle, cap 125",
            ["cmapss", "--subset", "FD003"],
            "cmapss",
            [
                *("--set", "steps=30", "--set", "max_windows=20000"),
                *("--set", "teacher_windows=15000", "--set", "teacher_steps=200", "--set", "student_steps=1500"),
            ],
            "rul_rmse",
            "12.5 target; MS-DCNN 11.7; LSTM 16.2 (datasets README)",
        ),
        Row(
            "cwru-random",
            "CWRU 12 kHz DE fault location, each recording split in time (optimistic protocol)",
            ["cwru", "--split", "time", "--test-fraction", "0.3"],
            "cwru_12k_DE_0hp",
            ["--set", "length_s=1", "--set", "hop_s=0.5", "--set", "steps=10"],
            "macro_f1",
            ">= 99 % accuracy on random window splits (datasets README)",
        ),
        Row(
            "cwru-by-size",
            "CWRU 12 kHz DE fault location, no recording in both train and test (test: 0.014 in)",
            ["cwru", "--split", "size", "--test-sizes", "014"],
            "cwru_12k_DE_0hp",
            ["--set", "length_s=1", "--set", "hop_s=0.5", "--set", "steps=10"],
            "macro_f1",
            "not comparable: published figures use random splits",
        ),
        Row(
            "cwru-unlabelled",
            "CWRU without labels: trained on the healthy recording's first 70 %, scored on the rest and every fault",
            ["cwru", "--split", "normal-first", "--test-fraction", "0.3"],
            "cwru_12k_DE_0hp",
            ["--unlabelled", "--set", "length_s=0.2", "--set", "hop_s=0.04", "--set", "steps=10", "--set", "student_steps=300"],
            "anomaly_auroc",
            "unsupervised baselines on the same windows (Isolation Forest, PCA reconstruction)",
        ),
        Row(
            "fd001-unlabelled",
            "C-MAPSS FD001 without labels: trained on the first 50 cycles of 80 units, scored on the 20 others' whole lives",
            ["cmapss", "--subset", "FD001", "--split", "normal-first"],
            "cmapss",
            ["--unlabelled", "--set", "steps=30", "--set", "student_steps=300"],
            "anomaly_auroc",
            "unsupervised baselines on the same windows (Isolation Forest, PCA reconstruction); lead_time in the JSON",
        ),
        Row(
            "fd003-unlabelled",
            "C-MAPSS FD003 (two fault modes) without labels: the same protocol as fd001-unlabelled",
            ["cmapss", "--subset", "FD003", "--split", "normal-first"],
            "cmapss",
            ["--unlabelled", "--set", "steps=30", "--set", "student_steps=300"],
            "anomaly_auroc",
            "unsupervised baselines on the same windows; the in-plant reference of benchmarks/bench_transfer.py",
        ),
        Row(
            "hdfs",
            "HDFS block anomaly (log only), the file's own split, window macro-F1",
            ["hdfs"],
            "hdfs_sessions/hdfs100k_sessions_labeled.jsonl",
            [],
            "macro_f1",
            "F1 0.95 DeepLog, 0.99 LogRobust on easier splits; LR on template counts ~0.69 here (issue 23)",
        ),
    )
}


def _run(args: list[str]) -> None:
    print("$ forewarn " + " ".join(args[3:] if args[:3] == FOREWARN else args), file=sys.stderr)
    subprocess.run(args, check=True, cwd=ROOT, stdout=sys.stderr)  # stdout is the table or the JSON alone


def import_row(row: Row, datasets: Path, work: Path) -> Path:
    out = work / row.name / "data"
    if not (out / "train" / "meta.json").exists():
        _run(
            [
                *FOREWARN,
                "data",
                "import",
                row.importer[0],
                str(datasets / row.source),
                *row.importer[1:],
                "--out",
                str(out),
                "--force",
            ]
        )
    return out


def train_row(row: Row, data: Path, work: Path, seed: int) -> dict[str, Any]:
    bundle = work / row.name / f"bundle-s{seed}"
    if not (bundle / "metrics.json").exists():
        args = ["model", "train", str(data / "train"), "--out", str(bundle), "--profile", "quick", "--seed", str(seed)]
        args += [*row.train, "--holdout", str(data / "test"), "--run-dir", str(bundle) + ".run", "--no-progress"]
        _run([*FOREWARN, *args])
    metrics: dict[str, Any] = json.loads((bundle / "metrics.json").read_text())
    return metrics


def summarise(row: Row, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread of the SLM's and the best baseline's figure over the seeds, with size and latency."""
    held = [r["holdout"] for r in runs]
    ours = [float(h[row.metric]) for h in held]
    best: list[float] = []
    for h in held:
        base = h.get("baselines", {})
        scored = [float(v[row.metric]) for v in base.values() if row.metric in v]
        if scored:
            best.append(min(scored) if row.metric == "rul_rmse" else max(scored))
    return {
        "row": row.name,
        "what": row.what,
        "metric": row.metric,
        "seeds": len(runs),
        "ours_mean": statistics.mean(ours),
        "ours_sd": statistics.stdev(ours) if len(ours) > 1 else 0.0,
        "baseline_mean": statistics.mean(best) if best else None,
        "auroc_macro": statistics.mean(float(h["auroc_macro"]) for h in held if h.get("auroc_macro") is not None)
        if any(h.get("auroc_macro") is not None for h in held)
        else None,
        "bundle_mb": statistics.mean(float(h["bundle_bytes"]) for h in held) / 1e6,
        "latency_ms_p50": statistics.median(float(h["latency_ms_p50"]) for h in held),
        "published": row.published,
        **_leads(held),
    }


def _leads(held: list[dict[str, Any]]) -> dict[str, Any]:
    """Early warning over the seeds, where failures are known: the bundle's and each unsupervised baseline's."""
    if not all("lead_time" in h for h in held):
        return {}

    def spread(leads: list[dict[str, Any]]) -> dict[str, Any]:
        medians = [float(x.get("lead_hours_median", float("nan"))) for x in leads]
        return {
            "lead_hours_median_mean": statistics.mean(medians),
            "lead_hours_median_sd": statistics.stdev(medians) if len(medians) > 1 else 0.0,
            "warned": [x["warned"] for x in leads],
            "warned_before_onset": [x["warned_before_onset"] for x in leads],
            "assets": leads[0]["assets"],
        }

    out: dict[str, Any] = {"lead_time": spread([h["lead_time"] for h in held])}
    names = {n for h in held for n, v in h.get("baselines", {}).items() if "lead_time" in v}
    for name in sorted(names):
        out[f"lead_time_{name}"] = spread([h["baselines"][name]["lead_time"] for h in held])
    return out


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| row | what | metric | Forewarn (mean ± sd, seeds) | best simple baseline | macro AUROC | INT8 bundle "
        "| p50 latency | published |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = "-" if r["baseline_mean"] is None else f"{r['baseline_mean']:.3f}"
        auroc = "-" if r["auroc_macro"] is None else f"{r['auroc_macro']:.3f}"
        lines.append(
            f"| {r['row']} | {r['what']} | {r['metric']} | {r['ours_mean']:.3f} ± {r['ours_sd']:.3f} ({r['seeds']}) | {base} | "
            f"{auroc} | {r['bundle_mb']:.2f} MB | {r['latency_ms_p50']:.2f} ms | {r['published']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--work", type=Path, default=Path("runs/results"))
    parser.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of the table")
    args = parser.parse_args()
    results = []
    for name in args.rows:
        row = ROWS[name]
        data = import_row(row, args.datasets, args.work)
        results.append(summarise(row, [train_row(row, data, args.work, seed) for seed in args.seeds]))
    print(json.dumps(results) if args.json else table(results))


if __name__ == "__main__":
    main()
