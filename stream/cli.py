"""`forewarn stream worker`, `forewarn alerts list|ack|resolve`, `forewarn db upgrade`.

Settings are built once per command (``load_settings``) and passed down. `alerts list`
reads the database directly (it works with the worker stopped); `ack` and `resolve` go
through the worker's feed API, the very path of the web page's buttons, so the
aggregation state sees them.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click

from forewarn.settings import load_settings
from stream.config import StreamSettings

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
    run_worker(settings, loglevel=settings.logging.level.lower())


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
def alerts() -> None:
    """List, acknowledge and resolve alerts."""


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
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON list")
@CONFIG
@STATE_DIR
def alerts_list(
    state: str, asset: str | None, limit: int, as_json: bool, config_file: Path | None, state_dir: Path | None
) -> None:
    """List alerts from the database, worst and newest first."""
    from stream.db import upgrade
    from stream.store import AlertQuery, AlertStore

    settings = _settings(config_file, state_dir)
    states = {"active": ("open", "acknowledged"), "all": ()}.get(state, (state,))
    upgrade(settings.database_url())  # a fresh state dir has no schema yet: an empty list, not an error
    store = AlertStore(settings.database_url())
    try:
        rows, total = store.list_alerts(AlertQuery(states=states, asset_id=asset, limit=limit))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    if not rows:
        click.echo(f"no {state} alerts")
        return
    click.echo(
        f"{'ID':<44} {'SEVERITY':<9} {'STATE':<13} {'ASSET':<16} {'FAULT':<20} {'P':>5} {'TTF h':>6} {'SEEN':>5}  LAST SEEN"
    )
    for r in rows:
        ttf = f"{r['ttf_hours']:.1f}" if r["ttf_hours"] is not None else "-"
        seen = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["last_seen"]))
        click.echo(
            f"{r['id']:<44} {r['severity']:<9} {r['state']:<13} {r['asset_id']:<16} {r['fault']:<20} "
            f"{r['peak_probability']:>5.2f} {ttf:>6} {r['occurrences']:>5}  {seen}"
        )
    if total > len(rows):
        click.echo(f"... {total - len(rows)} more (use --limit)")


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

    if settings.stream.api_token is not None:
        return settings.stream.api_token.get_secret_value()
    path = settings.state_dir / TOKEN_FILE
    if not path.is_file():
        raise click.ClickException(f"no API token: set stream.api_token or start the worker once (it writes {path})")
    return path.read_text().strip()


def _command(action: str, alert_id: str, by: str, url: str | None, config_file: Path | None, state_dir: Path | None) -> None:
    settings = _settings(config_file, state_dir)
    base = _feed_url(settings, url)
    target = f"{base}/api/alerts/{urllib.parse.quote(alert_id, safe=':')}/{action}"
    request = urllib.request.Request(
        target,
        data=json.dumps({"by": by}).encode(),
        headers={"Authorization": f"Bearer {_token(settings)}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise click.ClickException(f"{action} refused ({exc.code}): {detail}") from exc
    except OSError as exc:
        raise click.ClickException(
            f"cannot reach the alert feed at {base} (is `forewarn stream worker` running?): {exc}"
        ) from exc
    click.echo(f"{action} of {alert_id} accepted (command {answer['command_id']})")


@alerts.command("ack")
@click.argument("alert_id")
@click.option("--by", default="cli", show_default=True, help="who acknowledges (shown in the alert's history)")
@click.option("--url", help="the worker's feed URL (default: from the state dir, else stream.web_host/web_port)")
@CONFIG
@STATE_DIR
def alerts_ack(alert_id: str, by: str, url: str | None, config_file: Path | None, state_dir: Path | None) -> None:
    """Acknowledge an alert (stops escalation and re-notification)."""
    _command("acknowledge", alert_id, by, url, config_file, state_dir)


@alerts.command("resolve")
@click.argument("alert_id")
@click.option("--by", default="cli", show_default=True, help="who resolves (shown in the alert's history)")
@click.option("--url", help="the worker's feed URL (default: from the state dir, else stream.web_host/web_port)")
@CONFIG
@STATE_DIR
def alerts_resolve(alert_id: str, by: str, url: str | None, config_file: Path | None, state_dir: Path | None) -> None:
    """Resolve an alert; a fault that persists raises a new one after k fresh hits."""
    _command("resolve", alert_id, by, url, config_file, state_dir)
