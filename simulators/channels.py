"""The channel catalogue: every sensor channel a simulated asset can send, defined once.

The model is trained on these names, so they are part of the wire vocabulary: never rename
one after it has shipped. Names are snake_case with the unit as suffix. Each channel also
carries how a real transmitter would report it (decimals) and how it misbehaves (noise,
drift), so the sensor layer reads its artefact sizes from here and nowhere else.

The slow channels are features a condition-monitoring unit or PLC computes once per sample
period (1 Hz by default): overall vibration statistics, band amplitudes at running-speed
orders and at bearing defect frequencies, temperatures, phase currents, process values.
``WAVEFORM_CHANNEL`` is the raw accelerometer burst some assets send now and then.
"""

from __future__ import annotations

from dataclasses import dataclass

from forewarn.contracts import ChannelRole


@dataclass(frozen=True)
class Channel:
    """One sensor channel and the artefacts of the transmitter that reports it."""

    name: str
    unit: str
    description: str
    decimals: int
    """Resolution of the transmitter: values are rounded to this many decimals."""
    noise_abs: float
    """Standard deviation of additive sensor noise, in the channel's unit (at noise level 1)."""
    noise_rel: float
    """Standard deviation of multiplicative noise (estimation noise of vibration features)."""
    drift_per_day: float
    """Standard deviation of calibration drift accumulated per day, in the channel's unit."""

    @property
    def role(self) -> ChannelRole | None:
        """What the channel measures, as meta.json declares it (ChannelInfo.role), from its unit."""
        return ROLE_BY_UNIT.get(self.unit)


ROLE_BY_UNIT: dict[str, ChannelRole] = {
    "rpm": "speed",
    "degC": "temperature",
    "A": "current",
    "mm/s": "vibration",
    "g": "vibration",
    "bar": "pressure",
    "mbar": "pressure",
    "m3/h": "flow",
}


CHANNELS: tuple[Channel, ...] = (
    Channel("speed_rpm", "rpm", "shaft speed (tachometer or drive feedback)", 1, 0.8, 0.0005, 0.0),
    Channel("vib_rms_velocity_mm_s", "mm/s", "overall RMS vibration velocity 10-1000 Hz, radial (ISO 10816)", 3, 0.02, 0.04, 0.0),
    Channel("vib_rms_accel_g", "g", "overall RMS vibration acceleration 10 Hz-10 kHz, radial", 4, 0.002, 0.05, 0.0),
    Channel("vib_peak_accel_g", "g", "peak vibration acceleration in the sample period", 3, 0.004, 0.08, 0.0),
    Channel("vib_kurtosis", "", "kurtosis of the acceleration signal (3 for Gaussian vibration)", 3, 0.12, 0.03, 0.0),
    Channel("vib_crest_factor", "", "crest factor (peak / RMS) of the acceleration signal", 3, 0.1, 0.03, 0.0),
    Channel("vib_axial_velocity_mm_s", "mm/s", "overall RMS vibration velocity, axial direction", 3, 0.02, 0.05, 0.0),
    Channel("band_1x_mm_s", "mm/s", "velocity amplitude at 1x running speed", 3, 0.01, 0.05, 0.0),
    Channel("band_2x_mm_s", "mm/s", "velocity amplitude at 2x running speed", 3, 0.01, 0.06, 0.0),
    Channel("band_bpfo_g", "g", "envelope acceleration at the bearing outer race defect frequency (BPFO)", 4, 0.002, 0.08, 0.0),
    Channel("band_bpfi_g", "g", "envelope acceleration at the bearing inner race defect frequency (BPFI)", 4, 0.002, 0.08, 0.0),
    Channel("band_hf_g", "g", "RMS acceleration in the 2-10 kHz band (friction, cavitation, impacts)", 4, 0.002, 0.06, 0.0),
    Channel("band_gmf_g", "g", "acceleration amplitude at the gear mesh frequency", 4, 0.002, 0.06, 0.0),
    Channel("bearing_temp_c", "degC", "drive-end bearing temperature (RTD)", 1, 0.08, 0.0, 0.15),
    Channel("winding_temp_c", "degC", "stator winding temperature (PT100, hottest phase)", 1, 0.1, 0.0, 0.15),
    Channel("oil_temp_c", "degC", "lubricating oil sump temperature", 1, 0.08, 0.0, 0.15),
    Channel("current_l1_a", "A", "motor phase current L1 (RMS)", 2, 0.05, 0.004, 0.0),
    Channel("current_l2_a", "A", "motor phase current L2 (RMS)", 2, 0.05, 0.004, 0.0),
    Channel("current_l3_a", "A", "motor phase current L3 (RMS)", 2, 0.05, 0.004, 0.0),
    Channel("suction_pressure_bar", "bar", "suction (inlet) pressure, gauge", 3, 0.004, 0.003, 0.002),
    Channel("discharge_pressure_bar", "bar", "discharge (outlet) pressure, gauge", 3, 0.008, 0.003, 0.004),
    Channel("static_pressure_mbar", "mbar", "fan static pressure rise", 2, 0.05, 0.005, 0.02),
    Channel("flow_m3_h", "m3/h", "volumetric flow (liquid, air or free air delivery)", 2, 0.1, 0.008, 0.0),
    Channel("discharge_temp_c", "degC", "compressor discharge air/oil temperature", 1, 0.1, 0.0, 0.15),
    Channel("ambient_temp_c", "degC", "ambient temperature near the asset", 1, 0.05, 0.0, 0.05),
)

BY_NAME: dict[str, Channel] = {c.name: c for c in CHANNELS}
INDEX: dict[str, int] = {c.name: i for i, c in enumerate(CHANNELS)}

VIBRATION_CHANNELS: tuple[str, ...] = tuple(c.name for c in CHANNELS if c.name.startswith(("vib_", "band_")))
"""Channels whose value comes from a vibration sensor (they fall to the noise floor when the asset stops)."""

WAVEFORM_CHANNEL = Channel("accel_waveform_g", "g", "raw radial accelerometer burst (Telemetry.waveform)", 4, 0.004, 0.0, 0.0)
"""The raw burst some assets attach to a telemetry batch now and then; not a slow channel."""

DEFAULT_WAVEFORM_RATE_HZ = 12_800.0
DEFAULT_WAVEFORM_SAMPLES = 4_096


def channel_index(names: tuple[str, ...]) -> list[int]:
    """Positions of ``names`` in the catalogue (raises KeyError naming an unknown channel)."""
    try:
        return [INDEX[n] for n in names]
    except KeyError as exc:
        raise KeyError(f"unknown channel {exc.args[0]!r}; the catalogue is simulators.channels.CHANNELS") from exc
