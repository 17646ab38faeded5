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

from course_utils.exercises import check_answer

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


# --- Pictures: token boundaries and fertility --------------------------------------------

def token_pieces(tokens: list[str], byte_level: bool = False) -> list[str]:
    """Printable text of each token, for the boundary picture.  Byte-level tokens are turned back
    into their UTF-8 bytes: a token that holds a whole character shows it (a leading space as
    ``␣``); one that holds only part of a character's bytes shows those bytes in hex, ``<e6ac>``."""
    if not byte_level:
        return list(tokens)
    from course_utils.bpe import bytes_to_unicode
    to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
    pieces = []
    for token in tokens:
        raw = bytes(to_byte[c] for c in token)
        try:
            pieces.append(raw.decode("utf-8").replace(" ", "␣"))
        except UnicodeDecodeError:
            pieces.append("<" + raw.hex() + ">")
    return pieces


def draw_token_boundaries(ax, rows: dict[str, list[str]], title: str = "", fontsize: int = 11) -> None:
    """One line per tokenizer: its tokens side by side, each on its own background colour,
    alternating, so every boundary between two tokens is visible.  ``rows`` maps a label to the
    pieces to draw (see :func:`token_pieces`)."""
    colours = ["#cfe2f3", "#fde3c4"]
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(len(rows) - 0.5, -0.7)
    if title:
        ax.text(0, -0.7, title, fontsize=fontsize + 1, va="bottom", transform=ax.transData, fontweight="bold")
    pixel = 1 / ax.get_window_extent(renderer).width            # one pixel in axes-x units
    for y, (label, pieces) in enumerate(rows.items()):
        ax.text(0.0, y, f"{label}  ({len(pieces)})", fontsize=fontsize - 1, va="center", ha="left")
        x = 0.3
        for k, piece in enumerate(pieces):
            t = ax.text(x, y, piece, fontsize=fontsize, va="center", ha="left", family=None,
                        bbox=dict(boxstyle="square,pad=0.25", facecolor=colours[k % 2], edgecolor="none"))
            x += t.get_window_extent(renderer).width * pixel + 6 * pixel


def plot_fertility(table, ax_char, ax_word) -> None:
    """Horizontal bars of tokens per character and per word, Chinese beside English, from the
    table :func:`fertility_table` returns."""
    import numpy as np
    names = list(table.index)[::-1]
    y = np.arange(len(names))
    for ax, unit, title in [(ax_char, "char", "tokens per character / 每字词元数"),
                            (ax_word, "word", "tokens per word / 每词词元数")]:
        for offset, lang, colour, label in [(0.2, "zh", "tab:red", "Chinese headlines / 中文标题"),
                                            (-0.2, "en", "tab:blue", "English headlines / 英文标题")]:
            values = [table.loc[name, f"{lang} tokens/{unit}"] for name in names]
            ax.barh(y + offset, values, height=0.4, color=colour, label=label)
            for yy, v in zip(y + offset, values):
                ax.text(v, yy, f" {v:.2f}", va="center", fontsize=8)
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_title(title)
        ax.set_xlabel(title.split(" / ")[0] + " / " + title.split(" / ")[1])
    ax_char.set_yticks(y, names)
    ax_word.set_yticks(y, [""] * len(names))
    ax_word.legend(loc="center right", fontsize=8)


# --- Exercise checks ---------------------------------------------------------------------

EXERCISE_BPE_CORPUS = "中国 人民 中国 人民 中国 人民 国人"
EXERCISE_MESSAGES = [
    {"role": "system", "content": "你是一个乐于助人的助手。请只给出答案。"},
    {"role": "user", "content": "把 3 千米 换算成米，只写数字。"},
]
# Course terms that jieba's shipped dictionary splits (checked in tests/test_exercise_checks_01.py).
EXERCISE_TERMS = ["未登录词", "有监督微调", "大语言模型", "对话模板", "注意力掩码", "损失掩码", "标签移位", "特殊词元",
                  "未知词元", "字节对编码"]
_FRAMES = ["我们先讲{}，再讲{}。", "{}和{}都要检查", "训练前确认{}是否正确，然后看{}", "这一节介绍{}与{}的区别",
           "{}出错时，{}也会出错"]


def _first_merge(words: dict[tuple, int]):
    """The first merge (pair, count) of the textbook loop on already spelled words, ids in code-point order."""
    from course_utils.bpe import count_pairs
    counts = count_pairs(words)
    order = {c: i for i, c in enumerate(sorted({c for w in words for c in w}))}
    pair = min(counts, key=lambda p: (-counts[p], order[p[0]], order[p[1]]))
    return pair, counts[pair]


def check_bpe_merge(pair, count) -> bool:
    """Exercise 1.1: the first merge BPE makes on :data:`EXERCISE_BPE_CORPUS`, and its count."""
    from collections import Counter as _Counter

    from course_utils.bpe import naive_merge_steps, word_counts
    step = next(naive_merge_steps(EXERCISE_BPE_CORPUS, 1))
    expected = (step.pair, step.count)
    words = word_counts(EXERCISE_BPE_CORPUS)
    across = _first_merge({tuple(EXERCISE_BPE_CORPUS.replace(" ", "")): 1})
    once_each = _first_merge({tuple(w): 1 for w in words})
    tied = [(p, c) for p, c in step.pair_counts.items() if c == step.count and p != step.pair]
    mistakes = [(across, "that pair only wins if you count pairs across the spaces: BPE counts inside each word.")]
    mistakes += [((once_each[0], once_each[1]), "count each word as often as it occurs, not once per distinct word.")]
    mistakes += [((p, c), "that pair ties with the answer. Ties go to the pair with the smaller ids (left symbol first), "
                  "and the alphabet's ids follow code-point order.") for p, c in tied]
    mistakes += [((step.pair[::-1], step.count), "order matters: a pair is (left symbol, right symbol).")]
    answer = None if pair is None else (tuple(pair), count)
    return check_answer(answer, expected, key="01.1", mistakes=[m for m in mistakes if m[0] != expected], hints=[
        "BPE looks at neighbouring symbols inside the words of the corpus. Which two characters stand next to each "
        "other most often?",
        "Spell each word as characters, list its neighbouring pairs, and add them up over every word occurrence.",
        "Count (a, b) pairs inside words, weighted by how often each word occurs; take the highest count, and on a "
        "tie the pair whose characters come first in code-point order (left one first)."],
        why="A merge is chosen from counts inside words, and ties are broken by a fixed rule, so every "
            "implementation that follows the rule learns the same merges.")


def keep_terms_reference(sentence: str, terms: list[str]) -> list[str]:
    """The answer to the user-dictionary exercise: jieba's precise mode, except that every term in
    ``terms`` stays one word.  The sentence is cut at the terms (longest first), and the pieces in
    between are segmented by jieba as shipped."""
    import re
    if not terms:
        return jieba_cut(sentence)
    pattern = "(" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + ")"
    out = []
    for piece in re.split(pattern, sentence):
        if piece in terms:
            out.append(piece)
        elif piece:
            out += jieba_cut(piece)
    return out


def keep_terms_cases(seed: int = 0, n: int = 12) -> list[tuple[str, list[str]]]:
    """Sentences with two course terms each; the call names one or both of them, and in some cases
    a term it does not name is in the sentence, which must then be split as jieba splits it."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        a, b = rng.sample(EXERCISE_TERMS, 2)
        sentence = _FRAMES[i % len(_FRAMES)].format(a, b)
        terms = [a, b] if i % 3 == 0 else [a]
        cases.append((sentence, terms))
    return cases


def check_keep_terms(keep_terms) -> bool:
    """Exercise 1.2: ``keep_terms(sentence, terms)`` must agree with :func:`keep_terms_reference`
    on :func:`keep_terms_cases` (the cases run in order, so a term left behind by an earlier call shows)."""
    from course_utils.exercises import check_code_with_hints
    return check_code_with_hints(keep_terms, keep_terms_reference, keep_terms_cases(), key="01.2", hints=[
        "Look at the case shown: is one of its terms split, or is a word kept whole that this call did not name?",
        "jieba keeps a string whole only if its dictionary has it, and the global jieba keeps every word you add "
        "for the rest of the session. The terms must count for this call only.",
        "Cut the sentence at the terms (re.split with a capturing group), keep the terms, and jieba.lcut the "
        "pieces in between."],
        describe=lambda args: f"sentence={args[0]!r}, terms={args[1]!r}")


def check_token_budget(answer, max_length: int = 64) -> bool:
    """Exercise 1.3: tokens left for the reply when the prompt is :data:`EXERCISE_MESSAGES` rendered with
    the course chat template and the generation prompt, and the limit is ``max_length`` tokens."""
    from course_utils.course_tokenizer import load_course_tokenizer
    tok = load_course_tokenizer()

    def n_tokens(add_generation_prompt: bool) -> int:
        return len(tok.apply_chat_template(EXERCISE_MESSAGES, add_generation_prompt=add_generation_prompt,
                                           tokenize=True, return_dict=False))
    rendered = tok.apply_chat_template(EXERCISE_MESSAGES, add_generation_prompt=True, tokenize=False)
    expected = max_length - n_tokens(True)
    mistakes = [
        (max_length - n_tokens(False), "the prompt also ends with the assistant header (add_generation_prompt=True): "
                                       "those tokens come before the reply."),
        (max_length - len(rendered), "that subtracts characters of the rendered prompt, but the limit counts tokens."),
        (max_length - sum(len(tok(m["content"])["input_ids"]) for m in EXERCISE_MESSAGES),
         "the chat template adds role markers and <|im_start|>/<|im_end|> around each message: count the rendered prompt."),
        (max_length - 2, "len() of a BatchEncoding counts its keys (input_ids, attention_mask): pass return_dict=False "
                         "or take ['input_ids']."),
    ]
    return check_answer(answer, expected, key="01.3", mistakes=[m for m in mistakes if m[0] != expected], hints=[
        "The model sees the prompt as tokens. How many does the whole prompt take, as the model will see it?",
        "Render the messages with the tokenizer's chat template, the way generation would, and count the tokens.",
        "len(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)), "
        "subtracted from the limit."],
        why="Every limit (max_length, context window, max_new_tokens) counts tokens, template tokens included.")
