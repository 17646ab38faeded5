"""GPU check: the training recipes of notebooks 07 and 08 at the real models' sizes, on one CUDA GPU.

    python benchmarks/gpu_check.py            # writes benchmarks/results/gpu_check.md (about 2-5 minutes)

Each recipe runs the course loop (``course_utils.training.train``) for a few warm-up steps, then for
``--steps`` timed optimiser steps, in fp16 (with a GradScaler) and, where the GPU has compute
capability >= 8.0, in bf16.  Reported per run: real (non-pad) tokens/s, the padding share, peak GPU
memory, and model FLOPs utilisation (MFU):

    FLOPs = 6 * N * real tokens + 12 * layers * hidden * sum over sequences of (real length)^2

where N counts the parameters that take part in matrix multiplies (every ``nn.Linear``, the tied
LM head included; embedding lookups excluded), divided by the GPU's dense peak for the dtype
(``training.PEAK_FLOPS``; "n/a" for a GPU not listed there).

* **07**: a BERT of bert-base-chinese's size (102M parameters, vocabulary 21,128) with a 15-way head
  (TNEWS), batches of 32 short headlines with dynamic padding after length grouping.  Lengths are
  those of the course's Chinese headlines (bert-base-chinese reads one character per token) plus
  [CLS] and [SEP].
* **08**: a Qwen2.5-0.5B-sized Qwen2 (494M parameters), SFT on packed 512-token rows, 2 rows per
  micro-batch and 2 micro-batches per step, fp32 master weights (notebook 08's hub settings).
  Example lengths are those of the course's SFT examples, rendered with the course tokenizer.

Weights are random (throughput does not depend on them).  The configs are read from the hub or the
local HF cache at the course's pinned revisions when possible, else built from the published
sizes (:data:`FALLBACK_CONFIGS`); the report says which.  Without CUDA it exits with a message.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import os
import platform
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "gpu_check.md"
TIME_BUDGET_S = 7.5 * 60  # a run starts only if it should end by then (the longest run so far as the guide)

# Published sizes of the two models (their config.json), for when neither hub nor cache has them.
FALLBACK_CONFIGS = {
    "bert-base-chinese": dict(model_type="bert", vocab_size=21128, hidden_size=768, num_hidden_layers=12,
                              num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512,
                              type_vocab_size=2, pad_token_id=0),
    "Qwen/Qwen2.5-0.5B": dict(model_type="qwen2", vocab_size=151936, hidden_size=896, num_hidden_layers=24,
                              num_attention_heads=14, num_key_value_heads=2, intermediate_size=4864,
                              max_position_embeddings=32768, rope_theta=1000000.0, tie_word_embeddings=True,
                              rms_norm_eps=1e-6, bos_token_id=151643, eos_token_id=151643),
}
TNEWS_LABELS = 15


# --- FLOPs (tested on the CPU in tests/test_gpu_check.py) -----------------------------------------

def matmul_parameters(model) -> int:
    """Parameters that take part in a matrix multiply per token: the weights and biases of every
    ``nn.Linear``.  A tied LM head is an ``nn.Linear`` too, so it counts once, as it computes once;
    embedding lookups (word, position, token type) cost no multiply and are left out."""
    seen, total = set(), 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            for p in (module.weight, module.bias):
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
    return total


def real_lengths(batch: dict) -> list[int]:
    """Real (non-pad) length of every sequence: 2-D attention-mask row sums, or per example of a
    packed row (``seq_lengths`` kept by the batch builder below)."""
    if "seq_lengths" in batch:
        return [n for row in batch["seq_lengths"] for n in row]
    return batch["attention_mask"].sum(dim=1).tolist()


def training_flops(model, batches) -> float:
    """6·N·(real tokens) + 12·layers·hidden·Σ(real length²) over ``batches``."""
    config = model.config
    lengths = [n for b in batches for n in real_lengths(b)]
    return (6 * matmul_parameters(model) * sum(lengths)
            + 12 * config.num_hidden_layers * config.hidden_size * sum(n * n for n in lengths))


def mfu(flops: float, seconds: float, device_name: str, dtype) -> float | None:
    from course_utils.training import PEAK_FLOPS
    for key, table in PEAK_FLOPS.items():
        if key in device_name and dtype in table:
            return flops / seconds / table[dtype]
    return None


# --- Configs and data -------------------------------------------------------------------------------

def load_config(hub_id: str, use_hub: bool = True):
    """The real config from the local cache or the hub (pinned revision), else the published sizes."""
    from transformers import AutoConfig
    from course_utils import hub
    from course_utils.runtime import hub_reachable
    attempts = ([True] + ([False] if hub_reachable() else [])) if use_hub else []
    for local_only in attempts:
        try:
            return AutoConfig.from_pretrained(hub_id, revision=hub.model_revision(hub_id),
                                              local_files_only=local_only), "hub config"
        except Exception:
            continue
    settings = dict(FALLBACK_CONFIGS[hub_id])
    return AutoConfig.for_model(settings.pop("model_type"), **settings), "built from the published sizes"


@functools.lru_cache(maxsize=None)
def headline_lengths() -> tuple[int, ...]:
    from course_utils.data import load_records
    return tuple(min(len(r["text"]), 126) + 2 for r in load_records("news_cls") if r.get("lang") == "zh" and r["text"])


def encoder_batches(lengths, vocab_size: int, n_batches: int, batch_size: int = 32, seed: int = 0) -> list[dict]:
    """Length-grouped batches (sorted within pools of 50 batches), padded to each batch's longest."""
    rng = random.Random(seed)
    pool = [rng.choice(lengths) for _ in range(n_batches * batch_size)]
    out = []
    for start in range(0, len(pool), 50 * batch_size):
        chunk = sorted(pool[start:start + 50 * batch_size])
        for i in range(0, len(chunk), batch_size):
            group = chunk[i:i + batch_size]
            width = max(group)
            g = torch.Generator().manual_seed(seed + i)
            ids = torch.randint(1000, vocab_size, (len(group), width), generator=g)
            mask = (torch.arange(width)[None] < torch.tensor(group)[:, None]).long()
            out.append({"input_ids": ids * mask, "attention_mask": mask,
                        "labels": torch.randint(0, TNEWS_LABELS, (len(group),), generator=g)})
    rng.shuffle(out)
    return out[:n_batches]


@functools.lru_cache(maxsize=None)
def sft_lengths() -> tuple[int, ...]:
    from course_utils import sft
    from course_utils.course_tokenizer import load_course_tokenizer
    from course_utils.data import load_records
    tokenizer = load_course_tokenizer()
    return tuple(len(sft.sft_example(tokenizer, sft.to_messages(r))["input_ids"]) for r in load_records("sft_alpaca"))


def packed_batches(lengths, vocab_size: int, n_batches: int, row: int = 512, rows_per_batch: int = 2,
                   seed: int = 0) -> list[dict]:
    """Packed rows (course_utils.packing) of random ids with the given example lengths."""
    from course_utils import packing
    rng = random.Random(seed)
    need = n_batches * rows_per_batch
    examples = []
    while True:
        n = rng.choice(lengths)
        ids = [rng.randrange(1000, vocab_size) for _ in range(n)]
        examples.append({"input_ids": ids, "labels": ids})
        if sum(e_len for e_len in map(lambda e: len(e["input_ids"]), examples)) > need * row * 1.02:
            rows = packing.pack_examples(examples, row, pad_token_id=0)
            if len(rows) >= need:
                break
    rows = rows[:need]
    collate = packing.PackedCollator()
    out = []
    for i in range(0, need, rows_per_batch):
        batch = collate(rows[i:i + rows_per_batch])
        batch["seq_lengths"] = [r["seq_lengths"] for r in rows[i:i + rows_per_batch]]  # not a tensor: not fed
        out.append(batch)
    return out


# --- Runs -------------------------------------------------------------------------------------------

def run(recipe: str, precision: str, steps: int, warmup: int = 3, device: str = "cuda", shrink=None) -> dict:
    """One recipe in one precision.  ``shrink`` (config overrides) and ``device="cpu"`` exist for
    the CPU test of this script only."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from course_utils.training import CausalLMCrossEntropy, TokenCrossEntropy, TrainConfig, train
    torch.manual_seed(0)
    if recipe == "07":
        config, origin = load_config("bert-base-chinese", use_hub=shrink is None)
        config.update(shrink or {})
        config.num_labels = TNEWS_LABELS
        model = AutoModelForSequenceClassification.from_config(config)
        batches = encoder_batches(headline_lengths(), config.vocab_size, warmup + steps)
        loss, accum, lr = TokenCrossEntropy(), 1, 3e-5
    else:
        config, origin = load_config("Qwen/Qwen2.5-0.5B", use_hub=shrink is None)
        config.update(shrink or {})
        config.use_cache = False  # packed rows: transformers finds example boundaries from position_ids
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        batches = packed_batches(sft_lengths(), config.vocab_size, 2 * (warmup + steps))
        loss, accum, lr = CausalLMCrossEntropy(), 2, 2e-5
    model.to(device)
    settings = dict(learning_rate=lr, grad_accum_steps=accum, precision=precision, progress=False, warmup_ratio=0.0)
    warm, timed = batches[:warmup * accum], batches[warmup * accum:]
    train(model, warm, TrainConfig(max_steps=warmup, **settings), loss=loss, device=device, pad_token_id=0)
    result = train(model, timed, TrainConfig(max_steps=steps, **settings), loss=loss, device=device, pad_token_id=0)
    flops = training_flops(model, timed)
    real = sum(sum(real_lengths(b)) for b in timed)
    assert real == result.real_tokens, (real, result.real_tokens)  # the loop's count agrees with ours
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    row = {"recipe": recipe, "precision": result.precision, "config": origin,
           "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
           "matmul_params_m": matmul_parameters(model) / 1e6, "steps": steps,
           "tokens_per_s": result.tokens_per_second, "padding": result.padding_fraction,
           "mfu": mfu(flops, result.seconds, torch.cuda.get_device_name(0), dtype) if device == "cuda" else None,
           "flops": flops,
           "peak_mb": result.peak_memory_mb, "seconds": result.seconds}
    del model, batches, warm, timed
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return row


def report(rows, device: str, capability, started: str) -> str:
    import transformers
    lines = [
        "# GPU check: the recipes of notebooks 07 and 08 at the real models' sizes",
        "",
        f"Device: **{device}** (compute capability {capability[0]}.{capability[1]}); "
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, transformers {transformers.__version__}, "
        f"Python {platform.python_version()}; run {started} UTC with `python benchmarks/gpu_check.py`.",
        "",
        "Real tokens exclude padding; MFU = (6·N·real tokens + 12·layers·hidden·Σ length²) / time / dense peak, "
        "N = parameters in matrix multiplies. Weights are random (throughput only).",
        "",
        "| notebook recipe | config | parameters (matmul) | precision | timed steps | real tokens/s | padding | MFU | "
        "peak GPU memory (MiB) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    names = {"07": "07: BERT-base classifier, batch 32, dynamic padding",
             "08": "08: Qwen2.5-0.5B SFT, packed 512-token rows, 2x2 rows/step"}
    for r in rows:
        mfu_text = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a (GPU not in training.PEAK_FLOPS)"
        lines.append(f"| {names[r['recipe']]} | {r['config']} | {r['params_m']:.1f}M ({r['matmul_params_m']:.1f}M) | "
                     f"{r['precision']} | {r['steps']} | {r['tokens_per_s']:,.0f} | {r['padding']:.1%} | {mfu_text} | "
                     f"{r['peak_mb']:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed optimiser steps per run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is visible to torch, so there is nothing to measure; run it on a GPU machine "
              "(for example a Colab T4 runtime). Nothing was written.", file=sys.stderr)
        return 2
    start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    device, capability = torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0)
    precisions = ["fp16"] + (["bf16"] if capability >= (8, 0) else [])  # a T4 (7.5) only emulates bf16
    rows, longest = [], 0.0
    for recipe in ("07", "08"):
        for precision in precisions:
            if time.perf_counter() - start + longest > TIME_BUDGET_S:
                print(f"time budget: skipped {recipe} {precision}", file=sys.stderr)
                continue
            tick = time.perf_counter()
            row = run(recipe, precision, args.steps)
            longest = max(longest, time.perf_counter() - tick)
            rows.append(row)
            print(f"{recipe} {precision}: {row['tokens_per_s']:,.0f} real tokens/s, MFU "
                  f"{row['mfu'] if row['mfu'] is None else format(row['mfu'], '.1%')}, peak {row['peak_mb']:,.0f} MiB",
                  flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report(rows, device, capability, started), encoding="utf-8")
    print(f"wrote {args.output} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
