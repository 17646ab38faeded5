"""Class imbalance: two standard fixes, and the metric that shows whether they worked.

* **Resampling** (:func:`oversample_indices`): repeat examples of the rarer classes (drawn with
  replacement, seeded) until every class has as many as the largest one.  The model sees the
  same few minority examples many times.
* **Class weights** (:func:`balanced_class_weights`): keep the data, scale each example's loss by
  n / (k * n_c), the "balanced" heuristic of scikit-learn's ``compute_class_weight``.  A class
  with half the average count weighs twice as much.

Both make the expected gradient treat the classes equally; they differ in variance and in how
often the model sees each minority example.  Accuracy hides the problem (predicting the majority
class scores well), so compare them with per-class recall
(:func:`course_utils.small_classifier.per_class_recall`).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from course_utils.exercises import feedback


def balanced_class_weights(labels, num_classes: int) -> np.ndarray:
    """w_c = n / (num_classes * n_c); a class that does not occur gets weight 0."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = len(labels) / (num_classes * counts[present])
    return weights


def oversample_indices(labels, seed: int = 0) -> np.ndarray:
    """Indices of a balanced training set: all examples, plus random repeats of each smaller
    class until it matches the largest class.  Sorted, so the order carries no information."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    counts = Counter(labels.tolist())
    target = max(counts.values())
    extra = [rng.choice(np.flatnonzero(labels == c), target - n, replace=True)
             for c, n in sorted(counts.items()) if n < target]
    return np.sort(np.concatenate([np.arange(len(labels))] + extra))


def undersample_indices(labels, seed: int = 0) -> np.ndarray:
    """Indices of a balanced set made by dropping examples of the larger classes (for comparison:
    it throws data away)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    counts = Counter(labels.tolist())
    target = min(counts.values())
    keep = [rng.choice(np.flatnonzero(labels == c), target, replace=False) for c in sorted(counts)]
    return np.sort(np.concatenate(keep))


def check_class_weights(labels, num_classes: int, answer) -> None:
    """Exercise 6b.2: the balanced class weights of ``labels``, to 4 decimals."""
    expected = balanced_class_weights(labels, num_classes)
    ok = answer is not None and len(answer) == num_classes and np.allclose(np.asarray(answer, float), expected, atol=5e-4)
    feedback(ok, "w_c = n / (num_classes * n_c): total examples over (classes x examples of class c).")
