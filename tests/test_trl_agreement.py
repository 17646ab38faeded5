"""TRL's SFTTrainer agrees with the course: the same labels example by example, and the same
losses step by step when both train on the same rows in the same order.

The labels are checked on two routes that share no code with TRL's:
* the course template, which has ``{% generation %}`` markers: the course reads the mask
  (``chat_format.build_sft_example``), TRL too;
* Qwen2.5's real chat template (as TRL ships it), which has none: the course finds each reply by
  rendering the chat's prefixes (``chat_format.build_sft_example_by_diff``), while TRL swaps in its
  own hand-written training template.  Multi-turn chats included: both train every assistant turn.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

trl = pytest.importorskip("trl")

from course_utils import packing, sft  # noqa: E402
from course_utils.course_tokenizer import load_course_tokenizer  # noqa: E402
from course_utils.data import load_records  # noqa: E402
from course_utils.models import small_causal_config  # noqa: E402
from course_utils.sft_libraries import (course_rows, label_agreement, max_abs_gap, quiet, sft_config,  # noqa: E402
                                        step_losses, trl_examples)
from course_utils.training import CausalLMCrossEntropy, TrainConfig, train  # noqa: E402

QWEN25_TEMPLATE = Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja"


def _chats():
    """Single-turn alpaca records and the chat set's multi-turn chats, with and without a system turn."""
    alpaca = [sft.to_messages(r) for r in load_records("sft_alpaca")[:40]]
    chats = [r["messages"] for r in load_records("sft_chat")]
    multi = [m for m in chats if sum(t["role"] == "assistant" for t in m) > 1][:40]
    return alpaca + multi, len(multi)


def _trainer(model, tokenizer, messages, tmp_path, **overrides):
    from datasets import Dataset
    args = sft_config(str(tmp_path), max_steps=2, learning_rate=1e-3, rows_per_step=2, max_length=256, **overrides)
    return quiet(trl.SFTTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"messages": messages}),
                                processing_class=tokenizer))


def _model(tokenizer, seed=0):
    from transformers import AutoModelForCausalLM
    torch.manual_seed(seed)
    config = small_causal_config(tokenizer, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                                 num_key_value_heads=2)
    model = AutoModelForCausalLM.from_config(config)
    model.config.use_cache = False
    return model


@pytest.mark.parametrize("template", ["course (generation markers)", "Qwen2.5 (no markers)"])
def test_trl_labels_equal_the_course_labels(template, tmp_path):
    tokenizer = load_course_tokenizer()
    if template.startswith("Qwen"):
        tokenizer.chat_template = QWEN25_TEMPLATE.read_text()
        assert not sft.has_generation_markers(tokenizer)
    messages, n_multi = _chats()
    assert n_multi >= 20
    trainer = _trainer(_model(tokenizer), copy.deepcopy(tokenizer), messages, tmp_path)
    ours = [sft.sft_example(tokenizer, m, turns="all") for m in messages]
    theirs = trl_examples(trainer.train_dataset)
    assert len(theirs) == len(messages)
    if template.startswith("course"):
        assert label_agreement(theirs, ours) == (len(messages), len(messages))
    else:
        # TRL 1.16's Qwen2.5 training template puts the newline after "<|im_start|>assistant" and the one
        # after "<|im_end|>" inside {% generation %}: exactly two more trained tokens per reply, both "\n".
        assert label_agreement(theirs, ours) == (0, len(messages))
        newline = tokenizer.convert_tokens_to_ids("Ċ")
        by_ids = {tuple(e["input_ids"]): e["labels"] for e in theirs}
        for m, e in zip(messages, ours):
            trl_labels = by_ids[tuple(e["input_ids"])]
            extra = [i for i, (a, b) in enumerate(zip(trl_labels, e["labels"])) if a != b]
            assert all(e["labels"][i] == -100 and trl_labels[i] == e["input_ids"][i] == newline for i in extra)
            assert len(extra) == 2 * sum(t["role"] == "assistant" for t in m)
    # Not vacuous: every multi-turn chat trains more than one reply, each closed by <|im_end|>.
    eot = tokenizer.convert_tokens_to_ids(sft.END_OF_TURN)
    for e in ours[-n_multi:]:
        assert sum(1 for t, l in zip(e["input_ids"], e["labels"]) if l == t == eot) >= 2


def test_label_agreement_notices_a_different_mask():
    tokenizer = load_course_tokenizer()
    messages, _ = _chats()
    all_turns = [sft.sft_example(tokenizer, m, turns="all") for m in messages]
    last_turn = [sft.sft_example(tokenizer, m, turns="last") for m in messages]
    agree, total = label_agreement(last_turn, all_turns)
    assert agree == total - sum(sum(t["role"] == "assistant" for t in m) > 1 for m in messages)


def test_trl_losses_track_the_course_loop(tmp_path):
    """Same start, same rows, same order, same optimiser settings: the curves coincide."""
    tokenizer = load_course_tokenizer()
    records = load_records("sft_alpaca")[:300]
    messages = [sft.to_messages(r) for r in records]
    model = _model(tokenizer, seed=1)
    start = copy.deepcopy(model.state_dict())
    steps, rows_per_step, row = 12, 2, 128
    from datasets import Dataset
    args = sft_config(str(tmp_path), max_steps=steps, learning_rate=3e-3, rows_per_step=rows_per_step, max_length=row,
                      warmup_ratio=0.25)
    trainer = quiet(trl.SFTTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"messages": messages}),
                                   processing_class=copy.deepcopy(tokenizer)))
    trainer.train()
    theirs = step_losses(trainer)

    model.load_state_dict(start)
    rows = course_rows(trainer.train_dataset, row, tokenizer.pad_token_id)
    batches = [packing.PackedCollator()(rows[i:i + rows_per_step]) for i in range(0, len(rows), rows_per_step)]
    ours = train(model, batches[:steps], TrainConfig(learning_rate=3e-3, warmup_ratio=0.25, weight_decay=0.01,
                                                      max_grad_norm=1.0, max_steps=steps, seed=3, progress=False),
                 loss=CausalLMCrossEntropy(), device="cpu").losses
    assert len(theirs) == len(ours) == steps
    assert ours[-1] < ours[0] - 0.5  # the curves move, so agreeing is not trivial
    assert max_abs_gap(theirs, ours) < 1e-4


def test_course_rows_keep_tokens_and_restart_positions():
    packed = [{"input_ids": [5, 6, 7, 8, 9], "labels": [5, -100, 7, 8, 9], "seq_lengths": [3, 2]}]
    (row,) = course_rows(packed, 8, pad_token_id=0)
    assert row["input_ids"] == [5, 6, 7, 8, 9, 0, 0, 0]
    assert row["labels"] == [-100, -100, 7, -100, 9, -100, -100, -100]
    assert row["position_ids"] == [0, 1, 2, 0, 1, 0, 1, 2]
    assert trl_examples(packed) == [{"input_ids": [5, 6, 7], "labels": [5, -100, 7]},
                                    {"input_ids": [8, 9], "labels": [8, 9]}]
    with pytest.raises(ValueError, match="more than max_length"):
        course_rows(packed, 4, pad_token_id=0)
