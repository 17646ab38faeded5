"""Selection: EL2N, clustering representatives, k-center, confident-learning label issues."""

import numpy as np
import pytest

from course_utils import selection


def test_ngram_vectors_are_unit_length():
    X = selection.ngram_vectors(["华星科技发布新款智能手机", "Apex Corp unveils a drone", "a"])
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0)


def test_kmeans_representatives_and_k_center_pick_budget_distinct_points():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 8))
    X = np.concatenate([c + 0.01 * rng.normal(size=(20, 8)) for c in centers])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    for chosen in (selection.kmeans_representatives(X, 5, seed=0), selection.k_center_greedy(X, 5, seed=0)):
        assert len(set(chosen.tolist())) == 5
        assert sorted({i // 20 for i in chosen.tolist()}) == [0, 1, 2, 3, 4]  # one from every blob


def test_confident_label_issues_hand_example():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.95, 0.05], [0.3, 0.7]])
    labels = np.array([0, 0, 1, 1, 0])
    # thresholds: class 0 -> mean(0.9, 0.8, 0.3) = 0.6667, class 1 -> mean(0.9, 0.05) = 0.475
    # row 3 (labelled 1) is confidently 0; row 4 (labelled 0) is confidently 1
    assert selection.confident_label_issues(proba, labels).tolist() == [False, False, False, True, True]


def test_el2n_of_a_perfect_and_a_wrong_prediction():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    one_hot = np.eye(2)[[0, 0]]
    assert np.linalg.norm(probs - one_hot, axis=1) == pytest.approx([0.0, np.sqrt(2)])
