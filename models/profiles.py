"""Training profiles: every knob of the compression pipeline in one frozen dataclass.

``quick`` reproduces the whole path (teacher, distillation, pruning, INT8, bundle, report) in
a few minutes on 2 CPU cores: a 2-layer slice of MiniLM as teacher, few steps, tiny student.
``full`` trains the shipped bundle (about 1-2 hours on 2 cores). The chosen profile is saved
in the bundle's config.json, so a bundle says how it was made.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from models.errors import TrainingError


@dataclass(frozen=True)
class Profile:
    name: str
    # windows and token budget
    length_s: float = 600.0
    hop_s: float = 60.0
    steps: int = 20
    window_follows_rate: bool = True
    """When a step of length_s/steps would hold less than one sample of the fastest declared channel
    (hourly or per-cycle data), stretch the window to one sample per step, hop one step (prepare.window_spec)."""
    train_every: int = 2
    """Train on every n-th window of each asset (consecutive windows overlap by length - hop)."""
    max_log_lines: int = 16
    log_tokens: int = 40
    line_tokens: int = 12
    derived: bool = False
    """Append the derived physics features (models.derived) to every sensor token. They read channels
    by the simulator catalogue's names (speed_rpm, current_l1_a, band_1x_mm_s, ...), so they are off by
    default: a plant whose channels are named otherwise would get empty columns. Opt in
    (``--set derived=true``) for data that uses those names."""
    reference_s: float = 6 * 3600.0
    """Time constant of each asset's running reference (WindowSpec.reference_s); 0: no asset-relative features."""
    reference_average_start: bool = False
    """Average the reference's first reference_s plainly before weighting it exponentially
    (WindowSpec.reference_average_start): the first step after a standstill no longer fixes it."""
    derived_reference: bool = True
    """With ``derived``: keep the derived features in the running reference too (WindowSpec.reference_derived)."""
    lag_s: float = 0.0
    """With ``derived``: time constant of the lagged phase-current heating (WindowSpec.lag_s, models.lag)
    that the winding rise is divided by; 0: no lagged feature."""
    lag_standstill: float = 2.5
    """Factor on lag_s while the machine stands still (WindowSpec.lag_standstill)."""
    lag_fit: tuple[float, ...] = ()
    """Further candidate winding time constants (WindowSpec.lag_fit, models.lag.FittedLag)."""
    pump_fit: bool = False
    """With ``derived``: fit each pump's own curve (WindowSpec.pump_fit, models.curve)."""
    cooling_turning: bool = False
    """With ``derived``: read the winding-cooling features only in the steps the machine turns."""
    context_channels: tuple[str, ...] = ()
    """Channels read only through the derived features that subtract them (FeatureSpec.context), e.g.
    ("ambient_temp_c",)."""
    flatline_samples: int = 10
    """A step whose channel repeats one exact value over at least this many samples counts as
    missing that channel (WindowSpec.flatline_samples): a stuck transmitter."""
    spectral_bands: int = 8
    """Octave bands of the power spectrum read per step from each waveform channel, one whose declared
    rate gives at least spectral_min_samples samples per step (WindowSpec.spectral_bands); 0: none."""
    spectral_min_samples: int = 64
    absorbed_reference: float = 0.2
    """Share of training fault windows whose asset reference is replaced by one that already holds
    the fault (models.prepare.absorb_references): an asset faulty before its history began. Only
    faults visible against the type teach it (visible_z)."""
    dropped_reference: float = 0.0
    """Share of training windows whose asset reference is taken away (models.prepare.drop_references):
    the first running hour of an asset, at the data's own mix of classes."""
    visible_z: float = 3.0
    """Only fault windows that some derived feature shows at least this many type spreads from health
    get an absorbed or a dropped reference (models.prepare.visible_against_type): a fault only the
    asset's own history reveals would otherwise be taught as a healthy-looking fault."""
    max_windows: int = 100_000
    """Cap on training windows (a random subsample beyond it)."""
    val_fraction: float = 0.15
    """Share of assets held out of training for validation (whole assets, never single windows)."""
    episodes_per_fault: int = 0
    """Few-shot: keep at most this many labelled episodes of each fault, chosen by seed; the other
    episodes' windows are left out (neither fault nor normal). 0: every episode (prepare.limit_episodes)."""
    baselines: bool = True
    """Fit the simple baselines (models.baselines) on the training windows and report them beside the
    model; false skips them (minutes of gradient boosting on a loaded machine, for repeated experiments)."""
    # fine-tuning an existing bundle's student (`model train --from BUNDLE`, models.finetune)
    finetune_steps: int = 600
    finetune_lr: float = 3e-4
    # teacher: MiniLM-L6 (its first teacher_layers layers) + sensor projection + heads
    teacher_layers: int = 6
    teacher_steps: int = 1500
    teacher_batch: int = 32
    teacher_lr: float = 1e-4
    teacher_windows: int = 40_000
    """Training windows the teacher is fine-tuned on and distils over (CPU cost)."""
    # student
    d_model: int = 192
    n_layer: int = 2
    head_dim: int = 32
    ffn_mult: int = 4
    student_steps: int = 3000
    student_batch: int = 64
    student_lr: float = 1e-3
    kd_alpha: float = 0.5
    temperature: float = 2.0
    hidden_beta: float = 1.0
    # self-supervised pretraining of the student (masked log pieces, masked sensor steps); 0 skips
    ssl_steps: int = 1500
    # structured pruning + recovery
    head_keep: float = 0.5
    ffn_keep: float = 0.5
    recover_steps: int = 1500
    # low-rank FFN + recovery; 0 skips
    ffn_rank: int = 32
    lowrank_steps: int = 1000
    # local attention ablation over sensor tokens; 0 skips
    local_window: int = 4
    # measurement
    latency_runs: int = 300
    seed: int = 0

    def with_(self, **changes: Any) -> Profile:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "full": Profile(name="full"),
    "quick": Profile(
        name="quick",
        length_s=600.0,
        steps=10,
        train_every=1,
        log_tokens=24,
        line_tokens=10,
        max_windows=3_000,
        teacher_layers=2,
        teacher_steps=40,
        teacher_batch=16,
        teacher_lr=3e-4,
        teacher_windows=600,
        d_model=64,
        n_layer=2,
        student_steps=200,
        student_batch=32,
        student_lr=2e-3,
        ssl_steps=0,
        recover_steps=60,
        finetune_steps=150,
        finetune_lr=5e-4,
        ffn_rank=0,
        lowrank_steps=0,
        local_window=0,
        latency_runs=100,
    ),
}


def profile(name: str, **overrides: Any) -> Profile:
    if name not in PROFILES:
        raise TrainingError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name].with_(**{k: v for k, v in overrides.items() if v is not None})


def parse_override(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` (VALUE in JSON: ``lag_fit=[600,1200]``, ``reference_average_start=true``) -> (field, value).

    For an experiment that a command line must reproduce: the profile in the bundle's
    config.json records the result, so the report says exactly what was changed.
    """
    name, sep, raw = text.partition("=")
    known = {f.name: f for f in fields(Profile)}
    settable = set(known) - {"name", "seed"}  # the profile's own name; --seed has its option
    if not sep or name not in settable:
        raise TrainingError(f"--set {text!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(settable))}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TrainingError(f"--set {text!r}: VALUE must be JSON (true, 0.5, [600, 1200]): {exc}") from exc
    default = getattr(PROFILES["full"], name)
    if isinstance(default, tuple) and isinstance(value, list):
        value = tuple(value)
    kind = float if isinstance(default, float) else type(default)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and not isinstance(default, bool)):
        raise TrainingError(f"--set {text!r}: {name} takes a {kind.__name__} like {json.dumps(default)}")
    return name, value
