"""SFT data formats and loss masks: alpaca, sharegpt and OpenAI ``messages``, a validator,
and the functions that turn a chat into ``input_ids`` / ``attention_mask`` / ``labels``.

Labels follow the Hugging Face convention: ``labels[i] = input_ids[i]`` where the model is
trained to produce token ``i``, and ``-100`` (the ``ignore_index`` of ``CrossEntropyLoss``)
everywhere else.  Causal-LM models shift the labels themselves, so labels stay aligned with
``input_ids``; never shift them yourself.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from course_utils.data import BLANK, LoadReport, RecordError, display_name, raw_records

IGNORE_INDEX = -100
GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


# --- Loss masks -------------------------------------------------------------------------

TURNS = ("all", "last")   # which assistant turns a multi-turn chat trains


def _check_turns(turns: str) -> None:
    if turns not in TURNS:
        raise ValueError(f"turns must be one of {TURNS}, not {turns!r}")


def build_sft_example(tokenizer, messages, max_length=None, turns: str = "all") -> dict:
    """Render ``messages`` with the tokenizer's chat template and label only assistant tokens.

    The template marks each assistant reply and its end-of-turn token with
    ``{% generation %}``; ``return_assistant_tokens_mask`` turns those characters into a
    token mask.  Labels copy ``input_ids`` under the mask and are -100 elsewhere (system,
    user and template tokens).  ``turns="all"`` trains every assistant turn, ``turns="last"``
    only the last one (the last run of masked tokens; the earlier replies become context).
    ``max_length`` truncates from the right; check the result with :func:`count_trained_tokens`,
    because truncation can remove every trained token.  Templates without markers (most hub
    models): :func:`build_sft_example_by_diff`, which gives the same labels.
    """
    _check_turns(turns)
    if not tokenizer.chat_template or not GENERATION_TAG.search(tokenizer.chat_template):
        raise ValueError("the chat template has no {% generation %} markers, so it cannot say which "
                         "tokens belong to the assistant; add them (see course_tokenizer.CHAT_TEMPLATE), "
                         "or use build_sft_example_by_diff, which finds the replies by rendering prefixes")
    out = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    input_ids = list(out["input_ids"])
    mask = list(out["assistant_masks"])
    if turns == "last" and any(mask):
        # Each assistant turn is one run of masked tokens (template text always separates two turns).
        last = len(mask) - 1 - mask[::-1].index(1)
        first = last
        while first > 0 and mask[first - 1]:
            first -= 1
        mask = [m if i >= first else 0 for i, m in enumerate(mask)]
    labels = [tok if m else IGNORE_INDEX for tok, m in zip(input_ids, mask)]
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def _render(tokenizer, messages, add_generation_prompt=False, **template_kwargs) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt,
                                         **template_kwargs)


def _first_special_token(tokenizer, text: str) -> str | None:
    """The special token that occurs first in ``text`` (the reply's end-of-turn token)."""
    specials = set(tokenizer.all_special_tokens) | {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
    found = [(text.find(t), t) for t in specials if t and t in text]
    return min(found)[1] if found else None


def assistant_reply_spans(tokenizer, messages, end_of_turn: str | None = None,
                          **template_kwargs) -> tuple[str, list[tuple[int, int]]]:
    """The rendered chat and the character span ``[start, end)`` of each assistant reply in it.

    Found by a prefix diff, with no markers in the template: for the assistant turn ``i``, render
    the turns before it with ``add_generation_prompt=True`` (the prompt the model sees), then the
    turns up to and including it.  What the second adds to the first, up to and including the
    end-of-turn text, is what the model must write: the reply and its end-of-turn token (plus any
    text the template puts between the generation prompt and the content, such as Mistral's space).
    ``end_of_turn=None`` takes the first special token in that added text.

    The diff is only meaningful when rendering is append-only.  Two checks raise a ValueError
    naming the turn: the prompt must be a prefix of the turn's rendering, and that rendering a
    prefix of the whole chat (a template that moves the system prompt to the last user turn, as
    Mistral's V3 template does, fails the second).  ``template_kwargs`` (e.g. ``tools=[...]``) go
    to every rendering.  Replies must not contain special-token strings (clean them out first).
    """
    messages = list(messages)
    full = _render(tokenizer, messages, **template_kwargs)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if i == 0:
            raise ValueError("turn 0: a chat cannot start with the assistant; there is no prompt to answer")
        prompt = _render(tokenizer, messages[:i], add_generation_prompt=True, **template_kwargs)
        upto = _render(tokenizer, messages[:i + 1], **template_kwargs)
        if not upto.startswith(prompt):
            raise ValueError(f"turn {i}: the template renders the prompt differently once the reply is added, "
                             "so the reply cannot be found by a prefix diff")
        if not full.startswith(upto):
            raise ValueError(f"turn {i}: the template renders the turns up to this one differently once later "
                             "turns are added (does it move the system prompt?), so the reply cannot be placed "
                             "in the whole chat by a prefix diff")
        added = upto[len(prompt):]
        eot = end_of_turn or _first_special_token(tokenizer, added)
        if eot is None or eot not in added:
            raise ValueError(f"turn {i}: no end-of-turn token in the rendered reply {added!r}; "
                             "pass end_of_turn= (the text that closes an assistant turn)")
        spans.append((len(prompt), len(prompt) + added.index(eot) + len(eot)))
    return full, spans


def build_sft_example_by_diff(tokenizer, messages, max_length=None, turns: str = "all",
                              end_of_turn: str | None = None, **template_kwargs) -> dict:
    """Assistant-only labels for a chat template WITHOUT ``{% generation %}`` markers.

    :func:`assistant_reply_spans` gives each reply's characters; the whole chat is tokenised once
    with offsets, and a token is trained when its character span overlaps a trained reply
    (``turns="all"``: every assistant turn; ``"last"``: the last one).  Same output layout as
    :func:`build_sft_example`, and the same labels on a template that has markers.
    """
    _check_turns(turns)
    text, spans = assistant_reply_spans(tokenizer, messages, end_of_turn, **template_kwargs)
    if turns == "last":
        spans = spans[-1:]
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(enc["input_ids"])
    labels = [tok if any(a < e and b > s for s, e in spans) else IGNORE_INDEX
              for tok, (a, b) in zip(input_ids, enc["offset_mapping"])]
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def count_trained_tokens(labels) -> int:
    """How many positions carry a real target (not -100).  Zero means the example teaches nothing."""
    return sum(int(x) != IGNORE_INDEX for x in labels)


def drop_untrained_examples(examples, file: str = "<examples>") -> tuple[list[dict], LoadReport]:
    """Keep examples that still train at least one token; report the others (typically
    truncation cut off every assistant token, so the example would only add zero-loss padding)."""
    report, kept = LoadReport(file), []
    for line, example in enumerate(examples, start=1):
        if count_trained_tokens(example["labels"]) == 0:
            report.dropped.append(RecordError(file, line, "labels", f"no trained tokens in {len(example['labels'])} "
                                              "tokens (all labels are -100; was the answer truncated away?)"))
            continue
        kept.append(example)
    report.kept = len(kept)
    return kept, report


def completion_labels(input_ids, offsets, prompt_length: int) -> list[int]:
    """Completion-only labels from character offsets: a token is trained when its span
    ``(start, end)`` reaches past the prompt (``end > prompt_length``), so a token that straddles
    the join (a prompt's trailing space merged into the answer's first word) is trained too."""
    return [tok if end > prompt_length else IGNORE_INDEX for tok, (_, end) in zip(input_ids, offsets)]


def build_completion_example(tokenizer, prompt: str, completion: str, max_length=None,
                             add_eos: bool = True) -> dict:
    """Prompt/completion data, completion-only loss, done the safe way.

    Tokenise ``prompt + completion`` ONCE and label every token whose character span reaches
    into the completion (offset end > len(prompt)).  Tokenising the prompt alone and counting
    its tokens is unsafe: a token can straddle the boundary, so the prompt's tokens need not
    be a prefix of the full sequence (see :func:`prompt_is_token_prefix`).  The EOS token is
    appended and trained so the model learns to stop.
    """
    if add_eos and tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token; without one the model cannot learn to stop")
    enc = tokenizer(prompt + completion, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(enc["input_ids"])
    labels = completion_labels(input_ids, enc["offset_mapping"], len(prompt))
    if add_eos:
        input_ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def prompt_is_token_prefix(tokenizer, prompt: str, completion: str) -> bool:
    """True when tokenising the prompt alone gives exactly the first tokens of prompt + completion."""
    alone = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    return full[:len(alone)] == alone


@dataclass
class SFTCollator:
    """Pad a batch of SFT examples to its longest member (dynamic padding).

    ``input_ids`` are padded with ``pad_token_id``, ``attention_mask`` with 0 and ``labels``
    with -100.  Padding is found BY POSITION (where we padded), never by comparing token ids
    with the pad id: when pad == EOS, masking by id would also erase the trained EOS targets.
    """

    pad_token_id: int
    label_pad_token_id: int = IGNORE_INDEX
    padding_side: str = "right"
    pad_to_multiple_of: int | None = None

    def __call__(self, features):
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {"input_ids": [], "attention_mask": [], "labels": []}
        for f in features:
            if len(f["labels"]) != len(f["input_ids"]):
                raise ValueError(f"labels ({len(f['labels'])}) and input_ids ({len(f['input_ids'])}) must align "
                                 "one to one; the model shifts labels itself")
            n_pad = longest - len(f["input_ids"])
            attention = list(f.get("attention_mask", [1] * len(f["input_ids"])))
            parts = {"input_ids": (list(f["input_ids"]), self.pad_token_id),
                     "attention_mask": (attention, 0),
                     "labels": (list(f["labels"]), self.label_pad_token_id)}
            for key, (values, pad) in parts.items():
                padding = [pad] * n_pad
                batch[key].append(values + padding if self.padding_side == "right" else padding + values)
        return {key: torch.tensor(rows, dtype=torch.long) for key, rows in batch.items()}


def _token_texts(tokenizer, input_ids) -> list[str]:
    """The text each token contributes.  A byte-level BPE may split one Chinese character into
    several byte pieces; decoding them one by one would print "�", so cut the decoded text by
    the offsets of a re-encoding instead (the first piece shows the character, the rest nothing)."""
    ids = [int(t) for t in input_ids]
    text = tokenizer.decode(ids)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if enc["input_ids"] != ids:                      # e.g. truncated in the middle of a character
        return [tokenizer.decode([t]) for t in ids]
    pieces, cursor = [], 0
    for _, end in enc["offset_mapping"]:
        pieces.append(text[cursor:max(cursor, end)])
        cursor = max(cursor, end)
    pieces[-1] += text[cursor:]
    return pieces


def mask_html(tokenizer, input_ids, labels) -> str:
    """The rendered text, token by token: green where trained, grey where labels are -100."""
    spans = []
    for piece, lab in zip(_token_texts(tokenizer, input_ids), labels):
        if not piece:
            continue
        shown = html.escape(piece).replace("\n", "↵<br>")
        style = "background:#b7e4c7;color:#081c15" if int(lab) != IGNORE_INDEX else "background:#e9ecef;color:#6c757d"
        spans.append(f'<span style="{style};border-right:1px solid #fff;font-family:monospace">{shown}</span>')
    legend = ('<div style="margin-bottom:4px"><span style="background:#b7e4c7;padding:1px 4px">trained (label = '
              'token id)</span> <span style="background:#e9ecef;padding:1px 4px">ignored (label = -100)</span></div>')
    return legend + '<div style="line-height:1.8">' + "".join(spans) + "</div>"


# --- Formats: alpaca, sharegpt, OpenAI messages ------------------------------------------------
#
#   alpaca    {"instruction", "input", "output"} + optional "system" and "history" [[user, assistant], ...]
#             (the LLaMA-Factory layout); single-turn unless history is given.
#   sharegpt  {"conversations": [{"from": "human" | "gpt" | "system", "value": ...}, ...]}
#   messages  {"messages": [{"role": "system" | "user" | "assistant", "content": ...}, ...]}  (OpenAI)

FORMATS = ("alpaca", "sharegpt", "messages")
ROLE_ALIASES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant"}
SHAREGPT_ROLE = {"system": "system", "user": "human", "assistant": "gpt"}
FORMAT_KEYS = {
    "alpaca": ({"instruction", "input", "output"}, {"system", "history"}),   # (required, optional)
    "sharegpt": ({"conversations"}, set()),
    "messages": ({"messages"}, set()),
}
TURN_KEYS = {"sharegpt": ("from", "value"), "messages": ("role", "content")}
# Tool turns carry a tool's output back to the model.  They only make sense paired with the assistant
# turn that called the tool (its "tool_calls"), which these records cannot hold; say so instead of
# a bare "unknown role".
_TOOL_NOTE = ("; a tool turn (a tool's output fed back to the model) needs the assistant turn that called "
              "the tool ('tool_calls'), which these formats cannot hold: keep such chats as messages with "
              "tool_calls and label them with build_sft_example_by_diff (notebook 05b, section 2)")
TOOL_ROLE_NOTE = {role: _TOOL_NOTE for role in ("tool", "function", "observation", "ipython")}

# The documented ways a record can be malformed; ChatFormatError.kind is always one of these.
ERROR_KINDS = {
    "wrong_type": "wrong type",
    "unknown_format": "unknown format",
    "unknown_key": "unknown key",
    "missing_key": "missing key",
    "unknown_role": "unknown role",
    "empty_turn": "empty turn",
    "role_order": "wrong role order",
    "missing_assistant": "missing assistant turn",
    "invalid_text": "invalid unicode",
}


class ChatFormatError(RecordError):
    """A malformed SFT record.  A :class:`~course_utils.data.RecordError` (file, line, field,
    reason) with a machine-readable ``kind`` from :data:`ERROR_KINDS`."""

    def __init__(self, kind: str, field: str, detail: str, file: str = "<record>", line: int = 0):
        self.kind, self.detail = kind, detail
        super().__init__(file, line, field, f"{ERROR_KINDS[kind]}: {detail}")

    def at(self, file: str, line: int) -> "ChatFormatError":
        """The same error, placed in a file and line."""
        return ChatFormatError(self.kind, self.field, self.detail, file, line)


def _type_name(value) -> str:
    return type(value).__name__


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def detect_format(record) -> str:
    """Which of :data:`FORMATS` a record is, from its keys."""
    if not isinstance(record, dict):
        raise ChatFormatError("wrong_type", "<record>", f"expected a JSON object, got {_type_name(record)}")
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record or "output" in record:
        return "alpaca"
    raise ChatFormatError("unknown_format", "<record>",
                          f"no 'messages', 'conversations' or 'instruction'/'output' key; got keys {sorted(record, key=str)}")


def _check_text(value, field: str, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise ChatFormatError("wrong_type", field, f"expected a string, got {_type_name(value)}")
    if _LONE_SURROGATE.search(value):  # "\ud800" in JSON: no tokenizer or UTF-8 file can hold it
        raise ChatFormatError("invalid_text", field, "a lone surrogate (U+D800-U+DFFF) is not a character")
    if not allow_empty and not value.strip():
        raise ChatFormatError("empty_turn", field, "the text is empty or only whitespace")


def check_role_order(roles, field: str = "messages") -> None:
    """An optional system turn first, then user/assistant alternating from user, ending with assistant."""
    if not roles:
        raise ChatFormatError("missing_assistant", field, "the chat has no turns")
    expected = "user"
    for i, role in enumerate(roles):
        if role == "system":
            if i != 0:
                raise ChatFormatError("role_order", f"{field}[{i}]", "a system turn may only come first")
            continue
        if role != expected:
            before = "the start" if i == 0 or roles[i - 1] == "system" else f"'{roles[i - 1]}'"
            raise ChatFormatError("role_order", f"{field}[{i}]", f"expected '{expected}' after {before}, got '{role}'")
        expected = "assistant" if role == "user" else "user"
    if roles[-1] != "assistant":
        raise ChatFormatError("missing_assistant", field,
                              f"the last turn is '{roles[-1]}'; a chat must end with an assistant turn to train on")


def _turns_to_messages(turns, fmt: str) -> list[dict]:
    field = "messages" if fmt == "messages" else "conversations"
    role_key, text_key = TURN_KEYS[fmt]
    if not isinstance(turns, list):
        raise ChatFormatError("wrong_type", field, f"expected a list of turns, got {_type_name(turns)}")
    messages = []
    for i, turn in enumerate(turns):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise ChatFormatError("wrong_type", where, f"expected an object with '{role_key}' and '{text_key}', "
                                  f"got {_type_name(turn)}")
        for key in sorted(turn, key=str):
            if key not in (role_key, text_key):
                raise ChatFormatError("unknown_key", f"{where}.{key}", f"turns have only '{role_key}' and '{text_key}'")
        for key in (role_key, text_key):
            if key not in turn:
                raise ChatFormatError("missing_key", f"{where}.{key}", "missing required key")
        role = turn[role_key]
        if not isinstance(role, str):
            raise ChatFormatError("wrong_type", f"{where}.{role_key}", f"expected a string, got {_type_name(role)}")
        if role not in ROLE_ALIASES:
            raise ChatFormatError("unknown_role", f"{where}.{role_key}",
                                  f"{role!r} is not one of {sorted(ROLE_ALIASES)}" + TOOL_ROLE_NOTE.get(role, ""))
        _check_text(turn[text_key], f"{where}.{text_key}")
        messages.append({"role": ROLE_ALIASES[role], "content": turn[text_key]})
    check_role_order([m["role"] for m in messages], field)
    return messages


def _alpaca_to_messages(record) -> list[dict]:
    for key in ("instruction", "output"):
        _check_text(record[key], key)
    _check_text(record["input"], "input", allow_empty=True)
    messages = []
    if "system" in record:
        _check_text(record["system"], "system", allow_empty=True)
        if record["system"].strip():
            messages.append({"role": "system", "content": record["system"]})
    history = record.get("history", [])
    if not isinstance(history, list):
        raise ChatFormatError("wrong_type", "history", f"expected a list of [user, assistant] pairs, got {_type_name(history)}")
    for i, pair in enumerate(history):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ChatFormatError("wrong_type", f"history[{i}]", "expected a [user, assistant] pair")
        _check_text(pair[0], f"history[{i}][0]")
        _check_text(pair[1], f"history[{i}][1]")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    # Merging instruction and input is lossy: messages -> alpaca puts the whole prompt in instruction.
    prompt = record["instruction"] + ("\n\n" + record["input"] if record["input"].strip() else "")
    return messages + [{"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"]}]


def parse_record(record, fmt: str | None = None, extra_keys=()) -> tuple[list[dict], dict]:
    """Validate one record and return (normalised OpenAI-style messages, extra metadata fields).

    Raises :class:`ChatFormatError` for the first problem.  ``extra_keys`` names metadata
    fields (``id``, ``lang``...) that may sit beside the format's own keys; any other key is
    an error, because a typo such as ``"ouput"`` must not silently drop the answer.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}")
    if not isinstance(record, dict):
        raise ChatFormatError("wrong_type", "<record>", f"expected a JSON object, got {_type_name(record)}")
    fmt = fmt or detect_format(record)
    required, optional = FORMAT_KEYS[fmt]
    for key in sorted(record, key=str):
        if key not in required | optional and key not in extra_keys:
            raise ChatFormatError("unknown_key", key, f"not a field of the {fmt} format; expected {sorted(required | optional)}"
                                  + (f" plus metadata {sorted(extra_keys)}" if extra_keys else ""))
    for key in sorted(required):
        if key not in record:
            raise ChatFormatError("missing_key", key, f"a {fmt} record needs {sorted(required)}")
    if fmt == "alpaca":
        messages = _alpaca_to_messages(record)
    else:
        messages = _turns_to_messages(record["messages" if fmt == "messages" else "conversations"], fmt)
    extras = {k: record[k] for k in record if k in extra_keys and k not in required | optional}
    return messages, extras


def to_messages(record, fmt: str | None = None, extra_keys=()) -> dict:
    """Any format -> ``{"messages": [{"role", "content"}, ...]}`` with normalised role names."""
    messages, extras = parse_record(record, fmt, extra_keys)
    return {**extras, "messages": messages}


def to_sharegpt(record, fmt: str | None = None, extra_keys=()) -> dict:
    """Any format -> ``{"conversations": [{"from": "human" | "gpt" | "system", "value"}, ...]}``."""
    messages, extras = parse_record(record, fmt, extra_keys)
    return {**extras, "conversations": [{"from": SHAREGPT_ROLE[m["role"]], "value": m["content"]} for m in messages]}


def to_alpaca(record, fmt: str | None = None, extra_keys=()) -> dict:
    """Any format -> alpaca.  The last user/assistant pair becomes instruction/output, earlier
    pairs go to ``history`` and a system turn to ``system``; ``input`` is left empty."""
    messages, extras = parse_record(record, fmt, extra_keys)
    out = dict(extras)
    if messages[0]["role"] == "system":
        out["system"] = messages[0]["content"]
        messages = messages[1:]
    pairs = [[messages[i]["content"], messages[i + 1]["content"]] for i in range(0, len(messages), 2)]
    if len(pairs) > 1:
        out["history"] = pairs[:-1]
    out.update(instruction=pairs[-1][0], input="", output=pairs[-1][1])
    return out


def validate_records(records, fmt: str | None = None, file: str = "<records>", extra_keys=()) -> tuple[list[dict], LoadReport]:
    """Keep the valid records, report the rest: ``(kept, LoadReport)`` with one
    :class:`ChatFormatError` per dropped record (``line`` is the 1-based position)."""
    report, kept = LoadReport(file), []
    for line, record in enumerate(records, start=1):
        try:
            parse_record(record, fmt, extra_keys)
        except ChatFormatError as err:
            report.dropped.append(err.at(file, line))
            continue
        kept.append(record)
    report.kept = len(kept)
    return kept, report


def read_chat_jsonl(path, fmt: str | None = None, extra_keys=()) -> tuple[list[dict], LoadReport]:
    """Read a JSONL file of SFT records: undecodable lines and malformed records are dropped and
    reported with file, line, field and reason, valid ones kept; blank lines are counted in
    ``report.blank``, so ``report.kept + len(report.dropped) + report.blank == report.lines``.
    A file that cannot be read as a whole (missing, a FIFO or device, too large) raises
    :class:`~course_utils.data.RecordError` with line 0."""
    path = Path(path)
    report, kept = LoadReport(display_name(path)), []
    for line, record in raw_records(path, report):
        if record is BLANK:  # a blank line, counted in report.blank
            continue
        if isinstance(record, RecordError):
            report.dropped.append(record)
            continue
        try:
            parse_record(record, fmt, extra_keys)
        except ChatFormatError as err:
            report.dropped.append(err.at(report.file, line))
            continue
        kept.append(record)
    report.kept = len(kept)
    return kept, report


# --- Exercises ---------------------------------------------------------------------------

EXERCISE_CHAT = [
    {"role": "system", "content": "Answer with the result only."},
    {"role": "user", "content": "Add 12 and 30."},
    {"role": "assistant", "content": "42"},
    {"role": "user", "content": "把 abc 转成大写。"},
    {"role": "assistant", "content": "ABC"},
]

EXERCISE_RECORDS = [  # each has at most one error, so the validator's checking order does not matter
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Anyone?"},
                  {"role": "assistant", "content": "Hello!"}]},
    {"instruction": "Reverse 'abc'.", "input": "", "output": "cba", "sytem": "Be brief."},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "  "}]},
    {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": 4}]},
    {"messages": [{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "How can I help?"}]},
]


def _trained_token_answers(tokenizer):
    """The right count for EXERCISE_CHAT and the counts that common slips give."""
    example = build_sft_example(tokenizer, EXERCISE_CHAT)
    ids, labels = example["input_ids"], example["labels"]
    right = count_trained_tokens(labels)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    replies = [m for m in EXERCISE_CHAT if m["role"] == "assistant"]
    header = len(tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"])
    last = count_trained_tokens(build_sft_example(tokenizer, EXERCISE_CHAT, turns="last")["labels"])
    return right, [
        (right - sum(t == end for t, l in zip(ids, labels) if l != IGNORE_INDEX),
         "you left out the end-of-turn tokens; <|im_end|> after each reply is trained, or the model never learns to stop."),
        (right + len(replies) * header,
         "you counted the role headers '<|im_start|>assistant' and their newline; the prompt supplies them at inference."),
        (right + len(replies),
         "you counted the newline after each <|im_end|>; generation stops at <|im_end|>, so it is never written."),
        (last, "that is only the last reply; by default (turns='all') every assistant reply is trained."),
    ]


def check_trained_token_count(answer) -> None:
    """Exercise 5b.1: how many tokens of EXERCISE_CHAT get a real label with the course tokenizer?"""
    from course_utils.course_tokenizer import load_course_tokenizer
    from course_utils.exercises import check_answer
    expected, mistakes = _trained_token_answers(load_course_tokenizer())
    check_answer(answer, expected, key="5b.1", mistakes=mistakes, hints=[
        "which turns does the model write at inference time? Only those are trained.",
        "for each assistant turn, count its reply's tokens in the list and decide about the token right after them.",
        "each assistant reply is trained with its <|im_end|>; system, user, role headers and newlines are not.",
    ], why="Only what the model must write is trained: every reply and the token that ends it.")


def _rejection_kinds():
    kinds = []
    for record in EXERCISE_RECORDS:
        try:
            parse_record(record)
            kinds.append(None)
        except ChatFormatError as err:
            kinds.append(err.kind)
    return kinds


def check_rejection_kinds(answer) -> None:
    """Exercise 2.4: for each of EXERCISE_RECORDS, the error kind the validator reports (None if valid)."""
    from course_utils.exercises import check_answer
    expected = _rejection_kinds()

    def one_changed(i, kind):
        return expected[:i] + [kind] + expected[i + 1:]

    check_answer(None if answer is None else list(answer), expected, key="2.4", hints=[
        f"one entry per record ({len(EXERCISE_RECORDS)} in all), each None or a key of ERROR_KINDS.",
        "read each record as the validator does: is the format known, are the keys known, are the values strings, "
        "is any text empty, and do the roles alternate user/assistant after an optional system turn?",
        "every record has at most one problem; compare each with the rules printed in section 3 of this notebook.",
    ], mistakes=[
        (one_changed(0, "unknown_format"), "the first record is sharegpt, a known format ('human' and 'gpt' are "
                                           "normalised to user and assistant)."),
        (one_changed(3, "missing_assistant"), "record 4 has an assistant turn; its text is the problem."),
        (one_changed(2, "missing_key"), "record 3 has all of instruction, input and output; look at its other key."),
        (one_changed(5, None), "record 6 starts with the assistant: a chat starts with the user (after an optional "
                               "system turn)."),
    ], why="A validator that names the kind, the field and the line turns a silent drop into a fix.")


def check_last_turn_text(answer) -> None:
    """Exercise 5b.2: the text trained in EXERCISE_CHAT under the Mistral format with ``turns="last"``."""
    from course_utils.chat_templates import format_tokenizer
    from course_utils.exercises import check_answer
    tok = format_tokenizer("mistral")
    example = build_sft_example_by_diff(tok, EXERCISE_CHAT, turns="last")
    expected = tok.decode([t for t, lab in zip(example["input_ids"], example["labels"]) if lab != IGNORE_INDEX])
    every = build_sft_example_by_diff(tok, EXERCISE_CHAT, turns="all")
    check_answer(answer, expected, key="5b.2", hints=[
        "with turns='last', which reply is trained, and what ends it in Mistral's format?",
        "look at the rendering just before the reply: the prompt ends at '[/INST]'. Who writes the next character?",
        "only the last reply is trained, with its end-of-turn token; Mistral has no generation prompt, so the model "
        "also writes the space before the reply.",
    ], mistakes=[
        (expected.lstrip(), "you left out the space after '[/INST]': the prompt ends there, so the model writes it."),
        (expected[:-len("</s>")], "the end-of-turn token </s> is trained too, or the model never learns to stop."),
        (tok.decode([t for t, lab in zip(every["input_ids"], every["labels"]) if lab != IGNORE_INDEX]),
         "that is every reply (turns='all'); with turns='last' the earlier reply is context."),
    ])


# --- Write the code: completion labels from offsets ------------------------------------------

def completion_label_cases(n: int = 60, seed: int = 0) -> list[tuple[list[int], list[tuple[int, int]], int]]:
    """Seeded random ``(input_ids, offsets, prompt_length)``: contiguous token spans of 1-4 characters
    over a text, and a prompt end that often falls inside a token (the straddling case)."""
    import random
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        spans, start = [], 0
        for _ in range(rng.randint(2, 9)):
            width = rng.randint(1, 4)
            spans.append((start, start + width))
            start += width
        prompt_length = rng.randint(1, start - 1)
        cases.append(([rng.randrange(5, 600) for _ in spans], spans, prompt_length))
    return cases


def check_completion_labels(function) -> None:
    """Exercise 5b.3: the learner's ``function(input_ids, offsets, prompt_length) -> labels`` against
    :func:`completion_labels` on :func:`completion_label_cases`."""
    from course_utils.exercises import check_code
    check_code(function, completion_labels, completion_label_cases(),
                      describe=lambda a: f"input_ids={a[0]}, offsets={a[1]}, prompt_length={a[2]}")
