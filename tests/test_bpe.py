"""The teaching BPE: the Wikipedia worked example, agreement with `tokenizers`, and bad input."""

import warnings
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import bpe
from course_utils.course_tokenizer import corpus_texts

WIKI = "aaabdaaabac"


@pytest.fixture(scope="module")
def texts():
    return corpus_texts()[:2500]


# --- The canonical worked example (Wikipedia, "Byte pair encoding") ------------------------

def test_wikipedia_example_merges_and_encoding():
    # aa -> Z, then ab -> Y, then ZY -> X: "aaabdaaabac" becomes "XdXac".
    model = bpe.train_bpe(WIKI, num_merges=3)
    assert model.merges == [("a", "a"), ("a", "b"), ("aa", "ab")]
    assert model.tokenize(WIKI) == ["aaab", "d", "aaab", "a", "c"]
    assert model.vocab == {"[UNK]": 0, "a": 1, "b": 2, "c": 3, "d": 4, "aa": 5, "ab": 6, "aaab": 7}


def test_wikipedia_example_step_counts():
    steps = list(bpe.naive_merge_steps(WIKI, 3))
    # Overlapping pairs count: "aaab" holds (a, a) twice, so it occurs 4 times in the text.
    assert steps[0].pair_counts == Counter({("a", "a"): 4, ("a", "b"): 2, ("b", "d"): 1, ("d", "a"): 1,
                                            ("b", "a"): 1, ("a", "c"): 1})
    # After aa, (aa, a) and (a, b) tie at 2; the smaller ids (a=1, b=2 < aa=5) win.
    assert steps[1].pair_counts[("aa", "a")] == steps[1].pair_counts[("a", "b")] == 2
    assert [s.pair for s in steps] == [("a", "a"), ("a", "b"), ("aa", "ab")]
    assert steps[2].words == {("aaab", "d", "aaab", "a", "c"): 1}


def test_wikipedia_example_matches_tokenizers():
    ref = bpe.train_reference(WIKI, vocab_size=8)
    assert bpe.reference_merges(ref) == [("a", "a"), ("a", "b"), ("aa", "ab")]
    assert ref.encode(WIKI).tokens == ["aaab", "d", "aaab", "a", "c"]


def test_merge_symbols_is_left_to_right_and_non_overlapping():
    assert bpe.merge_symbols(list("aaa"), ("a", "a"), "aa") == ["aa", "a"]
    assert bpe.merge_symbols(list("aaaa"), ("a", "a"), "aa") == ["aa", "aa"]
    assert bpe.count_pairs({tuple("aaa"): 2}) == Counter({("a", "a"): 4})


# --- Agreement with the Rust `tokenizers` trainer -------------------------------------------

@pytest.mark.parametrize("byte_level, vocab_size", [(False, 900), (True, 700)])
def test_same_merges_vocab_and_encodings_as_tokenizers(texts, byte_level, vocab_size):
    ours = bpe.train_bpe(texts, vocab_size, byte_level=byte_level)
    ref = bpe.train_reference(texts, vocab_size, byte_level=byte_level)
    assert len(ours.merges) > 300
    assert ours.merges == bpe.reference_merges(ref)
    assert ours.vocab == ref.get_vocab()
    held_out = corpus_texts()[2500:3500] + ["Ｈｅｌｌｏ，世界！", "naïve café 😀 龘", "", "   "]
    for text in texts[:500] + held_out:
        assert ours.tokenize(text) == ref.encode(text).tokens
        assert ours.encode(text) == ref.encode(text).ids


def test_unknown_characters_become_unk_like_tokenizers(texts):
    ours = bpe.train_bpe(texts, 500)
    ref = bpe.train_reference(texts, 500)
    text = "新闻 😀 龘 news"
    assert ours.tokenize(text) == ref.encode(text).tokens
    assert "[UNK]" in ours.tokenize(text)


def test_pre_tokenizer_matches_tokenizers_whitespace(texts):
    from tokenizers import pre_tokenizers
    ws = pre_tokenizers.Whitespace()
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    for text in texts[:800] + ["Mixed 中文 and English, 123 😀!", "  lead  and trail  ", "\n\n"]:
        assert bpe.pre_tokenize(text) == [w for w, _ in ws.pre_tokenize_str(text)]
        assert bpe.pre_tokenize(text, byte_level=True) == [w for w, _ in bl.pre_tokenize_str(text)]


def test_wordpiece_prefix_agrees_with_tokenizers_until_the_first_tie(texts):
    # tokenizers numbers the ##-symbols in hash-map order, so ties after that point may break differently.
    steps = list(bpe.naive_merge_steps(texts, 60, continuing_subword_prefix="##"))
    first_tie = next(s.rank for s in steps if Counter(s.pair_counts.values())[s.count] > 1)
    assert first_tie > 5
    ours = bpe.train_bpe(texts, num_merges=60, continuing_subword_prefix="##")
    assert ours.merges == [s.pair for s in steps]
    ref = bpe.train_reference(texts, len(ours), continuing_subword_prefix="##")
    assert bpe.reference_merges(ref)[:first_tie] == ours.merges[:first_tie]


# --- Incremental counting equals recounting ------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="ab cd中文。", max_size=12), max_size=6), st.integers(0, 12),
       st.booleans(), st.sampled_from([None, "##"]))
def test_incremental_equals_naive(corpus, num_merges, byte_level, prefix):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = bpe.train_bpe(corpus, num_merges=num_merges, byte_level=byte_level, continuing_subword_prefix=prefix)
        slow = bpe.train_bpe_naive(corpus, num_merges=num_merges, byte_level=byte_level,
                                   continuing_subword_prefix=prefix)
    assert fast.merges == slow.merges


def test_incremental_equals_naive_on_course_text(texts):
    assert bpe.train_bpe(texts[:800], num_merges=120).merges == bpe.train_bpe_naive(texts[:800], num_merges=120).merges


# --- Byte-level: every string round-trips, no unknown token ---------------------------------

@pytest.fixture(scope="module")
def byte_model(texts):
    return bpe.train_bpe(texts, num_merges=300, byte_level=True)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "华星科技发布新款智能手表", "Mixed 中文 and English",
                                  "emoji 😀👍🏽👨‍👩‍👧 and flags 🇨🇳", "rare 龘𠀀 ∮ ﬁ", "Ｆｕｌｌ　ｗｉｄｔｈ！"])
def test_byte_level_round_trip(byte_model, text):
    ids = byte_model.encode(text)
    assert byte_model.decode(ids) == text
    assert all(0 <= i < len(byte_model) for i in ids)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=40))
def test_byte_level_round_trip_any_text(byte_model, text):
    assert byte_model.decode(byte_model.encode(text)) == text


def test_byte_level_long_text(byte_model, texts):
    long_text = "，".join(texts * 2) + " 😀" * 1000
    assert len(long_text) > 100_000
    assert byte_model.decode(byte_model.encode(long_text)) == long_text


def test_byte_alphabet_is_256_printable_symbols():
    table = bpe.bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"
    from tokenizers import pre_tokenizers
    assert sorted(pre_tokenizers.ByteLevel.alphabet()) == bpe.byte_alphabet()


# --- Bad input gives clear errors ----------------------------------------------------------

def test_vocab_smaller_than_alphabet_is_a_clear_error():
    with pytest.raises(ValueError, match=r"vocab_size=3 is too small: the alphabet alone has 4 symbols"):
        bpe.train_bpe(WIKI, 3)
    with pytest.raises(ValueError, match="vocab_size >= 258"):
        bpe.train_bpe("hello", 100, byte_level=True, special_tokens=["<s>", "</s>"], unk_token=None)


@pytest.mark.parametrize("num_merges", [-1, 2.5, "10"])
def test_bad_num_merges(num_merges):
    with pytest.raises(ValueError, match="num_merges must be a whole number"):
        bpe.train_bpe(WIKI, num_merges=num_merges)


def test_vocab_size_xor_num_merges():
    with pytest.raises(TypeError, match="exactly one"):
        bpe.train_bpe(WIKI)
    with pytest.raises(TypeError, match="exactly one"):
        bpe.train_bpe(WIKI, 10, num_merges=2)


@pytest.mark.parametrize("corpus, message", [
    (b"aaab", "not bytes"), (42, "got int"), (None, "got NoneType"),
    (["ok", 3], "item 1 is int"), (["ok", None], "item 1 is NoneType")])
def test_non_string_corpus_is_a_clear_error(corpus, message):
    with pytest.raises(TypeError, match=message):
        bpe.train_bpe(corpus, num_merges=2)


@pytest.mark.parametrize("corpus", ["", "   \n", [], ["", " "]])
def test_empty_corpus_trains_nothing_and_warns(corpus):
    with pytest.warns(UserWarning, match="stopped after 0 merges"):
        model = bpe.train_bpe(corpus, num_merges=5)
    assert model.merges == [] and model.tokenize("") == []


def test_asking_for_more_merges_than_possible_stops_with_warning():
    with pytest.warns(UserWarning, match="stopped after 7 merges"):
        model = bpe.train_bpe(WIKI, num_merges=50)
    assert model.tokenize(WIKI) == ["aaabdaaabac"]


# --- Claims the tokenisation notebook used to verify in its own cells -------------------------

def test_first_seen_tie_rule_parts_ways_with_the_id_rule_at_a_tie(texts):
    # Minimal BPE code often takes max(counts, key=counts.get): the tied pair seen first. On course text the
    # two rules give different merge lists, and where they first differ the two pairs have the same count.
    by_ids = list(bpe.naive_merge_steps(texts, 80))
    by_first = list(bpe.naive_merge_steps(texts, 80, tie_break="first"))
    k = next(i for i, (a, b) in enumerate(zip(by_ids, by_first)) if a.pair != b.pair)
    counts = by_ids[k].pair_counts
    assert counts[by_ids[k].pair] == counts[by_first[k].pair]
    assert [s.pair for s in by_ids[:k]] == [s.pair for s in by_first[:k]]
    assert bpe.train_bpe(texts, num_merges=80).merges == [s.pair for s in by_ids]


def test_tokenizers_silently_returns_the_bare_alphabet_when_vocab_is_too_small():
    # Ours raises (test above); the Rust trainer returns [UNK] + 4 letters = 5 tokens, more than asked for.
    assert bpe.train_reference(WIKI, vocab_size=3).get_vocab_size() == 5


def test_tokenizers_without_unk_token_drops_unknown_characters(texts):
    no_unk = bpe.train_reference(texts, vocab_size=600, unk_token=None)
    encoding = no_unk.encode("球队夺冠 😀🎉 龘")
    assert "😀" not in "".join(encoding.tokens) and "龘" not in "".join(encoding.tokens)
