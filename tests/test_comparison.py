"""course_utils.comparison against scipy.stats (independent code paths) and hand-worked cases."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from course_utils.comparison import NO_DIFFERENCE, mcnemar, paired_comparison

scores = st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=3, max_size=30)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_paired_matches_scipy_ttest_rel(data):
    a = data.draw(scores)
    b = data.draw(st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=len(a), max_size=len(a)))
    d = np.subtract(a, b)
    if np.std(d) < 1e-9:  # scipy returns nan when every difference is equal
        return
    ours = paired_comparison(a, b)
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert ours.mean_diff == pytest.approx(float(np.mean(d)), abs=1e-12)
    assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-6, abs=1e-12)
    assert ours.ci_low == pytest.approx(float(ci.low), rel=1e-6, abs=1e-9)
    assert ours.ci_high == pytest.approx(float(ci.high), rel=1e-6, abs=1e-9)
    wins, losses = int(np.sum(d > 0)), int(np.sum(d < 0))
    assert (ours.wins, ours.losses, ours.ties) == (wins, losses, len(a) - wins - losses)
    if wins + losses:
        assert ours.sign_p == pytest.approx(stats.binomtest(wins, wins + losses, 0.5).pvalue, rel=1e-9)


def test_paired_verdicts_follow_the_interval():
    rng = np.random.default_rng(0)
    base = rng.normal(0.7, 0.05, size=20)
    better = base + 0.05 + rng.normal(0, 0.01, size=20)
    r = paired_comparison(better, base, names=("new", "old"))
    assert r.verdict == "new better" and r.ci_low > 0
    assert paired_comparison(base, better, names=("old", "new")).verdict == "new better"
    # losses: lower is better, so the same numbers now favour the other recipe
    assert paired_comparison(better, base, names=("new", "old"), higher_is_better=False).verdict == "old better"
    noise = base + rng.normal(0, 0.05, size=20)
    r = paired_comparison(noise, base)
    assert (r.ci_low < 0 < r.ci_high) == (r.verdict == NO_DIFFERENCE)


def test_paired_hand_worked_example():
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3); t = 2*sqrt(3) with 2 degrees of freedom
    r = paired_comparison([2, 3, 4], [1, 1, 1])
    assert r.mean_diff == 2
    t975 = 4.302653  # t quantile, 2 df, 97.5%, from printed tables
    assert r.ci_low == pytest.approx(2 - t975 / 3 ** 0.5)
    assert r.sign_p == pytest.approx(0.25)  # 3 wins out of 3: 2 * (1/2)^3
    assert "mean difference +2.0000" in str(r)


def test_paired_degenerate_and_bad_input():
    assert paired_comparison([1, 1, 1], [1, 1, 1]).verdict == NO_DIFFERENCE  # both at the ceiling
    assert paired_comparison([1, 1, 1], [0.5, 0.5, 0.5]).verdict == "A better"
    with pytest.raises(ValueError, match="equal lengths"):
        paired_comparison([1, 2], [1])
    with pytest.raises(ValueError, match="at least 2"):
        paired_comparison([1], [0])
    with pytest.raises(ValueError, match="NaN"):
        paired_comparison([1, float("nan")], [0, 0])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200))
def test_mcnemar_matches_binomtest_and_its_exact_interval(pairs):
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    r = mcnemar(a, b)
    only_a = sum(x and not y for x, y in pairs)
    only_b = sum(y and not x for x, y in pairs)
    d, n = only_a + only_b, len(pairs)
    assert (r.only_a, r.only_b) == (only_a, only_b)
    expected_p = stats.binomtest(only_a, d, 0.5).pvalue if d else 1.0
    assert r.p_value == pytest.approx(expected_p, rel=1e-9)
    if d:
        ci = stats.binomtest(only_a, d, 0.5).proportion_ci(0.95, method="exact")
        assert r.ci_low == pytest.approx(d / n * (2 * ci.low - 1), abs=1e-9)
        assert r.ci_high == pytest.approx(d / n * (2 * ci.high - 1), abs=1e-9)
    # the interval and the verdict agree: 0 lies outside exactly when the test rejects
    assert (r.ci_low > 0 or r.ci_high < 0) == (r.p_value < 0.05)
    assert (r.verdict == NO_DIFFERENCE) == (r.p_value >= 0.05)


@pytest.mark.parametrize("k,d", [(3, 10), (0, 7), (9, 12), (1, 1)])
def test_exact_interval_ends_cut_off_two_and_a_half_percent(k, d):
    """At the Clopper-Pearson ends the binomial tails are exactly 2.5% (sums of C(d, i) by hand)."""
    r = mcnemar([True] * k + [False] * (d - k), [False] * k + [True] * (d - k))
    low_share = (r.ci_low + 1) / 2    # n == d here, so the share is (difference + 1) / 2
    high_share = (r.ci_high + 1) / 2
    upper_tail = sum(math.comb(d, i) * low_share ** i * (1 - low_share) ** (d - i) for i in range(k, d + 1))
    lower_tail = sum(math.comb(d, i) * high_share ** i * (1 - high_share) ** (d - i) for i in range(0, k + 1))
    assert (k == 0 and low_share == 0) or upper_tail == pytest.approx(0.025, abs=1e-9)
    assert (k == d and high_share == 1) or lower_tail == pytest.approx(0.025, abs=1e-9)


def test_mcnemar_hand_worked_example():
    # 10 items only A gets right, 1 only B: p = 2 * (1 + 11) / 2^11
    a = [True] * 10 + [False] + [True] * 5 + [False] * 4
    b = [False] * 10 + [True] + [True] * 5 + [False] * 4
    r = mcnemar(a, b, names=("SFT", "base"))
    assert r.p_value == pytest.approx(24 / 2048)
    assert r.verdict == "SFT better"
    assert mcnemar(b, a, names=("base", "SFT")).verdict == "SFT better"
    assert mcnemar(a, a).verdict == NO_DIFFERENCE
    with pytest.raises(ValueError, match="same items"):
        mcnemar([True], [True, False])
