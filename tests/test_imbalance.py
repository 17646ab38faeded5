"""Class weights and resampling."""

from collections import Counter

import numpy as np
import pytest

from course_utils import imbalance


def test_balanced_class_weights_hand_example():
    # n = 4 examples, 3 classes (one absent): w_c = n / (3 * n_c)
    assert imbalance.balanced_class_weights([0, 0, 0, 1], 3) == pytest.approx([4 / 9, 4 / 3, 0.0])


def test_weighted_counts_are_equal_per_class():
    labels = np.array([0] * 30 + [1] * 6 + [2] * 4)
    w = imbalance.balanced_class_weights(labels, 3)
    assert np.allclose(np.bincount(labels) * w, len(labels) / 3)


def test_oversampling_balances_and_keeps_every_original():
    labels = np.array([0] * 30 + [1] * 6 + [2] * 4)
    idx = imbalance.oversample_indices(labels, seed=0)
    assert Counter(labels[idx].tolist()) == {0: 30, 1: 30, 2: 30}
    assert set(range(len(labels))) <= set(idx.tolist())
    assert (idx == imbalance.oversample_indices(labels, seed=0)).all()


def test_undersampling_balances():
    labels = np.array([0] * 30 + [1] * 6 + [2] * 4)
    idx = imbalance.undersample_indices(labels, seed=0)
    assert Counter(labels[idx].tolist()) == {0: 4, 1: 4, 2: 4} and len(set(idx.tolist())) == 12


def test_per_class_subsample_draws_exact_counts_from_each_class():
    labels = np.array([0] * 30 + [1] * 6 + [2] * 4)
    idx = imbalance.per_class_subsample(labels, {1: 2, 2: 1}, seed=3)
    assert Counter(labels[idx].tolist()) == {0: 30, 1: 2, 2: 1} and len(set(idx.tolist())) == len(idx)
    assert (idx == imbalance.per_class_subsample(labels, {1: 2, 2: 1}, seed=3)).all()
    drawn = {tuple(imbalance.per_class_subsample(labels, {1: 2}, seed=s)[30:].tolist()) for s in range(10)}
    assert len(drawn) > 1  # the seed chooses which rows
    with pytest.raises(ValueError, match="class 2 has 4"):
        imbalance.per_class_subsample(labels, {2: 5})


def test_every_arm_gets_the_same_number_of_optimiser_steps(monkeypatch):
    """Plain has 40 rows, oversampling 90, undersampling 12: with config.steps=7 each makes 7 updates."""
    import torch

    from course_utils.small_classifier import ClassifierConfig

    labels = np.array([0] * 30 + [1] * 6 + [2] * 4)
    texts = [f"row {i} class {c}" for i, c in enumerate(labels)]
    config = ClassifierConfig(n_buckets=256, batch_size=8, steps=7)
    for arm, rows in [("plain", 40), ("oversampling", 90), ("class weights", 40), ("undersampling", 12)]:
        calls = []
        original = torch.optim.Adam.step
        monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
        _, n_rows = imbalance.train_arm(arm, texts, labels, 3, config, seed=0)
        monkeypatch.setattr(torch.optim.Adam, "step", original)
        assert (n_rows, len(calls)) == (rows, 7), arm
    with pytest.raises(ValueError, match="unknown arm"):
        imbalance.train_arm("smote", texts, labels, 3, config)
