"""Cleaning rules: worked examples, properties, and their scores against the news_cls flags."""

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils import cleaning
from course_utils.data import load_records


@pytest.fixture(scope="module")
def news():
    return load_records("news_cls")


# --- HTML ----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("<p>a &amp; b</p><br/>c", "a & b c"),
    ('<div class="news"><b>深圳马拉松</b> &amp; more</div>', "深圳马拉松 & more"),
    ("<script>var x = 1;</script><p>hi</p>", "hi"),
    ("3 < 5 and 6 > 2", "3 < 5 and 6 > 2"),      # not HTML: untouched
    ("AT&T shares", "AT&T shares"),              # '&T' is not an entity
    ("&#x4e2d;&#25991;", "中文"),                 # numeric references decoded
    ("<p>mail <EMAIL></p>", "mail <EMAIL>"),     # our placeholders are not tags
])
def test_strip_html_worked_examples(raw, expected):
    assert cleaning.strip_html(raw) == expected


def test_regex_shortcut_is_worse_than_the_parser():
    raw = "<p>R&amp;D</p>"
    assert cleaning.strip_html_regex(raw) == "R&amp;D"
    assert cleaning.strip_html(raw) == "R&D"


# --- Unicode and whitespace -----------------------------------------------------------------

def test_nfkc_folds_width_but_keeps_chinese_punctuation():
    assert cleaning.normalize_text("Ｈｅｌｌｏ\u3000１２３") == "Hello 123"
    assert cleaning.normalize_text("你好，世界！（新）") == "你好，世界！（新）"
    assert unicodedata.normalize("NFKC", "你好，世界！") == "你好,世界!"  # what plain NFKC would do
    assert cleaning.normalize_text("Hi，there") == "Hi,there"                # no Han: plain NFKC
    assert cleaning.normalize_text("a\u200bb\u00a0 c\t\td") == "ab c d"


def test_width_detector():
    assert cleaning.has_width_variants("ＡＢＣ")
    assert cleaning.has_width_variants("a\u3000b")
    assert not cleaning.has_width_variants("你好，世界！")


# --- PII --------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("详情见 https://news.example.com/a/8056", "详情见 <URL>"),
    ("see https://a.example.org/x.", "see <URL>."),
    ("tips to desk27@example.org now", "tips to <EMAIL> now"),
    ("热线 138-3153-5990", "热线 <PHONE>"),
    ("热线13812345678。", "热线<PHONE>。"),
    ("Call +1 415-555-3096", "Call <PHONE>"),
    ("Call (415) 555-0100 today", "Call <PHONE> today"),
    ("score 3-1 on 2024-05-01, 1,234 fans", "score 3-1 on 2024-05-01, 1,234 fans"),
    ("https://x.example.com/555-123-4567", "<URL>"),  # URL first: its digits are not a phone
])
def test_mask_pii_worked_examples(raw, expected):
    assert cleaning.mask_pii(raw)[0] == expected


def test_mask_pii_counts():
    masked, counts = cleaning.mask_pii("a@example.com b@example.org https://e.example.com 138 1234 5678")
    assert dict(counts) == {"email": 2, "url": 1, "phone": 1}
    assert masked == "<EMAIL> <EMAIL> <URL> <PHONE>"


# --- quality, language -------------------------------------------------------------------------

def test_duplicate_ngram_fraction_hand_examples():
    assert cleaning.duplicate_ngram_fraction("abcdefghij" * 3) == 1.0
    assert cleaning.duplicate_ngram_fraction("abcdefghijklmnopqrstuvwxyz") == 0.0
    # 20 unique characters then 10 repeated: the repeated 10-gram covers 10 + 10 characters of 40
    assert cleaning.duplicate_ngram_fraction("ABCDEFGHIJ" + "abcdefghijklmnopqrst" + "ABCDEFGHIJ") == 20 / 40


def test_quality_problems():
    assert cleaning.quality_problems("华星科技发布新款智能手机") == []
    assert cleaning.quality_problems("!!!!!! ??? ###") == ["few_letters", "many_symbols"]
    assert cleaning.quality_problems("1234567 8910 1112") == ["few_letters", "many_digits"]
    assert cleaning.quality_problems("点击这里，" * 20) == ["repetitive"]
    assert cleaning.quality_problems("好") == ["too_short"]


@pytest.mark.parametrize("text, lang", [
    ("华星科技发布新款智能手机", "zh"), ("苹果发布iPhone 16", "zh"), ("Apex Corp unveils a drone", "en"),
    ("12345 !!", "unknown"), ("投稿 <EMAIL>", "zh"),
])
def test_detect_lang(text, lang):
    assert cleaning.detect_lang(text) == lang


def test_han_ratio_hand_example():
    assert cleaning.han_ratio("苹果发布iPhone 16") == 4 / 10


# --- the rules against the flags of news_cls ---------------------------------------------------

def test_rules_against_flags(news):
    flags = [set(r["flags"]) for r in news]
    texts = [r["text"] for r in news]
    detectors = {
        "html": cleaning.looks_like_html,
        "url": lambda t: bool(cleaning.find_pii(cleaning.normalize_text(t))["url"]),
        "email": lambda t: bool(cleaning.find_pii(cleaning.normalize_text(t))["email"]),
        "phone": lambda t: bool(cleaning.find_pii(cleaning.normalize_text(t))["phone"]),
        "empty": lambda t: cleaning.drop_reason(cleaning.clean_text(t).text) == "empty",
        "too_long": lambda t: cleaning.drop_reason(cleaning.clean_text(t).text, 512) == "too_long",
    }
    for name, detect in detectors.items():
        p, r, *_ = cleaning.precision_recall([detect(t) for t in texts], [name in f for f in flags])
        assert (p, r) == (1.0, 1.0), name
    # Full-width copies of headlines with no ASCII at all are unchanged text: nothing to find.
    fired = [cleaning.has_width_variants(t) for t in texts]
    p, r, tp, n_fired, n_true = cleaning.precision_recall(fired, ["fullwidth" in f for f in flags])
    invisible = sum("fullwidth" in f and not any(ord(c) < 128 for c in cleaning.normalize_text(t))
                    for t, f in zip(texts, flags))
    assert p == 1.0 and n_true - tp == invisible > 0


def test_language_id_agrees_with_the_lang_column(news):
    for r in news:
        lang = cleaning.detect_lang(cleaning.clean_text(r["text"]).text)
        assert lang == (r["lang"] if "empty" not in r["flags"] else "unknown"), r["id"]


def test_precision_recall_hand_example():
    assert cleaning.precision_recall([True, True, False, False], [True, False, True, False])[:2] == (0.5, 0.5)
    assert cleaning.precision_recall([False], [False])[:2] == (1.0, 1.0)


def test_clean_batch_equals_the_loop_and_datasets_map():
    datasets = pytest.importorskip("datasets")
    texts = ["<p>a</p>", "Ｘ１ call 138-1234-5678", "", "fine text"]
    ds = datasets.Dataset.from_dict({"text": texts}).map(cleaning.clean_batch, batched=True, batch_size=2)
    assert ds["text"] == [cleaning.clean_text(t).text for t in texts]
    assert ds["drop_reason"] == ["", "", "empty", ""]


# --- properties ---------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
MIXED = st.lists(st.sampled_from(["<p>", "</p>", "&amp;", "华", "，", "Ａ", "１", " ", "\u3000", "\u200b", "a", "@",
                                  "x@example.com", "https://e.example.com/1", "138-1234-5678", "\n", "<URL>", "é"]),
                 max_size=20).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(TEXT, MIXED))
def test_cleaning_is_idempotent(text):
    once = cleaning.clean_text(text).text
    assert cleaning.clean_text(once).text == once
    assert cleaning.normalize_text(cleaning.normalize_text(text)) == cleaning.normalize_text(text)


@settings(max_examples=200, deadline=None)
@given(st.one_of(TEXT, MIXED))
def test_cleaned_text_has_no_pii_and_no_outer_space(text):
    cleaned = cleaning.clean_text(text).text
    assert cleaned == cleaned.strip()
    assert not any(cleaning.find_pii(cleaned).values())
