"""SFT recipes over seeds, under controls: does the model read the instruction, and which augmentation helps?

Notebook 08 trains each recipe once, with one seed. On a model this small one seed can move exact
match by several points, so this script repeats the notebook's offline runs for several seeds and
compares recipes with ``course_utils.comparison.paired_comparison`` (paired by seed).

Every run follows notebook 08: a 2-layer Llama built from a config with the course tokenizer, 100
steps of pre-training on the course text, then SFT on packed 128-token rows (4 per step) with the
course loop, and greedy-decoding exact match on the shared-input test items of
``sft.make_shared_input_split`` (tasks that share their input, so only the instruction decides the
answer).  Each test item is asked four ways (``sft.CONTROLS``): the full prompt, no instruction
(slot values only), another task's instruction (scored against that task's answer), and the
held-out phrasing.  A seed changes the training and test records drawn, the initial weights and
the batch order.  The recipes differ only in their training records or labels:

* ``none``: the training records as drawn, two fixed phrasings per task;
* ``eda``: half of the instructions reworded by ``sft.augment_instructions`` (EDA deletion and
  swap, slots kept);
* ``paraphrase``: half of the instructions replaced by ``sft.paraphrase_instructions`` (a
  hand-written pool of meaning-preserving wordings per task);
* ``none, all tokens``: the ``none`` records with every token a target, prompt included (the
  loss-mask ablation).

    python benchmarks/bench_sft_recipe.py               # writes benchmarks/results/sft_recipe.md
    python benchmarks/bench_sft_recipe.py --seeds 2 --recipes none eda
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from course_utils.sft import CONTROLS  # noqa: E402
from machine_info import cpu_name  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "sft_recipe.md"
RECIPES = ("none", "eda", "paraphrase", "none, all tokens")
# The notebook's settings (sections 2 and 7).
ROW, BATCH_ROWS, STEPS, N_TRAIN, N_INPUTS, SHARE = 128, 4, 1200, 20_000, 15, 0.5


def training_records(recipe: str, records: list[dict], seed: int) -> list[dict]:
    from course_utils import sft
    if recipe.startswith("eda"):
        return sft.augment_instructions(records, share=SHARE, seed=seed)
    if recipe.startswith("paraphrase"):
        return sft.paraphrase_instructions(records, share=SHARE, seed=seed)
    return list(records)


def run(recipe: str, seed: int, steps: int = STEPS) -> dict:
    """One offline run of notebook 08's recipe: per-item correctness under each control."""
    import torch
    from torch.utils.data import DataLoader

    from course_utils import packing, sft
    from course_utils.models import resolve_causal_lm
    from course_utils.training import CausalLMCrossEntropy, TrainConfig, train

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    start = time.perf_counter()
    resolved = resolve_causal_lm(online=False, verbose=False)
    model, tokenizer = resolved.model, resolved.tokenizer
    model.config.use_cache = False
    split = sft.make_shared_input_split(N_INPUTS, N_TRAIN, seed=2024 + seed)
    records = training_records(recipe, split["train"], seed)
    loss_on = "all" if recipe.endswith("all tokens") else "assistant"
    examples = [sft.sft_example(tokenizer, sft.to_messages(r), loss_on=loss_on) for r in records]

    def loader(rows, batch_rows, loader_seed):
        return DataLoader(rows, batch_size=batch_rows, shuffle=True, collate_fn=packing.PackedCollator(),
                          generator=torch.Generator().manual_seed(loader_seed))

    pre_rows = packing.pack_examples(sft.pretraining_examples(tokenizer, sft.pretraining_texts()), ROW,
                                     tokenizer.pad_token_id)
    train(model, loader(pre_rows, 4, seed), TrainConfig(learning_rate=2e-3, max_steps=100, warmup_ratio=0.1,
                                                        seed=seed, progress=False), loss=CausalLMCrossEntropy())
    rows = packing.pack_examples(examples, ROW, tokenizer.pad_token_id)
    train(model, loader(rows, BATCH_ROWS, seed + 100),
          TrainConfig(max_steps=steps, learning_rate=1e-3, warmup_ratio=0.05, weight_decay=0.01, max_grad_norm=1.0,
                      seed=seed + 100, progress=False), loss=CausalLMCrossEntropy())
    out = {"recipe": recipe, "seed": seed, "steps": steps, "n_items": len(split["test"])}
    for control in CONTROLS:
        asked = [sft.control_version(r, control) for r in split["test"]]
        out[control] = sft.correct(asked, sft.generate_answers(model, tokenizer, asked, max_new_tokens=12))
    out["seconds"] = time.perf_counter() - start
    return out


def _mean(flags) -> float:
    return sum(flags) / len(flags)


def summarise(results: list[dict], recipes, steps: int, workers: int, wall: float) -> str:
    from course_utils.comparison import paired_comparison
    by = {(r["recipe"], r["seed"]): r for r in results}
    # only seeds that every recipe has finished (the file is rewritten after every run)
    seeds = sorted(s for s in {r["seed"] for r in results} if all((recipe, s) in by for recipe in recipes))
    lines = ["# SFT recipes over seeds, under instruction controls", "",
             f"Written by `benchmarks/bench_sft_recipe.py` on {datetime.date.today().isoformat()}.",
             f"Machine: {cpu_name()}, {os.cpu_count()} cores; {platform.platform()}; Python {platform.python_version()}; "
             f"{workers} runs at a time, one torch thread each; {wall / 60:.1f} min in all (the machine was shared).",
             f"Each run: notebook 08's offline recipe (pre-training 100 steps, SFT {steps} steps of {BATCH_ROWS} packed "
             f"{ROW}-token rows on {N_TRAIN:,} fresh records of the shared-input tasks), scored by greedy exact match on "
             f"{results[0]['n_items']} test items, each asked four ways. Seeds 0.. change the training and test records, "
             "the initial weights and the batch order. `wrong_instruction` is scored against the answer of the "
             "instruction actually given.", "",
             "| recipe | control | exact match per seed | mean | std |", "|---|---|---|---:|---:|"]
    for recipe in recipes:
        for control in CONTROLS:
            values = [_mean(by[(recipe, s)][control]) for s in seeds]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            lines.append(f"| {recipe} | {control} | {', '.join(f'{v:.1%}' for v in values)} | "
                         f"{statistics.mean(values):.1%} | {spread:.1%} |")
    lines += ["", "## Paired comparisons over seeds (`course_utils.comparison.paired_comparison`)", ""]
    if len(seeds) < 2:
        lines.append("(one seed only: no paired comparison over seeds)")
    else:
        pairs = [(recipe, "full", recipe, "no_instruction") for recipe in recipes]
        pairs += [(recipe, "held_out_phrasing", recipe, "no_instruction") for recipe in recipes]
        pairs += [(a, control, "none", control) for a in ("eda", "paraphrase")
                  for control in ("full", "held_out_phrasing")]
        pairs += [("paraphrase", control, "eda", control) for control in ("full", "held_out_phrasing")
                  if {"paraphrase", "eda"} <= set(recipes)]
        pairs += [("none", control, "none, all tokens", control) for control in ("full", "held_out_phrasing")]
        for ra, ca, rb, cb in pairs:
            if ra not in recipes or rb not in recipes:
                continue
            a = [_mean(by[(ra, s)][ca]) for s in seeds]
            b = [_mean(by[(rb, s)][cb]) for s in seeds]
            lines += ["```", str(paired_comparison(a, b, names=(f"{ra} / {ca}", f"{rb} / {cb}"))), "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--steps", type=int, default=STEPS, help="SFT steps per run")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    jobs = [(recipe, seed, args.steps) for seed in range(args.seeds) for recipe in args.recipes]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = []
        for result in pool.map(run, *zip(*jobs)):
            print(f"{result['recipe']:>24}, seed {result['seed']}: " + ", ".join(
                f"{c} {_mean(result[c]):.1%}" for c in CONTROLS) + f" ({result['seconds']:.0f} s)", flush=True)
            results.append(result)
            # rewritten after every run, so an interrupted sweep still leaves its finished seeds
            if any(all((recipe, s) in {(r["recipe"], r["seed"]) for r in results} for recipe in args.recipes)
                   for s in range(args.seeds)):
                args.out.write_text(summarise(results, args.recipes, args.steps, args.workers,
                                              time.perf_counter() - start), encoding="utf-8")
    text = summarise(results, args.recipes, args.steps, args.workers, time.perf_counter() - start)
    print(text)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
