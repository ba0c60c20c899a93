"""A vibration analyst opens a raw burst: a bearing defect shows as impacts repeating at its defect frequency."""

from __future__ import annotations

import numpy as np

from simulators.assets import draw_params
from simulators.physics import Components
from simulators.waveform import burst, synthesise

RATE, N = 12_800.0, 16_384


def _components(a_bpfo: float = 0.01, a_bpfi: float = 0.01, impulsive: float = 0.0, speed: float = 1480.0) -> Components:
    one = np.ones(1)
    return Components(
        speed=one * speed,
        v1=one * 1.0,
        v2=one * 0.3,
        v_other=one * 0.5,
        a_bpfo=one * a_bpfo,
        a_bpfi=one * a_bpfi,
        a_hf=one * 0.02,
        a_gmf=one * 0.0,
        impulsive=one * impulsive,
    )


def _envelope_energy(x: np.ndarray, f1: float, order: float) -> float:
    """Envelope-spectrum energy within 3% of a shaft order, as an analyst reads it.

    Envelope analysis: high-pass above the running-speed orders (1 kHz), rectify, and take
    the spectrum of what is left; rolling-element slip smears a defect line over a few bins.
    """
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / RATE)
    spectrum[freqs < 1000.0] = 0.0
    envelope = np.abs(np.fft.irfft(spectrum, len(x)))
    power = np.abs(np.fft.rfft(envelope - envelope.mean())) ** 2
    near = np.abs(freqs / f1 - order) < 0.03 * order
    return float(power[near].sum())


def test_outer_and_inner_race_defects_ring_at_their_own_frequencies() -> None:
    params = draw_params(["centrifugal_pump"], [False], [0.7], [1480.0], np.random.default_rng(0))
    f1 = 1480.0 / 60.0
    outer = synthesise(_components(a_bpfo=0.8, impulsive=3.0), 0, params, RATE, N, np.random.default_rng(1))
    inner = synthesise(_components(a_bpfi=0.8, impulsive=3.0), 0, params, RATE, N, np.random.default_rng(1))
    bpfo, bpfi = float(params.bpfo_x[0]), float(params.bpfi_x[0])
    assert _envelope_energy(outer, f1, bpfo) > 5 * _envelope_energy(outer, f1, bpfi)
    assert _envelope_energy(inner, f1, bpfi) > 5 * _envelope_energy(inner, f1, bpfo)


def test_a_defect_raises_kurtosis_of_the_raw_signal() -> None:
    params = draw_params(["induction_motor"], [False], [0.7], [1480.0], np.random.default_rng(0))

    def kurtosis(x: np.ndarray) -> float:
        z = (x - x.mean()) / x.std()
        return float(np.mean(z**4))

    healthy = synthesise(_components(), 0, params, RATE, N, np.random.default_rng(2))
    faulty = synthesise(_components(a_bpfo=0.8, impulsive=4.0), 0, params, RATE, N, np.random.default_rng(2))
    assert kurtosis(faulty) > kurtosis(healthy) + 1.0


def test_a_burst_is_a_valid_contract_waveform() -> None:
    from forewarn.contracts import Waveform

    params = draw_params(["fan"], [False], [0.7], [None], np.random.default_rng(0))
    wave = burst(_components(), 0, params, RATE, 4096, 1_750_000_000.0, np.random.default_rng(3))
    assert Waveform.model_validate(wave.model_dump()) == wave
    assert len(wave.values) == 4096 and wave.channel == "accel_waveform_g"
    stopped = synthesise(_components(speed=0.0), 0, params, RATE, 1024, np.random.default_rng(4))
    assert np.std(stopped) < 0.01  # a machine at rest: sensor noise only
