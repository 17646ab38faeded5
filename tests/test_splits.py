"""Splits: exact sizes, stratification, no group in two splits, k-fold coverage."""

import statistics
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import splits


def test_split_counts_largest_remainder():
    assert splits.split_counts(10, [0.8, 0.1, 0.1]) == [8, 1, 1]
    assert splits.split_counts(7, [0.5, 0.5]) == [4, 3]
    assert splits.split_counts(3, [0.8, 0.1, 0.1]) == [3, 0, 0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=10, max_size=200), st.integers(0, 10))
def test_stratified_split_is_a_partition_with_class_proportions(labels, seed):
    parts = splits.stratified_split(labels, (0.8, 0.1, 0.1), seed)
    everything = np.concatenate(list(parts.values()))
    assert sorted(everything.tolist()) == list(range(len(labels)))
    counts = Counter(labels)
    for name, fraction in zip(splits.SPLIT_NAMES, (0.8, 0.1, 0.1)):
        got = Counter(np.asarray(labels)[parts[name]].tolist())
        for label, n in counts.items():
            assert abs(got[label] - fraction * n) < 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40)), min_size=10, max_size=200), st.integers(0, 10))
def test_group_split_never_straddles(rows, seed):
    labels, groups = [r[0] for r in rows], [r[1] for r in rows]
    parts = splits.group_split(labels, groups, (0.8, 0.1, 0.1), seed)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(rows)))
    assert splits.straddling_groups(groups, parts) == 0


def test_random_split_straddles_groups_that_group_split_keeps_together():
    labels = [i % 4 for i in range(400)]
    groups = [i // 4 for i in range(400)]  # 100 groups of 4
    random_parts = splits.random_split(400, seed=0)
    assert splits.straddling_groups(groups, random_parts) > 0
    assert splits.straddling_groups(groups, splits.group_split(labels, groups, seed=0)) == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30)), min_size=20, max_size=120),
       st.integers(2, 5), st.booleans())
def test_kfold_validates_every_example_once(rows, k, use_groups):
    labels, groups = [r[0] for r in rows], [r[1] for r in rows]
    folds = splits.kfold_indices(labels, k, seed=0, groups=groups if use_groups else None)
    assert len(folds) == k
    seen = np.concatenate([val for _, val in folds])
    assert sorted(seen.tolist()) == list(range(len(rows)))
    for train, val in folds:
        assert not set(train.tolist()) & set(val.tolist())
        if use_groups:
            assert not {groups[i] for i in train} & {groups[i] for i in val}


def test_stratified_kfold_balances_classes():
    labels = [0] * 50 + [1] * 10
    for _, val in splits.kfold_indices(labels, 5, seed=0):
        assert Counter(np.asarray(labels)[val].tolist()) == {0: 10, 1: 2}


def test_mean_and_spread_is_the_sample_std():
    scores = [0.9, 0.95, 0.85, 1.0]
    mean, spread = splits.mean_and_spread(scores)
    assert mean == pytest.approx(statistics.mean(scores)) and spread == pytest.approx(statistics.stdev(scores))


def test_template_split_holds_whole_templates_out_per_stratum():
    # 2 strata x 5 templates x 3 rows; one row of template "a0" carries another stratum's label.
    tids = [f"{s}{t}" for s in "ab" for t in range(5) for _ in range(3)]
    strata = [tid[0] for tid in tids]
    strata[0] = "b"
    parts = splits.template_split(tids, strata, (0.6, 0.2, 0.2), seed=1)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(tids)))
    assert splits.straddling_groups(tids, parts) == 0
    for s in "ab":  # split_counts(5, (0.6, 0.2, 0.2)) == [3, 1, 1] templates in every stratum
        per_split = [len({tids[i] for i in parts[name] if tids[i][0] == s}) for name in splits.SPLIT_NAMES]
        assert per_split == [3, 1, 1]


def test_template_split_of_news_cls_leaves_every_test_template_unseen():
    from course_utils.data import load_records
    rows = [r for r in load_records("news_cls") if set(r["flags"]) <= {"mislabeled"}]
    ambiguous = [r["template_id"].endswith(("amb1", "amb2", "amb3", "amb4")) for r in rows]
    parts = splits.template_split([r["template_id"] for r in rows],
                                  [(r["label"], r["lang"], a) for r, a in zip(rows, ambiguous)], (0.5, 0.2, 0.3))
    seen = {rows[i]["template_id"] for i in parts["train"]}
    tested = {rows[i]["template_id"] for i in parts["test"]}
    assert not seen & tested
    # Per topic and language, 12 ordinary templates -> 6 / 2 / 4 and 4 ambiguous ones -> 2 / 1 / 1,
    # by largest remainder; 8 topic-language pairs.
    assert len(seen) == 8 * 8 and len(tested) == 8 * 5
    assert sum(t.endswith(("amb1", "amb2", "amb3", "amb4")) for t in tested) == 8
    assert {tid.rsplit("-", 1)[0] for tid in tested} == {f"{lang}-{label}" for lang in ("zh", "en")
                                                         for label in ("sports", "finance", "tech", "entertainment")}
