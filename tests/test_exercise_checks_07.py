"""Exercise checks of notebook 07: right answers pass, known slips are recognised, wrong code is caught.

Expected values are worked by hand here (or by scikit-learn), not taken from the functions the checks call."""

import math

import pytest
from sklearn.metrics import f1_score

from course_utils.metrics import check_macro_f1, check_macro_f1_code, check_roc_auc, macro_f1, macro_f1_cases
from course_utils.train_classifier import check_fixed_padding_fraction, check_mislabeled_precision_at_k

CM = [[8, 2, 0], [1, 6, 3], [0, 1, 9]]          # the notebook's matrix
SCORES = [0.9, 0.8, 0.6, 0.4, 0.3, 0.7, 0.5, 0.3, 0.1]
IS_TECH = [True] * 5 + [False] * 4


def said(capsys, check, *args):
    assert check(*args) is None or check is check_macro_f1_code
    return capsys.readouterr().out


def test_macro_f1_value(capsys):
    # F1 per class by hand: 2PR/(P+R) with P = 8/9, 6/9, 9/12 and R = 8/10, 6/10, 9/10.
    f1 = [2 * p * r / (p + r) for p, r in [(8 / 9, 0.8), (6 / 9, 0.6), (0.75, 0.9)]]
    assert said(capsys, check_macro_f1, None, CM).startswith("📝 No answer yet")
    assert "✅" in said(capsys, check_macro_f1, round(sum(f1) / 3, 4), CM)
    assert "micro F1" in said(capsys, check_macro_f1, round(23 / 30, 4), CM)        # accuracy
    assert "averaged precision and recall" in said(capsys, check_macro_f1, 0.7676, CM)
    first = said(capsys, check_macro_f1, 0.5, CM)
    assert "Hint 1 of 3" in first and "column" not in first                        # a nudge, not the method
    assert "Hint 2 of 3" in said(capsys, check_macro_f1, 0.5, CM)


def test_roc_auc_value(capsys):
    # 20 pairs; wins 4 + 4 + 3 + 2 + 1 = 14 and one tie (0.3 vs 0.3) -> 14.5 / 20.
    assert said(capsys, check_roc_auc, None, SCORES, IS_TECH).startswith("📝")
    assert "✅" in said(capsys, check_roc_auc, 0.725, SCORES, IS_TECH)
    assert "tie as a loss" in said(capsys, check_roc_auc, 14 / 20, SCORES, IS_TECH)
    assert "tie as a win" in said(capsys, check_roc_auc, 15 / 20, SCORES, IS_TECH)
    # hard labels at 0.5: TPR 3/5, FPR 2/4 -> (1 + 0.6 - 0.5) / 2
    assert "hard labels" in said(capsys, check_roc_auc, 0.55, SCORES, IS_TECH)
    assert "swapped" in said(capsys, check_roc_auc, 0.275, SCORES, IS_TECH)
    assert "Hint 1 of 3" in said(capsys, check_roc_auc, 0.9, SCORES, IS_TECH)


def test_fixed_padding_fraction(capsys):
    lengths = [2, 4, 3]            # 9 real positions of 15
    assert said(capsys, check_fixed_padding_fraction, None, lengths, 5).startswith("📝")
    assert "✅" in said(capsys, check_fixed_padding_fraction, 0.4, lengths, 5)
    assert "share of real positions" in said(capsys, check_fixed_padding_fraction, 0.6, lengths, 5)
    assert "percentage" in said(capsys, check_fixed_padding_fraction, 40, lengths, 5)
    assert "number of pad positions" in said(capsys, check_fixed_padding_fraction, 6, lengths, 5)
    assert "longest row" in said(capsys, check_fixed_padding_fraction, 0.25, lengths, 5)   # 1 - 9/12


def test_mislabeled_precision_at_k(capsys):
    losses = [0.9, 0.1, 0.8, 0.2, 0.7, 0.6]
    flagged = [True, False, False, True, True, False]   # k = 3 flagged; top 6 by loss: rows 0, 2, 4, 5, 3, 1
    # top 3 = rows 0, 2, 4 -> 2 flagged; top 6 = all -> 3/6 (k = 3, cut-off 2k = 6)
    assert said(capsys, check_mislabeled_precision_at_k, None, losses, flagged, 6).startswith("📝")
    assert "✅" in said(capsys, check_mislabeled_precision_at_k, 0.5, losses, flagged, 6)
    assert "precision@k" in said(capsys, check_mislabeled_precision_at_k, 2 / 3, losses, flagged, 6)
    # cut-off 2: top 2 = rows 0, 2 -> 1 flagged; the count 1 instead of the share 1/2
    assert "number of flagged rows" in said(capsys, check_mislabeled_precision_at_k, 1, losses, flagged, 2)
    # cut-off 4: top 4 = rows 0, 2, 4, 5 -> 2 flagged -> 0.5; 2 of the 3 flagged rows = recall 2/3
    assert "recall@k" in said(capsys, check_mislabeled_precision_at_k, 2 / 3, losses, flagged, 4)
    # lowest 3 = rows 1, 3, 5 -> 1 flagged -> 1/3, while the right top-3 answer is 2/3
    assert "lowest-loss" in said(capsys, check_mislabeled_precision_at_k, 1 / 3, losses, flagged, 3)


def sklearn_macro_f1(y_true, y_pred, num_classes):
    return float(f1_score(y_true, y_pred, labels=list(range(num_classes)), average="macro", zero_division=0))


def loop_macro_f1(y_true, y_pred, num_classes):
    """A learner's right answer, with plain counts."""
    total = 0.0
    for c in range(num_classes):
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred))
        predicted, true = sum(p == c for p in y_pred), sum(t == c for t in y_true)
        precision = tp / predicted if predicted else 0.0
        recall = tp / true if true else 0.0
        total += 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return total / num_classes


def micro_f1(y_true, y_pred, num_classes):
    return float(f1_score(y_true, y_pred, average="micro"))


def present_classes_only(y_true, y_pred, num_classes):
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))   # labels seen in the lists only


def nan_for_absent(y_true, y_pred, num_classes):
    return float(f1_score(y_true, y_pred, labels=list(range(num_classes)), average="macro", zero_division=math.nan))


def test_macro_f1_matches_sklearn():
    for y_true, y_pred, k in macro_f1_cases():
        assert macro_f1(y_true, y_pred, k) == pytest.approx(sklearn_macro_f1(y_true, y_pred, k))
    assert macro_f1([0, 1], [0, 1], 3) == pytest.approx(2 / 3)   # the absent class 2 counts as F1 = 0


def test_macro_f1_code_check(capsys):
    assert check_macro_f1_code(loop_macro_f1) is True
    assert "✅" in capsys.readouterr().out
    for wrong in (micro_f1, present_classes_only, nan_for_absent):
        assert check_macro_f1_code(wrong) is False
        assert "differs" in capsys.readouterr().out


def test_macro_f1_code_no_code_and_hints(capsys):
    def stub(y_true, y_pred, num_classes):
        raise NotImplementedError

    assert check_macro_f1_code(stub) is False
    assert capsys.readouterr().out.startswith("📝")
    check_macro_f1_code(micro_f1)
    assert "Hint 1 of 3" in capsys.readouterr().out
