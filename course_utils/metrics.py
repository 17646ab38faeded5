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

def _to_4_decimals(answer, expected) -> bool:
    from course_utils.exercises import same_value
    return same_value(answer, expected, rel=0.0, abs_tol=5e-4)


def check_macro_f1(answer, cm) -> None:
    """Exercise 7.1: the macro F1 of confusion matrix ``cm`` (rows: true class; 4 decimals are enough)."""
    from course_utils.exercises import check_answer
    cm = np.asarray(cm)
    precision, recall, f1 = precision_recall_f1(cm)
    macro_p, macro_r = float(precision.mean()), float(recall.mean())
    check_answer(
        answer, float(f1.mean()), key="7.1", equal=_to_4_decimals,
        hints=["Macro means every class counts the same, however many rows it has. What do you compute per class first?",
               "Per class: precision divides the diagonal cell by its column sum, recall by its row sum.",
               "Per class F1 = 2PR/(P+R); the macro F1 is the plain mean of the three per-class F1s."],
        mistakes=[(float(np.trace(cm) / cm.sum()),
                   "that is the accuracy, which for single-label classification equals the micro F1 (pool all the "
                   "counts, then compute once). Macro F1 computes F1 per class first, then averages."),
                  (float(_safe_divide(2 * macro_p * macro_r, macro_p + macro_r)),
                   "you averaged precision and recall over the classes first and then combined them. Take F1 per "
                   "class first, then average the F1s."),
                  (macro_p, "that is the macro precision: the mean of the per-class precisions, not of the F1s."),
                  (float((f1 * cm.sum(axis=1)).sum() / cm.sum()),
                   "that is the support-weighted F1; macro gives every class the same weight.")],
        why="Macro F1 lets a rare class that the model ignores pull the score down; accuracy (micro F1) would hide it.")


def check_roc_auc(answer, scores, positive) -> None:
    """Exercise 7.2: ROC-AUC of a small list of scores, counted by hand over (positive, negative) pairs."""
    from course_utils.exercises import check_answer
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    pos, neg = scores[positive], scores[~positive]
    wins = float((pos[:, None] > neg[None, :]).sum())
    ties = float((pos[:, None] == neg[None, :]).sum())
    pairs = len(pos) * len(neg)
    hard = scores >= 0.5
    check_answer(
        answer, roc_auc(scores, positive), key="7.2", equal=_to_4_decimals,
        hints=["ROC-AUC is the chance that a randomly drawn positive row scores higher than a randomly drawn negative "
               "one. How many (positive, negative) pairs are there?",
               f"There are {len(pos)} x {len(neg)} = {pairs} pairs. For each positive row, count the negatives it beats.",
               f"Add the wins (a tie counts 1/2) over all {pairs} pairs and divide by {pairs}."],
        mistakes=[(wins / pairs, "you counted the tie as a loss: a tie counts one half."),
                  ((wins + ties) / pairs, "you counted the tie as a win: a tie counts one half."),
                  (1 - roc_auc(scores, positive),
                   "that is the AUC with the classes swapped: count the pairs the positive row wins."),
                  (roc_auc(hard, positive),
                   "that is the AUC of hard labels (score >= 0.5 means positive): thresholding throws away the ranking, "
                   "which is exactly what ROC-AUC measures. Use the scores themselves."),
                  (float((hard == positive).mean()),
                   "that is the accuracy at the threshold 0.5, not ROC-AUC, which uses no threshold at all.")],
        why="ROC-AUC needs no threshold: it only asks whether the positives are ranked above the negatives.")



def macro_f1(y_true, y_pred, num_classes: int) -> float:
    """Macro F1 over the classes ``0 .. num_classes - 1``.  The course's convention for a class that is
    absent: precision, recall or F1 with a zero denominator is 0 (as ``zero_division=0`` in scikit-learn),
    and every class still counts in the mean, so a class never predicted and never present scores F1 = 0."""
    return float(precision_recall_f1(confusion_matrix(y_true, y_pred, num_classes))[2].mean())


def macro_f1_cases(n: int = 40, seed: int = 0) -> list[tuple[list[int], list[int], int]]:
    """Label lists for Exercise 7.5: hand-picked edge cases (a perfect model, a class never predicted, a class
    absent from both lists, one row), then seeded random ones, some with a dominant class."""
    import random
    rng = random.Random(seed)
    cases = [([0, 1, 2, 0], [0, 1, 2, 0], 3), ([0, 0, 1, 1], [0, 0, 0, 0], 2), ([0, 1, 0, 1], [0, 1, 1, 1], 3),
             ([2], [2], 4), ([0, 1, 2, 2, 1], [1, 2, 0, 0, 2], 3)]
    while len(cases) < n:
        k = rng.randint(2, 6)
        size = rng.randint(1, 40)
        weights = [rng.random() ** 3 for _ in range(k)]   # skewed: some classes rare or missing
        y_true = rng.choices(range(k), weights=weights, k=size)
        y_pred = [y if rng.random() < 0.6 else rng.randrange(k) for y in y_true]
        cases.append((y_true, y_pred, k))
    return cases


def check_macro_f1_code(function) -> bool:
    """Exercise 7.5: the learner's ``macro_f1(y_true, y_pred, num_classes)`` beside :func:`macro_f1` on
    :func:`macro_f1_cases`.  Returns whether every case agreed."""
    from course_utils.exercises import check_code_with_hints
    return check_code_with_hints(
        function, macro_f1, macro_f1_cases(), key="7.5",
        hints=["Look at the case shown: which classes appear in it, and which of the num_classes do not?",
               "Build the counts per class c: true positives (true c, predicted c), rows predicted c, rows that are c. "
               "A class with no rows predicted or no rows present must not divide by zero.",
               "Per class: precision = TP / predicted, recall = TP / true, F1 = 2PR / (P + R), each 0 when its "
               "denominator is 0; return the plain mean over all num_classes classes (absent ones included)."])
