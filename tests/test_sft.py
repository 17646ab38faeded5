"""Instruction SFT: the template split, examples and masks, scoring, and gradient accumulation.

The accumulation test trains one step on the same 8 conversations twice, once as one batch and
once as 4 micro-batches of 2 (grad_accum_steps=4), and checks that the step loss and the gradient
agree when each micro-batch's summed loss is divided by the trained tokens of the whole step.
Averaging the 4 micro-batch means instead gives a different number, because the micro-batches
hold different numbers of trained tokens.
"""

import random
import re
from collections import Counter

import pytest
import torch
from transformers import AutoModelForCausalLM

from course_utils import sft, tasks
from course_utils.chat_format import IGNORE_INDEX, SFTCollator, build_sft_example
from course_utils.course_tokenizer import load_course_tokenizer
from course_utils.data import load_records
from course_utils.models import small_causal_config
from course_utils.packing import PackedCollator, pack_examples
from course_utils.training import CausalLMCrossEntropy, TrainConfig, train


@pytest.fixture(scope="module")
def tokenizer():
    return load_course_tokenizer()


@pytest.fixture(scope="module")
def alpaca():
    return load_records("sft_alpaca")


def tiny_model(tokenizer, seed=0):
    torch.manual_seed(seed)
    config = small_causal_config(tokenizer, hidden_size=64, intermediate_size=128)
    model = AutoModelForCausalLM.from_config(config)
    model.config.use_cache = False
    return model


# --- the split ---------------------------------------------------------------------------------

def test_split_by_template_holds_out_one_phrasing_per_task(alpaca):
    train_part, test_part = sft.split_by_template(alpaca, held_out=2)
    assert len(train_part) + len(test_part) == len(alpaca)
    assert {sft.template_index(r) for r in test_part} == {2}
    assert {sft.template_index(r) for r in train_part} == {0, 1}
    # Every task and language is tested, and no test phrasing occurs in training.
    assert {(r["task"], r["lang"]) for r in test_part} == {(t, lang) for t in tasks.TASKS for lang in ("zh", "en")}
    assert not {r["template_id"] for r in train_part} & {r["template_id"] for r in test_part}


def test_fresh_training_records_skip_test_instances(alpaca):
    test_part = [r for r in alpaca if sft.template_index(r) == 0][:200]
    fresh = sft.fresh_training_records(3000, seed=5, templates=(0,), exclude=test_part)
    assert len(fresh) == 3000
    assert {sft.template_index(r) for r in fresh} == {0}
    assert not {sft.instance_key(r) for r in fresh} & {sft.instance_key(r) for r in test_part}
    assert all(tasks.is_correct(r, r["output"]) for r in fresh)


def test_pretraining_text_contains_no_instruction_prompt(alpaca):
    corpus = "\n".join(sft.pretraining_texts())
    assert not any(r["instruction"] in corpus for r in alpaca)


# --- examples and masks -------------------------------------------------------------------------

def test_assistant_only_labels_are_the_answer_and_end_of_turn(tokenizer, alpaca):
    record = alpaca[2]
    example = sft.sft_example(tokenizer, sft.to_messages(record))
    trained = [t for t, lab in zip(example["input_ids"], example["labels"]) if lab != IGNORE_INDEX]
    assert tokenizer.decode(trained) == record["output"] + sft.END_OF_TURN


def test_all_tokens_ablation_trains_every_position(tokenizer, alpaca):
    example = sft.sft_example(tokenizer, sft.to_messages(alpaca[0]), loss_on="all")
    assert example["labels"] == example["input_ids"]
    with pytest.raises(ValueError):
        sft.sft_example(tokenizer, sft.to_messages(alpaca[0]), loss_on="prompt")


def test_template_without_generation_markers_gives_the_same_labels(tokenizer, alpaca):
    """Hub templates (Qwen2.5's, say) have no {% generation %}; the prompt-prefix route must agree."""
    plain = load_course_tokenizer()
    plain.chat_template = plain.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    assert sft.has_generation_markers(tokenizer) and not sft.has_generation_markers(plain)
    for i, record in enumerate(alpaca[:60]):
        messages = sft.to_messages(record, system="Answer briefly." if i % 2 else None)
        marked = build_sft_example(tokenizer, messages)
        derived = sft.sft_example(plain, messages)
        assert derived == marked      # same tokens (the template's final "\n" included, untrained), same labels


def test_trained_token_share_worked_example():
    examples = [{"input_ids": [1, 2, 3, 4], "labels": [-100, -100, 3, 4]},
                {"input_ids": [5, 6], "labels": [-100, 6]}]
    assert sft.trained_token_share(examples) == pytest.approx(3 / 6)


# --- scoring and generation ---------------------------------------------------------------------

def test_score_needs_the_right_answer_and_a_closed_turn(alpaca):
    records = alpaca[:4]
    generations = [{"prediction": records[0]["output"], "ended": True},
                   {"prediction": " " + records[1]["output"] + " ", "ended": True},   # whitespace is trimmed
                   {"prediction": records[2]["output"], "ended": False},              # never stopped
                   {"prediction": "wrong", "ended": True}]
    result = sft.score(records, generations)
    assert result["exact_match"] == pytest.approx(2 / 4)
    assert result["format_rate"] == pytest.approx(3 / 4)


def test_generate_answers_shape_and_restores_padding_side(tokenizer, alpaca):
    model = tiny_model(tokenizer)
    tokenizer.padding_side = "right"
    out = sft.generate_answers(model, tokenizer, alpaca[:5], batch_size=2, max_new_tokens=3)
    assert len(out) == 5 and all(set(o) == {"prediction", "ended"} for o in out)
    assert tokenizer.padding_side == "right"


# --- gradient accumulation ----------------------------------------------------------------------

def _conversations(tokenizer, alpaca):
    # 8 conversations whose trained-token counts differ (2 to 11 tokens each).
    picked = [alpaca[i] for i in range(40) if alpaca[i]["task"] in ("date", "sentiment", "upper", "add")][:8]
    return [sft.sft_example(tokenizer, sft.to_messages(r)) for r in picked]


def _step_loss_and_grads(model, batches):
    """The course recipe by hand: sum of per-token losses of each micro-batch / trained tokens of the step."""
    loss = CausalLMCrossEntropy()
    model.zero_grad()
    n_targets = sum(loss.count(b) for b in batches)
    total = 0.0
    for batch in batches:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        micro = loss.loss_sum(model(**inputs).logits, batch["labels"]) / n_targets
        micro.backward()
        total += micro.item()
    return total, [p.grad.clone() for p in model.parameters()]


def test_accumulation_1_and_4_agree_when_normalised_by_trained_tokens(tokenizer, alpaca):
    examples = _conversations(tokenizer, alpaca)
    collate = SFTCollator(pad_token_id=tokenizer.pad_token_id)
    one_batch = [collate(examples)]
    micro_batches = [collate(examples[i:i + 2]) for i in range(0, 8, 2)]
    counts = [CausalLMCrossEntropy().count(b) for b in micro_batches]
    assert len(set(counts)) > 1                        # uneven micro-batches: the case that matters

    model = tiny_model(tokenizer)
    loss_1, grads_1 = _step_loss_and_grads(model, one_batch)
    loss_4, grads_4 = _step_loss_and_grads(model, micro_batches)
    assert loss_4 == pytest.approx(loss_1, rel=1e-5)
    for g1, g4 in zip(grads_1, grads_4):
        torch.testing.assert_close(g4, g1, atol=1e-6, rtol=1e-4)

    # The common mistake: average the micro-batch means.  It weights tokens of short micro-batches more.
    loss = CausalLMCrossEntropy()
    with torch.no_grad():
        means = [loss.loss_sum(model(**{k: v for k, v in b.items() if k != "labels"}).logits, b["labels"]).item() / c
                 for b, c in zip(micro_batches, counts)]
    assert abs(sum(means) / 4 - loss_1) > 1e-3

    # The course loop agrees: one optimiser step with accumulation 1 and with accumulation 4.
    results = []
    for loader, accum in ((one_batch, 1), (micro_batches, 4)):
        results.append(train(tiny_model(tokenizer), loader, TrainConfig(max_steps=1, grad_accum_steps=accum,
                                                                        progress=False),
                             loss=CausalLMCrossEntropy(), device="cpu"))
    assert results[1].losses[0] == pytest.approx(results[0].losses[0], rel=1e-5)
    assert results[0].losses[0] == pytest.approx(loss_1, rel=1e-5)


def test_packed_micro_batches_give_the_padded_loss(tokenizer, alpaca):
    """Packing changes the batch layout, not the loss: same examples, same loss over trained tokens."""
    examples = _conversations(tokenizer, alpaca)
    padded = SFTCollator(pad_token_id=tokenizer.pad_token_id)(examples)
    rows = pack_examples(examples, max_length=128, pad_token_id=tokenizer.pad_token_id)
    packed = [PackedCollator(mask="4d")(rows[i:i + 1]) for i in range(len(rows))]
    model = tiny_model(tokenizer)
    loss_padded, grads_padded = _step_loss_and_grads(model, [padded])
    loss_packed, grads_packed = _step_loss_and_grads(model, packed)
    assert len(packed) > 1
    assert loss_packed == pytest.approx(loss_padded, rel=1e-5)
    for a, b in zip(grads_padded, grads_packed):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-4)


def test_make_split_keeps_every_test_prompt_out_of_training(alpaca):
    split = sft.make_split(alpaca, n_train=2000, seed=7, task_names=sft.SMALL_MODEL_TASKS, held_out=2)
    assert {r["task"] for part in split.values() for r in part} == set(sft.SMALL_MODEL_TASKS)
    prompts = {(r["lang"], sft.user_message(r)) for r in split["train"]}
    tests = split["test_seen_phrasing"] + split["test_new_phrasing"]
    assert not any((r["lang"], sft.user_message(r)) in prompts for r in tests)
    assert {sft.template_index(r) for r in split["test_new_phrasing"]} == {2}
    assert 2 not in {sft.template_index(r) for r in split["train"]}


SLOTS = re.compile(r"\{\w+\}")


@pytest.mark.parametrize("key", sorted(tasks.TEMPLATES))
def test_reword_template_keeps_every_slot_in_order(key):
    rng = random.Random(0)
    for template in tasks.TEMPLATES[key]:
        for _ in range(20):
            reworded = sft.reword_template(template, key[1], rng, p_delete=0.5, n_swap=2)
            assert SLOTS.findall(reworded) == SLOTS.findall(template), (template, reworded)
            assert SLOTS.sub("", reworded).strip(), "at least one word of the phrasing survives"


def test_reword_template_deletes_and_swaps_words_only():
    rng = random.Random(1)
    template = "Convert {n} {src} to {dst}. Give the number only."
    outputs = {sft.reword_template(template, "en", rng) for _ in range(50)}
    assert len(outputs) > 10, "rewording must actually vary the phrasing"
    for text in outputs:
        # deletion and swaps only: every word comes from the template, none twice more than there
        assert Counter(text.replace(".", " . ").split()) - Counter(template.replace(".", " . ").split()) == Counter()
    assert sft.reword_template(template, "en", rng, p_delete=0.0, n_swap=0) == template
    assert sft.reword_template("把 {n} {src} 换算成{dst}，只写数字。", "zh", rng, p_delete=0.0, n_swap=0) == \
        "把 {n} {src} 换算成{dst}，只写数字。"


def test_augment_instructions_rewords_a_share_and_keeps_answers(alpaca):
    records = sft.fresh_training_records(1000, seed=5, task_names=sft.SMALL_MODEL_TASKS)
    augmented = sft.augment_instructions(records, share=0.5, seed=0)
    reworded = [a for a in augmented if a.get("reworded")]
    assert 400 < len(reworded) < 600
    assert [a["params"] for a in augmented] == [r["params"] for r in records]
    assert all(a["input"] == r["input"] and a["output"] == r["output"] for a, r in zip(augmented, records))
    assert all(tasks.is_correct(a, a["output"]) for a in augmented)
    assert sum(a["instruction"] != r["instruction"] for a, r in zip(augmented, records)) > 0.8 * len(reworded)
    # the numbers a unit conversion needs are still in the reworded instruction
    for a in reworded:
        if a["task"] == "unit":
            assert str(a["params"]["n"]) in a["instruction"]
    assert not any(r.get("reworded") for r in records), "the input records are not modified"
    assert sft.augment_instructions(records, share=0.5, seed=0) == augmented


def test_instance_key_reads_params_as_dict_or_json_text(alpaca):
    import json
    record = alpaca[0]
    as_text = {**record, "params": json.dumps(record["params"])}
    assert sft.instance_key(as_text) == sft.instance_key(record)


def test_exercise_checks_accept_the_hand_computed_answers(capsys):
    sft.check_position_ids([0, 1, 2, 0, 1, 0, 1, 2, 3, 0])
    sft.check_dynamic_padding(14 / 60)        # pairs (9,3) (8,2) (7,7) (4,6): 60 positions, 46 real
    sft.check_packed_rows(5)                  # any two of 9, 8, 7, 7, 6 exceed 12
    sft.check_packed_rows(4)
    sft.check_position_ids(None)
    lines = capsys.readouterr().out.splitlines()
    assert [line.startswith("✅") for line in lines] == [True, True, True, False, False]


# --- shared-input tasks and the instruction controls ----------------------------------------------

def test_controls_of_one_item_by_hand():
    record = {"lang": "en", "task": "first", "template_id": "first-en-0", "params": {"s": "qwer", "c": "z"},
              "instruction": "What is the first letter of the string below?", "input": "qwer", "output": "q"}
    full, bare, wrong, held = (sft.control_version(record, c) for c in sft.CONTROLS)
    assert sft.user_message(full) == "What is the first letter of the string below?\nqwer"
    assert sft.user_message(bare) == "qwer" and bare["output"] == "q"
    # the next task of the string family is "last": its instruction, its answer, same input
    assert sft.user_message(wrong) == "What is the last letter of the string below?\nqwer"
    assert (wrong["task"], wrong["output"], wrong["original_output"]) == ("last", "r", "q")
    assert sft.user_message(held) == "Look at the letters below and tell me the first one.\nqwer"
    assert held["output"] == "q" and sft.template_index(held) == 2
    # a slot value stays in the no-instruction control: "contains z" keeps the z
    contains = dict(record, task="contains", template_id="contains-en-1", output="no",
                    instruction="Is the letter z in this string? yes/no")
    assert sft.user_message(sft.control_version(contains, "no_instruction")) == "z\nqwer"
    with pytest.raises(ValueError):
        sft.control_version(record, "none")


def test_shared_input_split_asks_every_input_every_way_and_keeps_test_prompts_out():
    split = sft.make_shared_input_split(n_inputs=4, n_train=3000, seed=11)
    test, train_part = split["test"], split["train"]
    # 4 inputs x 2 languages x (4 string + 2 quantity + 3 record tasks)
    assert len(test) == 4 * 2 * 9 and len(train_part) == 3000
    by_input = Counter((r["lang"], r["input"]) for r in test)
    # each input is asked with every task of its family (a repeated input only adds more)
    assert min(by_input.values()) >= 2 and set(by_input.values()) - {2, 3, 4, 6, 8} == set()
    assert {sft.template_index(r) for r in test} | {sft.template_index(r) for r in train_part} == {0, 1}
    prompts = {(r["lang"], sft.user_message(r)) for r in train_part}
    assert not any((r["lang"], sft.user_message(r)) in prompts for r in test)
    assert all(tasks.is_correct(r, r["output"]) for r in test + train_part)
    assert {r["task"] for r in train_part} == set(tasks.SHARED_INPUT_TASKS)


def test_paraphrase_instructions_changes_a_share_and_keeps_answers():
    records = sft.make_shared_input_split(n_inputs=1, n_train=1000, seed=3)["train"]
    out = sft.paraphrase_instructions(records, share=0.5, seed=0)
    changed = [o for o in out if o.get("paraphrased")]
    assert 400 < len(changed) < 600
    assert all(o["input"] == r["input"] and o["output"] == r["output"] for o, r in zip(out, records))
    pools = {key: set(pool) for key, pool in tasks.PARAPHRASES.items()}
    for o in changed:
        template = next(t for t in pools[(o["task"], o["lang"])]
                        if tasks.render_text(o["task"], o["lang"], t, o["params"])[0] == o["instruction"])
        assert template not in tasks.TEMPLATES[(o["task"], o["lang"])]
    assert not any(r.get("paraphrased") for r in records)


def test_correct_needs_the_answer_and_a_closed_turn():
    records = [{"task": "age", "lang": "en", "params": {"name": "Ben", "age": 30, "city": "Dublin"}}] * 3
    gens = [{"prediction": "30", "ended": True}, {"prediction": "30", "ended": False},
            {"prediction": "Dublin", "ended": True}]
    assert sft.correct(records, gens) == [True, False, False]
