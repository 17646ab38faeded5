"""Train / validation / test splits that measure what they claim to measure.

* :func:`stratified_split`: every split gets each class in the same proportion as the whole set
  (largest-remainder rounding per class), so a rare class cannot vanish from the test set by chance.
* :func:`group_split`: whole groups go to one split.  Groups are near-duplicates (or one source,
  one author, one template...): if a group straddles train and test, the test set partly measures
  memory, not generalisation (leakage, 数据泄露).  Groups are assigned greedily, largest first, to
  the split and class that are furthest below their target, so classes stay balanced too.
* :func:`template_split`: whole templates go to one split, cut per stratum (topic and language) by
  number of templates, so every test headline comes from a template the model never saw: the
  test measures generalisation to new phrasings, not recall of familiar ones.
* :func:`kfold_indices`: stratified (optionally group-aware) k-fold cross-validation folds;
  :func:`mean_and_spread` summarises the k scores as mean and sample standard deviation.
* :func:`straddling_groups`: the property a group split must have: zero groups in two splits.

All functions take labels (and groups) as sequences and return sorted numpy index arrays; a seed
makes them repeatable.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from course_utils.exercises import check_answer

SPLIT_NAMES = ("train", "validation", "test")


def split_counts(n: int, fractions) -> list[int]:
    """Integer sizes that add up to n, by largest remainder: (10, [0.8, 0.1, 0.1]) -> [8, 1, 1]."""
    fractions = np.asarray(fractions, dtype=float) / np.sum(fractions)
    raw = fractions * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def stratified_split(labels, fractions=(0.8, 0.1, 0.1), seed: int = 0,
                     names=SPLIT_NAMES) -> dict[str, np.ndarray]:
    """Index arrays per split, each class cut in the given proportions."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    parts = {name: [] for name in names}
    for label in sorted(set(labels.tolist())):
        members = rng.permutation(np.flatnonzero(labels == label))
        cuts = np.cumsum([0] + split_counts(len(members), fractions))
        for name, lo, hi in zip(names, cuts[:-1], cuts[1:]):
            parts[name].append(members[lo:hi])
    return {name: np.sort(np.concatenate(p)) for name, p in parts.items()}


def random_split(n: int, fractions=(0.8, 0.1, 0.1), seed: int = 0, names=SPLIT_NAMES) -> dict[str, np.ndarray]:
    """A plain shuffled split, ignoring classes and groups (the baseline the others fix)."""
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.cumsum([0] + split_counts(n, fractions))
    return {name: np.sort(order[lo:hi]) for name, lo, hi in zip(names, cuts[:-1], cuts[1:])}


def _group_table(labels, groups):
    """group id -> (member indices, majority label)."""
    members = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    table = {}
    for g, idx in members.items():
        counts = Counter(labels[i] for i in idx)
        table[g] = (idx, min(counts, key=lambda lab: (-counts[lab], str(lab))))
    return table


def _shuffled_groups_per_label(table: dict, rng):
    """For each class (in a fixed order), its group ids shuffled, then largest group first
    (the sort is stable, so equal sizes keep their random order)."""
    by_label = defaultdict(list)
    for g, (_, label) in table.items():
        by_label[label].append(g)
    for label in sorted(by_label, key=str):
        gids = sorted(by_label[label], key=str)
        gids = [gids[i] for i in rng.permutation(len(gids))]
        gids.sort(key=lambda g: -len(table[g][0]))
        yield gids


def group_split(labels, groups, fractions=(0.8, 0.1, 0.1), seed: int = 0,
                names=SPLIT_NAMES) -> dict[str, np.ndarray]:
    """Index arrays per split such that every group lies in exactly one split, with each class
    (a group counts under its majority label) split close to the given proportions."""
    labels = list(labels)
    table = _group_table(labels, list(groups))
    rng = np.random.default_rng(seed)
    fractions = np.asarray(fractions, dtype=float) / np.sum(fractions)
    parts = {name: [] for name in names}
    for gids in _shuffled_groups_per_label(table, rng):
        total = sum(len(table[g][0]) for g in gids)
        target = fractions * total
        filled = np.zeros(len(names))
        for g in gids:
            size = len(table[g][0])
            s = int(np.argmax(target - filled))  # the split furthest below its target
            filled[s] += size
            parts[names[s]].extend(table[g][0])
    return {name: np.array(sorted(p), dtype=int) for name, p in parts.items()}


def template_split(template_ids, strata, fractions=(0.6, 0.2, 0.2), seed: int = 0,
                   names=SPLIT_NAMES) -> dict[str, np.ndarray]:
    """Index arrays per split such that every template lies in one split.

    ``strata`` gives each row's stratum, e.g. ``(label, lang)``; a template belongs to the
    stratum of most of its rows (a row whose label was corrupted does not move it).  In each
    stratum the templates are shuffled and cut by :func:`split_counts` of their number, so with
    14 templates and (0.6, 0.2, 0.2) each stratum gives 8 / 3 / 3 templates to train / validation
    / test."""
    template_ids, strata = list(template_ids), [tuple(s) if isinstance(s, list) else s for s in strata]
    table = _group_table(strata, template_ids)
    by_stratum = defaultdict(list)
    for t, (_, stratum) in table.items():
        by_stratum[stratum].append(t)
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in names}
    for stratum in sorted(by_stratum, key=str):
        tids = sorted(by_stratum[stratum], key=str)
        tids = [tids[i] for i in rng.permutation(len(tids))]
        cuts = np.cumsum([0] + split_counts(len(tids), fractions))
        for name, lo, hi in zip(names, cuts[:-1], cuts[1:]):
            for t in tids[lo:hi]:
                parts[name].extend(table[t][0])
    return {name: np.array(sorted(p), dtype=int) for name, p in parts.items()}


def straddling_groups(groups, splits: dict[str, np.ndarray]) -> int:
    """How many groups have members in more than one split (0 for a correct group split)."""
    where = defaultdict(set)
    for name, idx in splits.items():
        for i in idx:
            where[groups[i]].add(name)
    return sum(len(s) > 1 for s in where.values())


def kfold_indices(labels, k: int = 5, seed: int = 0, groups=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold: ``k`` (train, validation) index pairs; every example is validated once.
    With ``groups`` every group stays within one fold."""
    labels = list(labels)
    groups = list(range(len(labels))) if groups is None else list(groups)
    table = _group_table(labels, groups)
    rng = np.random.default_rng(seed)
    folds = [[] for _ in range(k)]
    for gids in _shuffled_groups_per_label(table, rng):
        sizes = np.zeros(k)
        for g in gids:
            f = int(np.argmin(sizes))  # the fold with the fewest of this class so far
            sizes[f] += len(table[g][0])
            folds[f].extend(table[g][0])
    everything = np.arange(len(labels))
    out = []
    for f in range(k):
        val = np.array(sorted(folds[f]), dtype=int)
        out.append((np.setdiff1d(everything, val), val))
    return out


def mean_and_spread(scores) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of k fold scores."""
    scores = np.asarray(scores, dtype=float)
    return float(scores.mean()), float(scores.std(ddof=1)) if len(scores) > 1 else 0.0


def class_proportions(labels, idx) -> dict:
    """Share of each class among ``labels[idx]``."""
    counts = Counter(np.asarray(labels)[idx].tolist())
    return {label: counts[label] / len(idx) for label in sorted(counts, key=str)}


# ---------------------------------------------------------------------------------------------
# exercise checks (notebook 06)
# ---------------------------------------------------------------------------------------------

def check_split_counts(n: int, fractions, answer) -> None:
    """Exercise 6.5: the split sizes by largest remainder."""
    import math
    floors = [math.floor(f * n) for f in fractions]
    check_answer(None if answer is None else list(answer), split_counts(n, fractions), key="6.5",
                 hints=["Check that your three numbers add up to the class size.",
                        "Take floor(fraction * n) for each split, then give the leftover examples to the largest remainders."],
                 mistakes=[(floors, f"these floors add up to {sum(floors)}, not {n}: the leftover examples must go somewhere."),
                           ([round(f * n) for f in fractions], "plain rounding can create or lose examples; "
                                                               "largest-remainder rounding always sums to n.")])
