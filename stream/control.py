"""Messages on the stream's control topic: operator commands, gateway heartbeats and clock ticks.

The control topic is co-partitioned with the predictions (same partition count, keyed by
asset id, or by gateway id for heartbeats), and the aggregation consumes both. So
every change to an entity's state happens inside one stream, on the worker that owns the
entity's partition, in one order that a replay reproduces: an acknowledgement from the
web page, a heartbeat and the passing of time are just more messages.

These are internal to the stream part; the operator command itself is the wire contract
``forewarn.contracts.AlertCommand``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from forewarn.contracts import AlertCommand, AssetCommand, Id, PlantVerdict
from forewarn.errors import ContractError


class _Control(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Command(_Control):
    """An operator's AlertCommand, routed to the asset's partition."""

    kind: Literal["command"] = "command"
    command: AlertCommand


class AssetControl(_Control):
    """An operator's AssetCommand (out of service / in service), routed to the asset's partition."""

    kind: Literal["asset_command"] = "asset_command"
    command: AssetCommand


class Heartbeat(_Control):
    """A gateway was heard from (sent once per batch per gateway, keyed by gateway id)."""

    kind: Literal["heartbeat"] = "heartbeat"
    gateway_id: Id
    site: Id
    ts: float


class Tick(_Control):
    """Time passed on one partition: liveness, re-notify and escalation are checked for its entities."""

    kind: Literal["tick"] = "tick"
    partition: int = Field(ge=0)
    ts: float


class PlantReview(_Control):
    """The plant tier's verdict on an escalated window (`forewarn stream plant`), routed to the asset's partition."""

    kind: Literal["plant_verdict"] = "plant_verdict"
    verdict: PlantVerdict


Control = Command | AssetControl | Heartbeat | Tick | PlantReview
ControlMessage = Annotated[Control, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Control] = TypeAdapter(ControlMessage)


def decode_control(raw: bytes) -> Control:
    try:
        return _ADAPTER.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ContractError(f"invalid control message: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def encode_control(message: Control) -> bytes:
    return message.model_dump_json().encode()
