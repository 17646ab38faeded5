"""Real chat formats, offline: the prompt formats of Qwen2.5 (Instruct and base), Llama 3, Mistral and Gemma 3.

Each format is a Jinja file in ``course_utils/data/chat_templates``, written for this course to
render the same text as the model's published template (its header names the source and the date
it was checked).  None of them has ``{% generation %}`` markers, like the real ones, so their
assistant-only labels come from ``chat_format.build_sft_example_by_diff``.

Offline there is no real tokenizer for these models, so :func:`format_tokenizer` puts a format on a
copy of the course tokenizer, with the format's special tokens added.  The TEXT is the real model's;
the token ids are the course tokenizer's, not the real model's (a real vocabulary splits the same
text into other, usually fewer, tokens).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent / "data" / "chat_templates"


@dataclass(frozen=True)
class ChatFormat:
    """One model family's prompt format.

    ``end_of_turn`` is the text that closes an assistant reply (the model's stop token);
    ``special_tokens`` are the control tokens the real tokenizer keeps whole; ``bos`` and ``eos``
    become the tokenizer's ``bos_token`` / ``eos_token`` (the templates read them)."""

    name: str
    family: str
    hub_id: str
    file: str
    end_of_turn: str
    special_tokens: tuple[str, ...]
    bos: str | None
    eos: str
    added_tokens: tuple[str, ...] = ()    # kept whole but not special (Qwen's <tool_call> tags)

    @property
    def template(self) -> str:
        return load_template(self.name)

    @property
    def source(self) -> str:
        """The link in the template file's header: where the format was checked."""
        return _header_field(self.template, "Source")

    @property
    def checked(self) -> str:
        """The date the format was checked against its source (ISO)."""
        return _header_field(self.template, "Checked")


FORMATS = {
    "qwen2.5": ChatFormat("qwen2.5", "Qwen2.5 (ChatML)", "Qwen/Qwen2.5-0.5B-Instruct", "qwen2_5.jinja",
                          "<|im_end|>", ("<|im_start|>", "<|im_end|>", "<|endoftext|>"), None, "<|im_end|>",
                          added_tokens=("<tool_call>", "</tool_call>")),
    # The base model's template (Qwen/Qwen2.5-0.5B, fine-tuned in notebook 08) differs only in its default system turn.
    "qwen2.5-base": ChatFormat("qwen2.5-base", "Qwen2.5 base (ChatML)", "Qwen/Qwen2.5-0.5B", "qwen2_5_base.jinja",
                               "<|im_end|>", ("<|im_start|>", "<|im_end|>", "<|endoftext|>"), None, "<|endoftext|>",
                               added_tokens=("<tool_call>", "</tool_call>")),
    "llama3": ChatFormat("llama3", "Llama 3", "meta-llama/Meta-Llama-3-8B-Instruct", "llama3.jinja", "<|eot_id|>",
                         ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
                         "<|begin_of_text|>", "<|eot_id|>"),
    # In Mistral's V1 tokenizer "[INST]" and "[/INST]" are plain text, not control tokens.
    "mistral": ChatFormat("mistral", "Mistral [INST]", "mistralai/Mistral-7B-Instruct-v0.2", "mistral.jinja", "</s>",
                          ("<s>", "</s>"), "<s>", "</s>"),
    "gemma3": ChatFormat("gemma3", "Gemma 3", "google/gemma-3-1b-it", "gemma3.jinja", "<end_of_turn>",
                         ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"), "<bos>", "<eos>"),
}


@lru_cache(maxsize=None)
def load_template(name: str) -> str:
    """The Jinja source of a format in :data:`FORMATS`."""
    if name not in FORMATS:
        raise ValueError(f"unknown chat format {name!r}; the shipped ones are {sorted(FORMATS)}")
    return (TEMPLATE_DIR / FORMATS[name].file).read_text(encoding="utf-8")


def _header_field(template: str, field: str) -> str:
    match = re.search(rf"^\s*{field}:\s*(\S+)", template, flags=re.MULTILINE)
    if not match:
        raise ValueError(f"the template header has no '{field}:' line")
    return match.group(1)


def format_tokenizer(name: str):
    """A copy of the course tokenizer that renders with format ``name``.

    The format's control tokens are added as special tokens (never split, never merged with their
    neighbours), as in the real tokenizer; its BOS and EOS are set because the templates write them."""
    from tokenizers import AddedToken

    from course_utils.course_tokenizer import load_course_tokenizer
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ValueError(f"unknown chat format {name!r}; the shipped ones are {sorted(FORMATS)}")
    tok = load_course_tokenizer()
    tok.add_special_tokens({"extra_special_tokens": [AddedToken(t, special=True, normalized=False)
                                                     for t in fmt.special_tokens]}, replace_extra_special_tokens=False)
    if fmt.added_tokens:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in fmt.added_tokens])
    if fmt.bos:
        tok.bos_token = fmt.bos
    tok.eos_token = fmt.eos
    tok.chat_template = fmt.template
    return tok


def side_by_side_html(panels: dict[str, str], min_width: int = 260) -> str:
    """Several HTML panels (e.g. :func:`chat_format.mask_html` views) in columns, one per title."""
    cells = "".join(f'<div style="flex:1;min-width:{min_width}px;padding:4px 8px;border:1px solid #dee2e6">'
                    f'<div style="font-weight:bold;margin-bottom:4px">{html.escape(title)}</div>{body}</div>'
                    for title, body in panels.items())
    return f'<div style="display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start">{cells}</div>'
