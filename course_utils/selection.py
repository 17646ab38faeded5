"""Choosing which training examples to keep, by diversity, by difficulty, and against label noise.

* **Diversity by clustering** (:func:`kmeans_representatives`): embed the texts, run k-means with
  k = budget, keep the example nearest each centroid.  A small subset then covers every kind of
  example instead of many copies of the common kinds (representative sampling; cf. Nguyen &
  Smeulders, ICML 2004, "Active learning using pre-clustering").  :func:`k_center_greedy` is the
  core-set alternative (Sener & Savarese, ICLR 2018): it picks the point furthest from everything
  chosen so far, which covers the space but also loves outliers.
* **Difficulty** (:func:`el2n_scores`): the EL2N score of Paul, Ganguli & Dziugaite (NeurIPS 2021,
  "Deep Learning on a Data Diet"), ||softmax - one_hot(label)||_2 early in training, averaged over
  a few runs.  High = hard.  The hardest examples include the mislabeled ones, so "keep the
  hardest" is risky on noisy data.  For instruction data the analogue is IFD (Li et al., 2023,
  "From Quantity to Quality"): the loss of the answer with the instruction over the loss without it.
* **Label noise** (:func:`confident_label_issues`): the core rule of confident learning
  (Northcutt, Jiang & Chuang, JAIR 2021): with out-of-fold probabilities, an example is suspect
  when the model is confident (above that class's average self-confidence) in another class.

Embeddings here are TF-IDF-weighted hashed character n-grams (:func:`ngram_vectors`): no
pretrained model is needed, Chinese and English alike.
"""

from __future__ import annotations

import numpy as np
import torch

from course_utils.exercises import check_answer
from course_utils.small_classifier import (ClassifierConfig, fit_and_score, ngram_ids, one_thread, predict_proba,
                                           train_classifier)


def ngram_vectors(texts, dim: int = 2048, min_n: int = 1, max_n: int = 3) -> np.ndarray:
    """L2-normalised TF-IDF vectors of hashed character n-grams, shape (len(texts), dim)."""
    X = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        np.add.at(X[row], np.array(ngram_ids(text, min_n, max_n, dim)), 1.0)
    df = (X > 0).sum(axis=0)
    X *= (np.log((1 + len(texts)) / (1 + df)) + 1).astype(np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1)


def kmeans_plus_plus(X: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """Initial centroids by k-means++ (Arthur & Vassilvitskii, 2007): each next one is drawn with
    probability proportional to its squared distance from the nearest centroid so far.  For unit
    vectors ||x - c||^2 = 2 - 2 x.c, so one matrix-vector product per step is enough."""
    chosen = [int(rng.integers(len(X)))]
    d2 = (2.0 - 2.0 * (X @ X[chosen[0]])).clamp_min(0.0).double().numpy()
    for _ in range(k - 1):
        total = d2.sum()
        nxt = int(rng.choice(len(X), p=d2 / total)) if total > 0 else int(rng.integers(len(X)))
        chosen.append(nxt)
        d2 = np.minimum(d2, (2.0 - 2.0 * (X @ X[nxt])).clamp_min(0.0).double().numpy())
    return X[chosen].clone()


def kmeans(X: np.ndarray, k: int, seed: int = 0, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine similarity on unit vectors), k-means++ start: (centroids, assignment).

    The matrix products run in torch on one thread: on a small shared CPU, two libraries' thread
    pools (torch's and numpy's BLAS) competing for two cores made numpy's products several times slower."""
    rng = np.random.default_rng(seed)
    with one_thread():
        Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))
        centroids = kmeans_plus_plus(Xt, k, rng)
        for _ in range(iterations):
            assign = (Xt @ centroids.T).argmax(dim=1)
            one_hot = torch.zeros(k, len(Xt))
            one_hot[assign, torch.arange(len(Xt))] = 1.0
            sums = one_hot @ Xt  # the sum of each cluster's members, as one matrix product
            norms = sums.norm(dim=1, keepdim=True)
            centroids = torch.where(norms > 0, sums / norms.clamp_min(1e-12), centroids)  # empty: keep
        assign = (Xt @ centroids.T).argmax(dim=1)
    return centroids.numpy(), assign.numpy()


def kmeans_representatives(X: np.ndarray, budget: int, seed: int = 0) -> np.ndarray:
    """Indices of the member nearest each of ``budget`` k-means centroids (empty clusters give none,
    so the result can be slightly smaller than the budget; it is then topped up at random)."""
    centroids, assign = kmeans(X, budget, seed)
    similarity = np.einsum("nd,nd->n", X, centroids[assign])  # each point's cosine to its own centroid
    chosen = []
    for c in range(budget):
        members = np.flatnonzero(assign == c)
        if len(members):
            chosen.append(members[np.argmax(similarity[members])])
    chosen = np.array(sorted(set(chosen)), dtype=int)
    if len(chosen) < budget:
        rest = np.setdiff1d(np.arange(len(X)), chosen)
        fill = np.random.default_rng(seed).choice(rest, budget - len(chosen), replace=False)
        chosen = np.sort(np.concatenate([chosen, fill]))
    return chosen


def k_center_greedy(X: np.ndarray, budget: int, seed: int = 0) -> np.ndarray:
    """Core-set selection: start at a random point, then repeatedly add the point whose distance to
    its nearest chosen point is largest."""
    first = int(np.random.default_rng(seed).integers(len(X)))
    chosen = [first]
    distance = np.linalg.norm(X - X[first], axis=1)
    for _ in range(budget - 1):
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(X - X[nxt], axis=1))
    return np.array(sorted(chosen), dtype=int)


def el2n_scores(texts, labels, num_classes: int, runs: int = 3, epochs: int = 1, seed: int = 0) -> np.ndarray:
    """EL2N: ||p(x) - one_hot(y)||_2 after ``epochs`` of training, averaged over ``runs`` seeds."""
    labels = np.asarray(labels)
    one_hot = np.eye(num_classes)[labels]
    scores = []
    for run in range(runs):
        model = train_classifier(texts, labels, num_classes, ClassifierConfig(epochs=epochs), seed=seed + run)
        scores.append(np.linalg.norm(predict_proba(model, texts) - one_hot, axis=1))
    return np.mean(scores, axis=0)


def random_subset(n: int, budget: int, seed: int = 0) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, budget, replace=False))


SELECTION_ARMS = ("random", "k-means selected", "hardest first")


def selection_experiment(pool_texts, pool_labels, test_texts, test_labels, num_classes: int, budgets, seeds, *,
                         vectors: np.ndarray, difficulty: np.ndarray,
                         config: ClassifierConfig = ClassifierConfig(), progress=None) -> dict:
    """Test accuracy of three ways to pick ``budget`` training rows, for every budget and seed.

    Returns ``{budget: {arm: [accuracy per seed]}}`` with the arms of :data:`SELECTION_ARMS`, plus
    ``{"full": [accuracy per seed]}`` for the whole pool.  Seed s draws the random subset, seeds
    k-means, and seeds the training run, so the arms are paired seed by seed (the hardest-first
    subset is the same for every seed: only the training order changes).  Everything else (model,
    epochs, learning rate, test set) is held equal.  ``progress`` wraps the budget loop (e.g. tqdm)."""
    pool_texts, pool_labels = list(pool_texts), np.asarray(pool_labels)
    hardest = np.argsort(-np.asarray(difficulty), kind="stable")

    def score(subset, seed):
        subset = np.asarray(subset)
        return fit_and_score([pool_texts[i] for i in subset], pool_labels[subset], test_texts, test_labels,
                             num_classes, config, seed=seed)

    results = {}
    for budget in (progress or (lambda x: x))(list(budgets)):
        results[budget] = {
            "random": [score(random_subset(len(pool_texts), budget, s), s) for s in seeds],
            "k-means selected": [score(kmeans_representatives(vectors, budget, s), s) for s in seeds],
            "hardest first": [score(hardest[:budget], s) for s in seeds],
        }
    results["full"] = [score(np.arange(len(pool_texts)), s) for s in seeds]
    return results


def confident_label_issues(proba: np.ndarray, labels) -> np.ndarray:
    """Boolean mask of suspected label errors (confident learning's off-diagonal rule).

    Class j's threshold t_j is the mean predicted probability of j over examples labelled j.  An
    example labelled y is suspect when, among the classes j != y with p_j >= t_j, there is one,
    and the most probable such j beats p_y."""
    labels = np.asarray(labels)
    k = proba.shape[1]
    thresholds = np.array([proba[labels == j, j].mean() if (labels == j).any() else 1.0 for j in range(k)])
    above = proba >= thresholds[None, :]
    above[np.arange(len(labels)), labels] = False
    masked = np.where(above, proba, -1.0)
    best_other = masked.argmax(axis=1)
    return above.any(axis=1) & (masked[np.arange(len(labels)), best_other] > proba[np.arange(len(labels)), labels])


def check_el2n(probs, label: int, answer) -> None:
    """Exercise 6.6: the EL2N score of one prediction, to 4 decimals."""
    probs = np.asarray(probs, dtype=float)
    error = probs - np.eye(len(probs))[label]
    check_answer(answer, float(np.linalg.norm(error)), key="6.6",
                 hints=["EL2N measures a distance: between which two vectors?",
                        "Subtract the one-hot vector of the label from the probabilities, then take the Euclidean norm."],
                 mistakes=[(float(1 - probs[label]), "that is 1 − p(label); EL2N looks at the whole error vector, "
                                                     "including the probability put on the wrong classes."),
                           (float(error @ error), "that is the squared norm: take its square root.")],
                 equal=lambda x, e: x is not None and abs(float(x) - e) < 5e-4)
