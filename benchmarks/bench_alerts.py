"""Alert quality: what the operations team sees (alerts, not windows) on held-out datasets.

    python benchmarks/bench_alerts.py DIR... [--model BUNDLE] [--keep PRED_DIR] [--json]
    nice -n 10 python benchmarks/bench_alerts.py data/heldout_slm data/heldout_plant200 data/heldout_demo

Window macro-F1 (`model evaluate`) does not say how many alerts an operator gets, how many
are real, or how long before a failure the first one lands. This runs the product's own
path: each dataset directory is scored by the gateway's offline scorer
(``edge_agent.score.score_directory``, what `forewarn edge score` runs), the predictions of
each asset are folded in window order through the stream worker's alert rules
(``stream.rules.apply_prediction``, ``RuleSettings()`` defaults, event time = window end), and
every alert opening is matched to the fault episodes of labels.jsonl:

- an alert is **true** when an episode of its fault on its asset is active when it opens: from
  the episode's initiation (simulator meta.json ``extra.episodes``) or else its labelled onset,
  until failure + one window length (open-ended without a failure). An alert of a fault that
  has begun but is never labelled in the data (its P point lies after the end) is true too
  (counted as ``true_incipient``), as `model evaluate` credits it; such episodes are not in recall;
- otherwise it is false; a false alert on an asset where another fault is active is also
  counted as **wrong fault** (right asset);
- an episode is **detected** when a true alert for it opened before its failure (at any time
  when the failure is unknown); lead time = failure - that episode's first true alert.

Deterministic (one run; no median of runs). ``--keep`` keeps the predictions and reuses them
when they were made by the same bundle version from an unchanged dataset.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.config import EdgeSection
from edge_agent.infer import Scorer
from edge_agent.score import score_directory
from forewarn.contracts import FaultPrediction, decode
from forewarn.dataset import MESSAGES, read_labels, read_meta
from forewarn.errors import ForewarnError
from models.runtime import default_bundle_path
from stream.config import RuleSettings
from stream.rules import apply_prediction
from stream.state import EntityState


@dataclass(frozen=True)
class Episode:
    asset_id: str
    fault: str
    start: float  # initiation where meta.json knows it, else the labelled onset
    failure: float | None
    labelled: bool


@dataclass(frozen=True)
class Opening:
    asset_id: str
    fault: str
    opened_at: float


@dataclass
class Outcome:
    """One dataset's (or the pool's) matched alerts and episodes; tables are computed from it."""

    verdicts: list[tuple[str, str]] = field(default_factory=list)  # (fault, "true" | "incipient" | "wrong_fault" | "false")
    episodes: list[tuple[str, float | None, float | None]] = field(default_factory=list)  # (fault, failure, first true)
    asset_days: float = 0.0
    windows: int = 0
    score_s: float = 0.0

    def add(self, other: Outcome) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def load_episodes(directory: Path) -> list[Episode]:
    """Labelled episodes (start moved back to their initiation when meta knows it) plus begun-but-unlabelled ones."""
    described = [e for e in read_meta(directory).extra.get("episodes", []) if isinstance(e, dict)]
    described = [e for e in described if isinstance(e.get("initiation"), int | float)]
    out = []
    for label in read_labels(directory):
        same = [e for e in described if (e.get("asset_id"), e.get("fault")) == (label.asset_id, label.fault)]
        best = max((e for e in same if e["initiation"] <= label.onset + 1.0), key=lambda e: e["initiation"], default=None)
        if best is not None:
            described.remove(best)
        start = label.onset if best is None else float(best["initiation"])
        out.append(Episode(label.asset_id, label.fault, start, label.failure, labelled=True))
    for e in described:
        fails = float(e["failure"]) if isinstance(e.get("failure"), int | float) else None
        out.append(Episode(str(e.get("asset_id")), str(e.get("fault")), float(e["initiation"]), fails, labelled=False))
    return out


def alert_openings(predictions: Iterable[FaultPrediction], rules: RuleSettings) -> list[Opening]:
    """Fold each asset's predictions in window order through the stream's rules; every alert opening (revision 1)."""
    by_asset: dict[str, list[FaultPrediction]] = defaultdict(list)
    for p in predictions:
        by_asset[p.asset_id].append(p)
    openings = []
    for asset_id, mine in sorted(by_asset.items()):
        state = EntityState(kind="asset", id=asset_id, site=mine[0].site)
        for p in sorted(mine, key=lambda p: p.window_end):
            for alert in apply_prediction(state, p, rules, now=p.window_end):
                if alert.revision == 1:
                    openings.append(Opening(asset_id, alert.fault, p.window_end))
    return openings


def match(openings: list[Opening], episodes: list[Episode], window_s: float) -> Outcome:
    """Each opening's verdict, and each labelled episode's first true alert (see the module docstring)."""
    outcome = Outcome()

    def active(e: Episode, t: float) -> bool:
        return e.start <= t <= (math.inf if e.failure is None else e.failure + window_s)

    first: dict[int, float] = {}
    for o in sorted(openings, key=lambda o: o.opened_at):
        here = [(i, e) for i, e in enumerate(episodes) if e.asset_id == o.asset_id and active(e, o.opened_at)]
        hits = [i for i, e in here if e.fault == o.fault]
        for i in hits:
            first.setdefault(i, o.opened_at)
        if any(episodes[i].labelled for i in hits):
            verdict = "true"
        elif hits:
            verdict = "incipient"
        else:
            verdict = "wrong_fault" if here else "false"
        outcome.verdicts.append((o.fault, verdict))
    for i, e in enumerate(episodes):
        if e.labelled:
            outcome.episodes.append((e.fault, e.failure, first.get(i)))
    return outcome


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None when empty."""
    if not values:
        return None
    s, pos = sorted(values), (len(values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


Row = dict[str, float | int | None]


def r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def summary(o: Outcome, fault: str | None = None) -> Row:
    """The table's figures, for every fault or for one."""
    verdicts = [v for f, v in o.verdicts if fault in (None, f)]
    episodes = [(fail, t) for f, fail, t in o.episodes if fault in (None, f)]
    true = sum(v in ("true", "incipient") for v in verdicts)
    detected = [(fail, t) for fail, t in episodes if t is not None and (fail is None or t < fail)]
    leads = [(fail - t) / 3600.0 for fail, t in detected if fail is not None and t is not None]
    return {
        "alerts": len(verdicts),
        "true_alerts": true,
        "true_incipient": verdicts.count("incipient"),
        "false_alerts": len(verdicts) - true,
        "wrong_fault": verdicts.count("wrong_fault"),
        "precision": r(true / len(verdicts)) if verdicts else None,
        "episodes": len(episodes),
        "detected": len(detected),
        "recall": r(len(detected) / len(episodes)) if episodes else None,
        "lead_h_median": r(statistics.median(leads)) if leads else None,
        "lead_h_p10": r(percentile(leads, 10)),
        "false_per_asset_day": r((len(verdicts) - true) / o.asset_days) if o.asset_days and fault is None else None,
    }


def run_dataset(directory: Path, episodes: list[Episode], scorer: Scorer, keep: Path, rules: RuleSettings) -> Outcome:
    out = keep / f"{directory.resolve().name}.jsonl"
    reuse = out.exists() and out.stat().st_mtime > (directory / MESSAGES).stat().st_mtime
    if reuse:
        with out.open("rb") as fh:
            reuse = f'"model_version":"{scorer.version}"' in fh.readline().decode()
    score_s = math.nan if reuse else score_directory(directory, out, scorer).wall_seconds
    with out.open("rb") as fh:
        predictions = [decode(line, FaultPrediction) for line in fh if line.strip()]
    outcome = match(alert_openings(predictions, rules), episodes, scorer.spec.length_s)
    outcome.score_s = score_s
    outcome.windows = len(predictions)
    span: dict[str, list[float]] = {}
    for p in predictions:
        lo_hi = span.setdefault(p.asset_id, [p.window_start, p.window_end])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], p.window_start), max(lo_hi[1], p.window_end)
    outcome.asset_days = sum(hi - lo for lo, hi in span.values()) / 86400.0
    return outcome


COLUMNS = ["alerts", "true_alerts", "false_alerts", "wrong_fault", "precision", "episodes", "detected", "recall"]
COLUMNS += ["lead_h_median", "lead_h_p10", "false_per_asset_day"]


def table(title: str, rows: dict[str, Row], columns: list[str]) -> str:
    cells = [[title, *(c.replace("_", " ") for c in columns)]]
    cells += [[name, *("-" if row[c] is None else str(row[c]) for c in columns)] for name, row in rows.items()]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = [
        " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    return "\n".join([lines[0], "-+-".join("-" * w for w in widths), *lines[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path, metavar="DIR", help="dataset directories")
    parser.add_argument("--model", type=Path, default=default_bundle_path(), help="model bundle (default: the shipped one)")
    parser.add_argument("--keep", type=Path, help="keep predictions here and reuse them (same bundle, unchanged data)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args()
    for d in args.datasets:
        missing = [n for n in (MESSAGES, "labels.jsonl", "meta.json") if not (d / n).is_file()]
        if missing:
            parser.error(f"{d} is not a dataset directory (missing {', '.join(missing)})")
    names = [d.resolve().name for d in args.datasets]
    if len(set(names)) < len(names) or "pooled" in names:
        parser.error("dataset directories must have distinct names, none of them 'pooled'")
    edge = EdgeSection()
    scorer = Scorer(args.model, "bench", edge.ort_threads, edge.batch_size)
    rules, started = RuleSettings(), time.perf_counter()
    results: dict[str, Outcome] = {}
    pooled = Outcome()
    try:
        scorer.load()
        episodes = {d: load_episodes(d) for d in args.datasets}  # every input checked before minutes of scoring
        with tempfile.TemporaryDirectory() as tmp:
            keep = args.keep or Path(tmp)
            keep.mkdir(parents=True, exist_ok=True)
            for d in args.datasets:
                results[d.resolve().name] = outcome = run_dataset(d, episodes[d], scorer, keep, rules)
                pooled.add(outcome)
    except (ForewarnError, OSError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    results["pooled"] = pooled
    faults = sorted({f for f, _ in pooled.verdicts} | {f for f, _, _ in pooled.episodes})
    rows: dict[str, Row] = {}
    for name, o in results.items():
        rows[name] = {"windows": o.windows, "score_s": None if math.isnan(o.score_s) else round(o.score_s, 1), **summary(o)}
    per_fault = {f: summary(pooled, f) for f in faults}
    wall_s = round(time.perf_counter() - started, 1)
    params = rules.default.model_dump(include={"threshold", "k", "n", "clear_threshold", "quiet_predictions", "quiet_s"})
    if args.json:
        by_dataset = {n: {f: summary(o, f) for f in faults} for n, o in results.items() if n != "pooled"}
        report = {"model_version": scorer.version, "rules": params, "datasets": rows, "per_fault": per_fault}
        print(json.dumps(report | {"per_fault_by_dataset": by_dataset, "wall_s": wall_s}))
        return
    print(f"alert quality, model {scorer.version}, rules {params}\n")
    print(table("dataset", rows, ["windows", "score_s", *COLUMNS]) + "\n")
    print(table("fault (pooled)", per_fault, COLUMNS[:-1]) + "\n")
    print(f"score s: the gateway's offline scoring ('-': predictions reused from --keep); whole run {wall_s} s")


if __name__ == "__main__":
    main()
