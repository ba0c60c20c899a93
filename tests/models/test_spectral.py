"""Band spectra of waveform channels: octave bands of each step's power spectrum, general to any rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forewarn.contracts import Telemetry
from models.features import FeatureSpec, Featuriser, Normaliser
from models.prepare import window_spec
from models.profiles import PROFILES
from models.tokenizer import LogTokenizer, base_tokenizer_path, trim_vocabulary
from models.windowing import AssetWindower, Window, WindowSpec, band_edges, band_energies

T0 = 1_767_225_600.0
FS = 12_000.0
SPEC = WindowSpec(
    channels=("accel", "temp"),
    length_s=1.0,
    hop_s=0.5,
    steps=10,
    grace_s=0.1,
    spectral_bands=8,
    spectral_channels=("accel",),
)


def _windows(spec: WindowSpec, signal: np.ndarray, rate: float, per_message: int = 5000) -> list[Window]:
    """Every window of one asset whose accel channel carries ``signal`` at ``rate`` and temp a constant."""
    windower = AssetWindower(spec, "s", "m")
    ts = T0 + np.arange(len(signal)) / rate
    out: list[Window] = []
    for i in range(0, len(signal), per_message):
        n = len(ts[i : i + per_message])
        channels = {"accel": signal[i : i + per_message].tolist(), "temp": [40.0] * n}
        windower.add_telemetry(
            Telemetry(site="s", asset_id="m", seq=i, timestamps=ts[i : i + per_message].tolist(), channels=channels)
        )
        out += windower.ready()
    return out + list(windower.flush())


def _band_holding(frequency_hz: float, rate: float, bands: int) -> int:
    return int(np.searchsorted(band_edges(bands), frequency_hz / rate, side="right") - 1)


@pytest.mark.parametrize("frequency_hz", [60.0, 440.0, 1000.0, 4000.0])
def test_a_sine_lands_in_the_band_holding_its_frequency(frequency_hz: float) -> None:
    t = np.arange(1200) / FS
    energy, total = band_energies(np.sin(2 * np.pi * frequency_hz * t), 8)
    band = _band_holding(frequency_hz, FS, 8)
    assert energy[band] / total > 0.95
    assert np.delete(energy, band).sum() / total < 0.05


def test_the_bands_are_relative_to_the_rate_so_any_rate_reads_the_same() -> None:
    """The same signal in cycles per sample (a tone at 1/12 of the rate) lands in the same band at 12 kHz and 1 kHz."""
    for rate in (FS, 1000.0):
        t = np.arange(1024) / rate
        energy, _ = band_energies(np.sin(2 * np.pi * rate / 12 * t), 8)
        assert int(np.argmax(energy)) == _band_holding(1 / 12, 1.0, 8)


def test_white_noise_spreads_evenly_over_frequency() -> None:
    """Equal energy per hertz: each octave holds energy in proportion to its width (the wide bands, well resolved)."""
    rng = np.random.default_rng(0)
    energy = np.zeros(8)
    for _ in range(50):
        e, _ = band_energies(rng.normal(size=2048), 8)
        energy += e
    width = np.diff(band_edges(8))
    density = (energy / width)[3:]  # bands of 8 or more bins
    assert density.max() / density.min() < 1.3


def test_windows_carry_each_steps_spectrum_and_the_sine_band_dominates() -> None:
    t = np.arange(int(3 * FS)) / FS
    windows = _windows(SPEC, np.sin(2 * np.pi * 1000.0 * t), FS)
    assert windows
    spectra = windows[0].spectra
    assert spectra is not None and spectra.shape == (10, 1, 8)
    assert np.isfinite(spectra).all()
    assert (spectra.argmax(axis=-1) == _band_holding(1000.0, FS, 8)).all()
    assert np.allclose(spectra.max(axis=-1), 0.0, atol=0.01)  # log10 of a share near 1


def test_a_channel_with_too_few_samples_per_step_gets_no_spectrum() -> None:
    """At 200 Hz a 0.1 s step holds 20 samples: fewer than spectral_min_samples, so its spectra are missing."""
    t = np.arange(600) / 200.0
    windows = _windows(SPEC, np.sin(2 * np.pi * 10.0 * t), 200.0, per_message=100)
    assert windows and all(w.spectra is not None and np.isnan(w.spectra).all() for w in windows)
    assert all(w.counts[:, 0].max() > 0 for w in windows)  # the samples are there, the spectrum is not


def test_training_gives_spectra_only_to_channels_fast_enough() -> None:
    quick = PROFILES["quick"].with_(length_s=1.0, hop_s=0.5, steps=10)
    spec = window_spec(quick, ("accel", "temp", "speed"), FS, None, {"accel": FS, "temp": 1.0, "speed": 500.0})
    assert spec.spectral_channels == ("accel",) and spec.spectral_bands == 8
    slow = window_spec(quick, ("temp",), 1.0, None, {"temp": 1.0})
    off = window_spec(quick.with_(spectral_bands=0), ("accel", "temp"), FS, None, {"accel": FS, "temp": 1.0})
    assert slow.spectral_channels == () and off.spectral_channels == ()
    assert slow.spectral_features == 0 and off.spectral_features == 0


def test_a_spec_without_spectra_reads_and_writes_as_before() -> None:
    """Old bundles' window specs lack the spectral fields: they load as 'off', and an 'off' spec writes none."""
    old = WindowSpec(channels=("a", "b")).to_dict()
    assert not any(k.startswith("spectral") for k in old)
    loaded = WindowSpec.from_dict(old)
    assert loaded.spectral_bands == 0 and loaded.spectral_channels == () and loaded.spectral_features == 0
    assert WindowSpec.from_dict(SPEC.to_dict()) == SPEC


def _featuriser(tmp_path: Path, spectra: np.ndarray) -> Featuriser:
    n = len(spectra)
    stats = np.random.default_rng(0).normal(10.0, 2.0, size=(n, 10, 2, 4)).astype(np.float32)
    counts = np.full((n, 10, 2), 100, dtype=np.int32)
    norm = Normaliser.fit(SPEC.channels, stats, counts, ["motor"] * n, np.ones(n, dtype=bool), spectra=spectra)
    path = tmp_path / "tokenizer.json"
    path.write_text(trim_vocabulary(base_tokenizer_path().read_text(), ["info ok"])[0])
    return Featuriser(
        SPEC, FeatureSpec(log_tokens=8, line_tokens=4), Normaliser.from_dict(norm.to_dict()), LogTokenizer.from_file(path)
    )


def test_sensor_tokens_end_with_the_z_scored_bands_and_a_presence_flag(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    spectra = rng.normal(-2.0, 0.5, size=(40, 10, 1, 8)).astype(np.float32)
    featuriser = _featuriser(tmp_path, spectra)
    features = FeatureSpec(log_tokens=8, line_tokens=4)
    width = features.sensor_features(2, SPEC.spectral_features)
    window = Window("s", "m", "motor", T0, T0 + 1.0, np.full((10, 2, 4), 10.0, np.float32), np.full((10, 2), 100, np.int32), ())
    loud = np.full((10, 1, 8), -2.0, np.float32)
    loud[:, 0, 3] = 0.0  # band 3 far above the training windows'
    loud[0] = np.nan  # the first step has no spectrum
    sensors = featuriser([window, Window(**{**window.__dict__, "spectra": loud})]).sensors
    assert sensors.shape == (2, 10, width) and width == 2 * 5 + 9
    bands, present = sensors[..., -9:-1], sensors[..., -1]
    assert (present[0] == 0).all() and (bands[0] == 0).all()  # a window without spectra: masked, never imputed
    assert present[1, 0] == 0 and (present[1, 1:] == 1).all()
    assert np.allclose(bands[1, 1:, 3], 4.0, atol=0.2)  # 2 log10 units above a training spread of 0.5
    assert np.abs(bands[1, 1:, [0, 1, 2, 4, 5, 6, 7]]).max() < 1.0
