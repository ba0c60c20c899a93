"""Operators' verdicts as labels, and few-shot fault classes: measured on the simulator over seeds.

    python benchmarks/bench_verdicts.py --work DIR [--seeds 0 1 2] [--assets 12] [--hours 8] [--few-shot 1 5] [--json]
    nice -n 10 python benchmarks/bench_verdicts.py --work /tmp/verdicts

Per seed, through the product's own commands (`forewarn simulate`, `forewarn model train`,
`forewarn model evaluate`) and code paths (the gateway's offline scorer, the stream's alert
rules, `forewarn alerts export-labels`' writer):

1. **base bundle**: `model train` (quick profile) on a simulated training plant (``slm_train``);
2. **week 1** of a site (``slm_heldout``: other log wording, climates and noise) is scored with
   it; its predictions are folded through the stream's rules into alerts, and each alert gets
   the verdict an operator would give: an alert raised while a fault is active on that asset
   is *confirmed* with the fault the technician finds (the active one, which may differ from
   the predicted one; resolved at the failure, else at the alert's last hit), any other is a
   *false alarm*. The verdicts go through ``stream.labels.export_labels`` (the writer of
   `forewarn alerts export-labels`) into a directory beside week 1's recorded messages. Faults
   nobody was alerted to get no label: an operator only judges the alerts they see;
3. **fine-tuned bundle**: `model train VERDICTS --from BASE` (quick profile);
4. **week 2** (the next period of the site, another seed) is scored with both bundles. Each
   bundle's alert threshold is swept; false alerts are compared **at equal recall**: the
   fewest false alerts each bundle raises at a threshold whose episode recall is at least the
   base bundle's recall with the default rules (``RuleSettings()``);
5. **few-shot**: `model train --episodes-per-fault K` on the same training plant for each K of
   ``--few-shot`` (the base bundle is K = all), macro-F1 of `model evaluate` on week 2. A K at
   least the most episodes any fault has keeps every episode: that training is K = all's, and
   is reported as such (``same_as_all``) instead of being run again.

Figures are mean ± sd over the seeds (sample sd), every seed reported. Alerts are matched to
episodes as in bench_alerts.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_alerts import Episode, Opening, load_episodes, match, summary
from edge_agent.config import EdgeSection
from edge_agent.infer import Scorer
from edge_agent.score import score_directory
from forewarn.contracts import NORMAL, Alert, FaultPrediction, decode
from forewarn.dataset import LABELS, MESSAGES, META, read_labels
from stream.config import RuleParams, RuleSettings
from stream.labels import export_labels
from stream.rules import apply_prediction
from stream.state import EntityState

START = 1_796_067_500.0
SCENARIOS = Path(__file__).resolve().parents[1] / "models" / "scenarios"
QUICK = ("--set", "baselines=false")
"""Experiments repeated over seeds skip the simple baselines (their report rows are not what is measured)."""
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def forewarn(*args: str) -> str:
    """Run a `forewarn` command (its stderr to ours); its stdout."""
    env = os.environ | {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    command = [str(Path(sys.executable).parent / "forewarn"), *args]  # the console script of this environment
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=env)
    return done.stdout


def simulate(out: Path, scenario: str, seed: int, assets: int, hours: float, start: float) -> Path:
    if not (out / META).is_file():
        forewarn(
            "simulate", "--scenario", scenario, "--assets", str(assets), "--duration", f"{hours:g}h",
            "--seed", str(seed), "--start", str(start), "--out", str(out), "--overwrite",
        )  # fmt: skip
    return out


def train(data: Sequence[Path], out: Path, seed: int, *extra: str) -> Path:
    if not (out / "manifest.json").is_file():
        run = out.parent / f"{out.name}-run"
        forewarn("model", "train", *map(str, data), "--out", str(out), "--profile", "quick", "--seed", str(seed),
                 "--run-dir", str(run), "--no-progress", *extra)  # fmt: skip
    return out


def predictions(bundle: Path, data: Path, out: Path) -> list[FaultPrediction]:
    """The gateway's offline scoring of a dataset (`forewarn edge score`), kept in ``out``."""
    if not out.is_file():
        edge = EdgeSection()
        scorer = Scorer(bundle, "bench", edge.ort_threads, edge.batch_size)
        scorer.load()
        score_directory(data, out, scorer)
    with out.open("rb") as fh:
        return [decode(line, FaultPrediction) for line in fh if line.strip()]


def rules_at(threshold: float) -> RuleSettings:
    return RuleSettings(default=RuleParams(threshold=threshold, clear_threshold=min(0.4, threshold - 0.05)))


def alerts(preds: Sequence[FaultPrediction], rules: RuleSettings) -> list[Alert]:
    """Every alert the stream's rules raise from the predictions, as last revised."""
    by_asset: dict[str, list[FaultPrediction]] = defaultdict(list)
    for p in preds:
        by_asset[p.asset_id].append(p)
    latest: dict[str, Alert] = {}
    for asset_id, mine in sorted(by_asset.items()):
        state = EntityState(kind="asset", id=asset_id, site=mine[0].site)
        for p in sorted(mine, key=lambda p: p.window_end):
            for alert in apply_prediction(state, p, rules, now=p.window_end):
                latest[alert.id] = alert
    return sorted(latest.values(), key=lambda a: a.first_seen)


def verdict(alert: Alert, episodes: Sequence[Episode], window_s: float) -> dict[str, Any]:
    """The alert as `alerts export-labels` reads it, with the verdict an operator who inspected the machine gives."""
    active = [
        e for e in episodes if e.asset_id == alert.asset_id and e.start <= alert.first_seen <= (e.failure or 1e18) + window_s
    ]
    row: dict[str, Any] = alert.model_dump(mode="json") | {"verdict_by": "bench", "verdict_at": alert.last_seen}
    if not active:
        return row | {"verdict": "false_alarm", "resolved_at": alert.last_seen}
    found = next((e for e in active if e.fault == alert.fault), active[0])
    resolved = found.failure if found.failure is not None else alert.last_seen
    return row | {"verdict": "confirmed", "verdict_fault": found.fault, "resolved_at": max(resolved, alert.last_seen)}


def verdict_directory(week: Path, out: Path, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Week 1's recorded messages and meta (without the simulator's ground truth) plus the operators' verdicts."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    os.link(week / MESSAGES, out / MESSAGES)
    meta = json.loads((week / META).read_text())
    meta["extra"] = {k: v for k, v in (meta.get("extra") or {}).items() if k != "episodes"}
    (out / META).write_text(json.dumps(meta, indent=2))
    return export_labels(rows, out)


def sweep(preds: Sequence[FaultPrediction], episodes: list[Episode], window_s: float) -> list[dict[str, Any]]:
    """(threshold, recall, false alerts, alerts) for each alert threshold."""
    out = []
    for t in THRESHOLDS:
        openings = alerts(preds, rules_at(t))
        o = match([Opening(a.asset_id, a.fault, a.first_seen) for a in openings], episodes, window_s)
        s = summary(o)
        out.append({"threshold": t, "recall": s["recall"] or 0.0, "false_alerts": s["false_alerts"], "alerts": s["alerts"]})
    return out


def at_recall(points: Sequence[dict[str, Any]], recall: float) -> dict[str, Any] | None:
    """The sweep point with the fewest false alerts among those reaching ``recall`` (None if none does)."""
    reached = [p for p in points if p["recall"] >= recall - 1e-9]
    return min(reached, key=lambda p: (p["false_alerts"], -p["recall"])) if reached else None


def plants(work: Path, seed: int, assets: int, hours: float) -> tuple[Path, Path, Path, Path]:
    """The seed's training plant, the site's week 1 and week 2, and the base bundle trained on the plant."""
    root = work / f"s{seed}"
    root.mkdir(parents=True, exist_ok=True)
    plant = simulate(root / "train", str(SCENARIOS / "slm_train.toml"), 10 + seed, 2 * assets, hours, START)
    week1 = simulate(root / "week1", str(SCENARIOS / "slm_heldout.toml"), 20 + seed, assets, hours, START)
    week2 = simulate(root / "week2", str(SCENARIOS / "slm_heldout.toml"), 30 + seed, assets, hours, START + hours * 3600)
    return plant, week1, week2, root / "base"


def verdicts_part(work: Path, seed: int, assets: int, hours: float) -> dict[str, Any]:
    """Steps 1-4 for one seed (module docstring); kept in ``s<seed>/verdicts.json``."""
    plant, week1, week2, base = plants(work, seed, assets, hours)
    root = base.parent
    train([plant], base, seed, *QUICK)
    window_s = json.loads((base / "config.json").read_text())["spec"]["length_s"]
    ep1 = load_episodes(week1)
    rows = [verdict(a, ep1, window_s) for a in alerts(predictions(base, week1, root / "week1-base.jsonl"), RuleSettings())]
    added, given = verdict_directory(week1, root / "verdicts", rows)
    labels = [json.loads(line) for line in (root / "verdicts" / LABELS).read_text().splitlines()]
    tuned = train([root / "verdicts"], root / "tuned", seed, "--from", str(base))
    ep2 = load_episodes(week2)
    result: dict[str, Any] = {
        "seed": seed,
        "verdicts": given,
        "confirmed": sum(r["verdict"] == "confirmed" for r in rows),
        "false_alarm_verdicts": sum(r["verdict"] == "false_alarm" for r in rows),
        "episodes_written": added,
        "normal_episodes": sum(e["fault"] == NORMAL for e in labels),
        "week1_episodes": sum(e.labelled for e in ep1),
    }
    for name, bundle in (("base", base), ("tuned", tuned)):
        preds = predictions(bundle, week2, root / f"week2-{name}.jsonl")
        result[name] = {"sweep": sweep(preds, ep2, window_s)}
        result[name]["default"] = next(p for p in result[name]["sweep"] if p["threshold"] == RuleParams().threshold)
    target = result["base"]["default"]["recall"]
    result["target_recall"] = target
    for name in ("base", "tuned"):
        result[name]["at_recall"] = at_recall(result[name]["sweep"], target)
    (root / "verdicts.json").write_text(json.dumps(result, indent=2))
    return result


def few_shot_part(work: Path, seed: int, assets: int, hours: float, few_shot: Sequence[int]) -> dict[str, Any]:
    """Step 5 for one seed; kept in ``s<seed>/few_shot.json``. K = all is the base bundle (trained by the verdicts part
    or here, whichever comes first; the run directory resumes)."""
    plant, _, week2, base = plants(work, seed, assets, hours)
    f1: dict[str, Any] = {}
    most = max(Counter(e.fault for e in read_labels(plant)).values())
    for k in few_shot:
        if k >= most:  # every episode of every fault kept: the very training of K = all
            f1[str(k)] = {"same_as_all": True}
            continue
        bundle = train([plant], base.parent / f"few{k}", seed, *QUICK, "--episodes-per-fault", str(k))
        config = json.loads((bundle / "config.json").read_text())
        f1[str(k)] = {"macro_f1": macro_f1(bundle, week2), "episodes": config["training"]["episodes_per_fault"]}
    while not (base / "manifest.json").is_file():  # the verdicts part trains it
        time.sleep(10)
    f1["all"] = {"macro_f1": macro_f1(base, week2)}
    for row in f1.values():
        if row.get("same_as_all"):
            row["macro_f1"] = f1["all"]["macro_f1"]
    result = {"seed": seed, "few_shot_macro_f1": f1}
    (base.parent / "few_shot.json").write_text(json.dumps(result, indent=2))
    return result


def macro_f1(bundle: Path, data: Path) -> float:
    return float(json.loads(forewarn("model", "evaluate", str(data), "--model", str(bundle), "--json"))["macro_f1"])


def mean_sd(values: Sequence[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "-"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def tables(results: Sequence[dict[str, Any]], few_shot: Sequence[int]) -> str:
    def fa(r: dict[str, Any], name: str) -> float | None:
        point = r[name]["at_recall"]
        return None if point is None else float(point["false_alerts"])

    verdicts = [r for r in results if "tuned" in r]
    shots = [r for r in results if "few_shot_macro_f1" in r]
    lines = ["seed | verdicts (confirmed / false alarm) | target recall | false alerts base | tuned (threshold, recall)"]
    for r in verdicts:
        t = r["tuned"]["at_recall"]
        lines.append(
            f"{r['seed']} | {r['verdicts']} ({r['confirmed']} / {r['false_alarm_verdicts']}) | {r['target_recall']:.3f} | "
            f"{fa(r, 'base')} | " + ("not reached" if t is None else f"{t['false_alerts']} ({t['threshold']}, {t['recall']:.3f})")
        )
    reached = [r for r in verdicts if r["tuned"]["at_recall"] is not None]
    lines += [
        "",
        f"false alerts on week 2 at the base's recall: base {mean_sd([fa(r, 'base') or 0.0 for r in verdicts])}, "
        f"fine-tuned {mean_sd([fa(r, 'tuned') or 0.0 for r in reached])} ({len(reached)} of {len(verdicts)} seeds reach it)",
        "default rules: recall base "
        + mean_sd([r["base"]["default"]["recall"] for r in verdicts])
        + ", tuned "
        + mean_sd([r["tuned"]["default"]["recall"] for r in verdicts])
        + "; false alerts base "
        + mean_sd([float(r["base"]["default"]["false_alerts"]) for r in verdicts])
        + ", tuned "
        + mean_sd([float(r["tuned"]["default"]["false_alerts"]) for r in verdicts]),
        "",
        "few-shot macro-F1 on week 2: "
        + ", ".join(
            f"K={k}: {mean_sd([r['few_shot_macro_f1'][k]['macro_f1'] for r in shots])}" for k in [*map(str, few_shot), "all"]
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="working directory (datasets, bundles; reused when rerun)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--assets", type=int, default=12, help="assets of each simulated plant")
    parser.add_argument("--hours", type=float, default=8.0, help="length of the training plant and of each site period")
    parser.add_argument("--few-shot", type=int, nargs="*", default=[1, 5], help="labelled episodes per fault (besides all)")
    parser.add_argument(
        "--part",
        choices=["all", "verdicts", "few-shot", "report"],
        default="all",
        help="run one part (two processes can run the parts side by side), or only print what earlier runs kept",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    for seed in args.seeds:
        if args.part in ("all", "verdicts"):
            verdicts_part(args.work, seed, args.assets, args.hours)
        if args.part in ("all", "few-shot"):
            few_shot_part(args.work, seed, args.assets, args.hours, args.few_shot)
    results: list[dict[str, Any]] = []
    for seed in args.seeds:
        for name in ("verdicts.json", "few_shot.json"):
            path = args.work / f"s{seed}" / name
            if path.is_file():
                results.append(json.loads(path.read_text()))
    print(json.dumps(results) if args.json else tables(results, args.few_shot))


if __name__ == "__main__":
    main()
