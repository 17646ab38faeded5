"""Classification metrics, computed from their definitions (no scikit-learn needed).

Everything starts from the confusion matrix (混淆矩阵): rows are the true classes, columns the
predicted ones.  Precision (精确率) of a class divides its diagonal cell by its column sum, recall
(召回率) by its row sum, and F1 is their harmonic mean.  *Macro* averages (宏平均) weigh every
class equally, whatever its size.

Convention for classes that never occur (宏平均中的缺席类别): a class listed in ``labels`` that is in
neither ``y_true`` nor ``y_pred`` has precision, recall and F1 of 0, and still counts in the macro
average.  That is scikit-learn's ``precision_recall_fscore_support(..., labels=range(C),
zero_division=0)`` (tests/test_metrics.py checks it); scikit-learn WITHOUT ``labels=`` leaves such a
class out of the average, which gives a higher macro score on a test set missing a class.

ROC-AUC is the probability that a random positive scores higher than a random negative (ties count
one half), which is the Mann-Whitney U statistic divided by (positives x negatives).
"""

from __future__ import annotations

import math

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """``cm[i, j]`` = number of examples of true class ``i`` predicted as class ``j``."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels, y_pred {y_pred.size}")
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    for name, ids in (("y_true", y_true), ("y_pred", y_pred)):
        bad = ids[(ids < 0) | (ids >= num_classes)]
        if bad.size:  # np.add.at would wrap a negative id around to the last class
            raise ValueError(f"{name} has class id {int(bad[0])}, outside 0 .. {num_classes - 1}")
    cm = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else 0.0


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise division that gives 0 where the denominator is 0 (a class never predicted)."""
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from a confusion matrix."""
    cm = np.asarray(cm)
    true_positives = np.diag(cm)
    precision = _safe_divide(true_positives, cm.sum(axis=0))   # of everything predicted as the class
    recall = _safe_divide(true_positives, cm.sum(axis=1))      # of everything that is the class
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return precision, recall, f1


def classification_report(y_true, y_pred, labels: list[str]) -> dict:
    """Accuracy, macro precision/recall/F1 and the per-class values, as plain floats."""
    cm = confusion_matrix(y_true, y_pred, len(labels))
    precision, recall, f1 = precision_recall_f1(cm)
    return {
        "accuracy": float(np.trace(cm) / cm.sum()) if cm.sum() else 0.0,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for label, p, r, f, s in zip(labels, precision, recall, f1, cm.sum(axis=1))},
    }


def average_ranks(values) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def roc_auc(scores, positive) -> float:
    """Area under the ROC curve for binary labels (``positive`` true/false), via ranks."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs at least one positive and one negative example")
    rank_sum = average_ranks(scores)[positive].sum()
    u_statistic = rank_sum - n_pos * (n_pos + 1) / 2   # pairs (positive, negative) won by the positive
    return float(u_statistic / (n_pos * n_neg))


def roc_curve(scores, positive) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates when predicting positive for ``score >= threshold``, for every
    distinct score from the highest down; starts at (0, 0) with an infinite threshold."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    thresholds = np.unique(scores)[::-1]
    tpr = [(scores[positive] >= t).mean() for t in thresholds]
    fpr = [(scores[~positive] >= t).mean() for t in thresholds]
    return np.array([0.0, *fpr]), np.array([0.0, *tpr]), np.array([np.inf, *thresholds])


def precision_at_k(scores, relevant, k: int) -> float:
    """Fraction of the ``k`` highest-scoring items that are relevant (ties broken by position)."""
    scores, relevant = np.asarray(scores, dtype=float), np.asarray(relevant, dtype=bool)
    top = np.argsort(-scores, kind="stable")[:k]
    return float(relevant[top].mean()) if k else 0.0


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for an accuracy of ``correct`` out of ``n`` (Wilson, 1927)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# --- Exercise checks (notebook 07) --------------------------------------------------------

def check_macro_f1(answer, cm) -> None:
    """Exercise: the macro F1 of confusion matrix ``cm`` (4 decimals are enough)."""
    from course_utils.exercises import feedback
    expected = float(precision_recall_f1(cm)[2].mean())
    ok = answer is not None and abs(float(answer) - expected) < 5e-4
    feedback(ok, "per class: precision = diagonal / column sum, recall = diagonal / row sum, "
                 "F1 = 2PR/(P+R); then average the F1s with equal weight.")


def check_roc_auc(answer, scores, positive) -> None:
    """Exercise: ROC-AUC of a small list of scores, counted by hand over (positive, negative) pairs."""
    from course_utils.exercises import feedback
    expected = roc_auc(scores, positive)
    ok = answer is not None and abs(float(answer) - expected) < 5e-4
    feedback(ok, "count the (positive, negative) pairs where the positive scores higher, add half "
                 "for each tie, and divide by positives x negatives.")
