"""Liveness: an asset or a gateway that stops reporting raises an alert of its own.

Silence is measured on the worker's clock from the last prediction (asset) or heartbeat
(gateway) it processed, so a gateway with a wrong clock is still judged fairly. One alert
per silence: once raised (or resolved by an operator) it is not raised again until the
entity has been heard from and falls silent anew.
"""

from __future__ import annotations

from forewarn.contracts import Alert, Severity
from stream.config import LivenessSettings
from stream.rules import open_liveness_alert, resolve_liveness
from stream.state import EntityState

ASSET_SILENT = "asset_silent"
GATEWAY_SILENT = "gateway_silent"


def silence_fault(state: EntityState) -> str:
    return ASSET_SILENT if state.kind == "asset" else GATEWAY_SILENT


def check_silence(state: EntityState, liveness: LivenessSettings, now: float) -> list[Alert]:
    """Raise the entity's silent alert once its last report is older than the timeout."""
    if state.last_heard <= 0:
        return []
    timeout = liveness.asset_silent_s if state.kind == "asset" else liveness.gateway_silent_s
    fault = silence_fault(state)
    track = state.tracks.get(fault)
    if now - state.last_heard < timeout or state.silence_reported == state.last_heard or (track and track.is_open):
        return []
    return [open_liveness_alert(state, fault, state.last_heard + timeout, Severity(liveness.severity), now)]


def apply_heartbeat(state: EntityState, site: str, now: float) -> list[Alert]:
    """A gateway was heard from: remember when, and end its silence alert if one is open."""
    state.site = site
    state.last_heard = max(state.last_heard, now)
    return resolve_liveness(state, GATEWAY_SILENT, now)
