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
from course_utils.small_classifier import ClassifierConfig, train_classifier


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


def per_class_subsample(labels, counts, seed: int = 0) -> np.ndarray:
    """Sorted indices of exactly ``counts[c]`` examples of each class c, drawn without replacement
    (``counts`` maps class -> number; a class not in it keeps all its examples).  Used to make a
    skewed training set with the same class counts for every seed, while the seed picks WHICH rows."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keep = []
    for c in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == c)
        n = counts.get(c, len(members))
        if n > len(members):
            raise ValueError(f"class {c} has {len(members)} examples, cannot draw {n}")
        keep.append(rng.choice(members, n, replace=False))
    return np.sort(np.concatenate(keep))


ARMS = ("plain", "oversampling", "class weights", "undersampling")


def train_arm(arm: str, texts, labels, num_classes: int, config: ClassifierConfig, seed: int = 0):
    """Train the small classifier with one imbalance recipe; returns (model, rows trained on).

    A fair comparison gives every arm the same number of optimiser steps: set ``config.steps``.
    With a fixed number of epochs instead, oversampling (more rows) would also train longer and
    undersampling (fewer rows) much shorter, and the comparison would mix data with training time."""
    labels = np.asarray(labels)
    if arm == "class weights":
        return train_classifier(texts, labels, num_classes, config, seed,
                                class_weights=balanced_class_weights(labels, num_classes)), len(labels)
    if arm == "plain":
        index = np.arange(len(labels))
    elif arm == "oversampling":
        index = oversample_indices(labels, seed)
    elif arm == "undersampling":
        index = undersample_indices(labels, seed)
    else:
        raise ValueError(f"unknown arm {arm!r}; expected one of {ARMS}")
    return train_classifier([texts[i] for i in index], labels[index], num_classes, config, seed), len(index)


def check_class_weights(labels, num_classes: int, answer) -> None:
    """Exercise 6b.2: the balanced class weights of ``labels``, to 4 decimals."""
    expected = balanced_class_weights(labels, num_classes)
    ok = answer is not None and len(answer) == num_classes and np.allclose(np.asarray(answer, float), expected, atol=5e-4)
    feedback(ok, "w_c = n / (num_classes * n_c): total examples over (classes x examples of class c).")
