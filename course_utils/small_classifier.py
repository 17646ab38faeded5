"""A small, fast, deterministic text classifier for data experiments: bag of character n-grams.

The idea is fastText's (Joulin et al., 2017, "Bag of Tricks for Efficient Text Classification"):
a text is the average of the vectors of its character n-grams, and a linear layer turns that
into class scores.  Here the n-grams (1 to 3 characters) are hashed into ``n_buckets`` rows of one
``nn.EmbeddingBag`` whose width is the number of classes, so the model IS a linear classifier on
hashed n-gram counts.  Character n-grams need no word segmentation, so Chinese and English work
alike.

Why this model for the data notebooks: training on a thousand headlines takes well under a second on
a CPU, so an experiment can train it dozens of times (k folds, seeds, subsets), and with a fixed
seed and thread count every run gives the same numbers.  It is a measuring instrument for data
choices, not a competitor to fine-tuning BERT.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ClassifierConfig:
    n_buckets: int = 1 << 15
    min_n: int = 1
    max_n: int = 3
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.05
    # If set: train for exactly this many mini-batches (optimiser steps), reshuffling after each pass,
    # and ignore ``epochs``.  Experiments that compare training sets of different sizes set it, so
    # that every arm gets the same number of updates.
    steps: int | None = None


@lru_cache(maxsize=200_000)
def ngram_ids(text: str, min_n: int = 1, max_n: int = 3, n_buckets: int = 1 << 15) -> tuple[int, ...]:
    """Bucket ids of the character n-grams of ``text`` (with spaces marking the ends), by CRC-32:
    stable across processes, unlike Python's ``hash``."""
    padded = f" {text.lower()} "
    grams = [padded[i:i + n] for n in range(min_n, max_n + 1) for i in range(len(padded) - n + 1)]
    return tuple(zlib.crc32(g.encode("utf-8")) % n_buckets for g in grams) or (0,)


def encode(texts, config: ClassifierConfig = ClassifierConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat n-gram ids, offsets) for ``nn.EmbeddingBag``."""
    ids = [ngram_ids(t, config.min_n, config.max_n, config.n_buckets) for t in texts]
    offsets = torch.tensor([0] + [len(x) for x in ids[:-1]], dtype=torch.long).cumsum(0)
    flat = torch.tensor([i for x in ids for i in x], dtype=torch.long)
    return flat, offsets


class NgramClassifier(nn.Module):
    """Mean of hashed n-gram vectors (one score per class each) plus a bias."""

    def __init__(self, num_classes: int, config: ClassifierConfig = ClassifierConfig(), sparse: bool = False):
        super().__init__()
        self.config = config
        self.bag = nn.EmbeddingBag(config.n_buckets, num_classes, mode="mean", sparse=sparse)
        nn.init.zeros_(self.bag.weight)  # a convex model: start from zero, no init randomness
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.bag(flat, offsets) + self.bias

    def logits(self, texts) -> torch.Tensor:
        with torch.no_grad(), one_thread():
            return self(*encode(texts, self.config))


@contextmanager
def one_thread():
    """Run torch on one CPU thread.  Ops this small only lose time to thread hand-offs (20x on a
    busy 2-core machine), and one thread also fixes the order of floating-point sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_classifier(texts, labels, num_classes: int, config: ClassifierConfig = ClassifierConfig(),
                     seed: int = 0, class_weights=None) -> NgramClassifier:
    """Adam (sparse for the n-gram table) on cross-entropy, mini-batches in a seeded order.  ``class_weights`` (one per class)
    scale each example's loss by its class's weight, as ``F.cross_entropy(weight=...)`` does."""
    with one_thread():
        return _train(texts, labels, num_classes, config, seed, class_weights)


def _train(texts, labels, num_classes, config, seed, class_weights) -> NgramClassifier:
    model = NgramClassifier(num_classes, config, sparse=True)
    # Sparse gradients: a batch touches a few thousand of the n-gram rows, so only those rows are
    # updated (as fastText does); the dense bias gets ordinary Adam.  On the first step this is
    # exactly Adam; later, untouched rows keep their moment estimates instead of decaying them.
    optimizers = [torch.optim.SparseAdam([model.bag.weight], lr=config.lr),
                  torch.optim.Adam([model.bias], lr=config.lr)]
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    weight = None if class_weights is None else torch.as_tensor(np.asarray(class_weights), dtype=torch.float32)
    all_ids, offsets = encode(texts, config)
    lengths = torch.diff(torch.cat([offsets, torch.tensor([len(all_ids)])]))
    generator = torch.Generator().manual_seed(seed)
    for batch in _batches(len(texts), config, generator):
        # Gather the batch's n-gram ids from the flat array without a Python loop.
        lens = lengths[batch]
        starts = torch.cumsum(lens, 0) - lens
        gather = torch.repeat_interleave(offsets[batch] - starts, lens) + torch.arange(int(lens.sum()))
        loss = F.cross_entropy(model(all_ids[gather], starts), y[batch], weight=weight)
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
    return model.eval()


def _batches(n: int, config: ClassifierConfig, generator: torch.Generator):
    """Index batches: ``epochs`` shuffled passes, or exactly ``steps`` batches from as many passes as needed."""
    if config.steps is not None and n == 0:
        raise ValueError("ClassifierConfig.steps is set but there are no training examples")
    done, epoch = 0, 0
    while (epoch < config.epochs) if config.steps is None else (done < config.steps):
        for batch in torch.randperm(n, generator=generator).split(config.batch_size):
            if config.steps is not None and done == config.steps:
                return
            yield batch
            done += 1
        epoch += 1


def predict_proba(model: NgramClassifier, texts) -> np.ndarray:
    """Class probabilities, shape (len(texts), num_classes)."""
    return torch.softmax(model.logits(texts), dim=-1).numpy()


def per_example_loss(model: NgramClassifier, texts, labels) -> np.ndarray:
    """Cross-entropy of each example under the model (the basis of loss-based selection)."""
    logits = model.logits(texts)
    return F.cross_entropy(logits, torch.as_tensor(np.asarray(labels), dtype=torch.long), reduction="none").numpy()


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean())


def per_class_recall(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Recall of every class: correct predictions of class c / examples of class c (nan if none)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        mask = y_true == c
        if mask.any():
            out[c] = (y_pred[mask] == c).mean()
    return out


def fit_and_score(train_texts, train_labels, test_texts, test_labels, num_classes: int,
                  config: ClassifierConfig = ClassifierConfig(), seed: int = 0, class_weights=None) -> float:
    """Train on one set, return accuracy on another: the unit of every data experiment."""
    model = train_classifier(train_texts, train_labels, num_classes, config, seed, class_weights)
    return accuracy(test_labels, predict_proba(model, test_texts).argmax(1))


def out_of_fold_proba(texts, labels, folds, num_classes: int, config: ClassifierConfig = ClassifierConfig(),
                      seed: int = 0) -> np.ndarray:
    """Predicted probabilities for every example from the model that did NOT train on it
    (``folds`` from :func:`course_utils.splits.kfold_indices`)."""
    texts, labels = list(texts), np.asarray(labels)
    proba = np.zeros((len(texts), num_classes))
    for f, (train_idx, val_idx) in enumerate(folds):
        model = train_classifier([texts[i] for i in train_idx], labels[train_idx], num_classes, config, seed + f)
        proba[val_idx] = predict_proba(model, [texts[i] for i in val_idx])
    return proba
