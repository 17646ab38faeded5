"""The exercise checks of notebook 01: each accepts a right answer and rejects plausible wrong ones.

The right implementations here are written independently of the package code they are checked against
(the merge loop counts with plain dicts and its own tie rule; the user-dictionary function uses jieba's
own ``add_word``, not the package's cut-at-the-terms reference).  The wrong ones are the slips the
checks are meant to catch.
"""

from collections import Counter

import jieba
import pytest

from course_utils import bpe
from course_utils import tokenisation as tz
from course_utils.course_tokenizer import load_course_tokenizer


def last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


# --- Exercise 1.4: the BPE merge loop, written by the learner ---------------------------------

def _words(corpus):
    return Counter(w for text in corpus for w in bpe.pre_tokenize(text))


def _loop(words, num_merges, choose):
    """A merge loop over {tuple of symbols: count}; ``choose(counts, ids)`` picks the pair."""
    words = {tuple(w): n for w, n in words.items()}
    ids = {c: i for i, c in enumerate(sorted({c for w in words for c in w}))}
    merges = []
    for _ in range(num_merges):
        counts = {}
        for w, n in words.items():
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + n
        if not counts:
            break
        a, b = choose(counts, ids)
        merges.append((a, b))
        ids.setdefault(a + b, len(ids))
        new_words = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == (a, b):
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + n
        words = new_words
    return merges


def by_ids(counts, ids):
    best = max(counts.values())
    return min((p for p, c in counts.items() if c == best), key=lambda p: (ids[p[0]], ids[p[1]]))


def merges_right(corpus, num_merges):
    return _loop(_words(corpus), num_merges, by_ids)


def merges_first_seen(corpus, num_merges):       # minbpe-style max(counts, key=counts.get): first tied pair wins
    return _loop(_words(corpus), num_merges, lambda counts, ids: max(counts, key=counts.get))


def merges_by_string(corpus, num_merges):        # ties by the symbols' text, so "aa" < "b" although "b" is older
    def choose(counts, ids):
        best = max(counts.values())
        return min(p for p, c in counts.items() if c == best)
    return _loop(_words(corpus), num_merges, choose)


def merges_across_words(corpus, num_merges):     # counts pairs across the spaces between words
    return _loop(Counter("".join(bpe.pre_tokenize(t)) for t in corpus), num_merges, by_ids)


def merges_ignoring_counts(corpus, num_merges):  # each distinct word once
    return _loop({w: 1 for w in _words(corpus)}, num_merges, by_ids)


def test_merge_loop_check_accepts_a_right_implementation(capsys):
    assert bpe.check_merge_loop(merges_right)
    assert last_line(capsys).startswith("✅ Correct on all 40 generated cases")


@pytest.mark.parametrize("wrong", [merges_first_seen, merges_by_string, merges_across_words, merges_ignoring_counts])
def test_merge_loop_check_rejects_wrong_implementations(wrong, capsys):
    assert not bpe.check_merge_loop(wrong)
    assert "differs" in capsys.readouterr().out


def test_merge_loop_reference_is_the_trainer_and_tokenizers():
    # The reference agrees with the incremental trainer and, on a real corpus, with the Rust library.
    for corpus, n in bpe.merge_loop_cases()[:10]:
        steps = bpe.learn_merges_reference(corpus, n)
        assert steps == merges_right(corpus, n)
    texts = ["low lower lowest newer wider", "中国 人民 中国人民 国人"] * 3
    ref = bpe.train_reference(texts, vocab_size=len(set("".join(texts).replace(" ", ""))) + 6, unk_token=None)
    assert bpe.learn_merges_reference(texts, 6) == bpe.reference_merges(ref)


def test_merge_loop_cases_are_seeded_and_have_ties():
    cases = bpe.merge_loop_cases()
    assert cases == bpe.merge_loop_cases() and len(cases) == 40
    assert any(merges_first_seen(c, n) != merges_right(c, n) for c, n in cases)


def test_merge_loop_check_handles_no_code_and_junk(capsys):
    def todo(corpus, num_merges):
        raise NotImplementedError
    assert not bpe.check_merge_loop(todo)
    assert capsys.readouterr().out.startswith("📝")
    assert not bpe.check_merge_loop(lambda corpus, n: None)
    assert not bpe.check_merge_loop(lambda corpus, n: [1, 2])
    assert "differs" in capsys.readouterr().out


# --- Exercise 1.1: the first merge, by hand -------------------------------------------------------

def test_first_merge_answer_worked_out_by_hand(capsys):
    # 中国 ×3, 人民 ×3, 国人 ×1: 中+国 and 人+民 tie at 3; 中 (U+4E2D) sorts before 人 (U+4EBA).
    assert tz.EXERCISE_BPE_CORPUS == "中国 人民 中国 人民 中国 人民 国人"
    assert tz.check_bpe_merge(("中", "国"), 3)
    assert last_line(capsys).startswith("✅")


@pytest.mark.parametrize("pair, count, says", [
    (("国", "人"), 4, "across the spaces"),       # 中国人民中国人民中国人民国人: 国+人 occurs 4 times
    (("人", "民"), 3, "ties"),
    (("中", "国"), 1, "as often as it occurs"),
    (("国", "中"), 3, "order matters"),
])
def test_first_merge_recognises_common_mistakes(pair, count, says, capsys):
    assert not tz.check_bpe_merge(pair, count)
    assert says in capsys.readouterr().out


def test_first_merge_hints_are_tiered_and_none_is_not_an_attempt(capsys):
    assert not tz.check_bpe_merge(None, None)
    assert capsys.readouterr().out.startswith("📝 No answer yet")
    for k in (1, 2, 3):
        tz.check_bpe_merge(("x", "y"), 9)
        assert f"Hint {k} of 3" in capsys.readouterr().out
    tz.check_bpe_merge(("中", "国"), 3)
    capsys.readouterr()


# --- Exercise 1.2: keep terms whole with jieba, written by the learner ----------------------------

def _fresh_segmenter():
    # A jieba tokenizer with the shipped dictionary, without reading it from disk again.
    jieba.initialize()
    seg = jieba.Tokenizer()
    seg.FREQ, seg.total, seg.initialized = dict(jieba.dt.FREQ), jieba.dt.total, True
    return seg


def keep_terms_add_word(sentence, terms):
    seg = _fresh_segmenter()
    for term in terms:
        seg.add_word(term)
    return seg.lcut(sentence)


_shared = {}


def keep_terms_leaky(sentence, terms):           # one segmenter for every call: old terms stay in it
    seg = _shared.setdefault("seg", _fresh_segmenter())
    for term in terms:
        seg.add_word(term)
    return seg.lcut(sentence)


def keep_terms_default(sentence, terms):         # forgets the terms
    return jieba.lcut(sentence)


def keep_terms_no_hmm(sentence, terms):          # cuts at the terms, but the pieces without the HMM
    out = []
    for piece in tz.keep_terms_reference(sentence, terms):
        out += [piece] if piece in terms else jieba.lcut(piece, HMM=False)
    return out


def test_the_terms_are_split_by_shipped_jieba():
    for term in tz.EXERCISE_TERMS:
        assert term not in jieba.lcut(f"我们讨论{term}的问题")


def test_keep_terms_check_accepts_add_word(capsys):
    assert tz.check_keep_terms(keep_terms_add_word)
    assert last_line(capsys).startswith("✅ Correct on all 12 generated cases")


@pytest.mark.parametrize("wrong", [keep_terms_leaky, keep_terms_default, keep_terms_no_hmm])
def test_keep_terms_check_rejects_wrong_implementations(wrong, capsys):
    _shared.clear()
    assert not tz.check_keep_terms(wrong)
    assert "differs" in capsys.readouterr().out


def test_keep_terms_reference_keeps_terms_and_loses_nothing():
    for sentence, terms in tz.keep_terms_cases(seed=3):
        words = tz.keep_terms_reference(sentence, terms)
        assert "".join(words) == sentence and all(t in words for t in terms)


def test_keep_terms_says_when_there_is_no_code(capsys):
    def todo(sentence, terms):
        raise NotImplementedError
    assert not tz.check_keep_terms(todo)
    assert capsys.readouterr().out.startswith("📝")


# --- Exercise 1.3: the token budget ---------------------------------------------------------------

def test_token_budget_right_and_common_mistakes(capsys):
    tok = load_course_tokenizer()
    rendered = tok.apply_chat_template(tz.EXERCISE_MESSAGES, add_generation_prompt=True, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\n")
    n_prompt = len(tok(rendered)["input_ids"])      # the template adds no tokens beyond its text
    assert tz.check_token_budget(64 - n_prompt, max_length=64)
    assert capsys.readouterr().out.startswith("✅")
    no_header = tok.apply_chat_template(tz.EXERCISE_MESSAGES, tokenize=False)
    assert not tz.check_token_budget(64 - len(tok(no_header)["input_ids"]), max_length=64)
    assert "assistant header" in capsys.readouterr().out
    assert not tz.check_token_budget(64 - len(rendered), max_length=64)
    assert "characters" in capsys.readouterr().out
    assert not tz.check_token_budget(62, max_length=64)
    assert "BatchEncoding" in capsys.readouterr().out


# --- Code checks give tiered hints after a wrong run, none before any code ------------------------

def test_code_checks_give_tiered_hints_only_to_code_that_ran(capsys):
    def todo(corpus, num_merges):
        raise NotImplementedError
    assert bpe.check_merge_loop(merges_right)                   # a right answer resets the attempts
    bpe.check_merge_loop(todo)
    assert "Hint" not in capsys.readouterr().out
    for k in (1, 2, 3, 3):
        assert not bpe.check_merge_loop(merges_first_seen)
        assert f"Hint {k} of 3" in capsys.readouterr().out
    assert bpe.check_merge_loop(merges_right)
    assert not bpe.check_merge_loop(merges_first_seen)          # a right answer starts the hints again
    assert "Hint 1 of 3" in capsys.readouterr().out
    assert not tz.check_keep_terms(keep_terms_default)
    assert "   Hint " in capsys.readouterr().out
