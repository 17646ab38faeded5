"""The shipped real-model chat formats, and assistant-only labels without {% generation %} markers.

The oracle never calls the label code: the text each assistant turn must train is built here from the
turn's content and the format's documented strings (what the template writes before the reply, whether
it trims the content, and its end-of-turn token), as the model cards describe them.
"""

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_utils import chat_format as cf
from course_utils import chat_templates as ct
from course_utils import sft
from course_utils.chat_format import IGNORE_INDEX as X
from course_utils.course_tokenizer import load_course_tokenizer

# Deterministic: the same examples on every run and machine, no example database.
PROPERTY = dict(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# From each model's documentation (see the Source line of each template): the text the template writes
# between the generation prompt and the reply, whether the reply is trimmed, and the end-of-turn text.
DOCUMENTED = {
    "qwen2.5": ("", False, "<|im_end|>"),
    "qwen2.5-base": ("", False, "<|im_end|>"),
    "llama3": ("", True, "<|eot_id|>"),
    "mistral": (" ", False, "</s>"),     # "[/INST] Fine, and you?</s>": the model writes the space
    "gemma3": ("", True, "<end_of_turn>"),
}
TOKENIZERS = {name: ct.format_tokenizer(name) for name in ct.FORMATS}
ALL_SPECIAL = {t for tok in TOKENIZERS.values() for t in tok.all_special_tokens} | {"<tool_call>", "</tool_call>"}

ALPHABET = st.sampled_from(list(string.ascii_letters + string.digits + string.punctuation + " \n\t")
                           + list("你好世界北京上海的是了。，？！“”：") + ["é", "ß", "😀", "\u3000", "\u00a0"])
text = st.text(ALPHABET, max_size=16).filter(lambda s: not any(t in s for t in ALL_SPECIAL))


@st.composite
def chats(draw, max_pairs=4):
    """Optional system turn, then 1..max_pairs user/assistant pairs; replies may be empty or only spaces."""
    messages = [{"role": "system", "content": draw(text)}] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, max_pairs))):
        reply = draw(st.one_of(text, st.sampled_from(["", " ", "\n"])))
        messages += [{"role": "user", "content": draw(text)}, {"role": "assistant", "content": reply}]
    return messages


def expected_replies(name, messages, turns):
    before, trims, end = DOCUMENTED[name]
    replies = [m["content"] for m in messages if m["role"] == "assistant"]
    replies = replies[-1:] if turns == "last" else replies
    return [before + (r.strip() if trims else r) + end for r in replies]


def trained_runs(example):
    """The trained token ids, as runs of consecutive trained positions."""
    runs, current = [], []
    for tok, lab in zip(example["input_ids"], example["labels"]):
        if lab != X:
            assert lab == tok
            current.append(tok)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


@pytest.mark.parametrize("name", sorted(ct.FORMATS))
@settings(max_examples=60, **PROPERTY)
@given(messages=chats(), turns=st.sampled_from(cf.TURNS))
def test_trained_tokens_are_exactly_the_replies_and_their_end_of_turn(name, messages, turns):
    tok = TOKENIZERS[name]
    example = cf.build_sft_example_by_diff(tok, messages, turns=turns)
    runs = trained_runs(example)
    expected = expected_replies(name, messages, turns)
    # one run per trained turn, each exactly that reply plus its end-of-turn token: nothing of the
    # system or user turns, or of the template's own text, is trained
    assert [tok.decode(r) for r in runs] == expected
    assert runs == [tok(e, add_special_tokens=False)["input_ids"] for e in expected]
    assert example["input_ids"] == tok(tok.apply_chat_template(messages, tokenize=False),
                                       add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("name", sorted(ct.FORMATS))
@settings(max_examples=40, **PROPERTY)
@given(messages=chats())
def test_prompt_tokens_are_a_prefix_and_training_starts_right_after(name, messages):
    """Generation sends the history rendered with add_generation_prompt=True: at every assistant turn its
    tokens must be the first tokens of the training sequence, and that turn's first trained token comes next."""
    tok = TOKENIZERS[name]
    example = cf.build_sft_example_by_diff(tok, messages)
    last = cf.build_sft_example_by_diff(tok, messages, turns="last")
    for i in [k for k, m in enumerate(messages) if m["role"] == "assistant"]:
        prompt = tok(tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True),
                     add_special_tokens=False)["input_ids"]
        n = len(prompt)
        assert example["input_ids"][:n] == prompt
        assert example["labels"][n - 1] == X and example["labels"][n] != X
    assert last["labels"][:n] == [X] * n and last["labels"][n:] == example["labels"][n:]


def marker_free(tokenizer):
    tokenizer.chat_template = re.sub(r"\{%-?\s*(end)?generation\s*-?%\}", "", tokenizer.chat_template)
    return tokenizer


COURSE, COURSE_PLAIN = load_course_tokenizer(), marker_free(load_course_tokenizer())


@settings(max_examples=150, **PROPERTY)
@given(messages=chats(), turns=st.sampled_from(cf.TURNS))
def test_marker_and_diff_routes_train_the_same_tokens(messages, turns):
    """The course template with {% generation %} and the same template without: identical examples,
    multi-turn included, for both choices of turns; sft.sft_example picks the route and agrees."""
    marked = cf.build_sft_example(COURSE, messages, turns=turns)
    assert cf.build_sft_example_by_diff(COURSE_PLAIN, messages, turns=turns) == marked
    assert cf.build_sft_example_by_diff(COURSE, messages, turns=turns) == marked
    assert sft.sft_example(COURSE_PLAIN, messages, turns=turns) == marked
    assert sft.sft_example(COURSE, messages, turns=turns) == marked
    n_trained_turns = 1 if turns == "last" else sum(m["role"] == "assistant" for m in messages)
    end = COURSE.convert_tokens_to_ids("<|im_end|>")
    assert marked["labels"].count(end) == n_trained_turns


def test_issue_example_multi_turn():
    """The case reported in issue 14: [user, "42", user, "84"] trained "84<|im_end|>" only on one route."""
    chat = [{"role": "user", "content": "Add 12 and 30."}, {"role": "assistant", "content": "42"},
            {"role": "user", "content": "Double it."}, {"role": "assistant", "content": "84"}]
    for turns, want in [("all", "42<|im_end|>84<|im_end|>"), ("last", "84<|im_end|>")]:
        for example in (cf.build_sft_example(COURSE, chat, turns=turns), sft.sft_example(COURSE_PLAIN, chat, turns=turns)):
            assert COURSE.decode([t for t, lab in zip(example["input_ids"], example["labels"]) if lab != X]) == want


# --- the formats themselves, against the documented examples ---------------------------------------

def render(name, messages, **kwargs):
    return TOKENIZERS[name].apply_chat_template(messages, tokenize=False, **kwargs)


def test_qwen_default_system_turn_and_generation_prompt():
    assert render("qwen2.5", [{"role": "user", "content": "What is the capital of Portugal?"}], add_generation_prompt=True) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of Portugal?<|im_end|>\n<|im_start|>assistant\n")


def test_qwen_base_model_default_system_turn():
    """The base model (Qwen/Qwen2.5-0.5B) has the plain default; everything else is the Instruct layout."""
    chat = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}]
    assert render("qwen2.5-base", chat) == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                                            "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n你好！<|im_end|>\n")
    with_system = [{"role": "system", "content": "S"}] + chat
    assert render("qwen2.5-base", with_system) == render("qwen2.5", with_system)


def test_llama3_headers():
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi "}]
    assert render("llama3", chat, add_generation_prompt=True) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


def test_mistral_v1_example_from_the_docs():
    chat = [{"role": "user", "content": "Hello, how are you?"}, {"role": "assistant", "content": "Fine, and you?"},
            {"role": "user", "content": "I'm doing great!"}, {"role": "assistant", "content": "Glad to hear!"}]
    assert render("mistral", chat) == ("<s> [INST] Hello, how are you? [/INST] Fine, and you?</s> "
                                       "[INST] I'm doing great! [/INST] Glad to hear!</s>")
    with_system = render("mistral", [{"role": "system", "content": "S"}] + chat)
    assert with_system.startswith("<s> [INST] S\n\nHello, how are you? [/INST]")       # first user turn


def test_gemma3_system_instructions_example_from_the_docs():
    chat = [{"role": "system", "content": "Only reply like a pirate."},
            {"role": "user", "content": "What is the answer to life the universe and everything?"},
            {"role": "assistant", "content": "Arrr, 'tis 42,"}]
    assert render("gemma3", chat) == ("<bos><start_of_turn>user\nOnly reply like a pirate.\n\nWhat is the answer to life "
                                      "the universe and everything?<end_of_turn>\n<start_of_turn>model\nArrr, 'tis 42,"
                                      "<end_of_turn>\n")


@pytest.mark.parametrize("name", ["mistral", "gemma3"])
def test_alternation_is_enforced(name):
    from jinja2.exceptions import TemplateError
    with pytest.raises(TemplateError, match="alternate"):
        render(name, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])


@pytest.mark.parametrize("name", sorted(ct.FORMATS))
def test_each_template_names_its_source_and_check_date(name):
    fmt = ct.FORMATS[name]
    assert re.fullmatch(r"https://\S+", fmt.source) and fmt.checked == "2026-11-29"
    assert not cf.GENERATION_TAG.search(fmt.template)      # like the real templates: no markers to lean on


def test_tool_calls_train_the_call_not_the_tool_output():
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    chat = [{"role": "user", "content": "北京天气？"},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
                "name": "get_weather", "arguments": {"city": "北京"}}}]},
            {"role": "tool", "content": '{"temp": 21}'},
            {"role": "assistant", "content": "21 °C."}]
    tok = TOKENIZERS["qwen2.5"]
    example = cf.build_sft_example_by_diff(tok, chat, tools=tools)
    assert [tok.decode(r) for r in trained_runs(example)] == [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call><|im_end|>', "21 °C.<|im_end|>"]
    assert "<tool_response>\n{\"temp\": 21}\n</tool_response>" in tok.decode(example["input_ids"])


def test_diff_route_refuses_a_template_that_moves_the_system_prompt():
    tok = load_course_tokenizer()
    # Mistral's V3 idea: the system prompt goes into the LAST user turn, so earlier turns re-render differently.
    tok.chat_template = ("{% for m in messages[1:] %}{% if m['role'] == 'user' %}{{ '<|im_start|>' }}"
                         "{% if loop.last or loop.revindex == 2 %}{{ messages[0]['content'] + ' ' }}{% endif %}"
                         "{{ m['content'] + '<|im_end|>' }}{% else %}{{ m['content'] + '<|im_end|>' }}{% endif %}{% endfor %}")
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    with pytest.raises(ValueError, match="turn 2: .*later turns"):
        cf.build_sft_example_by_diff(tok, chat)


def test_diff_route_needs_an_end_of_turn_token():
    tok = load_course_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    chat = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    with pytest.raises(ValueError, match="end_of_turn"):
        cf.build_sft_example_by_diff(tok, chat)
    example = cf.build_sft_example_by_diff(tok, chat, end_of_turn="\n")
    assert tok.decode([t for t, lab in zip(example["input_ids"], example["labels"]) if lab != X]) == "assistant: b\n"


def test_turns_option_is_checked():
    chat = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    for build in (cf.build_sft_example, cf.build_sft_example_by_diff):
        with pytest.raises(ValueError, match="turns"):
            build(COURSE, chat, turns="first")


def test_tool_role_error_says_why():
    with pytest.raises(cf.ChatFormatError, match="tool_calls") as err:
        cf.parse_record({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "{}"},
                                      {"role": "assistant", "content": "ok"}]})
    assert err.value.kind == "unknown_role"


def test_exercise_last_turn_text(capsys):
    cf.check_last_turn_text(" ABC</s>")          # worked by hand from the Mistral docs: " " + reply + "</s>"
    cf.check_last_turn_text("ABC</s>")           # forgets the space the model writes after [/INST]
    right, wrong = capsys.readouterr().out.splitlines()
    assert right == "✅ Correct!" and wrong.startswith("❌")
