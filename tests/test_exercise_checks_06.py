"""Exercise checks of notebooks 06 and 06b: right answers pass, known slips are recognised, wrong code is caught.

Expected values are worked by hand here, not taken from the functions the checks call."""

import math
from collections import Counter

import pytest

from course_utils import exercises
from course_utils.augment import check_eda_changes
from course_utils.cleaning import check_han_ratio, check_mask_pii
from course_utils.dedup import check_candidate_probability, check_jaccard, check_shingle_jaccard_code
from course_utils.imbalance import check_class_weights, check_class_weights_code
from course_utils.selection import check_el2n
from course_utils.splits import check_split_counts


def said(capsys, check, *args):
    check(*args)
    return capsys.readouterr().out


def test_value_exercises(capsys):
    text = "发布iPhone 16 Pro"  # 2 Han, 9 Latin letters, 2 digits, 15 characters
    assert "Correct" in said(capsys, check_han_ratio, text, 2 / 11)
    assert "divided by every character" in said(capsys, check_han_ratio, text, 2 / 15)
    assert "counted the digits" in said(capsys, check_han_ratio, text, 2 / 13)
    assert "Correct" in said(capsys, check_candidate_probability, 0.6, 20, 5, 1 - (1 - 0.6 ** 5) ** 20)
    assert "ANY of the bands" in said(capsys, check_candidate_probability, 0.6, 20, 5, 0.6 ** 5)
    assert "Correct" in said(capsys, check_split_counts, 37, (0.8, 0.1, 0.1), [29, 4, 4])
    assert "add up to 35" in said(capsys, check_split_counts, 37, (0.8, 0.1, 0.1), [29, 3, 3])
    assert "Correct" in said(capsys, check_el2n, [0.7, 0.2, 0.1], 1, math.sqrt(0.49 + 0.64 + 0.01))
    assert "squared norm" in said(capsys, check_el2n, [0.7, 0.2, 0.1], 1, 1.14)
    assert "1 − p(label)" in said(capsys, check_el2n, [0.7, 0.2, 0.1], 1, 0.8)
    labels = [0] * 6 + [1] * 2 + [2]
    assert "Correct" in said(capsys, check_class_weights, labels, 3, [0.5, 1.5, 3.0])
    assert "wrong scale" in said(capsys, check_class_weights, labels, 3, [1 / 6, 1 / 2, 1.0])
    assert "Correct" in said(capsys, check_eda_changes, 23, 0.1, 2)
    assert "rounds it down" in said(capsys, check_eda_changes, 23, 0.1, 2.3)
    out = said(capsys, check_mask_pii, "热线：１３８-１２３４-５６７８", "热线：１３８-１２３４-５６７８")
    assert "Not yet" in out


def test_no_answer_gives_nothing_away(capsys):
    out = said(capsys, check_jaccard, "data cleaning", "data cleansing", 3, None)
    assert out.strip() == exercises.NOT_ANSWERED


def hand_shingles(text, k):
    return set() if not text else ({text} if len(text) <= k else {text[i:i + k] for i in range(len(text) - k + 1)})


def right_jaccard(a, b, k):
    x, y = hand_shingles(a, k), hand_shingles(b, k)
    return len(x & y) / len(x | y) if x | y else 0.0


def wrong_jaccard_drops_short_texts(a, b, k):  # forgets that a text of at most k characters is one shingle
    x = {a[i:i + k] for i in range(len(a) - k + 1)}
    y = {b[i:i + k] for i in range(len(b) - k + 1)}
    return len(x & y) / len(x | y) if x | y else 0.0


def wrong_jaccard_overlap_over_smaller(a, b, k):
    x, y = hand_shingles(a, k), hand_shingles(b, k)
    return len(x & y) / min(len(x), len(y)) if x and y else 0.0


def test_write_the_code_jaccard(capsys):
    assert "all 60 generated cases" in said(capsys, check_shingle_jaccard_code, right_jaccard)
    assert "differs" in said(capsys, check_shingle_jaccard_code, wrong_jaccard_drops_short_texts)
    assert "differs" in said(capsys, check_shingle_jaccard_code, wrong_jaccard_overlap_over_smaller)


def right_weights(labels, num_classes):
    counts = Counter(labels)
    return [len(labels) / (num_classes * counts[c]) for c in range(num_classes)]


def test_write_the_code_class_weights(capsys):
    assert "all 40 generated cases" in said(capsys, check_class_weights_code, right_weights)
    inverse = lambda labels, k: [1 / Counter(labels)[c] for c in range(k)]
    assert "differs" in said(capsys, check_class_weights_code, inverse)
    assert "No code yet" in said(capsys, check_class_weights_code, None)
