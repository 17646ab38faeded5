"""SFT formats and loss masks, tested as properties on random chats, plus a fuzz test of the validator."""

import json
import random
import re
import string

from html import unescape

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_utils import chat_format as cf
from course_utils.chat_format import IGNORE_INDEX as X
from course_utils.course_tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, load_course_tokenizer
from course_utils.data import RecordError, load_records

TOK = load_course_tokenizer()
END = TOK.convert_tokens_to_ids("<|im_end|>")
FAST = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Any text without the special-token strings (a reply containing "<|im_end|>" would be parsed as
# that special token: a prompt-injection hazard that cleaning must remove before this stage).
ALPHABET = st.sampled_from(list(string.ascii_letters + string.digits + string.punctuation + " \n\t") +
                           list("你好世界北京上海赵敏华星科技的是了。，？！“”：") + ["é", "ß", "😀", "\u3000"])
any_text = st.text(ALPHABET, max_size=20).filter(lambda s: not any(t in s for t in SPECIAL_TOKENS))
content = any_text.filter(lambda s: s.strip())


@st.composite
def chats(draw, text=content, max_pairs=3):
    """A valid chat: optional system turn, then 1..max_pairs user/assistant pairs."""
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(text)})
    for _ in range(draw(st.integers(1, max_pairs))):
        messages += [{"role": "user", "content": draw(text)}, {"role": "assistant", "content": draw(text)}]
    return messages


# --- loss masks as properties ---------------------------------------------------------------

def reference_labels(messages):
    """Independent reference: tokenise the template's pieces one by one (the ChatML layout of
    course_tokenizer.CHAT_TEMPLATE) and label only assistant content and its <|im_end|>."""
    ids, labels = [], []
    for m in messages:
        for piece, trained in [("<|im_start|>", False), (m["role"], False), ("\n", False),
                               (m["content"], m["role"] == "assistant"), ("<|im_end|>", m["role"] == "assistant"),
                               ("\n", False)]:
            piece_ids = TOK(piece, add_special_tokens=False)["input_ids"] if piece else []
            ids += piece_ids
            labels += piece_ids if trained else [X] * len(piece_ids)
    return ids, labels


@settings(max_examples=150, **FAST)
@given(chats(text=any_text))
def test_labels_are_exactly_the_assistant_tokens(messages):
    example = cf.build_sft_example(TOK, messages)
    ref_ids, ref_labels = reference_labels(messages)
    assert example["input_ids"] == ref_ids            # no token merges across template boundaries
    assert example["labels"] == ref_labels            # -100 on system/user/template tokens, ids on assistant + <|im_end|>
    assert example["attention_mask"] == [1] * len(ref_ids)
    n_assistant = sum(m["role"] == "assistant" for m in messages)
    assert sum(label == END for label in example["labels"]) == n_assistant   # every end-of-turn is trained


@settings(max_examples=100, **FAST)
@given(chats(), st.integers(0, 60))
def test_truncation_keeps_a_prefix_and_is_detected(messages, max_length):
    full = cf.build_sft_example(TOK, messages)
    cut = cf.build_sft_example(TOK, messages, max_length=max_length)
    n = min(max_length, len(full["input_ids"]))
    assert cut["input_ids"] == full["input_ids"][:n] and cut["labels"] == full["labels"][:n]
    kept, report = cf.drop_untrained_examples([cut])
    assert (len(kept) == 1) == (cf.count_trained_tokens(cut["labels"]) > 0)
    assert report.kept + len(report.dropped) == 1


@settings(max_examples=100, **FAST)
@given(st.lists(chats(max_pairs=2), min_size=1, max_size=4), st.sampled_from(["right", "left"]))
def test_collator_pads_by_position(batch_chats, side):
    # pad == end-of-turn: the hard case for masking by id
    examples = [cf.build_sft_example(TOK, m) for m in batch_chats]
    batch = cf.SFTCollator(pad_token_id=END, padding_side=side)(examples)
    longest = max(len(e["input_ids"]) for e in examples)
    assert batch["input_ids"].shape == batch["labels"].shape == (len(examples), longest)
    for row, e in enumerate(examples):
        n, pad = len(e["input_ids"]), longest - len(e["input_ids"])
        real = slice(0, n) if side == "right" else slice(pad, longest)
        assert batch["input_ids"][row, real].tolist() == e["input_ids"]
        assert batch["labels"][row, real].tolist() == e["labels"]
        assert int(batch["attention_mask"][row].sum()) == n
        assert (batch["labels"][row][batch["attention_mask"][row] == 0] == X).all()   # pad tokens: -100
    # the trained end-of-turn targets survive although their id equals the pad id
    assert int((batch["labels"] == END).sum()) == sum(e["labels"].count(END) for e in examples)


def test_collator_matches_transformers_seq2seq_collator():
    from transformers import DataCollatorForSeq2Seq
    examples = [cf.build_sft_example(TOK, r["messages"]) for r in load_records("sft_chat")[:6]]
    ours = cf.SFTCollator(TOK.pad_token_id, pad_to_multiple_of=8)(examples)
    ref = DataCollatorForSeq2Seq(TOK, label_pad_token_id=X, pad_to_multiple_of=8, return_tensors="pt")(examples)
    for key in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(ours[key], ref[key]), key


@settings(max_examples=100, **FAST)
@given(chats())
def test_chat_prompt_is_a_token_prefix(messages):
    """The course claims: the prompt rendered with add_generation_prompt=True is a prefix of the full chat."""
    prompt = TOK.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    full = cf.build_sft_example(TOK, messages)
    assert full["input_ids"][:len(prompt)] == list(prompt)
    assert full["labels"][len(prompt) - 1] == X and full["labels"][len(prompt)] != X   # the reply starts right there


@settings(max_examples=150, **FAST)
@given(any_text, content)
def test_completion_mask_by_offsets(prompt, completion):
    ex = cf.build_completion_example(TOK, prompt, completion)
    full_ids = TOK(prompt + completion, add_special_tokens=False)["input_ids"]
    assert ex["input_ids"] == full_ids + [TOK.eos_token_id]
    trained = [i for i, label in enumerate(ex["labels"]) if label != X]
    assert trained == list(range(trained[0], len(ex["labels"])))          # one contiguous tail, EOS included
    assert all(ex["labels"][i] == ex["input_ids"][i] for i in trained)
    assert TOK.decode(ex["input_ids"][trained[0]:-1]).endswith(completion)
    # Where the prompt IS a token prefix, the safe mask equals "mask the prompt's tokens".
    if cf.prompt_is_token_prefix(TOK, prompt, completion):
        n_prompt = len(TOK(prompt, add_special_tokens=False)["input_ids"])
        assert ex["labels"][:n_prompt] == [X] * n_prompt


def test_boundary_effect_hand_example():
    prompt, completion = "The capital of France? Answer: ", "Paris"
    assert not cf.prompt_is_token_prefix(TOK, prompt, completion)
    ex = cf.build_completion_example(TOK, prompt, completion)
    assert TOK.decode([t for t, label in zip(ex["input_ids"], ex["labels"]) if label != X]) == " Paris<|endoftext|>"


def test_build_sft_example_needs_generation_markers():
    tok = load_course_tokenizer()
    tok.chat_template = CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    with pytest.raises(ValueError, match="generation"):
        cf.build_sft_example(tok, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])


def test_causal_shift_matches_manual_loss():
    from transformers import AutoModelForCausalLM
    from course_utils.models import small_causal_config
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(small_causal_config(TOK, hidden_size=32, intermediate_size=64,
                                                                 num_hidden_layers=1, num_attention_heads=2,
                                                                 num_key_value_heads=2)).eval()
    ex = cf.build_sft_example(TOK, load_records("sft_chat")[3]["messages"])
    ids, labels = torch.tensor([ex["input_ids"]]), torch.tensor([ex["labels"]])
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
    manual = torch.nn.functional.cross_entropy(out.logits[0, :-1], labels[0, 1:], ignore_index=X)
    assert torch.allclose(out.loss, manual)


@settings(max_examples=100, **FAST)
@given(chats(text=any_text))
def test_mask_html_shows_the_rendered_text(messages):
    ex = cf.build_sft_example(TOK, messages)
    pieces = cf._token_texts(TOK, ex["input_ids"])
    assert "".join(pieces) == TOK.apply_chat_template(messages, tokenize=False)   # whole characters, no "�"
    html = cf.mask_html(TOK, ex["input_ids"], ex["labels"])
    # Read the coloured spans back (regex + html.unescape, not the code that wrote them): in order
    # they spell the rendered chat, and the green ones spell exactly the trained tokens.
    spans = re.findall(r'<span style="background:(#[0-9a-f]+);[^"]*font-family:monospace">(.*?)</span>', html, re.S)
    shown = [unescape(text.replace("↵<br>", "\n")) for _, text in spans]
    assert "".join(shown) == TOK.apply_chat_template(messages, tokenize=False)
    trained = "".join(t for (colour, _), t in zip(spans, shown) if colour == "#b7e4c7")
    assert trained == TOK.decode([t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != X])
    assert html.count("#b7e4c7;color") == sum(1 for p, lab in zip(pieces, ex["labels"]) if p and lab != X)


# --- converters -------------------------------------------------------------------------------

@settings(max_examples=200, **FAST)
@given(chats())
def test_converters_round_trip(messages):
    record = {"messages": messages}
    share = cf.to_sharegpt(record)
    assert {t["from"] for t in share["conversations"]} <= {"system", "human", "gpt"}
    assert cf.to_messages(share) == record
    assert cf.to_sharegpt(cf.to_messages(share)) == share
    alpaca = cf.to_alpaca(record)
    assert cf.to_messages(alpaca) == record
    assert cf.to_alpaca(cf.to_messages(alpaca)) == alpaca
    meta = {"id": "r1", **record}
    assert cf.to_messages(cf.to_sharegpt(meta, extra_keys=("id",)), extra_keys=("id",)) == meta


def test_alpaca_input_merge_and_role_aliases():
    rec = {"instruction": "Upper-case it.", "input": "abc", "output": "ABC", "system": "Be brief."}
    assert cf.to_messages(rec)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Upper-case it.\n\nabc"},
        {"role": "assistant", "content": "ABC"}]
    # lossy: the instruction/input split cannot come back
    assert cf.to_alpaca(cf.to_messages(rec)) == {"system": "Be brief.", "instruction": "Upper-case it.\n\nabc",
                                                 "input": "", "output": "ABC"}
    mixed = {"messages": [{"role": "human", "content": "a"}, {"role": "gpt", "content": "b"}]}
    assert [m["role"] for m in cf.to_messages(mixed)["messages"]] == ["user", "assistant"]


def test_shipped_data_is_valid_and_round_trips():
    meta = ("id", "lang", "tasks", "template_ids", "params")
    chats_ = load_records("sft_chat")
    kept, report = cf.validate_records(chats_, extra_keys=meta)
    assert len(kept) == len(chats_) and not report.dropped
    assert all(cf.to_messages(cf.to_sharegpt(r, extra_keys=meta), extra_keys=meta) == r for r in chats_)


# --- validator -----------------------------------------------------------------------------

U = {"role": "user", "content": "hi"}
A = {"role": "assistant", "content": "hello"}
S = {"role": "system", "content": "be brief"}

MALFORMED = [
    # (record, kind, field, words in the reason)
    ([U, A], "wrong_type", "<record>", "expected a JSON object, got list"),
    ({"text": "hi"}, "unknown_format", "<record>", "no 'messages'"),
    ({"messages": [U, A], "meta": 1}, "unknown_key", "meta", "not a field of the messages format"),
    ({"messages": [U, {"role": "assistant", "content": "x", "name": "bot"}]}, "unknown_key", "messages[1].name", "turns have only"),
    ({"conversations": [{"from": "human"}, {"from": "gpt", "value": "x"}]}, "missing_key", "conversations[0].value", "missing"),
    ({"instruction": "a", "output": "b"}, "missing_key", "input", "needs"),
    ({"messages": "hi"}, "wrong_type", "messages", "expected a list of turns, got str"),
    ({"messages": [U, "hello"]}, "wrong_type", "messages[1]", "got str"),
    ({"messages": [U, {"role": "assistant", "content": None}]}, "wrong_type", "messages[1].content", "got NoneType"),
    ({"messages": [{"role": 1, "content": "x"}, A]}, "wrong_type", "messages[0].role", "got int"),
    ({"instruction": "a", "input": 3, "output": "b"}, "wrong_type", "input", "got int"),
    ({"instruction": "a", "input": "", "output": "b", "history": [["q"]]}, "wrong_type", "history[0]", "pair"),
    ({"messages": [{"role": "tool", "content": "x"}, A]}, "unknown_role", "messages[0].role", "'tool'"),
    ({"messages": [U, {"role": "assistant", "content": " \n"}]}, "empty_turn", "messages[1].content", "empty"),
    ({"instruction": "", "input": "", "output": "b"}, "empty_turn", "instruction", "empty"),
    ({"messages": [U, U, A]}, "role_order", "messages[1]", "expected 'assistant' after 'user', got 'user'"),
    ({"messages": [A, U, A]}, "role_order", "messages[0]", "expected 'user' after the start, got 'assistant'"),
    ({"messages": [U, S, A]}, "role_order", "messages[1]", "system turn may only come first"),
    ({"messages": []}, "missing_assistant", "messages", "no turns"),
    ({"messages": [S, U]}, "missing_assistant", "messages", "last turn is 'user'"),
    ({"messages": [U, {"role": "assistant", "content": "ok\ud800"}]}, "invalid_text", "messages[1].content", "lone surrogate"),
    ({"instruction": "\udfff", "input": "", "output": "b"}, "invalid_text", "instruction", "lone surrogate"),
]


@pytest.mark.parametrize("record,kind,field,reason", MALFORMED, ids=[f"{m[1]}-{i}" for i, m in enumerate(MALFORMED)])
def test_validator_rejects_each_kind_with_its_reason(record, kind, field, reason):
    with pytest.raises(cf.ChatFormatError) as info:
        cf.parse_record(record)
    err = info.value
    assert isinstance(err, RecordError)
    assert (err.kind, err.field) == (kind, field)
    assert reason in err.reason and cf.ERROR_KINDS[kind] in str(err)


def test_every_error_kind_is_exercised():
    assert {m[1] for m in MALFORMED} == set(cf.ERROR_KINDS)


def test_validate_records_reports_kept_and_dropped():
    records = [{"messages": [U, A]}, MALFORMED[0][0], {"messages": [S, U, A]}, {"messages": [S, U]}]
    kept, report = cf.validate_records(records, file="mixed.jsonl")
    assert kept == [records[0], records[2]] and report.kept == 2
    assert [(e.line, e.kind) for e in report.dropped] == [(2, "wrong_type"), (4, "missing_assistant")]
    assert report.summary().startswith("mixed.jsonl: kept 2, dropped 2")


def test_read_chat_jsonl_reports_file_and_line(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps({"messages": [U, A]}) + "\n{oops\n\n" + json.dumps({"messages": [U]}) + "\n", encoding="utf-8")
    kept, report = cf.read_chat_jsonl(path)
    assert len(kept) == 1
    assert [(e.file, e.line, e.field) for e in report.dropped] == [("chats.jsonl", 2, "<json>"), ("chats.jsonl", 4, "messages")]


MUTATIONS = {
    "empty_turn": lambda m: [*m[:-1], {**m[-1], "content": "  "}],
    "missing_assistant": lambda m: m[:-1],
    "role_order": lambda m: [*m, {"role": "assistant", "content": "again"}],
    "unknown_role": lambda m: [*m[:-1], {**m[-1], "role": "bot"}],
    "wrong_type": lambda m: [*m[:-1], {**m[-1], "content": [m[-1]["content"]]}],
    "unknown_key": lambda m: [*m[:-1], {**m[-1], "weight": 1.0}],
}


@settings(max_examples=200, **FAST)
@given(chats(), st.sampled_from(sorted(MUTATIONS)))
def test_one_mutation_one_reported_kind(messages, kind):
    broken = {"messages": MUTATIONS[kind](messages)}
    with pytest.raises(cf.ChatFormatError) as info:
        cf.parse_record(broken)
    assert info.value.kind == kind


# --- fuzz: arbitrary JSON never crashes, valid records are never dropped -------------------------
#
# Two generators.  A structured hypothesis strategy (shrinks nicely, ~3 ms an example) and, for the
# 10,000-example run, a seed-driven generator: hypothesis draws one integer and `random_json`
# builds the record from it, which keeps 10k examples to a few seconds.

KEYS = ["messages", "conversations", "role", "content", "from", "value", "instruction", "input", "output",
        "system", "history", "id", "", "x"]
LEAVES = [None, True, False, 0, -1, 2.5, "", " ", "\n", "hi", "你好", "user", "assistant", "system", "human", "gpt", "tool"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5) | st.sampled_from(LEAVES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), inner, max_size=4),
    max_leaves=12)
near_valid = chats(max_pairs=2).flatmap(
    lambda m: st.sampled_from([{"messages": m}, cf.to_sharegpt({"messages": m}), cf.to_alpaca({"messages": m})]))
structured_fuzz = json_values | near_valid.flatmap(
    lambda r: st.builds(lambda key, value: {**r, key: value}, st.sampled_from(sorted(r)), json_values))


def random_json(rng, depth=0):
    """Arbitrary JSON, biased towards the keys and values the formats use."""
    kind = rng.randrange(10 if depth < 4 else 4)
    if kind < 3:
        return rng.choice(LEAVES)
    if kind == 3:
        return rng.choice([rng.randint(-10**6, 10**6), rng.random(), "".join(rng.choice("ab \n好<|>\ud800") for _ in range(rng.randrange(6)))])
    if kind < 6:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def random_record(seed):
    """Half arbitrary JSON, half a valid record in one of the formats with one random edit (or none)."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        return random_json(rng)
    turns = [{"role": "system", "content": "be brief"}] if rng.random() < 0.3 else []
    for i in range(rng.randint(1, 3)):
        turns += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    record = rng.choice([cf.to_messages, cf.to_sharegpt, cf.to_alpaca])({"messages": turns})
    target = record
    while rng.random() < 0.6:                       # walk into the record, then maybe edit there
        children = list(target.items()) if isinstance(target, dict) else list(enumerate(target)) if isinstance(target, list) else []
        if not children:
            break
        key, child = rng.choice(children)
        if rng.random() < 0.5 or not isinstance(child, (dict, list)):
            target[key] = random_json(rng, 2)
            break
        target = child
    return record


def check_documented_errors_only(record):
    snapshot = json.dumps(record, sort_keys=True)
    try:
        messages, _ = cf.parse_record(record)
    except cf.ChatFormatError as err:
        assert err.kind in cf.ERROR_KINDS
        kept, report = cf.validate_records([record])
        assert not kept and report.dropped[0].kind == err.kind
        for convert in (cf.to_messages, cf.to_sharegpt, cf.to_alpaca):
            with pytest.raises(cf.ChatFormatError):
                convert(record)
        return
    # valid: kept, every converter accepts it and they agree on the conversation
    kept, report = cf.validate_records([record])
    assert kept == [record] and not report.dropped
    for convert in (cf.to_messages, cf.to_sharegpt, cf.to_alpaca):
        assert cf.to_messages(convert(record))["messages"] == messages
    assert json.dumps(record, sort_keys=True) == snapshot   # validation and conversion never modify the input


@settings(max_examples=10_000, **FAST)
@given(st.integers(0, 2**32 - 1))
def test_fuzz_10k_arbitrary_json(seed):
    check_documented_errors_only(random_record(seed))


@settings(max_examples=500, **FAST)
@given(structured_fuzz)
def test_fuzz_structured_json(record):
    check_documented_errors_only(record)


@settings(max_examples=300, **FAST)
@given(near_valid)
def test_valid_records_are_never_dropped(record):
    kept, report = cf.validate_records([record, record])
    assert kept == [record, record] and report.kept == 2 and not report.dropped


def test_fuzz_generator_covers_both_outcomes_and_every_kind():
    """The seed-driven generator must reach valid records and every error kind, or the fuzz test is weak."""
    outcomes = set()
    for seed in range(3000):
        try:
            cf.parse_record(random_record(seed))
            outcomes.add(None)
        except cf.ChatFormatError as err:
            outcomes.add(err.kind)
    assert outcomes == set(cf.ERROR_KINDS) | {None}


# --- exercises ----------------------------------------------------------------------------------

def test_exercise_checks(capsys):
    # Expected answers worked out by hand, not with the functions the checkers call: each assistant
    # turn trains its content and its <|im_end|>; the records fail as their comments in EXERCISE_RECORDS say.
    trained = sum(len(TOK(m["content"] + "<|im_end|>", add_special_tokens=False)["input_ids"])
                  for m in cf.EXERCISE_CHAT if m["role"] == "assistant")
    assert trained == 7
    cf.check_trained_token_count(trained)
    cf.check_rejection_kinds([None, "role_order", "unknown_key", "empty_turn", "wrong_type", "role_order"])
    cf.check_trained_token_count(None)
    cf.check_rejection_kinds(None)
    assert [line[0] for line in capsys.readouterr().out.splitlines()] == ["✅", "✅", "📝", "📝"]
