"""SFT the library way: TRL's ``SFTTrainer`` set up to do exactly what the course loop does.

The course builds assistant-only labels (``sft.sft_example``), packs them with best-fit
decreasing (``packing``) and trains with its own loop (``training.train``).  TRL does the same
three steps inside ``SFTTrainer``:

* ``assistant_only_loss=True``: labels from the chat template's ``{% generation %}`` mask.  A
  template without markers is swapped for TRL's training copy when TRL knows it (Qwen2.5, Llama 3,
  ...), and refused otherwise;
* ``packing=True, packing_strategy="bfd"``: best-fit decreasing into rows of ``max_length``, and
  *padding-free* batches: the rows of a batch are laid end to end in one sequence whose
  ``position_ids`` restart at every example (no attention mask; transformers derives the
  block-diagonal mask from the positions);
* the loss of a step is the sum over trained tokens divided by their number, as in the course loop.

:func:`sft_config` pins every setting that would otherwise differ from the course loop (TRL's
defaults are bf16 and gradient checkpointing; the Trainer shuffles with its own generator), so
that the two can be compared step by step.  :func:`trl_examples` and :func:`course_rows` read
TRL's packed rows back as examples and as course rows.
"""

from __future__ import annotations

IGNORE_INDEX = -100


def messages_dataset(records, system: str | None = None):
    """A ``datasets.Dataset`` with one ``messages`` column: TRL's conversational format."""
    from datasets import Dataset
    from course_utils.sft import to_messages
    return Dataset.from_dict({"messages": [to_messages(r, system=system) for r in records]})


def sft_config(output_dir: str, *, max_steps: int, learning_rate: float, rows_per_step: int, max_length: int,
               warmup_ratio: float = 0.05, weight_decay: float = 0.01, max_grad_norm: float = 1.0, seed: int = 3,
               end_of_turn: str = "<|im_end|>", use_cpu: bool = True, **overrides):
    """``trl.SFTConfig`` with the course loop's settings: assistant-only loss, bfd packing, AdamW with
    linear warmup and decay, clipping at norm 1, fp32 on a CPU, and batches taken in dataset order.

    * ``warmup_steps`` is computed as the course loop does (``int(ratio * steps)``); TRL's own
      ratio rounds up;
    * ``shuffle_dataset=True`` shuffles the packed rows once with ``seed``, and
      ``train_sampling_strategy="sequential"`` then reads them in that order, so the order is a
      property of the dataset, which the course loop can replay;
    * ``eos_token`` is the end-of-turn token.  Without it, the Trainer aligns the model config's
      ``eos_token_id`` with the tokenizer's ``<|endoftext|>``, and generation would no longer stop at
      ``<|im_end|>``."""
    from trl import SFTConfig
    settings = dict(
        output_dir=output_dir, assistant_only_loss=True, packing=True, packing_strategy="bfd", max_length=max_length,
        eos_token=end_of_turn, shuffle_dataset=True, train_sampling_strategy="sequential",
        per_device_train_batch_size=rows_per_step, max_steps=max_steps, learning_rate=learning_rate,
        warmup_steps=int(warmup_ratio * max_steps), lr_scheduler_type="linear", weight_decay=weight_decay,
        max_grad_norm=max_grad_norm, seed=seed, bf16=False, fp16=False, activation_checkpointing=False,
        logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True, use_cpu=use_cpu,
        dataloader_num_workers=0)
    settings.update(overrides)
    return SFTConfig(**settings)


def quiet(trainer):
    """Drop the Trainer's per-step log printing (the course reads ``trainer.state.log_history``)."""
    from transformers import PrinterCallback, ProgressCallback
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def step_losses(trainer) -> list[float]:
    """The training loss of every optimiser step (needs ``logging_steps=1``)."""
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def trl_examples(packed_rows) -> list[dict]:
    """Split TRL's packed rows (``input_ids``, ``labels``, ``seq_lengths``) back into examples."""
    out = []
    for row in packed_rows:
        start = 0
        for n in row["seq_lengths"]:
            out.append({"input_ids": list(row["input_ids"][start:start + n]),
                        "labels": list(row["labels"][start:start + n])})
            start += n
        if start != len(row["input_ids"]):
            raise ValueError(f"seq_lengths {row['seq_lengths']} do not add up to the row's {len(row['input_ids'])} tokens")
    return out


def label_agreement(trl_side, course_side) -> tuple[int, int]:
    """How many of TRL's examples carry exactly the course's labels for the same tokens.

    TRL packs in its own order, so examples are matched by their ``input_ids``.  Returns
    (agreeing, total); an example whose tokens the course never produced counts as disagreeing."""
    course = {}
    for e in course_side:
        course[tuple(e["input_ids"])] = list(e["labels"])
    agree = sum(course.get(tuple(e["input_ids"])) == list(e["labels"]) for e in trl_side)
    return agree, len(trl_side)


def course_rows(packed_rows, max_length: int, pad_token_id: int) -> list[dict]:
    """TRL's packed rows as ``packing.pack_examples`` rows (same examples, same order), padded to
    ``max_length``, so the course loop can train on exactly the batches TRL trains on.

    TRL's padding-free collator drops each example's first label; the course's packed rows do
    the same (the first token would be predicted from the previous example)."""
    rows = []
    for row in packed_rows:
        ids, labels, positions, start = [], [], [], 0
        for n in row["seq_lengths"]:
            ids += row["input_ids"][start:start + n]
            labels += [IGNORE_INDEX] + list(row["labels"][start + 1:start + n])
            positions += range(n)
            start += n
        n_pad = max_length - len(ids)
        if n_pad < 0:
            raise ValueError(f"a packed row holds {len(ids)} tokens, more than max_length {max_length}")
        rows.append({"input_ids": ids + [pad_token_id] * n_pad, "labels": labels + [IGNORE_INDEX] * n_pad,
                     "position_ids": positions + list(range(n_pad)), "seq_lengths": list(row["seq_lengths"]),
                     "n_real": len(ids)})
    return rows


def max_abs_gap(a, b) -> float:
    """Largest absolute difference of two equally long loss curves."""
    if len(a) != len(b):
        raise ValueError(f"the curves have {len(a)} and {len(b)} steps")
    return max(abs(x - y) for x, y in zip(a, b))


def trained_eos_labels(batch, eos_token_id: int) -> int:
    """How many positions of a collated batch train the model to emit ``eos_token_id``."""
    labels = batch["labels"]
    return int((labels == eos_token_id).sum())
