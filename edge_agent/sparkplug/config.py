"""The ``[sparkplug]`` section of the gateway's config: Sparkplug B ingest and publishing (off by default)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

_SP_ID = r"^[^/+#]{1,64}$"
"""Sparkplug group, edge node and device ids: any UTF-8 but the MQTT separators and wildcards."""

ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
GroupFilter = Annotated[str, StringConstraints(pattern=r"^(\+|[^/+#]{1,64})$")]


class SparkplugSection(BaseModel):
    """The ``[sparkplug]`` table (see docs/edge.md, "Sparkplug B")."""

    enabled: bool = Field(False, description="run a Sparkplug B connection beside the gateway's own MQTT topics")
    namespace: Literal["spBv1.0"] = Field("spBv1.0", description="the Sparkplug topic namespace (B, version 1.0)")
    group_id: str = Field("forewarn", pattern=_SP_ID, description="the group this gateway's edge node publishes under")
    edge_node_id: str | None = Field(
        None, pattern=_SP_ID, description="this gateway's edge node id; None: the gateway id (edge.gateway_id)"
    )
    publish: bool = Field(True, description="publish predictions (a device per asset) and health as an edge node")
    ingest_groups: list[GroupFilter] = Field(
        default_factory=list,
        description="groups whose device data (DDATA) is scored as telemetry, '+' for every group; empty: no ingest",
    )
    channels: dict[str, ChannelName] = Field(
        default_factory=dict,
        description="metric name -> channel name; an unmapped metric is lowercased, other characters made '_'",
    )
    rebirth_interval_s: float = Field(5.0, gt=0, description="least time between two rebirth requests (NCMD) to one edge node")

    @model_validator(mode="after")
    def _does_something(self) -> SparkplugSection:
        if self.enabled and not self.publish and not self.ingest_groups:
            raise ValueError("sparkplug.enabled with publish = false and no ingest_groups does nothing: set one of them")
        return self
