"""Deduplication: exact keys, MinHash against true Jaccard (and datasketch), LSH, groups, leakage."""

import hashlib
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import dedup
from course_utils.cleaning import clean_text, drop_reason
from course_utils.data import load_records

COPY_FLAGS = {"html", "url", "email", "phone", "fullwidth", "too_long", "exact_dup", "near_dup"}


def test_exact_key_is_sha1_of_the_match_form():
    assert dedup.match_form("  Hello\u3000 WORLD ") == "hello world"
    assert dedup.exact_key("  Hello\u3000 WORLD ") == hashlib.sha1(b"hello world").hexdigest()
    assert dedup.exact_key("Hello World") == "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"


def test_exact_duplicate_groups():
    texts = ["a b", "c", "A  B", "c", "d"]
    assert dedup.exact_duplicate_groups(texts) == [[0, 2], [1, 3]]


def test_jaccard_hand_example():
    a, b = dedup.char_shingles("abcde", 3), dedup.char_shingles("abcdf", 3)
    assert a == {"abc", "bcd", "cde"} and b == {"abc", "bcd", "cdf"}
    assert dedup.jaccard(a, b) == 2 / 4
    assert dedup.char_shingles("ab", 3) == {"ab"} and dedup.char_shingles("", 3) == set()
    assert dedup.containment({"a", "b"}, {"a", "b", "c"}) == 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab华文 xyz", max_size=12), min_size=1, max_size=6), st.integers(1, 5))
def test_vectorised_shingle_hashes_equal_the_definition(texts, k):
    hashes, offsets = dedup.shingle_hashes(texts, k)
    for d, text in enumerate(texts):
        assert set(hashes[offsets[d]:offsets[d + 1]].tolist()) == {dedup.shingle_hash(s) for s in dedup.char_shingles(text, k)}


def test_vectorised_signatures_equal_the_loop():
    texts = ["华星科技发布新款智能手机", "Apex Corp unveils a drone", "", "ab"] * 2
    sig = dedup.minhash_signatures(texts, num_perm=16, k=3, chunk=8, texts_per_block=3)  # many small blocks
    hashes, offsets = dedup.shingle_hashes(texts, 3)
    for d in range(len(texts)):
        assert (sig[d] == dedup.minhash_one(hashes[offsets[d]:offsets[d + 1]], num_perm=16)).all()
    assert (sig[2] == dedup.EMPTY).all()


def _pair_with_jaccard(rng, shared, only_a, only_b):
    """Two token sets with known sizes, as texts whose 1-shingles are exactly those tokens."""
    alphabet = [chr(0x4E00 + i) for i in rng.sample(range(5000), shared + only_a + only_b)]
    common, a, b = alphabet[:shared], alphabet[shared:shared + only_a], alphabet[shared + only_a:]
    return "".join(common + a), "".join(common + b), shared / (shared + only_a + only_b)


def test_minhash_estimate_matches_true_jaccard():
    """Mean error ~0 and spread ~ sqrt(J(1-J)/num_perm), over many pairs with known Jaccard."""
    rng = random.Random(0)
    errors, scaled = [], []
    for _ in range(300):
        shared = rng.randint(1, 60)
        text_a, text_b, true = _pair_with_jaccard(rng, shared, rng.randint(0, 40), rng.randint(0, 40))
        sig = dedup.minhash_signatures([text_a, text_b], num_perm=128, k=1)
        assert dedup.jaccard(dedup.char_shingles(text_a, 1), dedup.char_shingles(text_b, 1)) == pytest.approx(true)
        est = dedup.estimate_jaccard(sig[0], sig[1])
        errors.append(est - true)
        if 0 < true < 1:
            scaled.append((est - true) / np.sqrt(true * (1 - true) / 128))
    assert abs(np.mean(errors)) < 0.01
    assert 0.7 < np.std(scaled) < 1.3  # the binomial standard error, as the theory says


def test_datasketch_agrees():
    datasketch = pytest.importorskip("datasketch")
    rng = random.Random(1)
    ours, theirs, truth = [], [], []
    for _ in range(60):
        text_a, text_b, true = _pair_with_jaccard(rng, rng.randint(5, 50), rng.randint(0, 30), rng.randint(0, 30))
        sig = dedup.minhash_signatures([text_a, text_b], num_perm=128, k=1)
        m = []
        for text in (text_a, text_b):
            mh = datasketch.MinHash(num_perm=128, seed=1)
            mh.update_batch([s.encode("utf-8") for s in dedup.char_shingles(text, 1)])
            m.append(mh)
        ours.append(dedup.estimate_jaccard(sig[0], sig[1]))
        theirs.append(m[0].jaccard(m[1]))
        truth.append(true)
    ours, theirs, truth = map(np.array, (ours, theirs, truth))
    assert np.abs(ours - truth).mean() < 0.05 and np.abs(theirs - truth).mean() < 0.05
    for threshold in (0.5, 0.7, 0.8, 0.9):
        for num_perm in (64, 128):
            lsh = datasketch.MinHashLSH(threshold=threshold, num_perm=num_perm)
            assert dedup.optimal_bands(threshold, num_perm) == (lsh.b, lsh.r)


def test_candidate_probability_hand_value():
    assert dedup.candidate_probability(0.8, 20, 5) == pytest.approx(1 - (1 - 0.8 ** 5) ** 20)
    assert dedup.lsh_threshold(20, 5) == pytest.approx(0.05 ** 0.2)


def test_lsh_finds_planted_duplicates_and_nothing_odd():
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "zeta", "iota"]
    base = [" ".join(rng.choice(words) + str(rng.randint(0, 999)) for _ in range(12)) for _ in range(300)]
    texts = base + [t + " !" for t in base[:50]]
    pairs = dedup.near_duplicate_pairs(texts, threshold=0.8)
    found = {tuple(p) for p in pairs.tolist()}
    assert all(i < j for i, j in found) and len(found) == len(pairs)
    assert {(i, 300 + i) for i in range(50)} <= found
    brute = {(i, j) for i, j, _ in dedup.all_pairs_similar(texts, 0.9)}
    assert brute <= found  # every pair above 0.9 is also found by LSH at 0.8


def test_union_find_groups():
    uf = dedup.UnionFind(6)
    for i, j in [(4, 5), (0, 2), (2, 4)]:
        uf.union(i, j)
    assert uf.groups() == [[0, 2, 4, 5]] and uf.labels() == [0, 1, 0, 3, 0, 0]


def test_removal_scores_hand_example():
    scores = dedup.removal_scores([[0, 1, 2], [3, 4]], is_copy=[0, 1, 0, 0, 0])
    assert (scores["removed"], scores["right"], scores["lost"]) == (3, 1, 2)
    assert scores["recall"] == 1.0 and scores["precision"] == pytest.approx(1 / 3)


def test_containment_dedup_on_news_cls_loses_no_distinct_headline():
    news = load_records("news_cls")
    texts = [clean_text(r["text"]).text for r in news]
    kept = [i for i, t in enumerate(texts) if drop_reason(t) is None]
    groups = dedup.near_duplicate_groups([texts[i] for i in kept], threshold=0.5, min_containment=1.0)
    is_copy = [bool(COPY_FLAGS & set(news[i]["flags"])) for i in kept]
    scores = dedup.removal_scores(groups, is_copy)
    assert scores["lost"] == 0
    is_near = [("near_dup" in news[i]["flags"]) for i in kept]
    assert dedup.removal_scores(groups, is_near)["right"] == sum(is_near)  # every near_dup row removed


def test_cross_split_overlap():
    train = ["the lions beat the tigers 3-1 at home", "cedar bank posts annual profit"]
    test = ["the lions beat the tigers 3-1 at home", "the lions beat the tigers 3-1 at home (updated)",
            "a completely different headline about chips"]
    overlap = dedup.cross_split_overlap(train, test, threshold=0.5, min_containment=1.0)
    assert overlap == {"exact": [0], "near": [1]}
