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
