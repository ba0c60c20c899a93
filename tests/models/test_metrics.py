"""An engineer scores a model on windows where two faults overlap: naming either is right, naming a third is not."""

from __future__ import annotations

import numpy as np

from models.metrics import classification, credit_any_truth


def test_overlapping_faults_credit_either_but_not_a_third() -> None:
    labels = ["normal", "imbalance", "looseness", "overheating"]
    y_true = np.array([1, 1, 1, 0, 2])
    y_pred = np.array([2, 1, 3, 2, 2])
    truths = [[1, 2], [1, 2], [1, 2], [0], [2]]
    y = credit_any_truth(y_true, y_pred, truths)
    assert y.tolist() == [2, 1, 1, 0, 2], "looseness is present too; overheating is not; a healthy window stays normal"
    assert y_true.tolist() == [1, 1, 1, 0, 2], "the input is not modified"
    result = classification(y, y_pred, labels)
    assert result["per_class"]["looseness"]["precision"] == round(2 / 3, 4)
    assert result["per_class"]["imbalance"]["recall"] == 0.5
