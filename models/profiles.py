"""Training profiles: every knob of the compression pipeline in one frozen dataclass.

``quick`` reproduces the whole path (teacher, distillation, pruning, INT8, bundle, report) in
a few minutes on 2 CPU cores: a 2-layer slice of MiniLM as teacher, few steps, tiny student.
``full`` trains the shipped bundle (about 1-2 hours on 2 cores). The chosen profile is saved
in the bundle's config.json, so a bundle says how it was made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from models.errors import TrainingError


@dataclass(frozen=True)
class Profile:
    name: str
    # windows and token budget
    length_s: float = 600.0
    hop_s: float = 60.0
    steps: int = 20
    train_every: int = 2
    """Train on every n-th window of each asset (consecutive windows overlap by length - hop)."""
    max_log_lines: int = 16
    log_tokens: int = 40
    line_tokens: int = 12
    derived: bool = True
    """Append the derived physics features (models.derived) to every sensor token."""
    reference_s: float = 6 * 3600.0
    """Time constant of each asset's running reference (WindowSpec.reference_s); 0: no asset-relative features."""
    reference_average_start: bool = True
    """Average the reference's first reference_s plainly before weighting it exponentially
    (WindowSpec.reference_average_start): the first step after a standstill no longer fixes it."""
    derived_reference: bool = True
    """Keep the derived features in the running reference too (WindowSpec.reference_derived), so their
    drift is measured in the asset's own spread rather than the spread between machines."""
    lag_s: float = 900.0
    """Time constant of the lagged phase-current heating (WindowSpec.lag_s, models.lag) that the winding
    rise is divided by (a winding's thermal lag); 0: no lagged feature."""
    lag_standstill: float = 2.5
    """Factor on lag_s while the machine stands still (WindowSpec.lag_standstill): without its fan a
    motor cools slower, and a filter that forgets the heat too fast calls every restart overheating."""
    lag_fit: tuple[float, ...] = (600.0, 1200.0, 1500.0, 1800.0)
    """Further candidate winding time constants (WindowSpec.lag_fit, models.lag.FittedLag): each asset's
    heating is read through the one its own winding fits, so a slow winding's restarts stop reading
    as overheating (the false overheating of slm-25a76f8d53f3 sat on windings of 1,104-1,486 s)."""
    flatline_samples: int = 10
    """A step whose channel repeats one exact value over at least this many samples counts as
    missing that channel (WindowSpec.flatline_samples): a stuck transmitter."""
    absorbed_reference: float = 0.2
    """Share of training fault windows whose asset reference is replaced by one that already holds
    the fault (models.prepare.absorb_references): an asset faulty before its history began. Only
    faults visible against the type teach it (visible_z). With the pump-curve and rated-current
    features it is in the shipped bundle (held-out macro-F1 0.904 vs 0.875; docs/models.md)."""
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
