"""LoRA against full fine-tuning at the same budget: memory and speed, side by side.

Both recipes train the same model from the same weights on the same packed rows (the course's
alpaca records as one-turn chats, assistant-only labels, best-fit-decreasing rows) with the course
loop (``training.train``) for the same number of steps:

* full fine-tuning: every parameter trains;
* LoRA: PEFT adapters of rank 16 (alpha 32) on every linear layer of the blocks, base frozen.

Each run is its own process, so its peak memory is its own: on a CPU the peak resident set
(``ru_maxrss``) minus the resident set just before training (imports, data and model), on a GPU
``torch.cuda.max_memory_allocated``.  Rounds alternate the recipes so machine load hits both alike;
time and tokens/s are medians over rounds.  Trainable parameters and optimiser state are exact
(AdamW: two fp32 moments per trainable number plus a step counter per tensor, the formula
``tests/test_lora.py`` checks against torch).

CPU sizes: the course's small Llama (0.56M parameters) and a 6-layer Llama of hidden size 512
(about 19M parameters) built from a config.  With a GPU: a model of Qwen2.5-0.5B's shape built from
its config (random weights, no download) on 2 rows of 512 tokens, in bf16 or fp16 autocast.

    python benchmarks/bench_lora.py            # writes benchmarks/results/lora.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
RESULTS = REPO / "benchmarks" / "results" / "lora.md"
RANK, ALPHA = 16, 32

SIZES = {
    "small": {"label": "course small Llama", "overrides": {}, "row": 128, "rows": 4, "steps": 40},
    "mid": {"label": "Llama, 6 layers, hidden 512", "row": 128, "rows": 4, "steps": 12,
            "overrides": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=8,
                              num_key_value_heads=8)},
    "qwen": {"label": "Qwen2.5-0.5B shape (random weights)", "row": 512, "rows": 2, "steps": 20, "overrides": None},
}


def rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker(size: str, recipe: str, device: str) -> dict:
    """One run: build, train, measure.  Prints one JSON line."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Qwen2Config

    from course_utils import lora, packing, sft
    from course_utils.course_tokenizer import load_course_tokenizer
    from course_utils.data import load_records
    from course_utils.models import small_causal_config
    from course_utils.training import CausalLMCrossEntropy, TrainConfig, train

    spec = SIZES[size]
    torch.manual_seed(0)
    if device == "cpu":
        torch.set_num_threads(1)
    tokenizer = load_course_tokenizer()
    if spec["overrides"] is None:
        config = Qwen2Config(**{**lora.QWEN25_05B_CONFIG, "vocab_size": len(tokenizer)})
        vocab_note = f"vocabulary cut to the course tokenizer's {len(tokenizer)}"
    else:
        config = small_causal_config(tokenizer, **spec["overrides"])
        vocab_note = ""
    model = AutoModelForCausalLM.from_config(config)
    model.config.use_cache = False
    if recipe == "lora":
        model = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules="all-linear"))
    examples = [sft.sft_example(tokenizer, sft.to_messages(r)) for r in load_records("sft_alpaca")]
    rows = packing.pack_examples(examples, spec["row"], tokenizer.pad_token_id)
    n = spec["rows"]
    batches = [packing.PackedCollator()(rows[i:i + n]) for i in range(0, n * spec["steps"], n)]
    model.to(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        before = rss_mb()
    result = train(model, batches, TrainConfig(learning_rate=1e-4, max_steps=spec["steps"], progress=False),
                   loss=CausalLMCrossEntropy(), device=device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"size": size, "recipe": recipe, "trainable": n_trainable,
            "total": sum(p.numel() for p in model.parameters()),
            "optimizer_state_mb": lora.expected_adamw_state_bytes(n_trainable, len(trainable)) / 2**20,
            "before_mb": before, "peak_mb": peak, "seconds": result.seconds,
            "tokens_per_s": result.tokens_per_second, "real_tokens": result.real_tokens,
            "precision": result.precision, "vocab_note": vocab_note}


def run_worker(size: str, recipe: str, device: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", size, recipe, device], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def side_by_side(size: str, device: str, rounds: int) -> list[str]:
    runs = {"full": [], "lora": []}
    for i in range(rounds):
        for recipe in (("full", "lora") if i % 2 == 0 else ("lora", "full")):
            runs[recipe].append(run_worker(size, recipe, device))
            print(size, recipe, f"{runs[recipe][-1]['seconds']:.2f} s", flush=True)
    spec = SIZES[size]
    first = {k: v[0] for k, v in runs.items()}
    unit = "GPU memory allocated" if device == "cuda" else "resident memory"
    lines = [f"### {spec['label']} on {device}",
             "",
             f"{first['full']['total']:,} parameters; {spec['steps']} steps of {spec['rows']} packed rows of "
             f"{spec['row']} tokens ({first['full']['real_tokens']:,} real tokens per run), "
             f"{first['full']['precision']}; {rounds} rounds, alternating. {first['full']['vocab_note']}".rstrip(),
             "",
             f"| | full fine-tuning | LoRA r={RANK} | LoRA / full |",
             "|---|---|---|---|"]
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("seconds", "tokens_per_s", "peak_mb", "before_mb")}
           for k, v in runs.items()}
    rows = [
        ("trainable parameters", first["full"]["trainable"], first["lora"]["trainable"], "{:,.0f}"),
        ("optimiser state (MiB, AdamW fp32)", first["full"]["optimizer_state_mb"], first["lora"]["optimizer_state_mb"], "{:,.2f}"),
        (f"{unit} before training (MiB, median)", med["full"]["before_mb"], med["lora"]["before_mb"], "{:,.0f}"),
        (f"peak {unit} (MiB, median)", med["full"]["peak_mb"], med["lora"]["peak_mb"], "{:,.0f}"),
        ("peak minus before (MiB, median)", med["full"]["peak_mb"] - med["full"]["before_mb"],
         med["lora"]["peak_mb"] - med["lora"]["before_mb"], "{:,.0f}"),
        ("training time (s, median)", med["full"]["seconds"], med["lora"]["seconds"], "{:,.2f}"),
        ("real tokens/s (median)", med["full"]["tokens_per_s"], med["lora"]["tokens_per_s"], "{:,.0f}"),
    ]
    for name, a, b, fmt in rows:
        ratio = f"{b / a:.3f}" if a else "n/a"
        lines.append(f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {ratio} |")
    lines.append("")
    lines.append("Runs (s): full " + ", ".join(f"{r['seconds']:.2f}" for r in runs["full"])
                 + "; LoRA " + ", ".join(f"{r['seconds']:.2f}" for r in runs["lora"]))
    lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=3, metavar=("SIZE", "RECIPE", "DEVICE"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0
    import torch
    sys.path.insert(0, str(REPO / "benchmarks"))
    from machine_info import cpu_name
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = args.sizes or (["qwen"] if device == "cuda" else ["small", "mid"])
    where = torch.cuda.get_device_name() if device == "cuda" else f"{cpu_name()}, {os.cpu_count()} cores"
    load = os.getloadavg()[0]
    lines = ["# LoRA against full fine-tuning", "",
             f"Date: {datetime.date.today().isoformat()}", "",
             f"Machine: {platform.system()} {platform.machine()}, {where}, Python {platform.python_version()}, "
             f"torch {torch.__version__}; load average {load:.1f} at start"
             + (" (shared machine: times are noisy, the ratios of alternating rounds are the figures to read)"
                if device == "cpu" else ""), "",
             "Same model, same initial weights, same packed rows, same steps and optimiser; each run in its own "
             f"process. LoRA: rank {RANK}, alpha {ALPHA}, every linear layer of the blocks. "
             "Produced by `python benchmarks/bench_lora.py`.", ""]
    for size in sizes:
        lines += side_by_side(size, device, args.rounds)
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists() and device == "cuda":  # keep the CPU tables; add or replace the GPU section
        old = args.out.read_text().split("\n## GPU\n")[0].rstrip()
        text = old + "\n\n## GPU\n\n" + "\n".join(lines[4:])
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
