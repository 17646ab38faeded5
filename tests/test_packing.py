"""Packing: best-fit decreasing, packed rows, padding accounting, and the leak test.

The leak test runs the same examples alone and packed into one row through a small Llama and
compares logits.  With an explicit block-diagonal causal mask (or with restarting position_ids
and no 2-D mask and no KV cache, from which transformers derives that mask) they agree to float
precision; with restarting position_ids plus an all-ones 2-D mask, or with a KV cache, the later
examples attend to the earlier ones and their logits change.
"""

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, DataCollatorWithFlattening

from course_utils.chat_format import SFTCollator
from course_utils.course_tokenizer import load_course_tokenizer
from course_utils.models import small_causal_config
from course_utils.packing import (IGNORE_INDEX, PackedCollator, additive_mask, best_fit_decreasing, block_causal_mask,
                                  dynamic_padding_fraction, fixed_padding_fraction, pack_examples,
                                  packed_padding_fraction, segment_ids)
from course_utils.training import CausalLMCrossEntropy, TrainConfig, sequence_lengths, train


# --- best-fit decreasing -------------------------------------------------------------------

def test_best_fit_decreasing_worked_example():
    # By hand, capacity 10, longest first: 7 -> new bin A (room 3); 5 -> new bin B (room 5);
    # 4 -> B, the only bin with room (room 1); 3 -> A, exact fit (room 0); 2 -> new bin C (room 8);
    # 2 -> C (room 6); 1 -> B, the tightest bin it fits (room 0; C would leave room 5).
    assert best_fit_decreasing([7, 5, 4, 3, 2, 2, 1], 10) == [[0, 3], [1, 2, 6], [4, 5]]


def test_best_fit_prefers_the_tightest_bin_where_first_fit_does_not():
    # Capacity 10, sorted 8, 6, 3, 1: 8 -> bin A (room 2); 6 -> bin B (room 4); 3 -> B (room 1).
    # The 1 fits both: first fit takes the first bin, A; best fit takes the tightest, B (room 0).
    assert best_fit_decreasing([1, 8, 3, 6], 10) == [[1], [3, 2, 0]]


def test_too_long_example_is_an_error():
    with pytest.raises(ValueError, match="longer than capacity 8"):
        best_fit_decreasing([3, 9], 8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 32), min_size=1, max_size=60), st.integers(32, 64))
def test_best_fit_decreasing_properties(lengths, capacity):
    bins = best_fit_decreasing(lengths, capacity)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))  # each example once
    loads = [sum(lengths[i] for i in b) for b in bins]
    assert max(loads) <= capacity
    assert len(bins) >= -(-sum(lengths) // capacity)                        # the trivial lower bound
    # Any-fit property: a bin is only opened when the item fits no open bin, so no two bins could merge.
    assert all(a + b > capacity for i, a in enumerate(loads) for b in loads[i + 1:])


# --- packed rows -----------------------------------------------------------------------------

def _examples(lengths, seed=0):
    rng = random.Random(seed)
    out = []
    for n in lengths:
        ids = [rng.randrange(4, 1000) for _ in range(n)]
        labels = [IGNORE_INDEX] * (n // 2) + ids[n // 2:]
        out.append({"input_ids": ids, "labels": labels})
    return out


def test_pack_examples_rows():
    examples = _examples([7, 5, 4, 3, 2, 2, 1])
    rows = pack_examples(examples, max_length=10, pad_token_id=0)
    assert [r["seq_lengths"] for r in rows] == [[7, 3], [5, 4, 1], [2, 2]]
    assert all(len(r[k]) == 10 for r in rows for k in ("input_ids", "labels", "position_ids"))
    last = rows[2]
    assert last["position_ids"] == [0, 1, 0, 1, 0, 1, 2, 3, 4, 5]
    assert last["input_ids"][4:] == [0] * 6 and last["labels"][4:] == [IGNORE_INDEX] * 6
    # Real tokens come back in order, and each example's first label is dropped (cross-example target).
    first = rows[0]
    assert first["input_ids"][:7] == examples[0]["input_ids"]
    assert first["labels"][7:] == [IGNORE_INDEX] + examples[3]["labels"][1:]


def test_position_ids_match_transformers_flattening_collator():
    examples = _examples([5, 3, 2])
    ours = pack_examples(examples, max_length=10, pad_token_id=0)[0]
    reference = DataCollatorWithFlattening(return_position_ids=True)(examples)  # same order: 5, 3, 2
    assert ours["position_ids"] == reference["position_ids"][0].tolist()
    assert ours["input_ids"] == reference["input_ids"][0].tolist()
    assert ours["labels"] == reference["labels"][0].tolist()


def test_block_causal_mask_equals_block_diagonal_of_causal_blocks():
    segments = segment_ids([3, 2], 7)                  # two examples and 2 positions of padding
    assert segments == [0, 0, 0, 1, 1, 2, 2]
    expected = torch.block_diag(*(torch.ones(n, n).tril() for n in (3, 2, 2))).bool()
    assert torch.equal(block_causal_mask(segments)[0, 0], expected)


def test_padding_fractions_worked_example():
    lengths = [7, 5, 4, 3, 2, 2, 1]                    # 24 real tokens
    assert fixed_padding_fraction(lengths, 10) == pytest.approx(1 - 24 / 70)
    # Batches of 2 padded to their longest: (7,5)->14, (4,3)->8, (2,2)->4, (1)->1: 27 positions.
    assert dynamic_padding_fraction(lengths, 2) == pytest.approx(1 - 24 / 27)
    rows = pack_examples(_examples(lengths), 10, 0)    # 3 rows of 10
    assert packed_padding_fraction(rows) == pytest.approx(1 - 24 / 30)


# --- real-token accounting in the training loop ------------------------------------------------

@pytest.mark.parametrize("mask", ["position_ids", "4d"])
def test_sequence_lengths_of_packed_rows_leave_out_the_padding(mask):
    rows = pack_examples(_examples([7, 5, 4, 3, 2, 2, 1]), max_length=10, pad_token_id=0)
    batch = PackedCollator(mask=mask)(rows)
    assert sequence_lengths(batch, pad_token_id=0).tolist() == [n for r in rows for n in r["seq_lengths"]]
    # without knowing the pad id the trailing padding counts as one more sequence
    assert sequence_lengths(batch).sum().item() == 30


def test_sequence_lengths_of_padded_and_plain_batches():
    batch = SFTCollator(pad_token_id=0)(_examples([5, 3, 2]))
    assert sequence_lengths(batch, pad_token_id=0).tolist() == [5, 3, 2]
    assert sequence_lengths({"input_ids": torch.ones(2, 6, dtype=torch.long)}).tolist() == [6, 6]


def test_training_on_packed_rows_counts_real_tokens_only():
    tokenizer = load_course_tokenizer()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(small_causal_config(tokenizer, hidden_size=32, intermediate_size=64))
    model.config.use_cache = False
    examples = [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in _examples([9, 7, 6, 5, 4, 3, 3, 2], 1)]
    rows = pack_examples(examples, max_length=12, pad_token_id=tokenizer.pad_token_id)
    loader = torch.utils.data.DataLoader(rows, batch_size=2, collate_fn=PackedCollator())
    result = train(model, loader, TrainConfig(epochs=1, progress=False), loss=CausalLMCrossEntropy())
    assert result.real_tokens == sum(r["n_real"] for r in rows) == 39
    assert result.padding_fraction == pytest.approx(packed_padding_fraction(rows))
    assert result.sum_sq_lengths == sum(n * n for r in rows for n in r["seq_lengths"])


# --- the leak test ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_llama():
    torch.manual_seed(0)
    tokenizer = load_course_tokenizer()
    config = small_causal_config(tokenizer, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                 num_key_value_heads=4)
    return AutoModelForCausalLM.from_config(config).eval()


def _alone_and_packed(model, examples, collate, **kwargs):
    rows = pack_examples(examples, max_length=sum(len(e["input_ids"]) for e in examples) + 3, pad_token_id=0)
    assert len(rows) == 1
    batch = collate(rows)
    labels = batch.pop("labels")
    with torch.no_grad():
        packed = model(**batch, **kwargs).logits[0]
        start, pairs = 0, []
        for n in rows[0]["seq_lengths"]:
            index = [len(e["input_ids"]) for e in examples].index(n)
            alone = model(torch.tensor([examples[index]["input_ids"]])).logits[0]
            pairs.append((alone, packed[start:start + n]))
            start += n
    return pairs, packed, labels


def test_packed_logits_equal_alone_with_block_causal_mask(tiny_llama):
    examples = _examples([9, 6, 4], seed=1)
    pairs, _, _ = _alone_and_packed(tiny_llama, examples, PackedCollator(mask="4d"))
    for alone, packed in pairs:
        torch.testing.assert_close(packed, alone, atol=1e-5, rtol=1e-5)


def test_packed_logits_equal_alone_with_position_ids_and_no_cache(tiny_llama):
    # transformers (v5) finds the example boundaries from the restarting position_ids, but only when
    # no 2-D attention mask and no KV cache are passed.
    examples = _examples([9, 6, 4], seed=1)
    pairs, _, _ = _alone_and_packed(tiny_llama, examples, PackedCollator(), use_cache=False)
    for alone, packed in pairs:
        torch.testing.assert_close(packed, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("setting", ["all-ones 2-D mask", "KV cache on"])
def test_position_ids_alone_leak_across_examples(tiny_llama, setting):
    examples = _examples([9, 6, 4], seed=1)

    def collate(rows):
        batch = PackedCollator()(rows)
        if setting == "all-ones 2-D mask":
            batch["attention_mask"] = torch.ones_like(batch["input_ids"])
        return batch

    kwargs = {"use_cache": setting == "KV cache on"}
    pairs, _, _ = _alone_and_packed(tiny_llama, examples, collate, **kwargs)
    first, *later = pairs
    torch.testing.assert_close(first[1], first[0], atol=1e-5, rtol=1e-5)  # the first example sees only itself
    # SDPA falls back to one plain causal mask over the row: later examples attend to earlier ones.
    assert all((packed - alone).abs().max() > 1e-2 for alone, packed in later)


def test_packed_loss_equals_sum_of_alone_losses(tiny_llama):
    from course_utils.training import CausalLMCrossEntropy
    loss = CausalLMCrossEntropy()
    examples = _examples([9, 6, 4], seed=2)
    for e in examples:
        e["labels"] = list(e["input_ids"])             # every token trained: the hardest case
    _, packed_logits, labels = _alone_and_packed(tiny_llama, examples, PackedCollator(mask="4d"))
    packed = loss.loss_sum(packed_logits[None], labels)
    with torch.no_grad():
        alone = sum(loss.loss_sum(tiny_llama(torch.tensor([e["input_ids"]])).logits, torch.tensor([e["labels"]]))
                    for e in examples)
    torch.testing.assert_close(packed, alone, atol=1e-4, rtol=1e-5)
    assert loss.count({"labels": labels}) == sum(len(e["input_ids"]) - 1 for e in examples)


# --- issue 13: the explicit mask under sdpa AND eager; misaligned input refused ----------------

@pytest.fixture(scope="module", params=["sdpa", "eager"])
def llama_by_impl(request):
    torch.manual_seed(0)
    config = small_causal_config(load_course_tokenizer(), hidden_size=64, intermediate_size=128,
                                 num_attention_heads=4, num_key_value_heads=4)
    return AutoModelForCausalLM.from_config(config, attn_implementation=request.param).eval()


def test_4d_mask_gives_the_alone_logits_under_sdpa_and_eager(llama_by_impl):
    assert llama_by_impl.config._attn_implementation in ("sdpa", "eager")
    examples = _examples([9, 6, 4], seed=1)
    for kwargs in ({}, {"use_cache": True}):
        pairs, _, _ = _alone_and_packed(llama_by_impl, examples, PackedCollator(mask="4d"), **kwargs)
        for alone, packed in pairs:
            torch.testing.assert_close(packed, alone, atol=1e-5, rtol=1e-5)


def test_boolean_4d_mask_leaks_under_eager_which_is_why_the_collator_sends_floats(llama_by_impl):
    examples = _examples([9, 6, 4], seed=1)

    def boolean(rows):
        batch = PackedCollator(mask="4d")(rows)
        batch["attention_mask"] = batch["attention_mask"] == 0   # back to True = may attend
        return batch

    pairs, _, _ = _alone_and_packed(llama_by_impl, examples, boolean)
    worst = max((packed - alone).abs().max().item() for alone, packed in pairs)
    if llama_by_impl.config._attn_implementation == "eager":
        assert worst > 1e-2       # eager ADDS the mask: True becomes +1, nothing is blocked
    else:
        assert worst < 1e-5       # sdpa reads a boolean mask as "may attend"


def test_additive_mask_values():
    allowed = torch.tensor([[True, False], [True, True]])
    out = additive_mask(allowed, torch.float16)
    assert out.dtype == torch.float16
    assert out.tolist() == [[0.0, -65504.0], [0.0, 0.0]]


@pytest.mark.parametrize("bad, words", [
    ({"input_ids": [], "labels": []}, "example 1 is empty"),
    ({"input_ids": [5, 6, 7], "labels": [5, 6]}, "example 1: 2 labels for 3 input_ids"),
    ({"input_ids": [5], "labels": [5, 6]}, "example 1: 2 labels for 1 input_ids"),
])
def test_pack_examples_refuses_empty_and_misaligned_examples(bad, words):
    good = {"input_ids": [1, 2], "labels": [1, 2]}
    with pytest.raises(ValueError, match=words):
        pack_examples([good, bad, good], 8, 0)


def test_packed_collator_refuses_rows_of_different_lengths():
    rows = pack_examples(_examples([3, 2]), 5, 0) + pack_examples(_examples([3]), 4, 0)
    with pytest.raises(ValueError, match="row 1: lengths"):
        PackedCollator(mask="4d")(rows)
    row = pack_examples(_examples([3]), 4, 0)[0]
    with pytest.raises(ValueError, match="row 0: lengths"):
        PackedCollator()([{**row, "labels": row["labels"][:-1]}])
