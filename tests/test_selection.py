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


def test_selection_experiment_pairs_arms_by_seed():
    """Shape {budget: {arm: one score per seed}} + "full"; a seed's scores do not depend on which other
    seeds run (so arms stay paired by seed); the difficulty order changes only the hardest-first arm."""
    words = {0: "goal match team", 1: "stock market bank", 2: "chip code server"}
    labels = np.array([i % 3 for i in range(60)])
    texts = [f"{words[c].split()[i % 3]} {i}" for i, c in enumerate(labels)]
    X = selection.ngram_vectors(texts, dim=256)
    kwargs = dict(vectors=X, difficulty=np.arange(60, dtype=float))
    test_texts, test_y = ["goal 999", "bank 998", "server 997"], [0, 1, 2]
    many = selection.selection_experiment(texts, labels, test_texts, test_y, 3, [6, 12], [0, 1, 2], **kwargs)
    assert sorted(many, key=str) == [12, 6, "full"] and len(many["full"]) == 3
    assert all(list(many[b]) == list(selection.SELECTION_ARMS) and all(len(v) == 3 for v in many[b].values()) for b in (6, 12))
    one = selection.selection_experiment(texts, labels, test_texts, test_y, 3, [6], [2], **kwargs)
    assert all(one[6][arm] == [many[6][arm][2]] for arm in selection.SELECTION_ARMS) and one["full"] == [many["full"][2]]
    flipped = selection.selection_experiment(texts, labels, test_texts, test_y, 3, [6], [2],
                                             vectors=X, difficulty=-np.arange(60, dtype=float))
    assert flipped[6]["random"] == one[6]["random"] and flipped[6]["k-means selected"] == one[6]["k-means selected"]
