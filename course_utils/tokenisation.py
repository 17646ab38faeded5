"""Tokenisation (分词 / 词元化): characters, bytes, words and subwords, in Chinese and English.

What this module computes for the tokenisation notebook (the hand-built BPE lives in
:mod:`course_utils.bpe`):

* **Bytes.**  A character is a Unicode code point; UTF-8 stores it in 1 to 4 bytes.  ASCII takes
  1 byte, most Chinese characters 3, emoji 4.  (The "a Chinese character is 2 bytes" rule is true
  of GBK and of UTF-16 inside the BMP, not of UTF-8.)
* **Normalisation.**  NFKC folds full-width ``Ａ１，`` to ``A1,``, so text typed with a CJK input
  method matches its half-width twin before deduplication and tokenising.
* **Words.**  English: whitespace against nltk's rule-based tokenizers (no data files needed).
  Chinese has no spaces, so words come from a segmenter: jieba, with its modes, its HMM for
  unseen words, and a user dictionary for domain terms.
* **Fertility** (每词词元数): how many tokens a scheme spends per character and per word, and the
  unknown-token rate of an English vocabulary on Chinese text.
"""

from __future__ import annotations

import io
import random
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

from course_utils.exercises import feedback

# --- Characters and bytes --------------------------------------------------------------

CHAR_CLASSES = ["ASCII", "CJK ideograph 汉字", "CJK punctuation 中文标点", "full-width form 全角",
                "general punctuation “”…", "emoji", "other"]


def char_class(ch: str) -> str:
    """Which block a character comes from (by code point)."""
    cp = ord(ch)
    if cp < 0x80:
        return "ASCII"
    if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x323AF or 0xF900 <= cp <= 0xFAFF:
        return "CJK ideograph 汉字"
    if 0x3000 <= cp <= 0x303F:
        return "CJK punctuation 中文标点"
    if 0xFF00 <= cp <= 0xFFEF:
        return "full-width form 全角"
    if 0x2000 <= cp <= 0x206F:
        return "general punctuation “”…"
    if 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF:
        return "emoji"
    return "other"


def utf8_bytes_by_class(texts: Iterable[str]) -> dict[str, Counter]:
    """For each character class, a Counter of UTF-8 lengths: {class: {bytes per char: how many chars}}."""
    table: dict[str, Counter] = {}
    for text in texts:
        for ch in text:
            table.setdefault(char_class(ch), Counter())[len(ch.encode("utf-8"))] += 1
    return {name: table[name] for name in CHAR_CLASSES if name in table}


def encoded_lengths(text: str) -> dict[str, int]:
    """Length of ``text`` as code points and as bytes in common encodings (None if it cannot encode)."""
    out = {"code points": len(text)}
    for codec in ("utf-8", "utf-16-le", "gbk"):
        try:
            out[codec] = len(text.encode(codec))
        except UnicodeEncodeError:
            out[codec] = None
    return out


def normalize(text: str, form: str = "NFKC") -> str:
    """Unicode normalisation.  NFKC also folds compatibility forms: full-width letters, digits and
    most full-width punctuation become ASCII, the ideographic space becomes a space, ``①`` becomes ``1``."""
    return unicodedata.normalize(form, text)


# --- English words: nltk tokenizers that need no downloaded data ------------------------

def english_tokenizers() -> dict[str, Callable[[str], list[str]]]:
    """Rule-based English word tokenizers, none of which needs nltk data files."""
    from nltk.tokenize import NLTKWordTokenizer, RegexpTokenizer, TreebankWordTokenizer, WordPunctTokenizer
    return {
        "str.split": str.split,
        "Treebank": TreebankWordTokenizer().tokenize,
        "NLTKWordTokenizer": NLTKWordTokenizer().tokenize,
        "WordPunct": WordPunctTokenizer().tokenize,
        "Regexp \\w+": RegexpTokenizer(r"\w+").tokenize,
    }


@lru_cache(maxsize=1)
def punkt_available() -> bool:
    """True when nltk's punkt_tab sentence model (needed by ``nltk.word_tokenize``) is installed."""
    import nltk
    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
        return True
    except LookupError:
        return False


def word_tokenize_en(text: str, verbose: bool = False) -> list[str]:
    """``nltk.word_tokenize`` when punkt data is present; otherwise the word tokenizer it runs
    after sentence splitting (``NLTKWordTokenizer``), which needs no data."""
    from nltk.tokenize import NLTKWordTokenizer
    if punkt_available():
        import nltk
        if verbose:
            print("nltk.word_tokenize with punkt_tab sentence splitting")
        return nltk.word_tokenize(text)
    if verbose:
        print("punkt_tab not installed (offline): using NLTKWordTokenizer, the word step of word_tokenize")
    return NLTKWordTokenizer().tokenize(text)


# --- Chinese words: jieba ----------------------------------------------------------------

# A small user dictionary in jieba's file format (word, frequency, part of speech), kept as a
# constant so it ships with the code.  Frequencies high enough to beat the split readings.
USER_DICT = """\
有监督微调 2000 n
大语言模型 2000 n
词元化 1000 n
对话模板 1000 n
"""


def jieba_cut(text: str, mode: str = "precise", hmm: bool = True, segmenter=None) -> list[str]:
    """Segment Chinese with jieba.  ``precise`` (精确模式) gives one segmentation; ``full``
    (全模式) lists every dictionary word it finds, overlapping; ``search`` (搜索引擎模式) is
    precise plus the shorter words inside long ones.  ``hmm`` lets an HMM join characters
    into words that are not in the dictionary."""
    import jieba
    seg = segmenter or jieba.dt
    if mode == "precise":
        return seg.lcut(text, HMM=hmm)
    if mode == "full":
        return seg.lcut(text, cut_all=True, HMM=hmm)
    if mode == "search":
        return seg.lcut_for_search(text, HMM=hmm)
    raise ValueError(f"unknown jieba mode {mode!r}; use 'precise', 'full' or 'search'")


@lru_cache(maxsize=4)
def user_segmenter(user_dict: str = USER_DICT):
    """A separate jieba tokenizer with ``user_dict`` loaded, so the global ``jieba`` stays as shipped."""
    import jieba
    seg = jieba.Tokenizer()
    seg.load_userdict(io.StringIO(user_dict))
    return seg


def chars(text: str) -> list[str]:
    """Character-level tokens (字级): every non-whitespace character."""
    return [ch for ch in text if not ch.isspace()]


def words(text: str, lang: str) -> list[str]:
    """The word unit used for fertility: jieba precise mode for Chinese, NLTKWordTokenizer for English."""
    if lang == "zh":
        return [w for w in jieba_cut(text) if w.strip()]
    from nltk.tokenize import NLTKWordTokenizer
    return NLTKWordTokenizer().tokenize(text)


# --- WordPiece through `tokenizers`, wrapped for transformers -----------------------------

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def bert_pre_tokenizer() -> Callable[[str], list[str]]:
    """BERT's text -> words step: clean, lower-case, put a space around every Chinese character
    (so Chinese is split per character), then split on whitespace and punctuation."""
    from tokenizers import normalizers, pre_tokenizers
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    return lambda text: [word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text))]


def train_wordpiece(texts: Iterable[str], vocab_size: int = 2000, model_max_length: int = 512):
    """A BERT-style WordPiece tokenizer (``PreTrainedTokenizerFast``) trained on ``texts``.

    The vocabulary is learned the way ``tokenizers``' WordPieceTrainer learns it (BPE merges by
    frequency, with ``##`` marking a piece that continues a word), but with the course trainer,
    whose ``##`` symbols get ids in code-point order, so the result is the same on every run.
    Encoding is WordPiece's own: greedy longest match from the left of each word."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from course_utils.bpe import train_bpe

    learned = train_bpe(list(texts), vocab_size, special_tokens=BERT_SPECIALS, unk_token="[UNK]",
                        continuing_subword_prefix="##", pre_tokenizer=bert_pre_tokenizer())
    raw = Tokenizer(models.WordPiece(learned.vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
    raw.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    raw.decoder = decoders.WordPiece()
    cls, sep = learned.vocab["[CLS]"], learned.vocab["[SEP]"]
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=model_max_length)


# --- Fertility and unknown tokens --------------------------------------------------------

def fertility(tokenize: Callable[[str], list], texts: list[str], lang: str) -> dict[str, float]:
    """Tokens per character and tokens per word over ``texts`` (totals, not a mean of ratios).
    Characters are all non-whitespace characters; words are :func:`words`."""
    n_tokens = sum(len(tokenize(t)) for t in texts)
    n_chars = sum(len(chars(t)) for t in texts)
    n_words = sum(len(words(t, lang)) for t in texts)
    return {"tokens": n_tokens, "per_char": n_tokens / max(n_chars, 1), "per_word": n_tokens / max(n_words, 1)}


def fertility_table(schemes: dict[str, dict[str, Callable[[str], list]]], texts: dict[str, list[str]]):
    """A pandas table: one row per scheme, tokens per char and per word for each language.
    ``schemes`` maps a name to {lang: tokenize function}; ``texts`` maps lang to texts."""
    import pandas as pd
    rows = []
    for name, by_lang in schemes.items():
        row = {"scheme": name}
        for lang, tokenize in by_lang.items():
            stats = fertility(tokenize, texts[lang], lang)
            row[f"{lang} tokens/char"] = round(stats["per_char"], 4)
            row[f"{lang} tokens/word"] = round(stats["per_word"], 4)
        rows.append(row)
    return pd.DataFrame(rows).set_index("scheme")


def unk_rate(tokenizer, texts: list[str]) -> float:
    """Share of tokens that are the unknown token, over all ``texts`` (special tokens not counted)."""
    unk = tokenizer.unk_token_id
    ids = [i for t in texts for i in tokenizer(t, add_special_tokens=False)["input_ids"]]
    return sum(i == unk for i in ids) / max(len(ids), 1)


def unknown_chars(tokenizer, texts: Iterable[str]) -> list[str]:
    """The distinct characters that the tokenizer maps to its unknown token on their own."""
    seen = sorted({ch for t in texts for ch in t if not ch.isspace()})
    unk = tokenizer.unk_token_id
    return [ch for ch in seen if unk in tokenizer(ch, add_special_tokens=False)["input_ids"]]


# --- A deterministic corpus of at least `min_bytes` for the BPE speed runs -----------------

def generated_corpus(min_bytes: int = 1_000_000) -> list[str]:
    """The shipped corpus, then clean headlines from :func:`make_news_cls` and verifiable tasks
    from :func:`tasks.sample_task` with seeds 1, 2, ... until the UTF-8 size reaches ``min_bytes``."""
    from course_utils import tasks
    from course_utils.course_tokenizer import corpus_texts
    from course_utils.make_datasets import make_news_cls

    texts = list(corpus_texts())
    size, seed = sum(len(t.encode("utf-8")) for t in texts), 1
    while size < min_bytes:
        rng = random.Random(seed)
        fresh = [row["text"] for row in make_news_cls(seed) if not row["flags"]]
        for _ in range(1000):
            record = tasks.sample_task(rng)
            fresh += [record[k] for k in ("instruction", "input", "output") if record[k]]
        texts += fresh
        size += sum(len(t.encode("utf-8")) for t in fresh)
        seed += 1
    return texts


# --- Exercise checks ---------------------------------------------------------------------

EXERCISE_BPE_CORPUS = "中国人 中国 国人 中国队 人民 中国人民"
EXERCISE_JIEBA_SENTENCE = "字节级编码不会产生未登录词"
EXERCISE_JIEBA_TERM = "未登录词"
EXERCISE_MESSAGES = [
    {"role": "system", "content": "你是一个乐于助人的助手。请只给出答案。"},
    {"role": "user", "content": "把 3 千米 换算成米，只写数字。"},
]


def check_bpe_merge(pair, count) -> None:
    """Exercise: the first merge BPE makes on :data:`EXERCISE_BPE_CORPUS`, and its count."""
    from course_utils.bpe import naive_merge_steps
    step = next(naive_merge_steps(EXERCISE_BPE_CORPUS, 1))
    ok = pair is not None and tuple(pair) == step.pair and count == step.count
    feedback(ok, "split each word into characters, count neighbouring pairs across all words "
                 "(weighted by word frequency), and take the most frequent one.")


def check_user_dict_fix(tokens) -> None:
    """Exercise: a jieba segmentation of :data:`EXERCISE_JIEBA_SENTENCE` that keeps the term whole."""
    ok = (isinstance(tokens, list) and "".join(tokens) == EXERCISE_JIEBA_SENTENCE
          and EXERCISE_JIEBA_TERM in tokens)
    feedback(ok, f"add '{EXERCISE_JIEBA_TERM}' to a jieba tokenizer (add_word or load_userdict), "
                 "then segment the whole sentence with lcut.")


def check_token_budget(answer, max_length: int = 64) -> None:
    """Exercise: tokens left for the reply when the prompt is :data:`EXERCISE_MESSAGES` rendered with
    the course chat template and the generation prompt, and the limit is ``max_length`` tokens."""
    from course_utils.course_tokenizer import load_course_tokenizer
    ids = load_course_tokenizer().apply_chat_template(EXERCISE_MESSAGES, add_generation_prompt=True,
                                                      tokenize=True, return_dict=False)
    feedback(answer == max_length - len(ids), "render the messages with apply_chat_template(..., "
             "add_generation_prompt=True), count its tokens, and subtract from the limit.")
