"""course_utils.metrics against hand-checked examples and independent computations."""

import itertools

import numpy as np
import pytest
import torch

from course_utils import metrics

# A hand-checked 3-class example.
Y_TRUE = [0, 0, 1, 1, 2, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0, 2]
#            predicted: 0  1  2
HAND_CM = np.array([[1, 1, 0],     # true 0: one right, one called 1
                    [0, 2, 0],     # true 1: both right
                    [1, 0, 2]])    # true 2: one called 0


def test_confusion_matrix_hand_checked():
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED, 3), HAND_CM)


def test_precision_recall_f1_hand_checked():
    precision, recall, f1 = metrics.precision_recall_f1(HAND_CM)
    np.testing.assert_allclose(precision, [1 / 2, 2 / 3, 2 / 2])   # diagonal / column sums 2, 3, 2
    np.testing.assert_allclose(recall, [1 / 2, 2 / 2, 2 / 3])      # diagonal / row sums 2, 2, 3
    np.testing.assert_allclose(f1, [0.5, 0.8, 0.8])                # 2PR/(P+R)
    report = metrics.classification_report(Y_TRUE, Y_PRED, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(5 / 7)
    assert report["macro_f1"] == pytest.approx(0.7)
    assert report["macro_precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert report["per_class"]["c"]["support"] == 3


def test_confusion_matrix_matches_bincount():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    independent = torch.bincount(torch.tensor(y_true * 4 + y_pred), minlength=16).reshape(4, 4).numpy()
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, 4), independent)
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(np.trace(independent) / 500)


def test_class_never_predicted_gives_zero_not_nan():
    precision, recall, f1 = metrics.precision_recall_f1(metrics.confusion_matrix([0, 1, 2], [0, 0, 0], 3))
    assert not np.isnan(precision).any() and not np.isnan(f1).any()
    np.testing.assert_allclose(precision, [1 / 3, 0, 0])
    np.testing.assert_allclose(recall, [1, 0, 0])


def brute_force_auc(scores, positive):
    """Every (positive, negative) pair: 1 if the positive scores higher, 1/2 for a tie."""
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_roc_auc_hand_checked():
    # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs won.
    assert metrics.roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert metrics.roc_auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert metrics.roc_auc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert metrics.roc_auc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5        # all ties: a coin flip
    with pytest.raises(ValueError):
        metrics.roc_auc([0.2, 0.3], [1, 1])


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_equals_pair_counting_and_curve_area(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 8, 60) / 8          # many ties
    positive = rng.random(60) < 0.4
    expected = brute_force_auc(scores, positive)
    assert metrics.roc_auc(scores, positive) == pytest.approx(expected)
    fpr, tpr, thresholds = metrics.roc_curve(scores, positive)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thresholds) < 0)
    area = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)     # trapezoids: ties become diagonal steps
    assert area == pytest.approx(expected)


def test_average_ranks_share_ties():
    np.testing.assert_allclose(metrics.average_ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1])


def test_precision_at_k():
    scores = [0.9, 0.1, 0.8, 0.7, 0.2]
    relevant = [True, False, False, True, True]
    assert metrics.precision_at_k(scores, relevant, 1) == 1.0
    assert metrics.precision_at_k(scores, relevant, 3) == pytest.approx(2 / 3)   # 0.9 yes, 0.8 no, 0.7 yes
    assert metrics.precision_at_k(scores, relevant, 5) == pytest.approx(3 / 5)


def test_wilson_interval_known_values():
    low, high = metrics.wilson_interval(0, 3)
    assert low == 0.0 and high == pytest.approx(0.5615, abs=1e-4)     # the textbook 0-of-3 upper bound
    low, high = metrics.wilson_interval(50, 100)
    assert (low + high) / 2 == pytest.approx(0.5) and high - low == pytest.approx(0.1920, abs=1e-3)
    assert metrics.wilson_interval(3, 3)[1] == 1.0


def test_exercise_checks(capsys):
    metrics.check_macro_f1(0.7, HAND_CM)
    metrics.check_macro_f1(5 / 7, HAND_CM)       # accuracy is not macro F1
    metrics.check_roc_auc(0.75, [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    metrics.check_macro_f1(None, HAND_CM)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("✅") and lines[1].startswith("❌") and lines[2].startswith("✅")
    assert lines[3].startswith("📝")   # no answer yet: says what to do, no hint (tests/test_exercise_checks_07.py has more)
