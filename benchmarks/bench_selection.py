"""Data selection over more seeds and several template splits (notebook 06, section 5.3).

Notebook 06 runs its selection experiment on one split by template (seed 0) with 20 seeds.  Its
intervals cover the noise of the training runs and of the random subsets, but not the luck of which
templates went to the test set.  This script repeats the experiment on ``--splits`` template splits
with ``--seeds`` seeds each, through the same function (``selection.selection_experiment``), and
compares the arms with ``course_utils.comparison.paired_comparison`` (paired by seed):

* k-means selected - random, at a twentieth, a tenth and a fifth of the pool;
* hardest first (EL2N) - chance, where chance is always answering the most common test class.

Data: the base headlines of ``news_cls`` (rows with no flag, or only ``mislabeled``), that is the
notebook's cleaned and deduplicated set without re-running its cleaning steps.  The pool is the
split's train part, the test set its test part without the known-mislabeled rows.

    python benchmarks/bench_selection.py                # writes benchmarks/results/selection.md
    python benchmarks/bench_selection.py --splits 1 --seeds 5 --out /tmp/selection.md
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from course_utils import selection, splits  # noqa: E402
from course_utils.comparison import paired_comparison  # noqa: E402
from course_utils.data import LABELS, load_records  # noqa: E402
from course_utils.make_datasets import is_ambiguous_template  # noqa: E402
from machine_info import cpu_name  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "selection.md"


def base_rows() -> list[dict]:
    return [r for r in load_records("news_cls") if set(r["flags"]) <= {"mislabeled"}]


def run_split(rows, split_seed: int, seeds) -> dict:
    """The notebook's experiment on one template split; returns per-budget comparisons."""
    texts = [r["text"] for r in rows]
    y = np.array([LABELS.index(r["label"]) for r in rows])
    # The datasheet's split: per topic, language and ambiguous-or-not, 8 / 3 / 5 of 16 templates.
    tids = [r["template_id"] for r in rows]
    split = splits.template_split(tids, [(t.rsplit("-", 1)[0], is_ambiguous_template(t)) for t in tids],
                                  (0.5, 0.2, 0.3), seed=split_seed)
    pool = split["train"]
    test = np.array([i for i in split["test"] if "mislabeled" not in rows[i]["flags"]])
    pool_texts, pool_y = [texts[i] for i in pool], y[pool]
    test_texts, test_y = [texts[i] for i in test], y[test]
    el2n = selection.el2n_scores(pool_texts, pool_y, 4, runs=3)
    tenth = len(pool) // 10
    budgets = [tenth // 2, tenth, 2 * tenth]
    results = selection.selection_experiment(pool_texts, pool_y, test_texts, test_y, 4, budgets, seeds,
                                             vectors=selection.ngram_vectors(pool_texts), difficulty=el2n)
    full = results.pop("full")
    chance = np.bincount(test_y, minlength=4).max() / len(test_y)
    out = {"pool": len(pool), "test": len(test), "full": full, "chance": chance, "budgets": {}}
    for b in budgets:
        out["budgets"][b] = {
            "random": results[b]["random"], "k-means selected": results[b]["k-means selected"],
            "kmeans_vs_random": paired_comparison(results[b]["k-means selected"], results[b]["random"],
                                                  names=("k-means selected", "random")),
            "hardest_vs_chance": paired_comparison(results[b]["hardest first"], [chance] * len(seeds),
                                                   names=("hardest first", "chance")),
        }
    return out


def interval(c) -> str:
    return f"{c.mean_diff:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"


def summarise(per_split: dict, n_seeds: int, seconds: float) -> str:
    lines = [
        "# Data selection over seeds and template splits (notebook 06, section 5.3)",
        "",
        f"Written by `benchmarks/bench_selection.py` on {datetime.date.today().isoformat()}; "
        f"{cpu_name()}, Python {platform.python_version()}; {seconds:.0f} s of wall time.",
        "",
        f"{len(per_split)} template splits (`splits.template_split`, seeds {sorted(per_split)}), {n_seeds} seeds each, "
        "paired by seed (`course_utils.comparison.paired_comparison`, 95% t-interval of the mean difference). "
        "Accuracy on the split's test templates, which no training row used.",
        "",
        "| split | pool | test | full pool | budget | random | k-means | k-means − random [95% CI] | verdict "
        "| hardest − chance [95% CI] | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s, out in sorted(per_split.items()):
        for b, arm in out["budgets"].items():
            km, hc = arm["kmeans_vs_random"], arm["hardest_vs_chance"]
            lines.append(f"| {s} | {out['pool']} | {out['test']} | {np.mean(out['full']):.3f} | {b} | "
                         f"{np.mean(arm['random']):.3f} | {np.mean(arm['k-means selected']):.3f} | {interval(km)} | "
                         f"{km.verdict} | {interval(hc)} | {hc.verdict} |")
    lines += ["", "Pooled over all splits (each (split, seed) a pair; the splits differ, so read this as a summary):", ""]
    for k, name in enumerate(["a twentieth", "a tenth", "a fifth"]):
        km = [arm for out in per_split.values() for arm in [list(out["budgets"].values())[k]]]
        pooled = paired_comparison([x for arm in km for x in arm["k-means selected"]],
                                   [x for arm in km for x in arm["random"]], names=("k-means selected", "random"))
        lines.append(f"- budget {name} of the pool: {interval(pooled)}, {pooled.verdict} "
                     f"(k-means better in {pooled.wins}, worse in {pooled.losses}, tied in {pooled.ties}).")
    below = sum(arm["hardest_vs_chance"].verdict == "chance better" for out in per_split.values()
                for arm in out["budgets"].values())
    total = sum(len(out["budgets"]) for out in per_split.values())
    lines += [f"- hardest first scores below chance (verdict \"chance better\") in {below} of {total} split × budget cells.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = base_rows()
    start = time.perf_counter()
    per_split = {}
    for s in range(args.splits):
        per_split[s] = run_split(rows, s, range(args.seeds))
        print(f"split {s} done after {time.perf_counter() - start:.0f} s", flush=True)
    text = summarise(per_split, args.seeds, time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
