"""Derived features: what a vibration analyst or reliability engineer computes from the raw channels.

Each step of a window gets, besides its channel statistics, a few physically meaningful
combinations that a per-channel z-score cannot express: the spread of the three phase
currents, temperature rises over ambient, vibration bands normalised by running speed (1x
grows with speed squared, bearing and high-frequency bands with speed to the 1.5), band
ratios (2x/1x and axial/1x for misalignment, BPFO/BPFI for which race), flow and head per
speed and the duty point against the pump's curve (a leak takes both down; demand moves them
along the curve; also against the pump's own fitted parabola: models.curve), winding rise
per current squared (cooling; also per *lagged* current squared, which a winding's thermal
lag makes the steady one: models.lag; and per *rated* current squared where the
machine's rating plate is known, which compares machines of one type), and erratic 1x (looseness).

A feature whose inputs the asset lacks, or that is undefined in a step (a stopped machine
has no speed to normalise by), is NaN and masked downstream. Channel names are those of the
simulator's catalogue (simulators/channels.py), the wire vocabulary; a plant whose channels
are named otherwise simply gets fewer derived features.

Also here: whether a window shows the machine running. A stopped machine shows no fault
signature, so evaluation scores running windows and reports idle ones apart.

numpy only: the edge runtime imports this module.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Getter = Callable[[str, int], np.ndarray]
"""(channel, statistic index) -> (N, steps) values, NaN where missing."""

MEAN, STD = 0, 1
MIN_SPEED_RPM = 10.0
MIN_CURRENT_A = 0.5
"""Below this mean phase current a motor is not driven: even a small one's magnetising current is amps."""


SPEED_KRPM = "~speed_krpm"
"""Getter name of the running speed in krpm, NaN when stopped: read once per getter, as ten formulas divide by it."""


def _speed(g: Getter) -> np.ndarray:
    return g(SPEED_KRPM, MEAN)


def _krpm(speed_rpm: np.ndarray) -> np.ndarray:
    return np.where(speed_rpm > MIN_SPEED_RPM, speed_rpm / 1000.0, np.nan)  # krpm, NaN when stopped


def _log(x: np.ndarray) -> np.ndarray:
    return np.log(np.where(x > 0, x, np.nan))


def _phases(g: Getter) -> np.ndarray:
    return np.stack([g(f"current_l{i}_a", MEAN) for i in (1, 2, 3)])  # (3, N, steps)


def _rise(channel: str) -> Callable[[Getter], np.ndarray]:
    return lambda g: g(channel, MEAN) - g("ambient_temp_c", MEAN)


def _per_speed(channel: str, power: float) -> Callable[[Getter], np.ndarray]:
    return lambda g: _log(g(channel, MEAN) / _speed(g) ** power)


def _ratio(a: str, b: str) -> Callable[[Getter], np.ndarray]:
    return lambda g: _log(g(a, MEAN) / g(b, MEAN))


def _cv(channel: str) -> Callable[[Getter], np.ndarray]:
    return lambda g: _log(g(channel, STD) / g(channel, MEAN))


def _unbalance(g: Getter) -> np.ndarray:
    p = _phases(g)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((p.max(axis=0) - p.min(axis=0)) / p.mean(axis=0))


def _cooling(g: Getter) -> np.ndarray:
    current = _phases(g).mean(axis=0)
    rise = g("winding_temp_c", MEAN) - g("ambient_temp_c", MEAN)
    return _log(np.maximum(rise, 0.1) / (current * current))


LAGGED = "~lagged_square"
"""Suffix of a channel name whose getter values are its lagged mean square (models.lag, Window.lagged)."""


def _lagged_cooling(g: Getter) -> np.ndarray:
    """Winding rise per lagged current squared: holds still through load changes and restarts, moves when cooling fails."""
    heat = np.mean([g(f"current_l{i}_a{LAGGED}", MEAN) for i in (1, 2, 3)], axis=0)
    rise = g("winding_temp_c", MEAN) - g("ambient_temp_c", MEAN)
    return _log(np.maximum(rise, 0.1) / heat)


RATED_CURRENT = "~rated_current_a"
"""Getter name of the window's rated current (its asset's rating plate, contracts.Nameplate)."""


def _rated_cooling(g: Getter) -> np.ndarray:
    """Winding rise per lagged per-unit current squared: the machine's rated rise at full load.

    Rise per ampere squared scales with the machine's size (the type's spread is about 2.9 log
    units, a failed cooling moves it by 0.2-1.0), so only the machine's own history could tell
    a hot one; per unit of its rating the healthy spread is the design rise's (40-65 C), and a
    machine that runs hot from the day the gateway met it stands out against its type.
    """
    return np.asarray(_lagged_cooling(g) + 2.0 * _log(g(RATED_CURRENT, MEAN)))


def _turning(formula: Callable[[Getter], np.ndarray]) -> Callable[[Getter], np.ndarray]:
    """The formula in the steps the machine turns (or whose speed is unknown); NaN while it stands still.

    A stopped winding cools over minutes while its current is nil and its lagged current decays
    on another clock, so its rise per current squared is a cooldown curve, not its cooling. Those
    steps in the healthy baseline widened the gearbox type's spread of the rated rise from 0.15
    log units (turning) to 3.4 (all steps), and a gearbox running 1.5-2.6 times its rated rise
    from its first minute (plant200 east.CV-301, about 5 turning spreads high) sat at 0.
    """

    def read(g: Getter) -> np.ndarray:
        stopped = g("speed_rpm", MEAN) <= MIN_SPEED_RPM  # NaN (no speed channel) compares False: kept
        return np.where(stopped, np.nan, formula(g))

    return read


def _head(g: Getter) -> np.ndarray:
    return np.asarray((g("discharge_pressure_bar", MEAN) - g("suction_pressure_bar", MEAN)) / _speed(g) ** 2)


PUMP_CURVE_SLOPE = 0.21
"""How a centrifugal pump's head falls as its flow rises at one speed (d log head / d log flow, fitted
over 30-100 % of design flow on the simulator's curve h = 1.25 - 0.3 q^2; real curves fall alike)."""


def _pump_curve(g: Getter) -> np.ndarray:
    """Log head per speed squared plus the curve's slope times log flow per speed.

    Holds still when demand moves the duty point along the pump's curve at one speed (throttling
    raises head as flow falls); drops when a leak bypasses the seal and takes flow and head down
    together. Flow and head apart cannot tell the two, and a demand drop read as a seal leak.
    """
    return np.asarray(_log(_head(g)) + PUMP_CURVE_SLOPE * _per_speed("flow_m3_h", 1.0)(g))


PUMP_SLOPE = "~pump_curve_slope"
"""Getter name of the window's own fitted pump-curve b (models.curve, Window.pump_slope)."""


def _pump_curve_own(g: Getter) -> np.ndarray:
    """Log of head per speed squared plus the pump's own fitted b times flow per speed squared.

    On the pump's parabola head/n^2 = a - b (Q/n)^2 this is log a wherever the pump runs (the
    fixed slope of _pump_curve fits a pump near 65 % of design flow only); a leak takes flow and
    head down together and it falls.
    """
    flow = g("flow_m3_h", MEAN) / _speed(g)
    return _log(_head(g) + g(PUMP_SLOPE, MEAN) * flow * flow)


DERIVED: dict[str, Callable[[Getter], np.ndarray]] = {
    "current_unbalance": _unbalance,
    "bearing_rise_c": _rise("bearing_temp_c"),
    "winding_rise_c": _rise("winding_temp_c"),
    "oil_rise_c": _rise("oil_temp_c"),
    "discharge_rise_c": _rise("discharge_temp_c"),
    "log_1x_per_speed2": _per_speed("band_1x_mm_s", 2.0),
    "log_2x_per_speed2": _per_speed("band_2x_mm_s", 2.0),
    "log_axial_per_speed2": _per_speed("vib_axial_velocity_mm_s", 2.0),
    "log_bpfo_per_speed15": _per_speed("band_bpfo_g", 1.5),
    "log_bpfi_per_speed15": _per_speed("band_bpfi_g", 1.5),
    "log_hf_per_speed15": _per_speed("band_hf_g", 1.5),
    "log_2x_over_1x": _ratio("band_2x_mm_s", "band_1x_mm_s"),
    "log_axial_over_1x": _ratio("vib_axial_velocity_mm_s", "band_1x_mm_s"),
    "log_bpfo_over_bpfi": _ratio("band_bpfo_g", "band_bpfi_g"),
    "log_flow_per_speed": _per_speed("flow_m3_h", 1.0),
    "head_per_speed2": _head,
    "log_winding_rise_per_current2": _cooling,
    "log_1x_cv": _cv("band_1x_mm_s"),
    "log_current_cv": _cv("current_l1_a"),
    "log_flow_cv": _cv("flow_m3_h"),
    "log_winding_rise_per_lagged_current2": _lagged_cooling,
    "log_pump_curve": _pump_curve,
    "log_winding_rise_per_lagged_rated_current2": _rated_cooling,
    "log_pump_curve_own": _pump_curve_own,
}
"""Name -> formula over step statistics. Names are saved in the bundle; never change a formula under a name."""

COOLING = (
    "log_winding_rise_per_current2",
    "log_winding_rise_per_lagged_current2",
    "log_winding_rise_per_lagged_rated_current2",
)
"""The winding-cooling features, each also derived as ``NAME_turning``: in the turning steps only (_turning)."""
DERIVED.update({f"{name}_turning": _turning(DERIVED[name]) for name in COOLING})


LAGGED_CHANNELS = ("current_l1_a", "current_l2_a", "current_l3_a")
"""The channels whose lagged mean square derived features read (WindowSpec.lagged)."""


def getter(
    channels: tuple[str, ...],
    stats: np.ndarray,
    counts: np.ndarray,
    lagged: np.ndarray | None = None,
    lagged_channels: tuple[str, ...] = (),
    rated_current: np.ndarray | None = None,
    pump_slope: np.ndarray | None = None,
) -> Getter:
    """Access (N, steps) values of one statistic of one channel; NaN where missing or not in the spec.

    ``channel + LAGGED`` reads the lagged mean square of a lagged channel (any statistic);
    RATED_CURRENT reads each window's rated current (N,), NaN where its rating plate is unknown; SPEED_KRPM the speed in krpm;
    PUMP_SLOPE each window's fitted pump-curve b (N,), NaN where none is fitted.
    """
    index = {c: i for i, c in enumerate(channels)}
    lag_index = {c + LAGGED: i for i, c in enumerate(lagged_channels)} if lagged is not None else {}
    n, steps = stats.shape[:2]

    def per_window(values: np.ndarray | None) -> np.ndarray:
        v = np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64)
        return np.broadcast_to(v[:, None], (n, steps))

    # Every channel's statistics masked at once (NaN where the step had no sample): one numpy call
    # instead of one per channel read, which at a history fold's two steps is most of the cost.
    masked = np.where((counts > 0)[..., None], stats.astype(np.float64), np.nan)  # (N, steps, C, 4)

    def read(channel: str, stat: int) -> np.ndarray:
        if channel == SPEED_KRPM:
            return _krpm(get("speed_rpm", MEAN))
        if channel == RATED_CURRENT:
            return per_window(rated_current)
        if channel == PUMP_SLOPE:
            return per_window(pump_slope)
        if channel in lag_index:
            assert lagged is not None
            return lagged[:, :, lag_index[channel]].astype(np.float64)
        i = index.get(channel)
        if i is None:
            return np.full((n, steps), np.nan)
        return masked[:, :, i, stat]

    seen: dict[tuple[str, int], np.ndarray] = {}

    def get(channel: str, stat: int) -> np.ndarray:
        # The formulas share inputs (speed alone feeds ten of them): each is read once, read-only.
        # It is a third of the derived features' cost on the gateway, per window.
        if (channel, stat) not in seen:
            value = read(channel, stat)
            value.setflags(write=False)
            seen[channel, stat] = value
        return seen[channel, stat]

    return get


def derive(
    names: tuple[str, ...],
    channels: tuple[str, ...],
    stats: np.ndarray,
    counts: np.ndarray,
    lagged: np.ndarray | None = None,
    lagged_channels: tuple[str, ...] = (),
    rated_current: np.ndarray | None = None,
    pump_slope: np.ndarray | None = None,
) -> np.ndarray:
    """stats (N, steps, C, 4), counts (N, steps, C), lagged (N, steps, L), rated_current (N,), pump_slope (N,)
    -> (N, steps, D) float64, NaN where undefined."""
    g = getter(channels, stats, counts, lagged, lagged_channels, rated_current, pump_slope)
    n, steps = stats.shape[:2]
    out = np.full((n, steps, len(names)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for k, name in enumerate(names):
            assert name in DERIVED, f"unknown derived feature {name!r} (a bundle from a newer Forewarn?)"
            out[:, :, k] = DERIVED[name](g)
    return np.where(np.isfinite(out), out, np.nan)


def running(
    channels: tuple[str, ...], stats: np.ndarray, counts: np.ndarray, speed: str | None, min_fraction: float = 0.5
) -> np.ndarray:
    """(N,) bool: the machine turned in at least min_fraction of the steps with a reading of its ``speed`` channel.

    A step turns when its speed is above MIN_SPEED_RPM and, where the phase currents were read,
    the motor draws at least MIN_CURRENT_A: a speed transmitter frozen at its last reading
    (plant200 south.FAN-201 read 1,481 rpm for 3.8 h after it tripped, drawing nothing) must not
    make a stopped machine's windows count as running ones, whose faults it cannot show.
    Without a speed channel (WindowSpec.running_channel, from the channel's declared role) every
    window counts as running.
    """
    if speed is None or speed not in channels:
        return np.ones(stats.shape[0], dtype=bool)
    g = getter(channels, stats, counts)
    speed_mean = g(speed, MEAN)  # (N, steps)
    phases = _phases(g)
    read = np.isfinite(phases)
    with np.errstate(invalid="ignore", divide="ignore"):
        current = np.where(read, phases, 0.0).sum(axis=0) / read.sum(axis=0)  # NaN where no phase was read
    seen = np.isfinite(speed_mean)
    turning = (speed_mean > MIN_SPEED_RPM) & seen & ~(current < MIN_CURRENT_A)  # NaN current (not read): speed decides
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = turning.sum(axis=1) / seen.sum(axis=1)
    return np.asarray(np.nan_to_num(fraction, nan=1.0) >= min_fraction)
