"""`forewarn stream worker`, `forewarn alerts list|show|ack|resolve`, `forewarn db upgrade`.

Settings are built once per command (``load_settings``) and passed down. `alerts list`
and `alerts show` read the database directly (they work with the worker stopped); `ack` and `resolve` go
through the worker's feed API, the very path of the web page's buttons, so the
aggregation state sees them.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from forewarn.settings import load_settings
from stream.config import StreamSettings

if TYPE_CHECKING:
    from stream.store import AlertStore

CONFIG = click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML settings file")
STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FOREWARN_STATE_DIR",
    help="directory of the database and local state (env FOREWARN_STATE_DIR)",
)


def _settings(config_file: Path | None, state_dir: Path | None = None) -> StreamSettings:
    overrides: dict[str, Any] = {"state_dir": state_dir} if state_dir is not None else {}
    return load_settings(StreamSettings, config_file, **overrides)


def _login() -> str:
    """The operator's login name: who did it, recorded with the alert."""
    import getpass

    try:
        return getpass.getuser()[:64] or "cli"
    except (KeyError, OSError):  # no user name in this environment
        return "cli"


@click.group()
def stream() -> None:
    """The stream pipeline: predictions -> deduplicated, escalating alerts."""


@stream.command("worker")
@CONFIG
@STATE_DIR
def worker(config_file: Path | None, state_dir: Path | None) -> None:
    """Run a Faust worker with the alert feed web server, until SIGTERM or Ctrl-C.

    Creates the topics it needs and migrates the database first. Run more workers with
    the same settings (and a different stream.web_port) to share the partitions.
    """
    from forewarn.logs import setup_logging
    from stream.worker import run_worker

    settings = _settings(config_file, state_dir)
    setup_logging(settings.logging)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its seven INFO lines at every start say nothing
    run_worker(settings, loglevel=settings.logging.level.lower())


@stream.command("plant")
@click.option(
    "--model",
    "bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="plant-tier bundle [default: the one shipped beside the default bundle, models/bundles/plant]",
)
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True, help="ONNX Runtime intra-op threads")
@CONFIG
@STATE_DIR
def plant(bundle: Path | None, threads: int, config_file: Path | None, state_dir: Path | None) -> None:
    """Run the plant tier of the edge -> plant cascade, until SIGTERM or Ctrl-C.

    Scores the windows gateways escalate (Kafka topics.kafka_escalations) with a bigger model
    and sends each verdict to the stream worker, which records it on the asset's alert.
    """
    from forewarn.logs import setup_logging
    from stream.plant import plant_bundle_path, run_plant

    settings = _settings(config_file, state_dir)
    setup_logging(settings.logging)
    run_plant(settings, bundle or plant_bundle_path(), threads)


@click.group()
def db() -> None:
    """The alert database."""


@db.command("upgrade")
@CONFIG
@STATE_DIR
def db_upgrade(config_file: Path | None, state_dir: Path | None) -> None:
    """Create or migrate the alert database schema to the newest revision (idempotent)."""
    from sqlalchemy.engine import make_url

    from stream.db import upgrade

    settings = _settings(config_file, state_dir)
    revision = upgrade(settings.database_url())
    click.echo(f"database {make_url(settings.database_url()).render_as_string(hide_password=True)} at revision {revision}")


@click.group()
@click.option(
    "--token",
    envvar="FOREWARN_API_TOKEN",
    help="your feed token for actions (env FOREWARN_API_TOKEN); default: stream.api_token, else the state dir's",
)
@click.pass_context
def alerts(ctx: click.Context, token: str | None) -> None:
    """List, inspect, acknowledge, resolve and shelve alerts; take assets out of service; KPIs; training labels."""
    ctx.ensure_object(dict)["api_token"] = token


def _when(ts: float | None) -> str:
    """A time an operator can place: date, time and zone (the machine's local zone)."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts))


def _store(settings: StreamSettings, state_dir: Path | None) -> AlertStore:
    """The alert store for a read-only command; a state directory that does not exist is a typo, not an empty plant."""
    from stream.db import upgrade
    from stream.store import AlertStore

    if state_dir is not None and settings.database.url is None and not state_dir.is_dir():
        raise click.ClickException(f"state directory {state_dir} does not exist (no database there)")
    upgrade(settings.database_url())  # a fresh state dir has no schema yet: an empty list, not an error
    return AlertStore(settings.database_url())


@alerts.command("list")
@click.option(
    "--state",
    "state",
    type=click.Choice(["open", "acknowledged", "resolved", "active", "all"]),
    default="active",
    show_default=True,
    help="which alerts: active = open and acknowledged",
)
@click.option("--asset", help="only this asset")
@click.option("--site", help="only this site")
@click.option("--severity", type=click.Choice(["low", "medium", "high", "critical"]), help="only this severity")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON list")
@CONFIG
@STATE_DIR
def alerts_list(
    state: str,
    asset: str | None,
    site: str | None,
    severity: str | None,
    limit: int,
    as_json: bool,
    config_file: Path | None,
    state_dir: Path | None,
) -> None:
    """List alerts from the database, worst and newest first."""
    from stream.store import AlertQuery

    settings = _settings(config_file, state_dir)
    states = {"active": ("open", "acknowledged"), "all": ()}.get(state, (state,))
    store = _store(settings, state_dir)
    try:
        query = AlertQuery(states=states, asset_id=asset, site=site, severity=severity, limit=limit)
        rows, total = store.list_alerts(query)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    if not rows:
        click.echo(f"no {state} alerts")
        return
    click.echo(
        f"{'ID':<44} {'SEVERITY':<9} {'STATE':<13} {'SITE':<12} {'ASSET':<16} {'FAULT':<20} {'PEAK P':>6} {'TTF h':>6} "
        f"{'SEEN':>5}  {'OPENED':<23}  LAST SEEN"
    )
    for r in rows:
        ttf = f"{r['ttf_hours']:.1f}" if r["ttf_hours"] is not None else "-"
        click.echo(
            f"{r['id']:<44} {r['severity']:<9} {r['state']:<13} {r['site']:<12} {r['asset_id']:<16} {r['fault']:<20} "
            f"{r['peak_probability']:>6.2f} {ttf:>6} {r['occurrences']:>5}  {_when(r['first_seen']):<23}  {_when(r['last_seen'])}"
        )
    if total > len(rows):
        click.echo(f"... {total - len(rows)} more (use --limit)")


@alerts.command("kpis")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True, max=2160), default=24.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@CONFIG
@STATE_DIR
def alerts_kpis(hours: float, as_json: bool, config_file: Path | None, state_dir: Path | None) -> None:
    """Alarm-system KPIs (ISA-18.2) of the last hours: load per console, floods, stale, chattering, top contributors."""
    from stream.kpis import compute

    settings = _settings(config_file, state_dir)
    store = _store(settings, state_dir)
    now = time.time()
    try:
        openings, active = store.kpi_inputs(now - hours * 3600.0)
    finally:
        store.close()
    k = compute(openings, active, now, hours)
    if as_json:
        click.echo(json.dumps(k))
        return
    click.echo(
        f"last {hours:g} h: {k['annunciated']} annunciated alerts ({k['per_hour']:.2f}/h); ISA-18.2: <= 6/h acceptable, 12/h most"
    )
    for site, v in k["sites"].items():
        click.echo(
            f"  {site:<16} {v['per_hour']:>6.2f}/h  {v['band']:<10}  peak {v['peak_10min']} in 10 min  "
            f"floods {len(v['floods'])} ({100 * v['flood_share']:.1f}% of the time)  suppressed {v['suppressed']}"
        )
    click.echo(f"standing {k['standing']}, stale (active > 24 h) {k['stale']}, chattering {len(k['chattering'])}")
    mix = ", ".join(f"{s} {100 * v['share']:.0f}%" for s, v in k["priority_mix"].items())
    click.echo(f"priority mix: {mix}")
    for i, c in enumerate(k["top_contributors"], 1):
        click.echo(f"  {i:>2}. {c['asset_id']:<16} {c['fault']:<22} {c['count']:>4}  {100 * c['share']:.0f}%")


@alerts.command("show")
@click.argument("alert_id")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object (the alert with its history)")
@CONFIG
@STATE_DIR
def alerts_show(alert_id: str, as_json: bool, config_file: Path | None, state_dir: Path | None) -> None:
    """Show one alert: what, where, how sure, its evidence and its history (every change, who and when)."""
    settings = _settings(config_file, state_dir)
    store = _store(settings, state_dir)
    try:
        alert = store.get_alert(alert_id)
    finally:
        store.close()
    if alert is None:
        raise click.ClickException(f"no alert {alert_id!r}")
    if as_json:
        click.echo(json.dumps(alert, default=str))
        return
    ttf = f"{alert['ttf_hours']:.1f} h" if alert["ttf_hours"] is not None else "-"
    lines = [
        f"alert      {alert['id']}",
        f"asset      {alert['asset_id']} ({alert['asset_type'] or 'type unknown'}) at {alert['site']}"
        f", gateway {alert['gateway_id']}",
        f"fault      {alert['fault']}, severity {alert['severity']}, {alert['state']}",
        f"opened     {_when(alert['first_seen'])}; last seen {_when(alert['last_seen'])}; {alert['occurrences']} hits",
        f"P          last {alert['last_probability']:.2f}, peak {alert['peak_probability']:.2f}; time to failure {ttf}",
        f"model      {alert['model_version'] or '-'}",
    ]
    for key, label in (("acknowledged_by", "ack by"), ("resolution", "resolution"), ("resolved_by", "resolved by")):
        if alert.get(key):
            lines.append(f"{label:<10} {alert[key]}")
    if alert.get("verdict"):
        found = f" ({alert['verdict_fault']})" if alert.get("verdict_fault") else ""
        note = f": {alert['verdict_note']}" if alert.get("verdict_note") else ""
        lines.append(f"verdict    {alert['verdict']}{found} by {alert['verdict_by']} at {_when(alert['verdict_at'])}{note}")
    evidence = alert.get("evidence") or {}
    for channel in evidence.get("channels", []):
        lines.append(f"evidence   {channel['channel']}: {channel['score']:.1f} sigma")
    for line in evidence.get("logs", []):
        lines.append(f"evidence   log: {line['text']}")
    lines.append("history")
    for h in alert["history"]:
        operator_change = h["change"] in ("acknowledged", "resolved", "verdict")
        by = f" by {h['by']}" if h.get("by") and operator_change else ""
        if h.get("verdict") and operator_change:
            by += f" [{h['verdict']}{' ' + h['verdict_fault'] if h.get('verdict_fault') else ''}]"
        note = f": {h['note']}" if h.get("note") else ""
        lines.append(f"  r{h['revision']:<3} {_when(h['ts'])}  {h['change']:<12} {h['state']:<13} {h['severity']:<8}{by}{note}")
    click.echo("\n".join(lines))


@alerts.command("export-labels")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="dataset directory")
@CONFIG
@STATE_DIR
def alerts_export_labels(out: Path, config_file: Path | None, state_dir: Path | None) -> None:
    """Write operators' verdicts as fault episodes (labels.jsonl) of a dataset directory, for `forewarn model train`.

    Confirmed alerts become episodes of the fault the technician found; false alarms and
    maintenance become `normal` episodes. Episodes already in DIR/labels.jsonl are kept;
    every verdict is also listed in DIR/verdicts.jsonl. DIR needs the plant's recorded
    messages (messages.jsonl) of the same period to train on.
    """
    from stream.labels import export_labels, has_messages
    from stream.store import AlertQuery

    settings = _settings(config_file, state_dir)
    store = _store(settings, state_dir)
    try:
        rows, _ = store.list_alerts(AlertQuery(verdict_only=True, limit=1_000_000))
    finally:
        store.close()
    added, verdicts = export_labels(rows, out)
    click.echo(f"{verdicts} verdict(s); {added} new episode(s) in {out / 'labels.jsonl'}")
    if not has_messages(out):
        click.echo(f"note: {out} has no messages.jsonl yet: add the plant's recorded messages of the same period to train on it")


BY = click.option("--by", default=_login, show_default="your login name", help="who does it (kept in the audit trail)")
URL = click.option("--url", help="the worker's feed URL (default: from the state dir, else stream.web_host/web_port)")


@alerts.command("shelve")
@click.argument("alert_id")
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    required=True,
    help="for how long (capped by the worker's stream.rules.max_shelve_minutes)",
)
@click.option("--reason", required=True, help="why (kept in the alert's history)")
@BY
@URL
@CONFIG
@STATE_DIR
def alerts_shelve(
    alert_id: str, minutes: float, reason: str, by: str, url: str | None, config_file: Path | None, state_dir: Path | None
) -> None:
    """Shelve an alert: recorded but not annunciated (no re-notification or escalation) until it returns by itself."""
    _command("shelve", alert_id, {"by": by, "minutes": minutes, "note": reason}, url, config_file, state_dir)


@alerts.command("unshelve")
@click.argument("alert_id")
@BY
@URL
@CONFIG
@STATE_DIR
def alerts_unshelve(alert_id: str, by: str, url: str | None, config_file: Path | None, state_dir: Path | None) -> None:
    """Return a shelved alert before its time is up."""
    _command("unshelve", alert_id, {"by": by}, url, config_file, state_dir)


def _asset_command(
    action: str, asset: str, body: dict[str, Any], url: str | None, config_file: Path | None, state_dir: Path | None
) -> None:
    settings = _settings(config_file, state_dir)
    status, answer = _post(settings, url, f"/api/assets/{urllib.parse.quote(asset, safe='')}/{action}", body)
    if status != 202:
        raise click.ClickException(f"{action} {asset}: refused ({status}): {answer.get('error') or answer}")
    click.echo(f"{asset}: {action} sent (command {answer['command_id']}); its alerts follow within a second")


@alerts.command("out-of-service")
@click.argument("asset")
@click.option("--reason", required=True, help="why (maintenance work order, ...)")
@BY
@URL
@CONFIG
@STATE_DIR
def alerts_out_of_service(
    asset: str, reason: str, by: str, url: str | None, config_file: Path | None, state_dir: Path | None
) -> None:
    """Take an asset out of service: its alerts are recorded but not annunciated until `in-service`."""
    _asset_command("out-of-service", asset, {"by": by, "note": reason}, url, config_file, state_dir)


@alerts.command("in-service")
@click.argument("asset")
@BY
@URL
@CONFIG
@STATE_DIR
def alerts_in_service(asset: str, by: str, url: str | None, config_file: Path | None, state_dir: Path | None) -> None:
    """Put an asset back in service: its active alerts are annunciated again."""
    _asset_command("in-service", asset, {"by": by}, url, config_file, state_dir)


def _feed_url(settings: StreamSettings, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    from stream.worker import feed_file

    marker = feed_file(settings)
    if marker.is_file():
        try:
            return str(json.loads(marker.read_text())["url"]).rstrip("/")
        except (ValueError, KeyError):
            pass
    host = "127.0.0.1" if settings.stream.web_host in ("0.0.0.0", "::") else settings.stream.web_host
    return f"http://{host}:{settings.stream.web_port}"


def _token(settings: StreamSettings) -> str:
    from stream.worker import TOKEN_FILE

    given = (click.get_current_context().find_object(dict) or {}).get("api_token")
    if given:
        return str(given)  # a personal token: the feed records its holder as the one who acted
    if settings.stream.api_token is not None:
        return settings.stream.api_token.get_secret_value()
    path = settings.state_dir / TOKEN_FILE
    if not path.is_file():
        raise click.ClickException(f"no API token: set stream.api_token or start the worker once (it writes {path})")
    return path.read_text().strip()


def _post(settings: StreamSettings, url: str | None, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST to the worker's feed API; (status, JSON answer). Raises ClickException when the feed cannot be reached."""
    base = _feed_url(settings, url)
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {_token(settings)}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read().decode(errors="replace")
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = {"error": raw}
        return exc.code, answer if isinstance(answer, dict) else {"error": raw}
    except OSError as exc:
        raise click.ClickException(
            f"cannot reach the alert feed at {base} (is `forewarn stream worker` running?): {exc}"
        ) from exc


def _command(
    action: str, alert_id: str, body: dict[str, Any], url: str | None, config_file: Path | None, state_dir: Path | None
) -> None:
    """Send an operator command and say what became of the alert; exit 1 when nothing changed."""
    settings = _settings(config_file, state_dir)
    path = f"/api/alerts/{urllib.parse.quote(alert_id, safe=':')}/{action}"
    status, answer = _post(settings, url, path, body)
    if status == 200:
        alert = answer["alert"]
        verdict = f", verdict {alert['verdict']}" if alert.get("verdict") else ""
        found = f" ({alert['verdict_fault']})" if alert.get("verdict_fault") else ""
        until = f" until {_when(alert['shelved_until'])}" if answer.get("status") == "shelved" else ""
        status = answer.get("status", alert["state"])
        click.echo(f"{alert_id}: {status}{until}{verdict}{found} by {body.get('by')} (revision {alert['revision']})")
        return
    reason = answer.get("error") or json.dumps(answer)
    what = {404: "nothing done", 409: "nothing done", 504: "not applied", 401: "refused", 403: "refused"}.get(status, "failed")
    if status == 400:
        what = "refused"
    raise click.ClickException(f"{action} {alert_id}: {what}: {reason}")


VERDICT = click.option(
    "--verdict",
    type=click.Choice(["confirmed", "false_alarm", "maintenance"]),
    help="what the alert turned out to be (kept with it; `alerts export-labels` makes training labels of it)",
)
FOUND = click.option("--found-fault", help="with --verdict confirmed: the fault the technician found, if not the predicted one")
NOTE = click.option("--note", help="a reason or finding, kept in the alert's history")


def _body(by: str, verdict: str | None, found_fault: str | None, note: str | None) -> dict[str, Any]:
    if found_fault is not None and verdict != "confirmed":
        raise click.BadParameter("--found-fault goes with --verdict confirmed", param_hint="--found-fault")
    body: dict[str, Any] = {"by": by, "verdict": verdict, "found_fault": found_fault, "note": note}
    return {k: v for k, v in body.items() if v is not None}


@alerts.command("ack")
@click.argument("alert_id")
@click.option("--by", default=_login, show_default="your login name", help="who acknowledges (shown in the alert's history)")
@VERDICT
@FOUND
@NOTE
@click.option("--url", help="the worker's feed URL (default: from the state dir, else stream.web_host/web_port)")
@CONFIG
@STATE_DIR
def alerts_ack(
    alert_id: str,
    by: str,
    verdict: str | None,
    found_fault: str | None,
    note: str | None,
    url: str | None,
    config_file: Path | None,
    state_dir: Path | None,
) -> None:
    """Acknowledge an alert (stops escalation and re-notification).

    Prints the alert's new state once a worker has applied it; exits 1 when nothing
    changed (no such alert, already resolved or acknowledged, or no worker applied it).
    """
    _command("acknowledge", alert_id, _body(by, verdict, found_fault, note), url, config_file, state_dir)


@alerts.command("resolve")
@click.argument("alert_id")
@click.option("--by", default=_login, show_default="your login name", help="who resolves (shown in the alert's history)")
@VERDICT
@FOUND
@NOTE
@click.option("--url", help="the worker's feed URL (default: from the state dir, else stream.web_host/web_port)")
@CONFIG
@STATE_DIR
def alerts_resolve(
    alert_id: str,
    by: str,
    verdict: str | None,
    found_fault: str | None,
    note: str | None,
    url: str | None,
    config_file: Path | None,
    state_dir: Path | None,
) -> None:
    """Resolve an alert; a fault that persists raises a new one after k fresh hits.

    Prints the alert's new state once a worker has applied it; exits 1 when nothing
    changed (no such alert, already resolved, or no worker applied it). With --verdict,
    an alert that already resolved (by itself or by someone) gets the verdict recorded.
    """
    _command("resolve", alert_id, _body(by, verdict, found_fault, note), url, config_file, state_dir)
