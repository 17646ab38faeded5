"""Issue 13, numerics: edge cases where the course's hand-written maths differed from the reference.
References: torch (softmax family, cross-entropy) and scikit-learn (macro averages).  Clipping is in
test_optim.py, the packing mask under sdpa and eager in test_packing.py."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import precision_recall_fscore_support

from course_utils import dedup, metrics
from course_utils import losses as L

INF, NAN = float("inf"), float("nan")
ROWS = [[INF, 0.0], [-INF, -INF], [INF, INF], [-INF, 0.0], [NAN, 0.0], [INF, -INF], [1e30, 0.0],
        [-1e30, 3.0], [0.0, 0.0], [88.0, 89.0, -3.0], [-INF, 2.0, INF]]


@pytest.mark.parametrize("row", ROWS, ids=[str(r) for r in ROWS])
def test_softmax_family_matches_torch_with_inf_and_nan(row):
    x = torch.tensor([row])
    torch.testing.assert_close(L.log_softmax(x), torch.log_softmax(x, -1), equal_nan=True)
    torch.testing.assert_close(L.softmax(x), torch.softmax(x, -1), equal_nan=True)
    torch.testing.assert_close(L.logsumexp(x), torch.logsumexp(x, -1), equal_nan=True)


def test_log_softmax_of_inf_and_zero_is_nan_as_in_torch():
    assert torch.isnan(L.log_softmax(torch.tensor([INF, 0.0]))).all()


def test_sequence_mean_loss_leaves_out_sequences_without_trained_tokens():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7, dtype=torch.float64)
    labels = torch.tensor([[1, 2, -100, 3, 4], [-100] * 5, [-100, -100, 6, -100, 0]])
    # reference: torch's own per-sequence token mean, averaged over the sequences that train something
    per_sequence = [F.cross_entropy(logits[i], labels[i]) for i in (0, 2)]
    expected = torch.stack(per_sequence).mean()
    torch.testing.assert_close(L.sequence_mean_loss(logits, labels), expected)
    # no trained token anywhere: NaN, as F.cross_entropy gives for an all-ignored batch
    none = torch.full((2, 5), -100)
    assert torch.isnan(L.sequence_mean_loss(logits[:2], none))
    assert torch.isnan(F.cross_entropy(logits[:2].reshape(-1, 7), none.reshape(-1)))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(2, 6).flatmap(lambda c: st.tuples(
    st.just(c), st.lists(st.tuples(st.integers(0, c - 1), st.integers(0, c - 1)), min_size=1, max_size=40))))
def test_macro_averages_match_sklearn_with_labels_and_zero_division_0(case):
    num_classes, pairs = case
    y_true, y_pred = [t for t, _ in pairs], [p for _, p in pairs]
    labels = [f"c{i}" for i in range(num_classes)]
    ours = metrics.classification_report(y_true, y_pred, labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(range(num_classes)), zero_division=0)
    for i, name in enumerate(labels):
        row = ours["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))
    macro = precision_recall_fscore_support(y_true, y_pred, labels=list(range(num_classes)), average="macro",
                                            zero_division=0)
    assert (ours["macro_precision"], ours["macro_recall"], ours["macro_f1"]) == pytest.approx(macro[:3])
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, num_classes),
                                  sk_confusion_matrix(y_true, y_pred, labels=list(range(num_classes))))


def test_absent_class_counts_zero_in_our_macro_and_is_left_out_by_sklearn_without_labels():
    y_true, y_pred = [0, 1, 0], [0, 1, 1]            # class 2 occurs nowhere
    ours = metrics.classification_report(y_true, y_pred, ["a", "b", "c"])
    assert ours["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    without_labels = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)[2]
    assert without_labels == pytest.approx(2 / 3) and without_labels > ours["macro_f1"]


def test_confusion_matrix_refuses_ids_out_of_range():
    with pytest.raises(ValueError, match="class id -1"):
        metrics.confusion_matrix([0, -1], [0, 1], 3)
    with pytest.raises(ValueError, match="class id 3"):
        metrics.confusion_matrix([0, 1], [0, 3], 3)


def test_estimate_jaccard_of_empty_texts_agrees_with_jaccard():
    texts = ["", "   ", "hello there world", "hello there world", "completely different"]
    sigs = dedup.minhash_signatures(texts)
    sets = [dedup.char_shingles(t) for t in texts]
    assert dedup.jaccard(sets[0], sets[1]) == 0.0
    assert dedup.estimate_jaccard(sigs[0], sigs[1]) == 0.0
    assert dedup.estimate_jaccard(sigs[0], sigs[2]) == 0.0
    assert dedup.estimate_jaccard(sigs[2], sigs[3]) == 1.0 == dedup.jaccard(sets[2], sets[3])
    rowwise = dedup.estimate_jaccard(sigs[[0, 2, 2]], sigs[[1, 3, 4]])
    assert rowwise[0] == 0.0 and rowwise[1] == 1.0 and rowwise[2] < 0.3
