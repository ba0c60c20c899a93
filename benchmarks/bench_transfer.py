"""Transfer: bundles trained on one plant read a second plant that names its channels otherwise.

    python benchmarks/bench_transfer.py DATASETS --bundles B0 B1 B2 [--reference R0 R1 R2] [--work DIR] [--json]

The first plant is C-MAPSS FD001, the second FD003 (the same engine type; FD003 adds a second
fault mode, fan degradation, that FD001 never shows). Both are imported with ``--split
normal-first``; the bundles (``--bundles``) are FD001's anomaly bundles
(``bench_results.py --rows fd001-unlabelled``). The second plant is made to look like another
historian: its test engines' channels get opaque tags (``tag_01`` .. ``tag_24``, in a shuffled
order) and lose their original names, keeping only each tag's description, unit and role, as
a historian's tag list has them (and, a second time, without the descriptions: units and
roles alone). Then, through the product's commands:

1. ``forewarn model map BUNDLE PLANT --out MAP`` pairs the tags with the bundle's channels; the
   pairs are checked against the true renaming (``pairs_right``);
2. ``forewarn data rename PLANT --map MAP`` and ``forewarn model evaluate ... --model BUNDLE``
   give the transferred bundle's anomaly AUROC and early warning (``lead_time``);
3. the same engines evaluated with FD003's own anomaly bundles (``--reference``, trained on
   FD003's healthy starts: ``bench_results.py --rows fd003-unlabelled``) say what the plant's
   own data would give.

The descriptions are the importer's, the same text in both plants: with them this measures the
path (pairing, renaming, reading a fleet with an unseen fault mode), not pairing across reworded
descriptions; without them, what units and roles alone can pair. Mean ± sd over the bundles given (one per seed).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FOREWARN = [sys.executable, "-m", "forewarn.cli"]


def _run(*args: str) -> str:
    print("$ forewarn " + " ".join(args), file=sys.stderr)
    return subprocess.run([*FOREWARN, *args], check=True, cwd=ROOT, capture_output=True, text=True).stdout


def opaque_plant(test: Path, out: Path, seed: int, descriptions: bool = True) -> dict[str, str]:
    """``test`` renamed to shuffled opaque tags without original names (and, unless ``descriptions``, without
    descriptions: units and roles alone); returns the true tag -> channel."""
    meta = json.loads((test / "meta.json").read_text())
    names = sorted(meta["channels"])
    shuffled = names[:]
    random.Random(seed).shuffle(shuffled)
    tags = {name: f"tag_{i + 1:02d}" for i, name in enumerate(shuffled)}
    renaming = out.parent / f"renaming-{out.name}.json"
    renaming.write_text(json.dumps(tags))
    _run("data", "rename", str(test), "--map", str(renaming), "--out", str(out), "--force")
    renamed = json.loads((out / "meta.json").read_text())
    for info in renamed["channels"].values():
        info["original_name"] = ""
        if not descriptions:
            info["description"] = ""
    (out / "meta.json").write_text(json.dumps(renamed))
    return {tag: name for name, tag in tags.items()}


def transfer(bundle: Path, plant: Path, truth: dict[str, str], work: Path) -> dict[str, Any]:
    mapping = work / f"map-{plant.name}-{bundle.name}.json"
    _run("model", "map", str(bundle), str(plant), "--out", str(mapping))
    pairs = json.loads(mapping.read_text())
    readable = work / f"{plant.name}-as-{bundle.name}"
    _run("data", "rename", str(plant), "--map", str(mapping), "--out", str(readable), "--force")
    result = json.loads(_run("model", "evaluate", str(readable), "--model", str(bundle), "--json"))
    return {
        "pairs": len(pairs),
        "pairs_right": sum(truth.get(tag) == channel for tag, channel in pairs.items()),
        "anomaly_auroc": result["anomaly_auroc"],
        "lead_time": result.get("lead_time", {}),
    }


def reference(bundle: Path, test: Path) -> dict[str, Any]:
    result = json.loads(_run("model", "evaluate", str(test), "--model", str(bundle), "--json"))
    return {"anomaly_auroc": result["anomaly_auroc"], "lead_time": result.get("lead_time", {})}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def spread(values: list[Any]) -> str:
        known = [float(v) for v in values if v is not None]
        if not known:
            return "n/a"
        return f"{statistics.mean(known):.3f} ± {statistics.stdev(known) if len(known) > 1 else 0.0:.3f}"

    leads = [r["lead_time"].get("lead_hours_median") for r in runs]
    return {
        "runs": len(runs),
        "anomaly_auroc": spread([r["anomaly_auroc"] for r in runs]),
        "lead_cycles_median": spread(leads),
        "warned": [r["lead_time"].get("warned") for r in runs],
        "warned_before_onset": [r["lead_time"].get("warned_before_onset") for r in runs],
        "engines": runs[0]["lead_time"].get("assets"),
        **({"pairs_right": [f"{r['pairs_right']}/{r['pairs']}" for r in runs]} if "pairs" in runs[0] else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--bundles", type=Path, nargs="+", required=True, help="FD001 anomaly bundles, one per seed")
    parser.add_argument("--reference", type=Path, nargs="*", default=[], help="FD003 anomaly bundles, one per seed")
    parser.add_argument("--work", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--seed", type=int, default=0, help="the shuffle of the opaque tags")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    fd003 = work / "fd003"
    if not (fd003 / "test" / "meta.json").exists():
        src = str(args.datasets / "cmapss")
        _run("data", "import", "cmapss", src, "--subset", "FD003", "--split", "normal-first", "--out", str(fd003), "--force")
    out: dict[str, Any] = {}
    for variant, descriptions in (("tags_with_descriptions", True), ("tags_units_roles_only", False)):
        plant = work / variant
        truth = opaque_plant(fd003 / "test", plant, args.seed, descriptions)
        out[variant] = summary([transfer(b.resolve(), plant, truth, work) for b in args.bundles])
    if args.reference:
        out["in_plant"] = summary([reference(b.resolve(), fd003 / "test") for b in args.reference])
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
