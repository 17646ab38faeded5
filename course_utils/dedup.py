"""Deduplication: exact duplicates by hash, near duplicates by MinHash + LSH, leakage across splits.

Exact duplicates share the hash of their normalised text (:func:`exact_key`).  A stable hash
(``hashlib``) is used, never Python's ``hash()``, whose value changes from process to process.

Near duplicates are found in four steps (Broder, 1997; Indyk & Motwani, 1998):

1. **shingles** (:func:`char_shingles`): the set of character k-grams (k = 5 by default) of a text.  Characters, not
   words, so Chinese needs no segmentation.  Jaccard similarity |A & B| / |A | B| of two shingle
   sets is the similarity we want (:func:`jaccard`).
2. **MinHash signatures** (:func:`minhash_signatures`): for each of ``num_perm`` random hash
   functions h_i, keep min h_i(shingle) over the text's shingles.  For one random h,
   P[min h(A) = min h(B)] = J(A, B), so the share of equal signature positions estimates J
   (:func:`estimate_jaccard`) with standard error sqrt(J(1-J)/num_perm).
3. **LSH banding** (:func:`lsh_candidate_pairs`): cut each signature into ``bands`` bands of
   ``rows`` values; two texts become candidates when any band is identical.  That happens with
   probability 1 - (1 - s^rows)^bands (:func:`candidate_probability`): an S-curve around
   (1/bands)^(1/rows).  Each band is a sort, so the cost grows ~linearly with the number of texts
   instead of quadratically like comparing all pairs.
4. **verify and group**: keep candidate pairs whose estimated Jaccard passes the threshold (or,
   for short texts, whose shingle *containment* is high: :func:`containment`), then join them
   into groups with union-find (:func:`near_duplicate_groups`).

Everything is vectorised with numpy: 100k documents take seconds, not hours
(``benchmarks/bench_dedup.py``).  ``datasketch`` implements the same idea; the notebook shows that
both estimate the same Jaccard.
"""

from __future__ import annotations

import functools
import hashlib
import math
import unicodedata

import numpy as np

from course_utils.exercises import check_answer

MASK64 = (1 << 64) - 1
_POLY = 0x100000001B3  # the 64-bit FNV prime, as the base of a polynomial (Horner) hash of a k-gram
EMPTY = np.uint32(0xFFFFFFFF)  # signature value of a text with no shingles
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy >= 2.0 renamed trapz


# ---------------------------------------------------------------------------------------------
# Exact duplicates
# ---------------------------------------------------------------------------------------------

def match_form(text: str) -> str:
    """The form duplicates are compared in: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def exact_key(text: str) -> str:
    """A stable fingerprint of the normalised text (SHA-1, hex): same in every process and on every machine."""
    return hashlib.sha1(match_form(text).encode("utf-8")).hexdigest()


def exact_duplicate_groups(texts: list[str]) -> list[list[int]]:
    """Groups (lists of indices, ascending) of texts with equal :func:`exact_key`, size >= 2 only."""
    by_key: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        by_key.setdefault(exact_key(text), []).append(i)
    return sorted(g for g in by_key.values() if len(g) > 1)


# ---------------------------------------------------------------------------------------------
# Step 1: shingles and true Jaccard
# ---------------------------------------------------------------------------------------------

def char_shingles(text: str, k: int = 5) -> set[str]:
    """The set of character k-grams of ``match_form(text)``; a text shorter than k is one shingle."""
    text = match_form(text)
    if not text:
        return set()
    if len(text) <= k:
        return {text}
    return {text[i:i + k] for i in range(len(text) - k + 1)}


def jaccard(a: set, b: set) -> float:
    """|A & B| / |A | B|; two empty sets count as 0.0 (nothing to compare)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def _fmix64(h):
    """MurmurHash3's 64-bit finaliser: spreads every input bit over the output (numpy or int)."""
    if isinstance(h, np.ndarray):
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xFF51AFD7ED558CCD)
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xC4CEB9FE1A85EC53)
        return h ^ (h >> np.uint64(33))
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


def shingle_hash(shingle: str) -> int:
    """A stable 32-bit hash of one shingle: polynomial hash of its code points, then mixed."""
    h = 0
    for ch in shingle:
        h = (h * _POLY + ord(ch)) & MASK64
    return _fmix64(h) >> 32


def shingle_hashes(texts: list[str], k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """All shingle hashes of all texts at once: (hashes uint32, offsets) where text d owns
    ``hashes[offsets[d]:offsets[d+1]]``.  Equal to ``{shingle_hash(s) for s in char_shingles(t, k)}``
    as a set (duplicates inside one text are kept; they do not change a minimum)."""
    forms = [match_form(t) for t in texts]
    lengths = np.array([len(f) for f in forms], dtype=np.int64)
    counts = np.where(lengths >= k, lengths - k + 1, (lengths > 0).astype(np.int64))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    char_starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=char_starts[1:])
    codes = np.frombuffer("".join(forms).encode("utf-32-le") + bytes(4 * k), dtype=np.uint32).astype(np.uint64)
    # One slot per shingle: which text it belongs to and where its first character is.
    doc_of = np.repeat(np.arange(len(texts)), counts)
    first_char = char_starts[doc_of] + (np.arange(offsets[-1]) - offsets[doc_of])
    # Horner's rule over the k characters of every window at once.
    hashes = np.zeros(offsets[-1], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            hashes = hashes * np.uint64(_POLY) + codes[first_char + j]
    # A text shorter than k has one shingle, itself (the loop above read past its end).
    for d in np.flatnonzero((lengths > 0) & (lengths < k)):
        h = 0
        for ch in forms[d]:
            h = (h * _POLY + ord(ch)) & MASK64
        hashes[offsets[d]] = h
    with np.errstate(over="ignore"):
        mixed = _fmix64(hashes)
    return (mixed >> np.uint64(32)).astype(np.uint32), offsets


# ---------------------------------------------------------------------------------------------
# Step 2: MinHash signatures
# ---------------------------------------------------------------------------------------------

def permutation_params(num_perm: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Parameters (a odd, b) of the hash functions h_i(x) = ((a_i x + b_i) mod 2^64) >> 32
    (multiply-shift hashing, Dietzfelbinger et al. 1997): cheap in numpy and nearly min-wise."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_one(hashes, num_perm: int = 128, seed: int = 0) -> np.ndarray:
    """The signature of ONE text from its shingle hashes, written as the loop the definition says."""
    a, b = permutation_params(num_perm, seed)
    signature = np.full(num_perm, EMPTY, dtype=np.uint32)
    for i in range(num_perm):
        for x in hashes:
            value = ((int(a[i]) * int(x) + int(b[i])) & MASK64) >> 32
            signature[i] = min(int(signature[i]), value)
    return signature


def minhash_signatures(texts: list[str], num_perm: int = 128, k: int = 5, seed: int = 0,
                       chunk: int = 4096, texts_per_block: int = 4096) -> np.ndarray:
    """MinHash signatures, shape (len(texts), num_perm), uint32.  A text with no shingles gets
    all ``EMPTY`` (it never becomes a candidate).

    Vectorised over shingles: one (num_perm x shingles) block of hash values at a time, then
    ``np.minimum.reduceat`` takes each text's minimum.  Texts are processed ``texts_per_block`` at a
    time and hashed ``chunk`` shingles at a time into one reused buffer, so memory stays bounded and
    the cost grows linearly: huge temporary arrays would cost more in allocation than in arithmetic."""
    a, b = permutation_params(num_perm, seed)
    signatures = np.full((len(texts), num_perm), EMPTY, dtype=np.uint32)
    buffer = np.empty((num_perm, chunk), dtype=np.uint64)
    for first in range(0, len(texts), texts_per_block):
        block_texts = texts[first:first + texts_per_block]
        hashes, offsets = shingle_hashes(block_texts, k)
        counts = np.diff(offsets)
        doc = 0
        while doc < len(block_texts):
            stop = int(np.searchsorted(offsets, offsets[doc] + chunk, side="right")) - 1
            stop = min(max(stop, doc + 1), len(block_texts))  # whole texts, at least one
            lo, hi = offsets[doc], offsets[stop]
            if hi > lo:
                block = hashes[lo:hi].astype(np.uint64)
                values = buffer[:, :hi - lo] if hi - lo <= chunk else np.empty((num_perm, hi - lo), dtype=np.uint64)
                with np.errstate(over="ignore"):
                    np.multiply(a[:, None], block[None, :], out=values)  # wraps mod 2^64, as intended
                    values += b[:, None]
                values >>= np.uint64(32)
                nonempty = np.flatnonzero(counts[doc:stop] > 0) + doc
                # Layout (num_perm, shingles): each text's shingles are contiguous, where reduceat is fast.
                signatures[first + nonempty] = np.minimum.reduceat(values, offsets[nonempty] - lo, axis=1).T
            doc = stop
    return signatures


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float | np.ndarray:
    """Share of positions where two signatures agree: an unbiased estimate of Jaccard similarity.
    Works on single signatures or row-wise on two (n, num_perm) arrays.

    Two texts with no shingles (empty signatures, all ``EMPTY``) estimate 0.0, as :func:`jaccard`
    of two empty sets is 0.0: agreeing on "nothing" is not similarity."""
    sig_a, sig_b = np.asarray(sig_a), np.asarray(sig_b)
    both_empty = (sig_a == EMPTY).all(axis=-1) & (sig_b == EMPTY).all(axis=-1)
    out = np.where(both_empty, 0.0, (sig_a == sig_b).mean(axis=-1))
    return out[()] if out.ndim == 0 else out  # a number for one pair, as before


# ---------------------------------------------------------------------------------------------
# Step 3: LSH banding
# ---------------------------------------------------------------------------------------------

def candidate_probability(s, bands: int, rows: int):
    """P[two texts with Jaccard s share at least one band] = 1 - (1 - s^rows)^bands."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** bands


def lsh_threshold(bands: int, rows: int) -> float:
    """The similarity where the S-curve is steepest, about (1/bands)^(1/rows)."""
    return (1.0 / bands) ** (1.0 / rows)


@functools.lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5):
    """(bands, rows) with bands * rows <= num_perm that minimise the weighted area of false
    positives (candidates below the threshold) plus false negatives (misses above it): the
    same criterion ``datasketch.MinHashLSH`` uses."""
    best, best_err = None, math.inf
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            below = np.linspace(0.0, threshold, 201)
            above = np.linspace(threshold, 1.0, 201)
            fp = _trapezoid(candidate_probability(below, bands, rows), below)
            fn = _trapezoid(1.0 - candidate_probability(above, bands, rows), above)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err - 1e-12:
                best, best_err = (bands, rows), err
    return best


def _band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (text, band): the band's values combined with fixed random multipliers."""
    mult = np.random.default_rng(12345).integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
    sig = signatures[:, :bands * rows].astype(np.uint64).reshape(len(signatures), bands, rows)
    with np.errstate(over="ignore"):
        keys = (sig * mult).sum(axis=2, dtype=np.uint64)
        keys = _fmix64(keys)  # spread the bits; equal keys then mean equal bands (up to ~2^-64)
    return keys


def lsh_candidate_pairs(signatures: np.ndarray, bands: int, rows: int, max_bucket: int = 64) -> np.ndarray:
    """Candidate pairs (i < j), shape (m, 2), sorted and unique: texts that share a band.

    A bucket larger than ``max_bucket`` (boilerplate shared by many texts) contributes a star,
    (first, other) for each other member, instead of all its pairs: still connects the group,
    and keeps the cost linear."""
    n = len(signatures)
    usable = ~(signatures == EMPTY).all(axis=1)
    keys = _band_keys(signatures, bands, rows)
    pairs = []
    for band in range(bands):
        idx = np.flatnonzero(usable)
        k = keys[idx, band]
        order = np.argsort(k, kind="stable")
        k, idx = k[order], idx[order]
        boundary = np.flatnonzero(np.diff(k) != 0) + 1
        starts = np.concatenate(([0], boundary))
        sizes = np.diff(np.concatenate((starts, [len(k)])))
        two = starts[sizes == 2]  # the common case, vectorised
        pairs.append(np.sort(np.stack([idx[two], idx[two + 1]], axis=1), axis=1))
        for start, size in zip(starts[sizes > 2], sizes[sizes > 2]):
            members = np.sort(idx[start:start + size])
            if size <= max_bucket:
                ii, jj = np.triu_indices(size, 1)
                pairs.append(np.stack([members[ii], members[jj]], axis=1))
            else:
                pairs.append(np.stack([np.full(size - 1, members[0]), members[1:]], axis=1))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    flat = np.concatenate(pairs).astype(np.int64)
    codes = np.unique(flat[:, 0] * n + flat[:, 1])  # one code per pair: sorts and de-duplicates
    return np.stack([codes // n, codes % n], axis=1)


# ---------------------------------------------------------------------------------------------
# Step 4: verify and group
# ---------------------------------------------------------------------------------------------

class UnionFind:
    """Disjoint sets with path halving: ``union(i, j)`` then ``groups()``."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)  # the smallest index is the root: deterministic

    def labels(self) -> list[int]:
        """Group id of every element: the smallest index in its group."""
        return [self.find(i) for i in range(len(self.parent))]

    def groups(self, min_size: int = 2) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return sorted(g for g in out.values() if len(g) >= min_size)


def verified_pairs(signatures: np.ndarray, pairs: np.ndarray, threshold: float) -> np.ndarray:
    """The candidate pairs whose estimated Jaccard is at least ``threshold``."""
    if len(pairs) == 0:
        return pairs
    est = estimate_jaccard(signatures[pairs[:, 0]], signatures[pairs[:, 1]])
    return pairs[est >= threshold]


def containment(a: set, b: set) -> float:
    """|A & B| / |A| for the smaller set A: how much of the shorter text the longer one contains
    (Broder, 1997).  1.0 when one text's shingles are all inside the other's: "X" and "X (updated)"."""
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & big) / len(small) if small else 0.0


def near_duplicate_pairs(texts: list[str], threshold: float = 0.7, num_perm: int = 128, k: int = 5,
                         min_containment: float | None = None, seed: int = 0,
                         candidate_threshold: float | None = None) -> np.ndarray:
    """Pairs (i < j) of near-duplicate texts.

    LSH proposes candidates with banding tuned for ``candidate_threshold`` (default: ``threshold``).
    A pair right at the tuned value becomes a candidate only about half the time, so tune below the
    threshold you verify at when recall matters.  Candidates are then verified, either by the
    MinHash estimate (estimated Jaccard >= ``threshold``) or, when ``min_containment`` is given,
    by the exact containment of their shingle sets."""
    bands, rows = optimal_bands(threshold if candidate_threshold is None else candidate_threshold, num_perm)
    signatures = minhash_signatures(texts, num_perm=num_perm, k=k, seed=seed)
    candidates = lsh_candidate_pairs(signatures, bands, rows)
    if min_containment is None:
        return verified_pairs(signatures, candidates, threshold)
    shingle_sets: dict[int, set] = {}

    def shingles_of(i):
        if i not in shingle_sets:
            shingle_sets[i] = char_shingles(texts[i], k)
        return shingle_sets[i]

    keep = [containment(shingles_of(i), shingles_of(j)) >= min_containment for i, j in candidates.tolist()]
    return candidates[np.array(keep, dtype=bool)] if len(candidates) else candidates


def group_labels(n: int, pairs) -> list[int]:
    """Group id per item (the smallest index in its connected group) from linking pairs."""
    uf = UnionFind(n)
    for i, j in np.asarray(pairs).reshape(-1, 2).tolist():
        uf.union(i, j)
    return uf.labels()


def near_duplicate_groups(texts: list[str], threshold: float = 0.7, **kwargs) -> list[list[int]]:
    """Connected groups (size >= 2) of near-duplicate texts; ``kwargs`` go to :func:`near_duplicate_pairs`."""
    uf = UnionFind(len(texts))
    for i, j in near_duplicate_pairs(texts, threshold, **kwargs).tolist():
        uf.union(i, j)
    return uf.groups()


def removal_scores(groups: list[list[int]], is_copy) -> dict[str, float]:
    """Score deduplication by what it removes, whichever member of a group is kept.

    A group of m texts loses m - 1 of them.  Of those, at most (number of real copies in the group)
    can be right: the rest were distinct texts, lost.  ``is_copy[i]`` says whether text i is a copy."""
    removed = sum(len(g) - 1 for g in groups)
    right = sum(min(len(g) - 1, sum(bool(is_copy[i]) for i in g)) for g in groups)
    copies = sum(bool(c) for c in is_copy)
    return {"removed": removed, "right": right, "lost": removed - right,
            "precision": right / removed if removed else 1.0, "recall": right / copies if copies else 1.0}


def all_pairs_similar(texts: list[str], threshold: float, k: int = 5) -> list[tuple[int, int, float]]:
    """The brute-force reference: true Jaccard of every pair.  Quadratic: small inputs only."""
    sets = [char_shingles(t, k) for t in texts]
    out = []
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            s = jaccard(sets[i], sets[j])
            if s >= threshold:
                out.append((i, j, s))
    return out


def all_pairs_estimated(signatures: np.ndarray, threshold: float, block: int = 128) -> np.ndarray:
    """Every pair (i < j) whose signatures agree on at least ``threshold`` of positions, found by
    comparing ALL pairs (block by block, numpy): the quadratic reference that LSH approximates."""
    n, num_perm = signatures.shape
    found = []
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        agree = np.zeros((hi - lo, n), dtype=np.uint16)
        for p in range(num_perm):
            agree += signatures[lo:hi, p][:, None] == signatures[:, p][None, :]
        rows, cols = np.nonzero(agree >= threshold * num_perm)
        keep = (rows + lo) < cols
        found.append(np.stack([rows[keep] + lo, cols[keep]], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Leakage across splits
# ---------------------------------------------------------------------------------------------

def cross_split_overlap(train_texts: list[str], test_texts: list[str], threshold: float = 0.7,
                        **kwargs) -> dict[str, list[int]]:
    """Which test texts also occur in train: ``exact`` (same :func:`exact_key`) and ``near`` (a near
    duplicate of some train text by :func:`near_duplicate_pairs`, not exact).  Indices into ``test_texts``."""
    train_keys = {exact_key(t) for t in train_texts}
    exact = [i for i, t in enumerate(test_texts) if exact_key(t) in train_keys]
    pairs = near_duplicate_pairs(list(train_texts) + list(test_texts), threshold, **kwargs)
    n_train = len(train_texts)
    across = pairs[(pairs[:, 0] < n_train) & (pairs[:, 1] >= n_train)]
    near = sorted(set((across[:, 1] - n_train).tolist()) - set(exact))
    return {"exact": exact, "near": near}


# ---------------------------------------------------------------------------------------------
# exercise checks (notebook 06)
# ---------------------------------------------------------------------------------------------

def check_jaccard(text_a: str, text_b: str, k: int, answer) -> None:
    """Exercise 6.3: the true Jaccard similarity of two texts' character k-shingles, to 4 decimals."""
    a, b = char_shingles(text_a, k), char_shingles(text_b, k)
    words_a, words_b = set(text_a.split()), set(text_b.split())
    check_answer(answer, jaccard(a, b), key="6.3",
                 hints=["Write out the 3-character pieces of each text: which pieces do the two share?",
                        "Build both sets of k-character shingles, then |A ∩ B| / |A ∪ B|."],
                 mistakes=[(jaccard(words_a, words_b), "you compared word sets; the exercise asks for character 3-shingles."),
                           (len(a & b) / max(len(a), len(b)), "you divided by the larger set; Jaccard divides by the union.")],
                 equal=lambda x, e: x is not None and abs(float(x) - e) < 5e-4)


def check_candidate_probability(s: float, bands: int, rows: int, answer) -> None:
    """Exercise 6.4: the probability that LSH makes a pair with Jaccard s a candidate, to 4 decimals."""
    one_band = s ** rows
    check_answer(answer, float(candidate_probability(s, bands, rows)), key="6.4",
                 hints=["First find the probability that ONE band of r rows matches exactly.",
                        "One band matches with probability s**rows; the pair is missed only if all bands miss."],
                 mistakes=[(one_band, "that is one band matching; the pair is a candidate if ANY of the bands matches."),
                           ((1 - one_band) ** bands, "that is the probability that every band misses: take its complement.")],
                 equal=lambda x, e: x is not None and abs(float(x) - e) < 5e-4)


def shingle_jaccard_cases(n: int = 60, seed: int = 0) -> list[tuple[str, str, int]]:
    """Random pairs of short lowercase texts over a tiny alphabet (so shingles collide), with k from 1 to 4;
    some texts are empty or shorter than k, the edge cases a hand-written version most often gets wrong."""
    rng = np.random.default_rng(seed)
    cases = [("", "", 3), ("ab", "ab", 3), ("abcd", "", 2)]
    while len(cases) < n:
        a, b = ("".join(rng.choice(list("abc"), size=int(rng.integers(0, 9)))) for _ in range(2))
        cases.append((a, b, int(rng.integers(1, 5))))
    return cases


def check_shingle_jaccard_code(function) -> None:
    """Exercise 6.7 (write the code): ``function(text_a, text_b, k)`` returns the Jaccard similarity of the
    two texts' character k-shingles, with the course's conventions (a text of at most k characters is one
    shingle; an empty text has none; two empty sets give 0.0)."""
    from course_utils.exercises import check_code
    check_code(function, lambda a, b, k: jaccard(char_shingles(a, k), char_shingles(b, k)), shingle_jaccard_cases())
