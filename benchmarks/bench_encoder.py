"""Encoder fine-tuning throughput: the naive recipe against the course recipe, side by side.

* naive: tokenise one row at a time, pad every row to 512 tokens, train in fp32;
* course: tokenise with ``datasets.map(batched=True)`` (one fast-tokenizer call per 1,000 rows),
  pad each batch only to its longest row with length-grouped batches, mixed precision where the
  device has it (bf16 from compute capability 8.0, fp16 below, fp32 on a CPU).

Both train the same model with the same loop (``course_utils.training.train``), batch size and
optimiser; only the data pipeline and the precision differ.  The figure that matters is **real
(non-pad) tokens per second**.  Every time is a median over repeats, each from the same initial
weights, after an untimed warm-up; the recipes alternate, repeat by repeat.

On a GPU it also trains a bert-base-sized model built from a config (the size of
``bert-base-chinese``) on full 128-token rows in bf16 and reports tokens/s, MFU and peak memory with
the device name.

    python benchmarks/bench_encoder.py                 # writes benchmarks/results/encoder.md
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402

from course_utils.data import LABELS  # noqa: E402
from course_utils.training import TrainConfig, train  # noqa: E402
from course_utils.train_classifier import make_loader, news_splits, tokenize_splits  # noqa: E402
from machine_info import cpu_name

RESULTS = REPO / "benchmarks" / "results" / "encoder.md"


# --- The two data pipelines -----------------------------------------------------------------

def naive_pipeline(texts, labels, tokenizer, batch_size):
    """Per-row tokenizer calls, every row padded to 512, a shuffling DataLoader."""
    from torch.utils.data import DataLoader
    start = time.perf_counter()
    rows = []
    for text, label in zip(texts, labels):
        encoded = tokenizer(text, padding="max_length", truncation=True, max_length=512, return_tensors="pt")
        rows.append({**{k: v[0] for k, v in encoded.items()}, "labels": torch.tensor(label)})
    seconds = time.perf_counter() - start
    loader = DataLoader(rows, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    return loader, seconds


def course_pipeline(split, tokenizer, batch_size):
    """``map(batched=True)`` tokenising, then dynamic padding with length-grouped batches."""
    import datasets
    start = time.perf_counter()
    tokenized = tokenize_splits(datasets.DatasetDict({"train": split}), tokenizer, max_length=512)["train"]
    seconds = time.perf_counter() - start
    return make_loader(tokenized, tokenizer, batch_size), seconds


def warm_up(model, loader, config, device):
    """One untimed step (first-call allocations, kernel choice); returns the peak memory after it."""
    return train(copy.deepcopy(model), loader, TrainConfig(**{**config.__dict__, "max_steps": 1}),
                 device=device).peak_memory_mb


def epoch_padding(loader) -> float:
    """Share of pad positions over one full pass of the loader."""
    real = total = 0
    for batch in loader:
        real += int(batch["attention_mask"].sum())
        total += batch["attention_mask"].numel()
    return 1 - real / total


def median_of(results, attribute):
    return statistics.median(getattr(r, attribute) for r in results)


def compare_recipes(model, tokenizer, split, steps, repeats, batch_size):
    """Warm both recipes up, then alternate them repeat by repeat, so a change in the machine's load
    hits both alike; every run starts from the same weights."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    texts, labels = list(split["text"]), list(split["label"])
    course_loader, course_tok = course_pipeline(split, tokenizer, batch_size)
    naive_loader, naive_tok = naive_pipeline(texts, labels, tokenizer, batch_size)
    recipes = {"course": (course_loader, course_tok, "auto"), "naive": (naive_loader, naive_tok, "fp32")}
    configs = {name: TrainConfig(max_steps=steps, precision=precision, warmup_ratio=0.0, progress=False, seed=0)
               for name, (_, _, precision) in recipes.items()}
    # The course recipe warms up first: on a CPU, peak memory is the process's peak RSS, which only grows.
    peaks = {name: warm_up(model, recipes[name][0], configs[name], device) for name in ("course", "naive")}
    runs = {name: [] for name in recipes}
    for _ in range(repeats):
        for name, (loader, _, _) in recipes.items():
            runs[name].append(train(copy.deepcopy(model), loader, configs[name], device=device))
    real_epoch_tokens = sum(len(ids) for ids in tokenizer(texts)["input_ids"])
    rows = {}
    for name in ("naive", "course"):
        loader, tok_seconds, _ = recipes[name]
        results = runs[name]
        step_seconds = median_of(results, "seconds") / steps
        epoch_seconds = tok_seconds + len(loader) * step_seconds   # tokenise everything, then one pass
        rows[name] = {
            "tokenise_s": tok_seconds,
            "step_s": step_seconds,
            "train_tokens_per_s": median_of(results, "tokens_per_second"),
            "padding": epoch_padding(loader),
            "real_tokens_per_step": results[0].real_tokens / steps,
            "precision": results[0].precision,
            "peak_mb": peaks[name] if device == "cpu" else max(r.peak_memory_mb for r in results),
            "epoch_s": epoch_seconds,
            "epoch_tokens_per_s": real_epoch_tokens / epoch_seconds,
        }
    return rows


# --- GPU: bert-base at 128 tokens, bf16, MFU -----------------------------------------------------

def bert_base_mfu(steps, batch_size=256, seq_len=128):
    from transformers import AutoModelForSequenceClassification, BertConfig
    torch.manual_seed(0)
    config = BertConfig(vocab_size=21128, num_labels=len(LABELS))   # bert-base-chinese's shape, 102M parameters
    model = AutoModelForSequenceClassification.from_config(config)
    g = torch.Generator().manual_seed(0)
    batches = [{"input_ids": torch.randint(1000, 21000, (batch_size, seq_len), generator=g),
                "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
                "labels": torch.randint(0, len(LABELS), (batch_size,), generator=g)} for _ in range(8)]
    loader = [b for _ in range(steps // len(batches) + 1) for b in batches][:steps]
    train(copy.deepcopy(model), loader[:3], TrainConfig(max_steps=3, precision="auto", progress=False), device="cuda")
    result = train(model, loader, TrainConfig(max_steps=steps, precision="auto", progress=False), device="cuda")
    return {"params_m": sum(p.numel() for p in model.parameters()) / 1e6, "batch": batch_size, "seq_len": seq_len,
            "tokens_per_s": result.tokens_per_second, "mfu": result.mfu, "peak_mb": result.peak_memory_mb,
            "precision": result.precision, "steps": steps}


# --- Report ------------------------------------------------------------------------------

def machine() -> str:
    import tokenizers
    import transformers
    cpu = cpu_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; {gpu}; "
            f"Linux {platform.release()}; Python {platform.python_version()}; torch {torch.__version__}, "
            f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}")


def table(rows, device_label):
    naive, course = rows["naive"], rows["course"]
    memory = "peak GPU memory (MiB)" if torch.cuda.is_available() else "peak process memory so far (MiB)"
    lines = [f"| recipe ({device_label}) | precision | tokenise all rows (s) | step (s) | real tokens / step | "
             f"padding (one epoch) | {memory} | real tokens/s, training | real tokens/s, one epoch incl. tokenising |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['precision']} | {row['tokenise_s']:.3f} | {row['step_s']:.3f} | "
                     f"{row['real_tokens_per_step']:.0f} | {row['padding']:.1%} | {row['peak_mb']:,.0f} | "
                     f"{row['train_tokens_per_s']:,.0f} | {row['epoch_tokens_per_s']:,.0f} |")
    lines.append(f"| **course / naive** | | {naive['tokenise_s'] / course['tokenise_s']:.1f}x faster | | | | | "
                 f"**{course['train_tokens_per_s'] / naive['train_tokens_per_s']:.1f}x** | "
                 f"**{course['epoch_tokens_per_s'] / naive['epoch_tokens_per_s']:.1f}x** |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="timed optimiser steps per repeat")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads; on a busy 2-core machine two threads wait on each other")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--gpu-steps", type=int, default=40, help="steps of the bert-base MFU run (GPU only)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from course_utils.models import resolve_encoder
    load_before = os.getloadavg()[0]
    torch.manual_seed(0)
    resolved = resolve_encoder("bert-base-chinese", labels=LABELS)
    lang = "zh" if resolved.source == "hub" else "en"
    split = news_splits(lang)["train"]
    device_label = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    rows = compare_recipes(resolved.model, resolved.tokenizer, split, args.steps, args.repeats, args.batch_size)
    ratio = rows["course"]["train_tokens_per_s"] / rows["naive"]["train_tokens_per_s"]
    target = 5.0 if torch.cuda.is_available() else 2.5

    gpu_section = ("Not run: no CUDA device was available to this run. On a GPU this section trains a "
                   "bert-base-sized model built from a config (the shape of bert-base-chinese, about 102M "
                   "parameters) on full 128-token rows in bf16 and reports real tokens/s, MFU and peak memory "
                   "with the device name.")
    gpu = None
    if torch.cuda.is_available():
        gpu = bert_base_mfu(args.gpu_steps)
        mfu = f"{gpu['mfu']:.1%}" if gpu["mfu"] is not None else "n/a (GPU not in the peak-FLOPs table)"
        gpu_section = "\n".join([
            "| device | model | batch x length | precision | steps | real tokens/s | MFU | peak memory (MiB) |",
            "|---|---|---|---|---:|---:|---:|---:|",
            f"| {device_label} | BERT-base config, {gpu['params_m']:.0f}M params | {gpu['batch']} x {gpu['seq_len']} | "
            f"{gpu['precision']} | {gpu['steps']} | {gpu['tokens_per_s']:,.0f} | {mfu} | {gpu['peak_mb']:,.0f} |",
            "",
            "MFU counts 6 x parameters x real tokens plus attention (12 x layers x hidden x length^2 per row) "
            "against the dense bf16 peak of the device (`course_utils.training.PEAK_FLOPS`)."])
    load_after = os.getloadavg()[0]

    report = f"""# Encoder fine-tuning benchmarks

Written by `benchmarks/bench_encoder.py` on {datetime.date.today().isoformat()}.
Machine: {machine()}.
Load average (1 min) before / after: {load_before:.1f} / {load_after:.1f}. The machine is shared, so absolute times are noisy;
the ratios, measured side by side in one process, are steadier.

{resolved.describe('bert-base-chinese')}. Data: the {len(split)} training rows of the cleaned
`news_cls` ({lang}). Batch size {args.batch_size}; each time is the median of {args.repeats} repeats of {args.steps}
optimiser steps, after an untimed warm-up; the two recipes alternate repeat by repeat and run the same loop and
optimiser.

## Naive recipe vs course recipe

{table(rows, device_label)}

- Target: course / naive real tokens per second >= {target:.1f}x on this device: **{ratio >= target}** ({ratio:.1f}x).
- Target: course padding under 10% of positions: **{rows['course']['padding'] < 0.10}** ({rows['course']['padding']:.1%}).
- "one epoch" = tokenising all rows + one pass at the median step time.
- On a CPU the memory column is the process's peak resident memory after the recipe's warm-up step (the course
  recipe warms up first, so its figure is its own peak; the naive figure includes everything before it).

## GPU: bert-base-sized model, 128 tokens, bf16

{gpu_section}
"""
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report, encoding="utf-8")
    print(report)
    return rows, gpu


if __name__ == "__main__":
    main()
