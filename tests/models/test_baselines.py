"""A reliability engineer compares the SLM with simple baselines fitted on the same windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.baselines import LEVELS, fit_baselines, window_vectors
from models.data import load_tables
from models.windowing import WindowSpec
from tests.models.synthetic import CHANNELS, write_dataset

SPEC = WindowSpec(channels=CHANNELS, length_s=600.0, hop_s=60.0, steps=10, grace_s=10.0)


def test_window_vectors_summarise_each_channel_and_count_log_words(tmp_path: Path) -> None:
    table = load_tables([write_dataset(tmp_path / "d", seconds=1800)], SPEC, None)
    x = window_vectors(table)
    assert x.shape[0] == len(table) and x.dtype == np.float32
    temp = CHANNELS.index("temp_c")
    np.testing.assert_allclose(x[:, temp], np.nanmean(table.stats[:, :, temp, 0], axis=1), rtol=1e-5)
    sensor_columns = 6 * len(CHANNELS)
    with_logs = [i for i, rows in enumerate(table.logs) if rows]
    assert with_logs, "the synthetic plant writes log lines"
    levels = x[:, sensor_columns : sensor_columns + len(LEVELS)]
    for i in with_logs[:5]:
        assert np.expm1(levels[i]).sum() == len(table.logs[i])


def test_baselines_separate_a_fault_the_sensors_show(tmp_path: Path) -> None:
    train = load_tables([write_dataset(tmp_path / "a", seconds=5400, seed=0)], SPEC, None)
    held = load_tables([write_dataset(tmp_path / "b", seconds=5400, seed=1)], SPEC, None)
    labels = ("normal", *sorted(set(train.labels) - {"normal"}))
    y = np.array([labels.index(x) for x in train.labels])
    fitted = fit_baselines(train, y, labels)
    scores = fitted.score(held, np.array([labels.index(x) for x in held.labels]))
    assert set(scores) == {"logistic_regression", "gradient_boosting", "isolation_forest", "pca_reconstruction"}
    assert scores["gradient_boosting"]["macro_f1"] > 0.6 and scores["logistic_regression"]["macro_f1"] > 0.6
    assert scores["isolation_forest"]["anomaly_auroc"] is not None and scores["isolation_forest"]["anomaly_auroc"] > 0.6
