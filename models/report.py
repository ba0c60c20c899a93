"""The compression report: report.md and PNG plots written into the bundle by `model train`.

confusion.png          the shipped INT8 model on validation windows (and held-out data if given)
compression.png        macro-F1 against size and against latency for every stage
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from models.bundle import bundle_bytes
from models.runtime import Bundle

BARS = {"macro_f1": 0.95, "teacher_gap": 0.01, "param_ratio": 10.0, "int8_speedup": 2.0, "bundle_mb": 5.0}


def _confusion_png(path: Path, matrix: list[list[int]], labels: list[str], title: str) -> None:
    m = np.asarray(matrix, dtype=np.float64)
    rows = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=80)
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(
                    j, i, str(int(m[i, j])), ha="center", va="center", fontsize=6, color="white" if rows[i, j] > 0.5 else "black"
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _compression_png(path: Path, stages: list[dict[str, Any]]) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), dpi=80)
    for ax, key, label in (
        (axes[0], "onnx_bytes", "ONNX size (MB, log)"),
        (axes[1], "latency_ms_b1", "ms per window, batch 1, 1 thread (log)"),
    ):
        for s in stages:
            x = s[key] / 1e6 if key == "onnx_bytes" else s[key]
            ax.scatter(x, s["macro_f1"], s=30)
            ax.annotate(s["name"], (x, s["macro_f1"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("validation macro-F1", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("compression path: size and latency vs quality", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def bars(metrics: dict[str, Any], size: int) -> list[tuple[str, str, str, bool]]:
    """(bar, target, reached, met) rows for the product's model bars."""
    stages = {s["name"]: s for s in metrics["stages"]}
    shipped = metrics["validation"]
    teacher, fp32, student = stages["teacher"], stages["final_fp32"], stages["student"]
    held = metrics.get("holdout") or {}
    f1 = held.get("macro_f1", shipped["macro_f1"])
    where = "held-out datasets" if held else "validation assets"
    gap = teacher["macro_f1"] - shipped["macro_f1"]
    ratio = teacher["params"] / shipped["params"]
    speed = student["latency_ms_b1"] / shipped["latency_ms_b1"]
    alone = fp32["latency_ms_b1"] / shipped["latency_ms_b1"]
    return [
        (f"macro-F1 ({where})", ">= 0.95", f"{f1:.4f}", f1 >= BARS["macro_f1"]),
        ("INT8 student vs teacher macro-F1 (validation)", "within 1 point", f"{-gap:+.4f}", gap <= BARS["teacher_gap"]),
        ("teacher / student parameters", ">= 10x", f"{ratio:.1f}x", ratio >= BARS["param_ratio"]),
        (
            "shipped INT8 vs the FP32 student (distilled, before pruning), batch 1, 1 thread",
            ">= 2x faster",
            f"{speed:.2f}x",
            speed >= BARS["int8_speedup"],
        ),
        (
            "quantization alone: INT8 vs FP32 of the same final graph, batch 1, 1 thread",
            ">= 2x faster",
            f"{alone:.2f}x",
            alone >= BARS["int8_speedup"],
        ),
        ("bundle size", "<= 5 MB", f"{size / 1e6:.2f} MB", size <= BARS["bundle_mb"] * 1e6),
    ]


def write_report(out: Path, bundle: Bundle, metrics: dict[str, Any], config: dict[str, Any]) -> None:
    labels = list(bundle.labels)
    shipped = metrics["validation"]
    _confusion_png(out / "confusion.png", shipped["confusion"], labels, f"INT8 student, validation windows ({bundle.version})")
    held = metrics.get("holdout")
    if held:
        _confusion_png(out / "confusion_holdout.png", held["confusion"], held["labels"], "INT8 student, held-out datasets")
    _compression_png(out / "compression.png", metrics["stages"])
    size = bundle_bytes(out) if (out / "manifest.json").exists() else 0
    prof, facts = config["profile"], config["training"]
    lines = [
        f"# Compression report: {bundle.version}",
        "",
        f"Profile `{prof['name']}`, seed {prof['seed']}. Trained on {len(facts['datasets'])} dataset(s), "
        f"{facts['train_windows']:,} training and {facts['val_windows']:,} validation windows (split {facts['split']}); "
        f"trimmed vocabulary {facts['vocabulary']:,} word pieces. Window {config['spec']['length_s']:g} s in "
        f"{config['spec']['steps']} steps, {config['features']['log_tokens']} log tokens: "
        f"{1 + config['spec']['steps'] + config['features']['log_tokens']} tokens per window.",
        "",
        "## Bars",
        "",
        "| bar | target | reached | met |",
        "|---|---|---|---|",
        *[f"| {b} | {t} | {r} | {'yes' if ok else '**no**'} |" for b, t, r, ok in bars(metrics, size)],
        "",
        "## Stages",
        "",
        "Quality on validation windows (whole assets held out of training), measured on each stage's ONNX graph; "
        "latency is the median per window at batch 1 on one thread after a warm-up, throughput at batch 64, one thread.",
        "",
        "| stage | params | ONNX MB | macro-F1 | anomaly AUROC | TTF MAE h | ms/window b1 | windows/s b64 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in [s for s in metrics["stages"] if "params" in s]:
        lines.append(
            f"| {s['name']} | {s['params']:,} | {s['onnx_bytes'] / 1e6:.2f} | {s['macro_f1']:.4f} | {s['anomaly_auroc']} | "
            f"{s['ttf_mae_hours']} | {s['latency_ms_b1']:.3f} | {s['windows_per_s_b64']:,.0f} |"
        )
    lines += ["", "![compression](compression.png)", "", "## Decisions", ""]
    lines += [f"- **{k}**: {v}" for k, v in metrics["decisions"].items()] or ["- none"]
    lines += [
        "",
        "## Shipped model on validation windows",
        "",
        "| class | precision | recall | F1 | windows |",
        "|---|---:|---:|---:|---:|",
    ]
    per_class = (held or {}).get("per_class") or {}
    lines += _per_class_rows(metrics["validation"], labels)
    lines += ["", "![confusion](confusion.png)", ""]
    if held:
        lines += [
            "## Held-out datasets (through the runtime)",
            "",
            f"Datasets never used in training: {', '.join(Path(d).name for d in held['datasets'])}. "
            f"macro-F1 {held['macro_f1']:.4f}, anomaly AUROC {held['anomaly_auroc']}, TTF MAE {held['ttf_mae_hours']} h "
            f"over {held['windows']:,} windows where the machine ran ({held.get('idle_windows', 0):,} idle windows left out; "
            f"over all windows macro-F1 {held.get('all_windows', {}).get('macro_f1')}); "
            f"predict() latency p50 {held['latency_ms_p50']} ms per window, "
            f"{held['windows_per_s']:,} windows/s batched (one thread). Macro-F1 averages over every class that is "
            "true or predicted, so a false alarm of a fault absent from a dataset counts as a class with F1 0.",
            "",
            "| class | precision | recall | F1 | windows |",
            "|---|---:|---:|---:|---:|",
            *[
                f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                for c, v in per_class.items()
            ],
            "",
        ]
        for name, r in (held.get("by_dataset") or {}).items():
            lines.append(f"- `{Path(name).name}`: macro-F1 {r['macro_f1']}, AUROC {r['anomaly_auroc']}, {r['windows']} windows")
        lines += _error_rows(held.get("errors") or [])
        lines += ["", "![confusion held-out](confusion_holdout.png)", ""]
    lines += baseline_rows(metrics)
    lines += [
        "## Reproduce",
        "",
        "```",
        f"forewarn model train {' '.join(Path(d).name for d in facts['datasets'])} --out BUNDLE "
        f"--profile {prof['name']} --seed {prof['seed']}{overrides(prof)}",
        "forewarn model evaluate DIR --model BUNDLE --json",
        "```",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))


def overrides(prof: dict[str, Any]) -> str:
    """The ``--set FIELD=VALUE`` options that turn the named profile into this one (empty when none)."""
    from models.profiles import PROFILES

    base = PROFILES[prof["name"]].to_dict()
    changed = [k for k, v in prof.items() if k not in ("name", "seed") and json.dumps(v) != json.dumps(base.get(k))]
    return "".join(f" --set {k}={json.dumps(prof[k], separators=(',', ':'))}" for k in changed)


def versus_baselines(metrics: dict[str, Any]) -> tuple[float, str, float | None]:
    """(the SLM's macro-F1, the best baseline's name, its macro-F1) on held-out datasets if any, else validation."""
    held = metrics.get("holdout") or {}
    found = held.get("baselines") if held else metrics.get("baselines")
    ours = held.get("macro_f1", metrics["validation"]["macro_f1"])
    scored = {k: v["macro_f1"] for k, v in (found or {}).items() if "macro_f1" in v}
    if not scored:
        return ours, "", None
    best = max(scored, key=lambda k: scored[k])
    return ours, best, scored[best]


def baseline_rows(metrics: dict[str, Any]) -> list[str]:
    """The simple baselines fitted on the same training windows, beside the SLM (models.baselines)."""
    rows = [("validation windows where the machine ran", metrics["validation"], metrics.get("baselines") or {})]
    held = metrics.get("holdout") or {}
    if held.get("baselines"):
        rows.append(("held-out datasets", held, held["baselines"]))
    lines = [
        "## Against simple baselines",
        "",
        "Fitted on the same training windows (models.baselines: per-channel window summaries and log word counts).",
        "",
        "| windows | SLM macro-F1 | logistic regression | gradient boosting | SLM anomaly AUROC | Isolation Forest AUROC |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for where, slm, base in rows:
        lr, gb, iso = (base.get(k, {}) for k in ("logistic_regression", "gradient_boosting", "isolation_forest"))
        lines.append(
            f"| {where} | {slm['macro_f1']:.4f} | {lr.get('macro_f1', '-')} | {gb.get('macro_f1', '-')} | "
            f"{slm.get('anomaly_auroc')} | {iso.get('anomaly_auroc', '-')} |"
        )
    ours, best, theirs = versus_baselines(metrics)
    if theirs is not None and ours < theirs:
        lines += ["", f"**The SLM does not beat the {best.replace('_', ' ')} baseline here ({ours:.4f} vs {theirs:.4f}).**"]
    return [*lines, ""]


def _error_rows(groups: list[dict[str, Any]]) -> list[str]:
    """Where the held-out errors are: the machines a class's F1 is held down by."""
    if not groups:
        return []
    lines = [
        "",
        "Where the errors are (wrong running windows by asset, most first; window ends, UTC; for the largest, the "
        "inputs whose masking flips most of their verdicts, as `forewarn model explain` finds them):",
        "",
        "| dataset | asset | truth | predicted | windows | first | last | verdict rests on |",
        "|---|---|---|---|---:|---|---|---|",
    ]
    for g in groups:
        first, last = (datetime.fromtimestamp(g[k], UTC).strftime("%m-%d %H:%M") for k in ("first_end", "last_end"))
        rests = ", ".join(f"{r['input']} {r['flips']:.0%}" for r in g.get("rests_on", []))
        where = f"| {g['dataset']} | {g['asset_id']} | {g['truth']} | {g['predicted']} | {g['windows']}"
        lines.append(f"{where} | {first} | {last} | {rests} |")
    return lines


def _per_class_rows(record: dict[str, Any], labels: list[str]) -> list[str]:
    m = np.asarray(record["confusion"])
    rows = []
    for i, label in enumerate(labels):
        tp, support, predicted = m[i, i], m[i].sum(), m[:, i].sum()
        if support == 0 and predicted == 0:
            continue
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        rows.append(f"| {label} | {p:.3f} | {r:.3f} | {f:.3f} | {support} |")
    return rows
