"""EDA operations: seeded, label-preserving by construction, jieba for Chinese."""

import random

import pytest

from course_utils import augment
from course_utils.data import load_records


def test_tokenize_keeps_placeholders_and_segments_chinese():
    assert augment.tokenize("华星科技发布新款智能手机 <URL>", "zh")[-1] == "<URL>"
    assert "发布" in augment.tokenize("华星科技发布新款智能手机", "zh")
    assert augment.tokenize("Grace Lee's film", "en") == ["Grace", "Lee", "'s", "film"]


def test_english_round_trip_on_the_headlines():
    rows = [r for r in load_records("news_cls") if r["lang"] == "en" and not r["flags"]][:200]
    for r in rows:
        assert augment.detokenize(augment.tokenize(r["text"], "en"), "en") == r["text"]


def test_operations():
    rng = random.Random(0)
    words = ["华星", "科技", "发布", "新款", "智能手机"]
    replaced = augment.synonym_replacement(words, 1, "zh", rng)
    changed = [(old, new) for old, new in zip(words, replaced) if old != new]
    assert len(changed) == 1 and changed[0][1] in augment.SYNONYMS["zh"][changed[0][0]]
    inserted = augment.random_insertion(words, 2, "zh", rng)
    allowed = set(augment.SYNONYMS["zh"]["发布"] + augment.SYNONYMS["zh"]["新款"])
    assert len(inserted) == 7 and set(inserted) - set(words) <= allowed
    swapped = augment.random_swap(words, 1, rng)
    assert sorted(swapped) == sorted(words) and swapped != words
    assert augment.random_deletion(words, 1.0, rng) and len(augment.random_deletion(words, 1.0, rng)) == 1


def test_eda_is_seeded():
    a = augment.eda("Cedar Bank posts annual profit of 12 billion", "en", random.Random(5))
    b = augment.eda("Cedar Bank posts annual profit of 12 billion", "en", random.Random(5))
    assert a == b and a and "Cedar Bank posts annual profit of 12 billion" not in a


def test_augment_dataset_keeps_originals_first_and_copies_labels():
    texts, labels = augment.augment_dataset(["华星科技发布新款智能手机"], ["tech"], ["zh"], seed=0)
    assert texts[0] == "华星科技发布新款智能手机" and set(labels) == {"tech"} and len(texts) > 1
