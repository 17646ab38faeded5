"""The course tokenizer: a byte-level BPE trained on the shipped Chinese and English text.

It is small (1,024 tokens) so that a tiny causal LM trained on a CPU can use it, and it
carries a chat template whose ``{% generation %}`` markers let ``apply_chat_template``
return an assistant-token mask.  A trained copy ships in ``course_utils/data`` so every
notebook sees the same token ids; :func:`train_course_tokenizer` rebuilds it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

DATA_DIR = Path(__file__).resolve().parent / "data"
TOKENIZER_DIR = DATA_DIR / "course_tokenizer"

PAD, EOS, IM_START, IM_END = "<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, EOS, IM_START, IM_END]

# ChatML-style layout.  Only the assistant's content and its <|im_end|> sit inside
# {% generation %}, so the mask trains the answer and the end-of-turn token, nothing else.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def corpus_texts(data_dir: Path = DATA_DIR) -> list[str]:
    """Every clean text in the shipped datasets, in file order.

    The headlines are those of the first release of ``news_cls`` (rebuilt by
    ``make_datasets.make_news_cls_v1``): the tokenizer was trained on them, and keeping its corpus
    keeps every token id the notebooks print."""
    from course_utils.make_datasets import make_news_cls_v1

    texts = [row["text"] for row in make_news_cls_v1() if not row["flags"] and row["text"].strip()]
    for line in open(data_dir / "ner_bio.jsonl", encoding="utf-8"):
        row = json.loads(line)
        texts.append(("" if row["lang"] == "zh" else " ").join(row["tokens"]))
    for line in open(data_dir / "sft_alpaca.jsonl", encoding="utf-8"):
        row = json.loads(line)
        texts += [row["instruction"], row["input"], row["output"]]
    for line in open(data_dir / "sft_chat.jsonl", encoding="utf-8"):
        texts += [m["content"] for m in json.loads(line)["messages"]]
    return [t for t in texts if t]


def wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a raw ``tokenizers`` object as a transformers tokenizer with the chat template."""
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS,
                                   model_max_length=2048)
    fast.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
    fast.chat_template = CHAT_TEMPLATE
    return fast


def train_course_tokenizer(texts: list[str] | None = None, vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE.  Digits are split one by one so numbers stay readable to a small model."""
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    raw.train_from_iterator(texts if texts is not None else corpus_texts(), trainer=trainer)
    return wrap(raw)


@lru_cache(maxsize=1)
def _load_shipped() -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(TOKENIZER_DIR)


def load_course_tokenizer() -> PreTrainedTokenizerFast:
    """The shipped course tokenizer (a fresh copy, so callers may change padding side etc.)."""
    import copy
    return copy.deepcopy(_load_shipped())
