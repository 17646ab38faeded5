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

from course_utils.exercises import check_answer
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
    expected = [float(w) for w in balanced_class_weights(labels, num_classes)]
    counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(float)
    close = lambda a, e: a is not None and len(a) == len(e) and np.allclose(np.asarray(a, float), e, atol=5e-4)
    check_answer(None if answer is None else list(answer), expected, key="6b.2", equal=close,
                 hints=["A balanced weighting makes every class contribute the same total weight. What does that "
                        "require of w_c × n_c?",
                        "w_c = n / (num_classes × n_c): total examples over (classes × examples of class c)."],
                 mistakes=[(list(1 / counts), "1/n_c has the right shape but the wrong scale: a balanced weighting "
                                              "keeps the average weight per example at 1."),
                           (list(len(labels) / counts), "n/n_c is too large by the number of classes.")])


def class_weight_cases(n: int = 40, seed: int = 0) -> list[tuple[list[int], int]]:
    """Random label lists in which every class occurs at least once, 2 to 5 classes, very uneven counts."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        num_classes = int(rng.integers(2, 6))
        counts = rng.integers(1, 30, size=num_classes) ** 2 // 10 + 1
        labels = rng.permutation(np.repeat(np.arange(num_classes), counts)).tolist()
        cases.append((labels, num_classes))
    return cases


def check_class_weights_code(function) -> None:
    """Exercise 6b.4 (write the code): ``function(labels, num_classes)`` returns the balanced class weights
    as a list of floats."""
    from course_utils.exercises import check_code

    def close(got, expected):
        try:
            return len(got) == len(expected) and np.allclose(np.asarray(got, dtype=float), expected, rtol=1e-6)
        except (TypeError, ValueError):
            return False
    check_code(function, lambda labels, k: balanced_class_weights(labels, k).tolist(), class_weight_cases(),
               equal=close, describe=lambda args: f"labels with counts {np.bincount(args[0]).tolist()}, num_classes={args[1]}")
