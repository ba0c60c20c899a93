"""Settings of the simulator process: the shared sections plus ``[simulator]``.

Built once by the ``simulate`` / ``replay`` commands with ``load_settings`` and passed down;
nothing below them reads the environment. ``FOREWARN_SIMULATOR_QOS=1`` sets ``simulator.qos``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from forewarn.settings import CommonSettings


class SimulatorSection(BaseModel):
    """How the simulators run and publish."""

    scenario: str = Field("demo", description="scenario file, or a shipped scenario name (demo, test, plant200)")
    seed: int = Field(0, description="random seed: the same scenario, seed and start give the same data")
    speed: float = Field(1.0, ge=0, description="source seconds per wall second when publishing live; 0: as fast as possible")
    batch_s: float | None = Field(
        None, gt=0, le=600, description="seconds of samples per telemetry message (None: the scenario's)"
    )
    qos: int = Field(0, ge=0, le=2, description="MQTT QoS of published telemetry and logs (0, 1 or 2)")
    client_id: str = Field("forewarn-simulator", description="MQTT client id (a random suffix is added)")
    max_pending: int = Field(
        5_000,
        ge=10,
        le=1_000_000,
        description="messages handed to the MQTT client and not yet sent; "
        "publishing waits above this (keep under the broker's max_queued_messages)",
    )
    connect_timeout_s: float = Field(10.0, gt=0, description="how long to wait for the broker at start before giving up")
    out_duration_s: float = Field(86_400.0, gt=0, description="default --duration when writing a dataset directory")
    stats_every_s: float = Field(10.0, gt=0, description="how often live publishing logs its counters")


class SimulatorSettings(CommonSettings):
    """Settings of `forewarn simulate` and `forewarn replay`."""

    simulator: SimulatorSection = SimulatorSection()
