"""The bag-of-n-grams classifier: matches its definition, is deterministic, and learns news topics."""

import zlib

import numpy as np
import torch
import torch.nn.functional as F

from course_utils import small_classifier as sc
from course_utils.data import LABELS, load_records
from course_utils.splits import stratified_split


def test_ngram_ids_are_crc32_buckets_of_padded_ngrams():
    ids = sc.ngram_ids("ab", 1, 2, 1000)
    grams = [" ", "a", "b", " ", " a", "ab", "b "]
    assert ids == tuple(zlib.crc32(g.encode()) % 1000 for g in grams)


def test_forward_is_the_mean_of_ngram_rows_plus_bias():
    config = sc.ClassifierConfig(n_buckets=64)
    model = sc.NgramClassifier(3, config)
    torch.manual_seed(0)
    with torch.no_grad():
        model.bag.weight.normal_()
        model.bias.normal_()
    ids = sc.ngram_ids("新闻", config.min_n, config.max_n, config.n_buckets)
    expected = model.bag.weight[list(ids)].mean(0) + model.bias
    assert torch.allclose(model.logits(["新闻"])[0], expected)


def test_class_weights_tilt_an_ambiguous_decision():
    """The same text labelled 0 and 1: unweighted, the model sits at 50/50; weighting a class wins it."""
    texts, labels = ["same words", "same words"], [0, 1]
    config = sc.ClassifierConfig(n_buckets=256, epochs=30)
    p_equal = sc.predict_proba(sc.train_classifier(texts, labels, 2, config, class_weights=[1.0, 1.0]), texts)[0]
    p_plain = sc.predict_proba(sc.train_classifier(texts, labels, 2, config), texts)[0]
    assert np.allclose(p_equal, p_plain) and abs(p_plain[0] - 0.5) < 1e-4
    assert sc.predict_proba(sc.train_classifier(texts, labels, 2, config, class_weights=[3.0, 1.0]), texts)[0][0] > 0.7
    assert sc.predict_proba(sc.train_classifier(texts, labels, 2, config, class_weights=[1.0, 3.0]), texts)[0][1] > 0.7


def test_first_sparse_adam_step_equals_adam():
    """SparseAdam's first step is Adam's first step (the moments start at zero).  Rows whose gradient
    cancels to ~0 are skipped: Adam divides by |g| + eps there, so float noise becomes a visible step."""
    texts, labels = ["a b", "c d", "e f"], [0, 1, 1]
    config = sc.ClassifierConfig(n_buckets=32, epochs=1, batch_size=3, lr=0.1)
    model = sc.train_classifier(texts, labels, 2, config)
    ref = sc.NgramClassifier(2, config)
    opt = torch.optim.Adam(ref.parameters(), lr=0.1)
    F.cross_entropy(ref(*sc.encode(texts, config)), torch.tensor(labels)).backward()
    clear = ref.bag.weight.grad.abs() > 1e-6
    opt.step()
    assert clear.sum() > 10
    assert torch.allclose(model.bag.weight[clear], ref.bag.weight[clear], atol=1e-5)  # eps placed slightly differently
    assert torch.allclose(model.bias, ref.bias, atol=1e-6)


def test_training_is_deterministic_and_learns_topics():
    rows = [r for r in load_records("news_cls") if not r["flags"]]
    y = np.array([LABELS.index(r["label"]) for r in rows])
    parts = stratified_split(y, (0.8, 0.0, 0.2), seed=0)
    train_texts = [rows[i]["text"] for i in parts["train"]]
    test_texts = [rows[i]["text"] for i in parts["test"]]
    a = sc.train_classifier(train_texts, y[parts["train"]], 4, seed=3)
    b = sc.train_classifier(train_texts, y[parts["train"]], 4, seed=3)
    assert torch.equal(a.bag.weight, b.bag.weight)
    assert sc.accuracy(y[parts["test"]], sc.predict_proba(a, test_texts).argmax(1)) >= 0.95


def test_per_class_recall_hand_example():
    recall = sc.per_class_recall([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 4)
    assert recall[:3].tolist() == [0.5, 1.0, 0.0] and np.isnan(recall[3])


def test_fixed_steps_count_optimiser_updates_and_match_epochs(monkeypatch):
    """``steps`` counts mini-batches: 10 rows in batches of 4 make 3 batches per pass, so 3 passes are
    9 steps and give the very same model as epochs=3; 7 steps stop inside the third pass."""
    texts = [f"text {i} {'ab'[i % 2]}" for i in range(10)]
    labels = [i % 2 for i in range(10)]
    by_epochs = sc.train_classifier(texts, labels, 2, sc.ClassifierConfig(n_buckets=128, epochs=3, batch_size=4), seed=1)
    by_steps = sc.train_classifier(texts, labels, 2, sc.ClassifierConfig(n_buckets=128, epochs=99, batch_size=4, steps=9), seed=1)
    assert torch.equal(by_epochs.bag.weight, by_steps.bag.weight) and torch.equal(by_epochs.bias, by_steps.bias)
    calls = []
    original = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    sc.train_classifier(texts, labels, 2, sc.ClassifierConfig(n_buckets=128, batch_size=4, steps=7))
    assert len(calls) == 7
