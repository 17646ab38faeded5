"""The child side of tests/test_kill_resume.py: one training run that checkpoints every step and
resumes from whatever checkpoint it finds.  Imported once by a multiprocessing forkserver, so each
forked child starts in milliseconds instead of importing torch and transformers again."""

import os
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader, RandomSampler
from transformers import BertForSequenceClassification, get_scheduler  # noqa: F401  (loaded before forking)

from course_utils.models import small_encoder_config
from course_utils.training import FAULT_ENV, TrainConfig, train

VOCAB, ROWS, BATCH, EPOCHS = 50, 24, 4, 2
STEPS = ROWS // BATCH * EPOCHS  # 12 optimiser steps (6 per epoch), a checkpoint after each


def make_run(rows: int = ROWS, learning_rate: float = 3e-3):
    from transformers import AutoModelForSequenceClassification
    torch.manual_seed(0)
    config = small_encoder_config(VOCAB, labels=["a", "b", "c"], hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32, hidden_dropout_prob=0.1,
                                  attention_probs_dropout_prob=0.1)
    model = AutoModelForSequenceClassification.from_config(config)
    g = torch.Generator().manual_seed(1)
    data = []
    for _ in range(rows):
        length = int(torch.randint(1, 13, (1,), generator=g))
        data.append({"input_ids": torch.randint(1, VOCAB, (length,), generator=g),
                     "labels": torch.randint(0, 3, (), generator=g)})
    loader = DataLoader(data, batch_size=BATCH, collate_fn=collate,
                        sampler=RandomSampler(data, generator=torch.Generator().manual_seed(0)))
    config = TrainConfig(learning_rate=learning_rate, epochs=EPOCHS, seed=7, progress=False, save_every=1)
    return model, loader, config


def collate(items):
    width = max(len(item["input_ids"]) for item in items)
    ids = torch.zeros(len(items), width, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        ids[row, :n], mask[row, :n] = item["input_ids"], 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.stack([i["labels"] for i in items])}


def child(folder: str, fault: str | None) -> None:
    """Train to the end (resuming if a checkpoint exists), then write the final weights."""
    start = time.perf_counter()
    torch.set_num_threads(1)
    if fault:
        os.environ[FAULT_ENV] = fault
    else:
        os.environ.pop(FAULT_ENV, None)
    folder = Path(folder)
    model, loader, config = make_run()
    result = train(model, loader, config, checkpoint_dir=folder / "ckpt", resume="auto", device="cpu")
    assert result.steps == STEPS
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "final.partial"), metadata={"losses": repr(result.losses),
                                                                   "seconds": repr(time.perf_counter() - start)})
    os.replace(folder / "final.partial", folder / "final.safetensors")
