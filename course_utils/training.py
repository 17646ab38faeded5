"""The course training loop: plain PyTorch, so every step of fine-tuning is visible.

One optimiser step = ``grad_accum_steps`` micro-batches.  The loss of a step is the **sum**
of per-target losses over all its micro-batches divided by the **total** number of trained
targets (labels != -100) in them, so accumulation gives exactly the big-batch loss and gradient
even when micro-batches hold different numbers of trained tokens.

Also here: AdamW with warmup and decay, gradient clipping, mixed precision chosen from the
device (bf16 from compute capability 8.0, fp16 with a GradScaler below, fp32 on CPU), a tqdm
progress bar, per-epoch evaluation, measurements (real tokens/s, padding fraction, peak memory,
MFU on GPU), and checkpoints (safetensors) that resume to the same result as an unbroken run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import resource
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100

# Dense peak throughput (FLOP/s) for the training dtype, from the vendors' data sheets.
PEAK_FLOPS = {
    "H100": {torch.bfloat16: 989e12, torch.float16: 989e12, None: 67e12},
    "H200": {torch.bfloat16: 989e12, torch.float16: 989e12, None: 67e12},
    "A100": {torch.bfloat16: 312e12, torch.float16: 312e12, None: 19.5e12},
    "L4": {torch.bfloat16: 121e12, torch.float16: 121e12, None: 30e12},
    "T4": {torch.float16: 65e12, None: 8.1e12},
}


@dataclass
class TrainConfig:
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    epochs: int = 1
    max_steps: int | None = None       # optimiser steps; overrides epochs when set
    warmup_ratio: float = 0.1
    schedule: str = "linear"           # any name transformers.get_scheduler accepts
    grad_accum_steps: int = 1
    max_grad_norm: float | None = 1.0
    precision: str = "auto"            # "auto", "fp32", "bf16" or "fp16"
    seed: int = 0
    save_every: int | None = None      # optimiser steps between checkpoints
    progress: bool = True


# --- Losses: summed over targets, with the count to normalise by ------------------------

class TokenCrossEntropy:
    """Cross-entropy for class ids: one label per sequence (B,) or per token (B, T)."""

    shift = False

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        return labels[:, 1:] if self.shift else labels

    def count(self, batch: dict) -> int:
        return int((self.targets(batch["labels"]) != IGNORE_INDEX).sum())

    def loss_sum(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.shift:  # position t predicts token t+1
            logits = logits[:, :-1]
        targets = self.targets(labels)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                               ignore_index=IGNORE_INDEX, reduction="sum")


class CausalLMCrossEntropy(TokenCrossEntropy):
    """Next-token cross-entropy: logits at position t are scored against labels at t+1."""

    shift = True


# --- Precision ---------------------------------------------------------------------------

def autocast_dtype(precision: str, device: torch.device):
    """The autocast dtype for a precision setting: None means plain fp32.

    "auto" asks the GPU's compute capability, not ``torch.cuda.is_bf16_supported()``, which
    says True on a T4 (7.5) because bf16 can be emulated there, slowly."""
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"unknown precision {precision!r}; expected auto, fp32, bf16 or fp16")
    device = torch.device(device)
    if precision == "fp32" or device.type != "cuda":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    return torch.bfloat16 if torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16


def needs_grad_scaler(dtype) -> bool:
    """fp16 has 5 exponent bits, so small gradients underflow to zero unless the loss is scaled
    up first; bf16 has fp32's 8 exponent bits and needs no scaler."""
    return dtype == torch.float16


# --- Measurements ------------------------------------------------------------------------

def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def training_flops(n_params: int, real_tokens: int, n_layers: int, hidden: int, sum_sq_lengths: int) -> float:
    """6·N per real token (forward + backward of every weight) plus attention score and value
    products, 12·layers·hidden per pair of real positions (forward 4, backward 8)."""
    return 6 * n_params * real_tokens + 12 * n_layers * hidden * sum_sq_lengths


def model_flops_utilisation(flops: float, seconds: float, device: torch.device, dtype) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, table in PEAK_FLOPS.items():
        if key in name and dtype in table:
            return flops / seconds / table[dtype]
    return None


@dataclass
class TrainResult:
    steps: int = 0
    losses: list[float] = field(default_factory=list)   # per optimiser step
    lrs: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)     # one per finished epoch
    real_tokens: int = 0
    total_positions: int = 0
    sum_sq_lengths: int = 0
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    mfu: float | None = None
    device: str = "cpu"
    precision: str = "fp32"
    stopped_early: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.real_tokens / self.seconds if self.seconds else 0.0

    @property
    def padding_fraction(self) -> float:
        return 1 - self.real_tokens / self.total_positions if self.total_positions else 0.0

    def summary(self) -> str:
        mfu = f", MFU {self.mfu:.1%}" if self.mfu is not None else ""
        return (f"{self.steps} steps on {self.device} ({self.precision}) in {self.seconds:.1f} s: "
                f"{self.tokens_per_second:,.0f} real tokens/s, padding {self.padding_fraction:.1%}, "
                f"peak memory {self.peak_memory_mb:,.0f} MiB{mfu}")


# --- Checkpoints -------------------------------------------------------------------------
#
# A checkpoint is a folder: model.safetensors, optimizer.safetensors, trainer_state.json.  It is
# replaced as a WHOLE, never file by file, so a kill at any moment leaves one complete checkpoint:
#
#   1. write the new one into the sibling ``.<name>.tmp``; fsync every file; trainer_state.json goes
#      last (itself written to a temporary name, fsynced and renamed), so it marks the folder complete;
#   2. rename the current folder to ``.<name>.old`` (the last good checkpoint, kept until step 3);
#   3. rename ``.<name>.tmp`` to ``<name>``; fsync the parent folder; delete ``.<name>.old``.
#
# :func:`find_checkpoint` picks the newest complete folder among the three, so resuming works
# after a kill between any two of these steps.  Tests: tests/test_kill_resume.py.

CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "trainer_state.json")
FAULT_ENV = "COURSE_CHECKPOINT_FAULT"  # test hook: "<point>:<step>" SIGKILLs this process there


class CheckpointError(RuntimeError):
    """No usable checkpoint, or one that belongs to another run (other config or other data)."""


def _fault_point(point: str, step: int) -> None:
    """Kill the process at a named point of a save (tests/test_kill_resume.py sets the env var)."""
    wanted = os.environ.get(FAULT_ENV)
    if wanted and wanted == f"{point}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _siblings(folder: Path) -> tuple[Path, Path]:
    return folder.parent / f".{folder.name}.tmp", folder.parent / f".{folder.name}.old"


def save_checkpoint(folder, model, optimizer, scheduler, scaler, state: dict) -> None:
    """Weights and optimiser tensors in safetensors; scheduler, step and counters in JSON.
    Atomic as a whole (see the comment above): the previous checkpoint stays until this one is complete."""
    from safetensors.torch import save_file, save_model
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = _siblings(folder)
    step = int(state.get("result", {}).get("steps", -1))
    _settle(folder)  # after a killed save: the newest complete checkpoint becomes ``folder`` first
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    _fault_point("after-model", step)
    opt = optimizer.state_dict()
    tensors = {f"{i}.{name}": value.contiguous() for i, slots in opt["state"].items()
               for name, value in slots.items() if torch.is_tensor(value)}
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    _fault_point("after-optimizer", step)
    meta = {"param_groups": opt["param_groups"], "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None, **state,
            "files": {name: (tmp / name).stat().st_size for name in CHECKPOINT_FILES[:2]}}
    for name in CHECKPOINT_FILES[:2]:
        _fsync_file(tmp / name)
    partial = tmp / "trainer_state.json.partial"
    partial.write_text(json.dumps(meta, indent=1))
    _fault_point("inside-state", step)
    _fsync_file(partial)
    os.replace(partial, tmp / "trainer_state.json")  # from here on the new folder is complete
    _fsync_dir(tmp)
    _fault_point("tmp-complete", step)
    if folder.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(folder, old)
        _fault_point("old-moved", step)
    os.replace(tmp, folder)
    _fsync_dir(folder.parent)
    _fault_point("renamed", step)
    if old.exists():
        shutil.rmtree(old)


def _settle(folder: Path) -> None:
    """Put the newest complete checkpoint (left in ``.tmp`` or ``.old`` by a kill) at ``folder`` and
    delete the rest.  Every step keeps one complete checkpoint, so it is safe to kill here too."""
    tmp, old = _siblings(folder)
    best = find_checkpoint(folder)
    if best is not None and best != folder:
        if folder.exists():
            if best != old and old.exists():
                shutil.rmtree(old)
            if best == tmp:
                os.replace(folder, old)
            else:
                shutil.rmtree(folder)  # never complete (it would be newer than .old); not expected
        os.replace(best, folder)
        _fsync_dir(folder.parent)
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)


def _read_complete(folder: Path) -> dict | None:
    """The trainer state of a complete checkpoint folder, else None."""
    try:
        meta = json.loads((folder / "trainer_state.json").read_text())
        sizes = meta.get("files", {})
        if any((folder / name).stat().st_size != size for name, size in sizes.items()):
            return None
        return meta
    except (OSError, ValueError):
        return None


def find_checkpoint(folder) -> Path | None:
    """The newest complete checkpoint among ``folder`` and its save siblings, or None."""
    folder = Path(folder)
    best, best_step = None, -1
    for candidate in (folder, *_siblings(folder)):
        meta = _read_complete(candidate)
        step = meta.get("result", {}).get("steps", -1) if meta else -1
        if meta is not None and step > best_step:
            best, best_step = candidate, step
    return best


def load_checkpoint(folder, model, optimizer, scheduler, scaler) -> dict:
    """Restore the newest complete checkpoint of ``folder`` (see :func:`find_checkpoint`) into the
    given objects; returns the rest of the trainer state.  No complete checkpoint: CheckpointError."""
    from safetensors.torch import load_file, load_model
    found = find_checkpoint(folder)
    if found is None:
        raise CheckpointError(f"no complete checkpoint in {folder} (was the first save interrupted?); "
                              "start without resume=True, or with resume='auto'")
    load_model(model, str(found / "model.safetensors"))
    meta = json.loads((found / "trainer_state.json").read_text())
    meta.pop("files", None)
    tensors = load_file(str(found / "optimizer.safetensors"))
    torch.set_rng_state(tensors.pop("rng.torch"))
    if "rng.cuda" in tensors:
        cuda_state = tensors.pop("rng.cuda")
        if torch.cuda.is_available():
            torch.cuda.set_rng_state(cuda_state)
    state: dict = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    scheduler.load_state_dict(meta.pop("scheduler"))
    scaler_state = meta.pop("scaler")
    if scaler_state is not None and scaler is not None:
        scaler.load_state_dict(scaler_state)
    return meta


# What a resumed run must share with the run that saved: every setting that changes the result.
RESUME_KEYS = ("learning_rate", "weight_decay", "epochs", "max_steps", "warmup_ratio", "schedule",
               "grad_accum_steps", "max_grad_norm", "precision", "seed")


def _config_for_resume(config: TrainConfig) -> dict:
    return {k: getattr(config, k) for k in RESUME_KEYS}


def _loader_size(loader) -> dict:
    dataset = getattr(loader, "dataset", None)
    try:
        rows = len(dataset) if dataset is not None else None
    except TypeError:
        rows = None
    return {"batches": len(loader), "rows": rows}


def _batch_digest(digest, batch: dict) -> None:
    """Fold one batch (its tensors, in key order) into a running sha256: the data order's fingerprint."""
    for key in sorted(batch):
        value = batch[key]
        if torch.is_tensor(value):
            value = value.detach().cpu().contiguous()
            digest.update(f"{key}:{tuple(value.shape)}:{value.dtype}".encode())
            digest.update(value.numpy().tobytes() if value.dtype != torch.bfloat16 else value.view(torch.int16).numpy().tobytes())


def _check_resume(meta: dict, config: TrainConfig, loader, folder) -> None:
    saved = meta.get("config")
    if saved is not None:
        diffs = [f"{k}: saved {saved.get(k)!r}, now {v!r}" for k, v in _config_for_resume(config).items()
                 if saved.get(k) != v]
        if diffs:
            raise CheckpointError(f"the checkpoint in {folder} was saved with another TrainConfig ({'; '.join(diffs)}); "
                                  "resume with the same settings, or start a new run")
    data = meta.get("data")
    if data is not None:
        now = _loader_size(loader)
        if now != {k: data.get(k) for k in now}:
            raise CheckpointError(f"the checkpoint in {folder} was saved for other data ({data['batches']} batches of "
                                  f"{data['rows']} rows; this loader has {now['batches']} of {now['rows']}); "
                                  "resume with the same data, or start a new run")


# --- The loop ----------------------------------------------------------------------------

def adamw_with_decay_groups(model, learning_rate: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW that decays weight matrices but not biases or normalisation weights (1-D tensors).

    The fused kernel updates every tensor in one pass; on a CPU it is several times faster than
    the default for-each loop, and it is what ``transformers.Trainer`` uses by default too."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    device = next(model.parameters()).device
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=learning_rate, fused=fused)


def _model_inputs(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items() if k != "labels" and torch.is_tensor(v)}


def accumulate_gradients(model, micro_batches: list[dict], loss, device, dtype=None, n_targets: int | None = None,
                         backward=None, no_sync=None, world_size: int = 1,
                         pad_token_id: int | None = None) -> tuple[float, list[torch.Tensor]]:
    """Forward and backward over the micro-batches of one optimiser step.

    Each micro-batch contributes ``sum of its per-target losses / n_targets``, where ``n_targets``
    counts the trained targets of the whole step (of all ranks in data-parallel training).  The
    gradients then add up to those of one big batch, however unevenly the targets are spread.
    Data parallel (DDP) *averages* gradients over ranks, so each rank multiplies by the world size.

    Returns the step's loss (this rank's share) and each micro-batch's real sequence lengths
    (:func:`sequence_lengths`)."""
    n_targets = n_targets if n_targets is not None else sum(loss.count(b) for b in micro_batches)
    backward = backward or (lambda value: value.backward())
    step_loss, lengths = 0.0, []
    for i, batch in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        # Under DDP, skip the gradient all-reduce until the last micro-batch of the step.
        sync_context = no_sync() if (no_sync is not None and not last) else contextlib.nullcontext()
        with sync_context:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = model(**_model_inputs(batch, device)).logits
            micro = loss.loss_sum(logits, batch["labels"].to(device)) / max(n_targets, 1)
            backward(micro * world_size)
        step_loss += micro.item()
        lengths.append(sequence_lengths(batch, pad_token_id if pad_token_id is not None else padding_token_id(model)))
    return step_loss, lengths


def padding_token_id(model) -> int | None:
    """The pad id to find padding by when a batch has no 2-D attention mask (packed rows).

    ``model.config.pad_token_id`` is None for many hub models (Qwen2.5 pads with ``<|endoftext|>``
    but its config names no pad id), so the generation config, where the resolver copies the
    tokenizer's pad id, is asked next.  Pass ``pad_token_id=tokenizer.pad_token_id`` to
    :func:`train` to be explicit."""
    model = getattr(model, "module", model)  # DDP wraps the model in .module
    for config in (getattr(model, "config", None), getattr(model, "generation_config", None)):
        pad = getattr(config, "pad_token_id", None)
        if isinstance(pad, int):
            return pad
    return None


def sequence_lengths(batch: dict, pad_token_id: int | None = None) -> torch.Tensor:
    """The real (non-pad) length of every sequence in a batch, for throughput and attention FLOPs.

    * a 2-D ``attention_mask``: its row sums (padded batches);
    * packed rows (``position_ids`` that restart at 0 per example, with no mask or a 4-D one): the
      length of every example, so attention FLOPs count per example; a trailing run made only of
      ``pad_token_id`` is the row's padding and is left out;
    * otherwise every position is real."""
    mask = batch.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        return mask.sum(dim=1)
    positions = batch.get("position_ids")
    if positions is None:
        return torch.full((batch["input_ids"].size(0),), batch["input_ids"].size(1))
    out = []
    for ids, pos in zip(batch["input_ids"].tolist(), positions.tolist()):
        starts = [i for i, p in enumerate(pos) if p == 0] + [len(pos)]
        runs = [(a, b) for a, b in zip(starts, starts[1:])]
        if pad_token_id is not None and runs and all(t == pad_token_id for t in ids[runs[-1][0]:]):
            runs.pop()
        out += [b - a for a, b in runs]
    return torch.tensor(out, dtype=torch.long)


def seed_data_order(loader, seed: int) -> None:
    """Seed the global RNG and every ``torch.Generator`` the loader's samplers hold, so one epoch's
    order depends on ``seed`` alone.  (accelerate gives a distributed sampler its own generator.)"""
    torch.manual_seed(seed)
    stack, seen = [loader], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        generator = getattr(obj, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(seed)
        stack += [child for name in ("sampler", "batch_sampler", "base_dataloader")
                  if (child := getattr(obj, name, None)) is not None]


def train(model, loader, config: TrainConfig, loss=None, eval_fn=None, checkpoint_dir=None,
          resume: bool | str = False, stop_after_steps: int | None = None, device=None,
          accelerator=None, pad_token_id: int | None = None) -> TrainResult:
    """Train ``model`` on the micro-batches of ``loader``; see the module docstring.

    ``loader`` yields dicts of tensors with ``labels``.  It is re-iterated each epoch after
    ``torch.manual_seed(config.seed + epoch)``, so a shuffling DataLoader gives the same order
    again when a run resumes.  ``stop_after_steps`` simulates an interruption: it saves a
    checkpoint and returns, and ``resume=True`` continues from it (``resume="auto"``: continue if a
    complete checkpoint exists, else start).  A resume checks that the TrainConfig settings in
    :data:`RESUME_KEYS`, the loader's batch and row counts and the replayed batches of the current
    epoch match the saved run, and raises :class:`CheckpointError` naming the difference if not.

    ``accelerator`` (an ``accelerate.Accelerator``) turns on data-parallel training: every rank
    runs this same loop on its shard of the batches, DDP all-reduces the gradients, and the
    loss is normalised by the trained targets of all ranks together, so N ranks with
    accumulation k see exactly the steps of one process with accumulation N·k.

    ``pad_token_id`` identifies the padding of packed rows (batches without a 2-D attention mask)
    for the padding and tokens/s report; by default :func:`padding_token_id` reads it off the model.
    """
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    loss = loss or TokenCrossEntropy()
    if accelerator is not None:
        device = accelerator.device
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    dtype = autocast_dtype(config.precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=needs_grad_scaler(dtype))
    optimizer = adamw_with_decay_groups(model, config.learning_rate, config.weight_decay)
    world_size, is_main = 1, True
    backward, no_sync, reduce = (lambda value: scaler.scale(value).backward()), None, (lambda values: values)
    if accelerator is not None:
        world_size, is_main = accelerator.num_processes, accelerator.is_main_process
    steps_per_epoch = math.ceil(math.ceil(len(loader) / world_size) / config.grad_accum_steps)
    total_steps = config.max_steps or steps_per_epoch * config.epochs
    scheduler = get_scheduler(config.schedule, optimizer, num_warmup_steps=int(config.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    result = TrainResult(device=device.type, precision={None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype])
    data_size = _loader_size(loader)  # before accelerate shards the loader: what a resume compares
    start_epoch, skip, expected_order = 0, 0, None
    if resume == "auto":  # resume when a complete checkpoint exists, else start from the beginning
        resume = checkpoint_dir is not None and find_checkpoint(checkpoint_dir) is not None
    if resume:
        if checkpoint_dir is None:
            raise CheckpointError("resume=True needs a checkpoint_dir")
        if is_main:
            _settle(Path(checkpoint_dir))  # a kill inside the last save may have left it in .tmp or .old
        if accelerator is not None:
            accelerator.wait_for_everyone()
        meta = load_checkpoint(checkpoint_dir, model, optimizer, scheduler, scaler)
        _check_resume(meta, config, loader, checkpoint_dir)
        expected_order = meta.get("data", {}).get("order") if accelerator is None else None
        saved = meta["result"]
        for key in ("steps", "losses", "lrs", "evals", "real_tokens", "total_positions", "sum_sq_lengths", "seconds"):
            setattr(result, key, saved[key])
        start_epoch, skip = meta["epoch"], meta["micro_batches_done"]
    raw_model = model
    if accelerator is not None:
        # Only the model (DDP) and the data (sharding) are wrapped; our own loop steps the
        # optimiser and the scheduler once per step, whatever the number of ranks.
        model, loader = accelerator.prepare(model, loader)
        backward = lambda value: accelerator.backward(scaler.scale(value))  # noqa: E731
        no_sync = lambda: accelerator.no_sync(model)  # noqa: E731
        reduce = lambda values: accelerator.reduce(values, reduction="sum")  # noqa: E731
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    # At most 2 redraws a second: a notebook widget sends messages per redraw, and a kernel drops
    # messages past ZeroMQ's high-water mark (~1,000 queued), which makes nbval time out on long cells.
    bar = tqdm(total=total_steps, initial=result.steps, disable=not (config.progress and is_main), desc="train",
               mininterval=0.5)
    model.train()
    epoch = start_epoch
    while result.steps < total_steps:
        # Same seed per epoch -> the same shuffle; on resume, replay the consumed batches unused.
        # manual_seed reseeds the GPU generators too: keep the restored states (dropout) of both.
        rng_after_resume = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                            else None) if skip else None
        seed_data_order(loader, config.seed + epoch)
        batches = iter(loader)
        order = hashlib.sha256()  # fingerprint of this epoch's batches so far (saved; checked on resume)
        for _ in range(skip):
            _batch_digest(order, next(batches))
        if expected_order is not None and order.hexdigest() != expected_order:
            raise CheckpointError(f"the checkpoint in {checkpoint_dir} was saved after other batches than this "
                                  f"loader gives (the first {skip} batches of epoch {epoch + 1} differ: other "
                                  "data, order or seed); resume with the same data, or start a new run")
        expected_order = None
        if rng_after_resume is not None:
            torch.set_rng_state(rng_after_resume[0])
            if rng_after_resume[1] is not None:
                torch.cuda.set_rng_state_all(rng_after_resume[1])
        done_in_epoch = skip
        skip = 0
        while result.steps < total_steps:
            group = [b for _, b in zip(range(config.grad_accum_steps), batches)]
            if not group:
                break
            for b in group:
                _batch_digest(order, b)
            tick = time.perf_counter()
            n_targets = int(reduce(torch.tensor(sum(loss.count(b) for b in group), device=device)))
            step_loss, lengths = accumulate_gradients(model, group, loss, device, dtype, n_targets,
                                                      backward=backward, no_sync=no_sync, world_size=world_size,
                                                      pad_token_id=pad_token_id)
            if config.max_grad_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            result.lrs.append(scheduler.get_last_lr()[0])
            scheduler.step()
            lengths = torch.cat(lengths).long()
            counts = torch.tensor([step_loss, float(lengths.sum()), float(sum(b["input_ids"].numel() for b in group)),
                                   float((lengths ** 2).sum())], dtype=torch.float64, device=device)
            step_loss, real, positions, sum_sq = (float(v) for v in reduce(counts))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            result.seconds += time.perf_counter() - tick
            result.real_tokens += int(real)
            result.total_positions += int(positions)
            result.sum_sq_lengths += int(sum_sq)
            result.losses.append(step_loss)
            result.steps += 1
            done_in_epoch += len(group)
            bar.set_postfix(loss=f"{step_loss:.3f}", refresh=False)  # shown at the next throttled redraw
            bar.update(1)
            epoch_done = done_in_epoch >= len(loader)
            if epoch_done and eval_fn is not None:
                model.eval()
                with torch.no_grad():
                    result.evals.append({"epoch": epoch + 1, **eval_fn(raw_model)})
                model.train()
            interrupted = stop_after_steps is not None and result.steps >= stop_after_steps
            if checkpoint_dir and is_main and (interrupted or (config.save_every and result.steps % config.save_every == 0)):
                next_epoch, next_skip = (epoch + 1, 0) if epoch_done else (epoch, done_in_epoch)
                data_state = {**data_size, "order": order.hexdigest() if next_skip and accelerator is None else None}
                save_checkpoint(checkpoint_dir, raw_model, optimizer, scheduler, scaler,
                                {"epoch": next_epoch, "micro_batches_done": next_skip, "result": _resumable(result),
                                 "config": _config_for_resume(config), "data": data_state})
            if interrupted:
                result.stopped_early = True
                bar.close()
                return _finish(result, raw_model, device, dtype, world_size)
            if epoch_done:
                break
        epoch += 1
    bar.close()
    return _finish(result, raw_model, device, dtype, world_size)


def _resumable(result: TrainResult) -> dict:
    return {k: v for k, v in asdict(result).items()
            if k in ("steps", "losses", "lrs", "evals", "real_tokens", "total_positions", "sum_sq_lengths", "seconds")}


def _finish(result: TrainResult, model, device, dtype, world_size: int = 1) -> TrainResult:
    result.peak_memory_mb = peak_memory_mb(device)
    config = model.config
    layers = getattr(config, "num_hidden_layers", 0)
    hidden = getattr(config, "hidden_size", 0)
    n_params = sum(p.numel() for p in model.parameters())
    flops = training_flops(n_params, result.real_tokens, layers, hidden, result.sum_sq_lengths)
    # Every rank ran for ``seconds`` on its own device: utilisation is per device.
    result.mfu = model_flops_utilisation(flops / world_size, result.seconds, device, dtype) if result.seconds else None
    model.eval()
    return result
