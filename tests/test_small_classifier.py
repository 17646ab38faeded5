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


def test_class_weights_follow_cross_entropy_weight():
    """One step with weights equals one step on the manually weighted mean loss."""
    texts, labels = ["a b", "c d", "e f"], [0, 1, 1]
    weights = [2.0, 0.5]
    config = sc.ClassifierConfig(n_buckets=32, epochs=1, batch_size=3, lr=0.1)
    model = sc.train_classifier(texts, labels, 2, config, class_weights=weights)
    ref = sc.NgramClassifier(2, config)
    opt = torch.optim.Adam(ref.parameters(), lr=0.1)
    flat, offsets = sc.encode(texts, config)
    per = F.cross_entropy(ref(flat, offsets), torch.tensor(labels), reduction="none")
    w = torch.tensor([weights[y] for y in labels])
    ((per * w).sum() / w.sum()).backward()
    opt.step()
    assert torch.allclose(model.bag.weight, ref.bag.weight, atol=1e-6)


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
