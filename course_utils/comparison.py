"""Comparing two recipes honestly: paired differences, McNemar's test, and a verdict.

"Recipe A beats recipe B" is a claim about a difference, so measure the difference where the
noise cancels: score both recipes on the *same* seeds (or the same test items) and look at the
per-pair differences.  Two means side by side hide how much each one moves from seed to seed.

* :func:`paired_comparison` takes one score per seed (or item) for each recipe, paired by
  position.  It reports the mean difference, its t confidence interval, the paired t-test
  p-value, and an exact sign test that does not assume normal differences.
* :func:`mcnemar` takes, for two models scored on the same test items, whether each got each
  item right.  Only the items where they disagree carry information; the exact binomial test on
  those is McNemar's test.

Both end in a verdict from a fixed vocabulary: ``"<A> better"``, ``"<B> better"`` or
``"no detectable difference"``, at a stated level.  "No detectable difference" does not mean
"equal": it means this many seeds or items could not tell the two apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NO_DIFFERENCE = "no detectable difference"


def _two_sided_binomial_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips (0.5 each way).

    With p = 0.5 the distribution is symmetric, so the two-sided p-value is twice the smaller tail."""
    if n == 0:
        return 1.0
    tail = min(k, n - k)
    p = 2 * sum(math.comb(n, i) for i in range(tail + 1)) / 2 ** n
    return min(1.0, p)


def _verdict(better_a: bool, better_b: bool, names: tuple[str, str]) -> str:
    if better_a:
        return f"{names[0]} better"
    if better_b:
        return f"{names[1]} better"
    return NO_DIFFERENCE


@dataclass(frozen=True)
class PairedComparison:
    names: tuple[str, str]
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float      # mean of a - b
    ci_low: float         # t interval of the mean difference
    ci_high: float
    p_value: float        # paired t-test, two-sided
    wins: int             # pairs where A is better (direction follows higher_is_better)
    losses: int
    ties: int
    sign_p: float         # exact sign test, ties dropped
    level: float
    higher_is_better: bool
    verdict: str
    unit: str = "seeds"

    def __str__(self) -> str:
        a, b = self.names
        pct = f"{self.level:.0%}"
        return (f"{a} − {b} over {self.n} paired {self.unit}: mean difference {self.mean_diff:+.4f} "
                f"({pct} t-interval [{self.ci_low:+.4f}, {self.ci_high:+.4f}], paired t p = {self.p_value:.4f})\n"
                f"  mean {a} {self.mean_a:.4f}, mean {b} {self.mean_b:.4f}; sign test: {a} better in "
                f"{self.wins}, worse in {self.losses}, tied in {self.ties}, p = {self.sign_p:.4f}\n"
                f"  verdict at the {pct} level: {self.verdict}")


def paired_comparison(a, b, names=("A", "B"), level: float = 0.95, higher_is_better: bool = True,
                      unit: str = "seeds") -> PairedComparison:
    """Compare recipes A and B from scores paired by position (same seed or same item).

    The verdict follows the t interval of the mean difference: A is better when the whole
    interval lies on A's side of zero, B when it lies on B's side, and otherwise there is no
    detectable difference.  Set ``higher_is_better=False`` for losses and error rates."""
    from scipy.stats import t as student_t

    a = [float(x) for x in a]
    b = [float(x) for x in b]
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    n = len(a)
    if n < 2:
        raise ValueError(f"a paired comparison needs at least 2 pairs, got {n}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if any(math.isnan(x) for x in a + b):
        raise ValueError("scores contain NaN")
    diffs = [x - y for x, y in zip(a, b)]
    mean_diff = sum(diffs) / n
    sd = math.sqrt(sum((d - mean_diff) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    if se > 0:
        t_stat = mean_diff / se
        p_value = float(2 * student_t.sf(abs(t_stat), n - 1))
        half = float(student_t.ppf((1 + level) / 2, n - 1)) * se
    else:  # every pair differs by the same amount: no spread to doubt it
        p_value = 1.0 if mean_diff == 0 else 0.0
        half = 0.0
    low, high = mean_diff - half, mean_diff + half
    sign = 1 if higher_is_better else -1
    wins = sum(1 for d in diffs if sign * d > 0)
    losses = sum(1 for d in diffs if sign * d < 0)
    ties = n - wins - losses
    better_a = sign * low > 0 and sign * high > 0
    better_b = sign * low < 0 and sign * high < 0
    return PairedComparison(names=tuple(names), n=n, mean_a=sum(a) / n, mean_b=sum(b) / n,
                            mean_diff=mean_diff, ci_low=low, ci_high=high, p_value=p_value,
                            wins=wins, losses=losses, ties=ties,
                            sign_p=_two_sided_binomial_p(wins, wins + losses), level=level,
                            higher_is_better=higher_is_better,
                            verdict=_verdict(better_a, better_b, tuple(names)), unit=unit)


@dataclass(frozen=True)
class McNemar:
    names: tuple[str, str]
    n: int
    accuracy_a: float
    accuracy_b: float
    only_a: int           # items A got right and B got wrong
    only_b: int           # items B got right and A got wrong
    p_value: float        # exact two-sided binomial test on the discordant items
    ci_low: float         # exact interval of accuracy_a - accuracy_b, given the discordant items
    ci_high: float
    level: float
    verdict: str

    @property
    def difference(self) -> float:
        return self.accuracy_a - self.accuracy_b

    def __str__(self) -> str:
        a, b = self.names
        pct = f"{self.level:.0%}"
        return (f"{a} vs {b} on the same {self.n} items: accuracy {self.accuracy_a:.4f} vs {self.accuracy_b:.4f}, "
                f"difference {self.difference:+.4f} ({pct} exact interval [{self.ci_low:+.4f}, {self.ci_high:+.4f}])\n"
                f"  McNemar: only {a} right on {self.only_a}, only {b} right on {self.only_b}; "
                f"exact p = {self.p_value:.4f}\n"
                f"  verdict at the {pct} level: {self.verdict}")


def mcnemar(correct_a, correct_b, names=("A", "B"), level: float = 0.95) -> McNemar:
    """McNemar's exact test for two models scored on the same items.

    ``correct_a[i]`` and ``correct_b[i]`` say whether each model got item ``i`` right.  Items both
    got right (or both wrong) say nothing about which is better; under "no difference" each
    discordant item is equally likely to favour either model, so the count favouring A is
    Binomial(discordant, 1/2).  The verdict follows that exact p-value.

    The interval is the Clopper-Pearson interval of the share of discordant items that favour A,
    mapped to a difference in accuracy (given how many items are discordant).  It excludes 0 exactly
    when the test rejects, so the printed interval and the verdict never disagree, as a Wald interval
    can on a few discordant items."""
    from scipy.stats import beta

    correct_a = [bool(x) for x in correct_a]
    correct_b = [bool(x) for x in correct_b]
    if len(correct_a) != len(correct_b):
        raise ValueError(f"the two models must be scored on the same items, got {len(correct_a)} and {len(correct_b)}")
    n = len(correct_a)
    if n == 0:
        raise ValueError("no items to compare")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    only_a = sum(1 for x, y in zip(correct_a, correct_b) if x and not y)
    only_b = sum(1 for x, y in zip(correct_a, correct_b) if y and not x)
    p_value = _two_sided_binomial_p(only_a, only_a + only_b)
    alpha = 1 - level
    discordant = only_a + only_b
    if discordant:
        share_low = float(beta.ppf(alpha / 2, only_a, only_b + 1)) if only_a else 0.0
        share_high = float(beta.ppf(1 - alpha / 2, only_a + 1, only_b)) if only_b else 1.0
    else:
        share_low = share_high = 0.5
    # accuracy_a - accuracy_b = (only_a - only_b) / n = discordant / n * (2 * share - 1)
    low, high = (discordant / n * (2 * share - 1) for share in (share_low, share_high))
    significant = p_value < alpha
    return McNemar(names=tuple(names), n=n, accuracy_a=sum(correct_a) / n, accuracy_b=sum(correct_b) / n,
                   only_a=only_a, only_b=only_b, p_value=p_value, ci_low=low, ci_high=high,
                   level=level, verdict=_verdict(significant and only_a > only_b,
                                                 significant and only_b > only_a, tuple(names)))
