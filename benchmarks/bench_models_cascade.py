"""The edge -> plant cascade on held-out data: escalated share against macro-F1, over plant bundles of several seeds.

    python benchmarks/bench_models_cascade.py HELDOUT_DIR... --plant BUNDLE_S0 --plant BUNDLE_S1 --plant BUNDLE_S2 \\
        [--edge BUNDLE] [--every 4] [--plot docs/cascade.png] [--json out.json]

The held-out windows (every ``--every``-th of each asset, running windows only, as `model evaluate`
scores them) are cut and featurised once by the edge bundle; the edge's probabilities come from
its graph, each plant bundle's from the same inputs (what an escalation carries). The cascade is
deterministic given the two models, so its spread over seeds is the plant model's: each figure is
mean ± sd over the plant bundles. Prints the curve and the operating point (the best cascade
macro-F1 within 5 % escalated), draws the curve with matplotlib.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from models.cascade import SWEEP, Policy, point
from models.data import labelled_windows
from models.runtime import Bundle, Predictor, default_bundle_path

CHUNK = 512


def held_out(edge: Predictor, directories: list[Path], every: int) -> dict[str, Any]:
    """Featurised running windows with truth (first label and every right answer), and the edge's outputs."""
    labels = list(edge.bundle.labels)
    sensors, tokens, types, ys, credit, probs, anomaly = [], [], [], [], [], [], []
    for directory in directories:
        chunk: list[Any] = []
        rows = list(labelled_windows(directory, edge.bundle.spec, every=every))
        for at in range(0, len(rows), CHUNK):
            part = [r for r in rows[at : at + CHUNK] if r.label in labels]
            if not part:
                continue
            chunk = [r.window for r in part]
            features = edge.featuriser(chunk)
            stats = np.stack([w.stats for w in chunk])
            counts = np.stack([w.counts for w in chunk])
            ran = edge.featuriser.running(stats, counts)
            raw = edge.run(features)
            p = edge.probabilities(features, [w.asset_type for w in chunk])
            keep = np.flatnonzero(ran)
            sensors.append(features.sensors[keep])
            tokens.append(features.tokens[keep])
            types += [chunk[i].asset_type for i in keep]
            ys += [labels.index(part[i].label) for i in keep]
            credit += [[labels.index(t) for t in part[i].truths if t in labels] for i in keep]
            probs.append(p[keep])
            anomaly.append(np.clip(raw["anomaly"][keep], 0.0, 1.0))
        print(f"  {directory}: {len(ys):,} running windows so far", file=sys.stderr)
    return {
        "sensors": np.concatenate(sensors),
        "tokens": np.concatenate(tokens),
        "types": types,
        "y": np.asarray(ys),
        "credit": credit,
        "edge": np.concatenate(probs),
        "anomaly": np.concatenate(anomaly),
    }


def plant_probabilities(plant: Predictor, data: dict[str, Any]) -> np.ndarray:
    from models.features import Features

    out = []
    for at in range(0, len(data["y"]), CHUNK):
        s, t = data["sensors"][at : at + CHUNK], data["tokens"][at : at + CHUNK]
        out.append(plant.probabilities(Features(s, t, np.full(t.shape, -1, dtype=np.int32)), data["types"][at : at + CHUNK]))
    return np.concatenate(out)


def cached(path: Path | None, make: Any) -> dict[str, Any]:
    """The held-out data from ``path`` if it is there, else made (and saved there)."""
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as z:
            data: dict[str, Any] = {k: z[k] for k in z.files}
        data["types"] = [None if t == "" else str(t) for t in data["types"]]
        data["credit"] = json.loads(str(data["credit"]))
        return data
    data = make()
    if path is not None:
        types = np.array(["" if t is None else t for t in data["types"]])
        fields = {k: v for k, v in data.items() if k not in ("types", "credit")}
        np.savez(path, types=types, credit=np.array(json.dumps(data["credit"])), **fields)
    return data


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--plant", action="append", type=Path, required=True, help="plant bundle (repeat: one per seed)")
    parser.add_argument("--edge", type=Path, default=default_bundle_path())
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--anomaly-above", type=float, default=Policy().anomaly_above)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cache", type=Path, help="npz of the featurised held-out windows: written once, read after")
    args = parser.parse_args()

    started = time.monotonic()
    edge = Predictor(Bundle.load(args.edge))
    data = cached(args.cache, lambda: held_out(edge, args.directories, args.every))
    thresholds = (0.0, *SWEEP)
    curves = []
    for path in args.plant:
        plant = Predictor(Bundle.load(path))
        plant_probs = plant_probabilities(plant, data)
        curves.append(
            [
                point(data["y"], data["edge"], plant_probs, data["anomaly"], Policy(t, args.anomaly_above), data["credit"])
                for t in thresholds
            ]
        )
    rows = []
    for k, t in enumerate(thresholds):
        row: dict[str, Any] = {"confidence_below": t, "anomaly_above": args.anomaly_above}
        for key in ("escalated_fraction", "macro_f1_edge", "macro_f1_plant", "macro_f1_cascade", "plant_f1_recovered"):
            row[key] = mean_sd([c[k][key] for c in curves])
        rows.append(row)
    within = [r for r in rows if r["escalated_fraction"][0] <= 0.05]
    best = max(within, key=lambda r: r["macro_f1_cascade"][0]) if within else None
    print(f"{len(data['y']):,} held-out running windows, {len(args.plant)} plant bundles, {time.monotonic() - started:.0f} s")
    print(f"{'conf <':>7} {'escalated':>16} {'edge F1':>16} {'plant F1':>16} {'cascade F1':>16} {'of plant':>16}")
    for r in rows:
        cells = [f"{r[k][0]:.4f} ± {r[k][1]:.4f}" for k in list(r)[2:]]
        print(f"{r['confidence_below']:>7} " + " ".join(f"{c:>16}" for c in cells))
    if best is not None:
        print(f"operating point (best cascade F1 within 5 % escalated): confidence < {best['confidence_below']}")
    if args.json:
        args.json.write_text(json.dumps({"windows": len(data["y"]), "curve": rows, "operating_point": best}, indent=2))
    if args.plot:
        plot(rows, best, args.plot, len(data["y"]))


def plot(rows: list[dict[str, Any]], best: dict[str, Any] | None, out: Path, windows: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [100 * r["escalated_fraction"][0] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for key, label, style in (
        ("macro_f1_cascade", "cascade", "-o"),
        ("macro_f1_edge", "edge alone", "--"),
        ("macro_f1_plant", "plant alone", ":"),
    ):
        mean = np.array([r[key][0] for r in rows])
        sd = np.array([r[key][1] for r in rows])
        ax.plot(x, mean, style, label=label, markersize=3)
        ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
    default = next((r for r in rows if r["confidence_below"] == Policy().confidence_below), None)
    if default is not None:  # the configured default (edge.cascade_confidence_below)
        at = 100 * default["escalated_fraction"][0]
        ax.axvline(at, color="grey", linewidth=0.8)
        ax.annotate(f" default: confidence < {default['confidence_below']}", (at, ax.get_ylim()[0] + 0.01), fontsize=8)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, 100)
    ax.set_xlabel("windows escalated to the plant tier (%)")
    ax.set_ylabel("macro-F1 (held-out running windows)")
    ax.set_title(f"Edge -> plant cascade, {windows:,} held-out windows, mean ± sd over plant seeds", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main()
