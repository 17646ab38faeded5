"""Byte-pair encoding (BPE, 字节对编码), small enough to read in one sitting.

The idea (Sennrich et al., 2016, after Gage's 1994 compression scheme): start from single
characters, count every pair of neighbouring symbols in the corpus, glue the most frequent pair
into a new symbol, and repeat.  The list of merges *is* the tokenizer: to encode a new word,
replay the merges in the order they were learned.

Two details decide whether two implementations agree merge for merge:

* **Words first.**  Text is split into words by a pre-tokenizer, and pairs never cross a word
  boundary.  Each distinct word is stored once with its count.
* **Ties.**  When two pairs are equally frequent, we take the pair whose two token ids are
  smallest (compared left id first).  Ids are given to special tokens first, then to the
  alphabet in code-point order, then to merged tokens in the order they are made.  This is
  the rule of the Rust ``tokenizers`` library, so the two produce the same merges.

**Byte-level BPE** (字节级 BPE, as in GPT-2) runs the same algorithm on UTF-8 bytes instead of
characters.  Each of the 256 bytes is shown as one printable character (a space becomes ``Ġ``),
so the alphabet is all 256 bytes and *any* string, emoji included, encodes with no unknown
token.

**WordPiece** vocabularies (BERT) are learned the same way in ``tokenizers``: BPE with
``continuing_subword_prefix="##"``, so a piece that continues a word is spelled ``##piece``.
(The original WordPiece of Schuster and Nakajima, 2012, picks the unit that most raises the
likelihood of the training data under a language model, not the most frequent pair.)

The trainer updates pair counts **incrementally**: after a merge it only revisits the words
that contained the merged pair, instead of recounting the whole corpus.  :func:`train_bpe_naive`
recounts everything after every merge; it is the reference the tests compare against.
"""

from __future__ import annotations

import heapq
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import regex

# The same patterns as tokenizers' Whitespace and ByteLevel(use_regex=True) pre-tokenizers.
WHITESPACE_PATTERN = regex.compile(r"\w+|[^\w\s]+")
GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

UNK = "[UNK]"


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character.  Printable bytes stand for
    themselves; the others (space, control bytes, ...) are shifted to code points from 256 on,
    so a space shows as ``Ġ`` (U+0120) and a newline as ``Ċ``."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, shift = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + shift)
            shift += 1
    return mapping


def byte_alphabet() -> list[str]:
    """The 256 symbols of byte-level BPE, in code-point order (their token-id order)."""
    return sorted(bytes_to_unicode().values())


def pre_tokenize(text: str, byte_level: bool = False) -> list[str]:
    """Split text into the words BPE works inside.

    Character level: runs of letters/digits, and runs of punctuation; whitespace is dropped.
    Note that a Chinese sentence has no spaces, so a whole run of Chinese characters is one
    "word" here.  Byte level: GPT-2's pattern, which keeps a leading space on each word, and
    each word is spelled in the 256 byte symbols."""
    if not byte_level:
        return WHITESPACE_PATTERN.findall(text)
    table = bytes_to_unicode()
    return ["".join(table[b] for b in piece.encode("utf-8")) for piece in GPT2_PATTERN.findall(text)]


def _check_corpus(corpus) -> list[str]:
    """A list of texts, or a clear TypeError saying what was passed instead."""
    if isinstance(corpus, str):
        return [corpus]
    if isinstance(corpus, (bytes, bytearray)):
        raise TypeError("corpus must be text (str), not bytes: decode it first, e.g. data.decode('utf-8')")
    if not isinstance(corpus, Iterable):
        raise TypeError(f"corpus must be a str or an iterable of str, got {type(corpus).__name__}")
    texts = list(corpus)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"corpus must be a str or an iterable of str, but item {i} is {type(text).__name__}")
    return texts


def word_counts(corpus, byte_level: bool = False, pre_tokenizer: Callable[[str], list[str]] | None = None) -> Counter:
    """How often each pre-tokenized word occurs in the corpus: the only statistics BPE needs."""
    split = pre_tokenizer or (lambda text: pre_tokenize(text, byte_level))
    return Counter(word for text in _check_corpus(corpus) for word in split(text))


# --- The tokenizer: an alphabet plus an ordered list of merges ------------------------------

@dataclass
class BPE:
    """A trained BPE: special tokens, the alphabet, and the merges in the order learned."""

    alphabet: list[str]
    merges: list[tuple[str, str]]
    special_tokens: list[str] = field(default_factory=list)
    byte_level: bool = False
    unk_token: str | None = UNK
    continuing_subword_prefix: str | None = None
    pre_tokenizer: Callable[[str], list[str]] | None = None  # None: the default of :func:`pre_tokenize`

    def __post_init__(self):
        self.vocab: dict[str, int] = {}
        for token in [*self.special_tokens, *self.alphabet, *(self.join(a, b) for a, b in self.merges)]:
            self.vocab.setdefault(token, len(self.vocab))  # two merges can spell the same token
        self.id_to_token = list(self.vocab)
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._cache: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    def join(self, a: str, b: str) -> str:
        """The token a merge makes (with a ``##`` prefix, ``b`` loses its prefix: ``un`` + ``##h`` = ``unh``)."""
        prefix = self.continuing_subword_prefix
        return a + (b[len(prefix):] if prefix and b.startswith(prefix) else b)

    def spell(self, word: str) -> list[str]:
        """A word as alphabet symbols, before any merge."""
        return _spell(word, self.continuing_subword_prefix)

    def encode_word(self, word: str) -> list[str]:
        """Replay the merges on one word: repeatedly merge the adjacent pair that was learned
        earliest, until no learned pair is left."""
        if word in self._cache:
            return self._cache[word]
        symbols = [s if s in self.vocab else self.unk_token for s in self.spell(word)]
        symbols = [s for s in symbols if s is not None]  # no unk token: unknown characters vanish
        while len(symbols) > 1:
            pair = min(zip(symbols, symbols[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if pair not in self.ranks:
                break
            symbols = merge_symbols(symbols, pair, self.join(*pair))
        if len(self._cache) < 100_000:
            self._cache[word] = symbols
        return symbols

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings."""
        split = self.pre_tokenizer(text) if self.pre_tokenizer else pre_tokenize(text, self.byte_level)
        return [token for word in split for token in self.encode_word(word)]

    def encode(self, text: str) -> list[int]:
        """Text -> token ids."""
        return [self.vocab[token] for token in self.tokenize(text)]

    def decode(self, ids: list[int]) -> str:
        """Token ids -> text.  Byte level is lossless.  Character level lost the whitespace at
        pre-tokenization, so, like ``tokenizers`` with no decoder, it joins tokens with spaces."""
        tokens = [self.id_to_token[i] for i in ids]
        if not self.byte_level:
            return " ".join(tokens)
        to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
        return bytes(to_byte[c] for c in "".join(tokens)).decode("utf-8", errors="replace")


def _spell(word: str, prefix: str | None = None) -> list[str]:
    """Characters of a word; with a prefix, every character after the first carries it (``##``)."""
    if not prefix:
        return list(word)
    return [c if i == 0 else prefix + c for i, c in enumerate(word)]


def merge_symbols(symbols: list, pair: tuple, new) -> list:
    """Replace every non-overlapping occurrence of ``pair`` in ``symbols``, left to right."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def count_pairs(words: dict[tuple, int]) -> Counter:
    """Count each adjacent pair, weighted by how often its word occurs.  Overlaps count:
    ``aaa`` holds the pair ``(a, a)`` twice, although only one merge fits in it."""
    counts = Counter()
    for symbols, freq in words.items():
        for pair in zip(symbols, symbols[1:]):
            counts[pair] += freq
    return counts


# --- Training ----------------------------------------------------------------------------

def _setup(corpus, vocab_size, num_merges, byte_level, special_tokens, unk_token, prefix, pre_tokenizer):
    """Count words, build the alphabet, and check the requested size."""
    words = word_counts(corpus, byte_level, pre_tokenizer)
    specials = list(dict.fromkeys(special_tokens))
    if unk_token is not None and not byte_level and unk_token not in specials:
        specials.insert(0, unk_token)
    plain = byte_alphabet() if byte_level else sorted({c for word in words for c in word})
    # Prefixed symbols (##a) get ids after the plain ones, in code-point order.
    prefixed = sorted({s for word in words for s in _spell(word, prefix)[1:]}) if prefix else []
    alphabet = plain + [s for s in prefixed if s not in set(plain)]
    base = len(specials) + len(alphabet)
    if (vocab_size is None) == (num_merges is None):
        raise TypeError("give exactly one of vocab_size or num_merges")
    if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size < base):
        raise ValueError(
            f"vocab_size={vocab_size!r} is too small: the alphabet alone has {len(alphabet)} symbols "
            f"plus {len(specials)} special token(s) = {base}, and BPE can only add tokens by merging. "
            f"Ask for vocab_size >= {base}.")
    if num_merges is not None and (not isinstance(num_merges, int) or num_merges < 0):
        raise ValueError(f"num_merges must be a whole number >= 0, got {num_merges!r}")
    return words, specials, alphabet


def _done(n_tokens: int, n_merges: int, vocab_size, num_merges) -> bool:
    return n_tokens >= vocab_size if vocab_size is not None else n_merges >= num_merges


def _warn_short(n_tokens: int, n_merges: int, vocab_size, num_merges) -> None:
    if not _done(n_tokens, n_merges, vocab_size, num_merges):
        wanted = f"vocab_size={vocab_size}" if vocab_size is not None else f"num_merges={num_merges}"
        warnings.warn(f"BPE stopped after {n_merges} merges ({n_tokens} tokens), short of {wanted}: "
                      "no pair left that occurs often enough", stacklevel=3)


def train_bpe(corpus, vocab_size: int | None = None, *, num_merges: int | None = None, byte_level: bool = False,
              special_tokens: Iterable[str] = (), unk_token: str | None = UNK, min_frequency: int = 0,
              continuing_subword_prefix: str | None = None, pre_tokenizer: Callable[[str], list[str]] | None = None) -> BPE:
    """Learn BPE merges, updating pair counts incrementally.

    Give ``vocab_size`` (special tokens + alphabet + merged tokens, as ``tokenizers`` counts it)
    or ``num_merges``.  Each distinct word is a list of token ids.  ``pair_counts`` holds every
    pair's count weighted by word frequency, ``where`` the words each pair occurs in, and a heap
    finds the most frequent pair.  After a merge only the words in ``where[pair]`` are revisited:
    their old pairs are subtracted, the pair is merged, their new pairs are added.  A heap entry
    whose count went stale is fixed when it reaches the top (lazy deletion).
    """
    words, specials, alphabet = _setup(corpus, vocab_size, num_merges, byte_level, special_tokens, unk_token,
                                       continuing_subword_prefix, pre_tokenizer)
    result = BPE(alphabet, [], specials, byte_level, None if byte_level else unk_token, continuing_subword_prefix)
    tokens = list(result.vocab)
    token_id = dict(result.vocab)
    seqs = [[token_id[s] for s in _spell(word, continuing_subword_prefix)] for word in words]
    freqs = list(words.values())

    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for i, seq in enumerate(seqs):
        for pair in zip(seq, seq[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
    # Max-heap by count; ties go to the smallest (left id, right id), as in `tokenizers`.
    heap = [(-count, a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[str, str]] = []
    while heap and not _done(len(tokens), len(merges), vocab_size, num_merges):
        neg_count, a, b = heapq.heappop(heap)
        count = pair_counts.get((a, b), 0)
        if count != -neg_count:  # stale entry: re-queue with the current count
            if count > 0:
                heapq.heappush(heap, (-count, a, b))
            continue
        if count < max(min_frequency, 1):
            break
        merges.append((tokens[a], tokens[b]))
        merged = result.join(tokens[a], tokens[b])
        if merged not in token_id:
            token_id[merged] = len(tokens)
            tokens.append(merged)
        new = token_id[merged]
        grew = set()
        for i in where.pop((a, b)):
            seq, freq = seqs[i], freqs[i]
            old = Counter(zip(seq, seq[1:]))
            if (a, b) not in old:
                continue
            seq = seqs[i] = merge_symbols(seq, (a, b), new)
            now = Counter(zip(seq, seq[1:]))
            for pair in old.keys() | now.keys():
                change = now[pair] - old[pair]
                if change:
                    pair_counts[pair] += change * freq
                    if change > 0:
                        where[pair].add(i)
                        grew.add(pair)
                    elif now[pair] == 0 and pair in where:
                        where[pair].discard(i)
        pair_counts.pop((a, b), None)
        for pair in grew:
            heapq.heappush(heap, (-pair_counts[pair], *pair))
    _warn_short(len(tokens), len(merges), vocab_size, num_merges)
    return BPE(alphabet, merges, specials, byte_level, result.unk_token, continuing_subword_prefix, pre_tokenizer)


@dataclass
class MergeStep:
    """One step of naive BPE, kept for the worked-example table."""

    rank: int
    pair_counts: Counter               # every pair count before this merge (symbols as strings)
    pair: tuple[str, str]
    count: int
    words: dict[tuple[str, ...], int]  # the corpus after this merge


def naive_merge_steps(corpus, num_merges: int, byte_level: bool = False, special_tokens: Iterable[str] = (),
                      unk_token: str | None = UNK, continuing_subword_prefix: str | None = None,
                      pre_tokenizer=None, tie_break: str = "ids") -> Iterator[MergeStep]:
    """The textbook loop, one merge at a time: recount all pairs, merge the best, repeat.

    ``tie_break="ids"`` uses the same id order as :func:`train_bpe` and ``tokenizers``;
    ``"first"`` takes the tied pair seen first in the corpus, as ``max(counts, key=counts.get)``
    does in minbpe-style code."""
    if tie_break not in ("ids", "first"):
        raise ValueError(f"tie_break must be 'ids' or 'first', got {tie_break!r}")
    words, specials, alphabet = _setup(corpus, None, num_merges, byte_level, special_tokens, unk_token,
                                       continuing_subword_prefix, pre_tokenizer)
    helper = BPE(alphabet, [], specials, byte_level, None, continuing_subword_prefix)
    order = dict(helper.vocab)
    current = {tuple(_spell(word, continuing_subword_prefix)): freq for word, freq in words.items()}
    for rank in range(num_merges):
        counts = count_pairs(current)
        if not counts:
            return
        if tie_break == "ids":
            pair = min(counts, key=lambda p: (-counts[p], order[p[0]], order[p[1]]))
        else:
            pair = max(counts, key=counts.get)
        merged = helper.join(*pair)
        order.setdefault(merged, len(order))
        current = {tuple(merge_symbols(list(w), pair, merged)): f for w, f in current.items()}
        yield MergeStep(rank, counts, pair, counts[pair], current)


def train_bpe_naive(corpus, vocab_size: int | None = None, *, num_merges: int | None = None,
                    byte_level: bool = False, special_tokens: Iterable[str] = (), unk_token: str | None = UNK,
                    continuing_subword_prefix: str | None = None, pre_tokenizer=None) -> BPE:
    """Reference trainer: recounts every pair in the corpus after every merge (slow, obviously right)."""
    _, specials, alphabet = _setup(corpus, vocab_size, num_merges, byte_level, special_tokens, unk_token,
                                   continuing_subword_prefix, pre_tokenizer)
    result = BPE(alphabet, [], specials, byte_level, None if byte_level else unk_token, continuing_subword_prefix,
                 pre_tokenizer)
    seen, merges = set(result.vocab), []
    for step in naive_merge_steps(corpus, 10**9, byte_level, special_tokens, unk_token, continuing_subword_prefix,
                                  pre_tokenizer):
        if _done(len(seen), len(merges), vocab_size, num_merges):
            break
        merges.append(step.pair)
        seen.add(result.join(*step.pair))
    _warn_short(len(seen), len(merges), vocab_size, num_merges)
    return BPE(alphabet, merges, specials, byte_level, result.unk_token, continuing_subword_prefix, pre_tokenizer)


# --- The reference: the Rust `tokenizers` trainer with matching settings -----------------

def train_reference(corpus, vocab_size: int, byte_level: bool = False, special_tokens: Iterable[str] = (),
                    unk_token: str | None = UNK, min_frequency: int = 0, continuing_subword_prefix: str | None = None):
    """The same training with Hugging Face ``tokenizers``: the same pre-tokenizer, the same
    alphabet (all 256 bytes for byte level), no alphabet limit, no end-of-word suffix."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = list(special_tokens)
    if unk_token is not None and not byte_level and unk_token not in specials:
        specials.insert(0, unk_token)
    if byte_level:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        options = {"continuing_subword_prefix": continuing_subword_prefix} if continuing_subword_prefix else {}
        tokenizer = Tokenizer(models.BPE(unk_token=unk_token, **options))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        alphabet = []
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet,
                                  min_frequency=min_frequency, show_progress=False,
                                  **({"continuing_subword_prefix": continuing_subword_prefix} if continuing_subword_prefix else {}))
    tokenizer.train_from_iterator(_check_corpus(corpus), trainer=trainer)
    return tokenizer


def reference_merges(tokenizer) -> list[tuple[str, str]]:
    """The merges of a trained ``tokenizers`` BPE, in order."""
    import json
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in json.loads(tokenizer.to_str())["model"]["merges"]]


# --- Exercise: write the merge loop -------------------------------------------------------

def learn_merges_reference(corpus, num_merges: int) -> list[tuple[str, str]]:
    """The answer to the "write the merge loop" exercise: the first ``num_merges`` merges of the
    textbook loop (pairs counted inside words, weighted by word count; ties to the smallest ids),
    fewer if no pair is left.  No special tokens, so ids start with the alphabet."""
    return [step.pair for step in naive_merge_steps(corpus, num_merges, unk_token=None)]


def merge_loop_cases(seed: int = 0, n: int = 40) -> list[tuple[list[str], int]]:
    """Seeded random corpora for the merge-loop exercise: short texts over small alphabets (Latin
    and Chinese), so that ties are common, words repeat, and neighbouring words often meet across a
    space in pairs that do not occur inside any word."""
    import random
    rng = random.Random(seed)
    alphabets = ["ab", "abc", "abcd", "lowerst", "中国人民", "数据清洗", "ab中国"]
    cases = []
    for i in range(n):
        alphabet = alphabets[i % len(alphabets)]
        vocabulary = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(2, 6))]
        texts = []
        for _ in range(rng.randint(1, 4)):
            words = [rng.choice(vocabulary) for _ in range(rng.randint(1, 6))]
            if rng.random() < 0.3:
                words.insert(rng.randint(0, len(words)), rng.choice([",", "!", "。"]))
            texts.append(" ".join(words))
        cases.append((texts, rng.randint(1, 10)))
    return cases


def check_merge_loop(learn_merges) -> bool:
    """Exercise: ``learn_merges(corpus, num_merges)`` must return the merges of
    :func:`learn_merges_reference` on every case of :func:`merge_loop_cases`."""
    from course_utils.exercises import check_code_with_hints
    return check_code_with_hints(learn_merges, learn_merges_reference, merge_loop_cases(), key="01.4", hints=[
        "Compare expected and got in the case shown: at which merge do they part ways, and what were the pair "
        "counts at that step?",
        "Pairs are counted inside words only, once per occurrence of the word. On a tie, the pair with the smallest "
        "ids wins, and a merged symbol's id is larger than every character's.",
        "Keep a dict symbol -> id (the sorted alphabet first, then each merged symbol when it is made) and take "
        "min over the tied pairs of (id[left], id[right])."],
        equal=_same_merges, describe=lambda args: f"corpus={args[0]!r}, num_merges={args[1]}")


def _same_merges(got, expected) -> bool:
    """A list of pairs equal to ``expected`` (tuples or two-item lists both count as pairs)."""
    try:
        return isinstance(got, list) and [tuple(p) for p in got] == expected
    except TypeError:
        return False
