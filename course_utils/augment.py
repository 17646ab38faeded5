"""EDA-style text augmentation for Chinese and English (Wei & Zou, 2019, "EDA: Easy Data
Augmentation Techniques for Boosting Performance on Text Classification Tasks").

Four operations on a list of words, each changing about ``alpha * len(words)`` of them:

* :func:`synonym_replacement`: replace words that have a synonym in :data:`SYNONYMS`;
* :func:`random_insertion`: insert a synonym of some word at a random position;
* :func:`random_swap`: swap two words;
* :func:`random_deletion`: delete each word with probability ``p`` (never all of them).

Chinese has no spaces, so words come from jieba (:func:`tokenize`); English words come from
nltk's ``NLTKWordTokenizer`` and go back together with the Treebank detokenizer.  Placeholders
such as ``<URL>`` stay single tokens.  Augmentation is only as good as the segmentation and the
synonym table: the table below is small, made for the course's news headlines, and every
substitution keeps the topic.  Back-translation (Sennrich et al., 2016) needs a translation
model, so the course describes it but does not fake it.
"""

from __future__ import annotations

import random
import re

# A small synonym table for the news_cls headlines (written for this course).  Keys are words as
# jieba / the nltk tokenizer produce them (English lower-case); each value lists replacements.
SYNONYMS = {
    "zh": {
        "发布": ["推出", "公布"], "宣布": ["公布", "宣告"], "提升": ["提高", "增强"],
        "增长": ["上升", "增加"], "下降": ["下滑", "减少"], "降低": ["减少", "下降"],
        "夺得": ["获得", "赢得"], "战胜": ["击败", "力克"], "突破": ["超过", "超越"],
        "举办": ["举行"], "今日": ["今天"], "上线": ["推出", "发行"], "取得": ["获得", "赢得"],
        "刷新": ["打破", "改写"], "选手": ["运动员", "参赛者"], "电影": ["影片"], "新款": ["新型"],
        "团队": ["小组"], "达到": ["达", "实现"], "修复": ["修补", "修正"], "漏洞": ["缺陷"],
        "官宣": ["宣布"], "期待": ["期盼", "看好"], "表现": ["发挥"], "分析师": ["研究员"],
        "看好": ["看涨", "乐观看待"], "前景": ["未来"], "小幅": ["略微"], "波动": ["震荡"],
        "领跑": ["领先"], "定档": ["确定播出时间"], "获得": ["赢得", "拿到"],
    },
    "en": {
        "beat": ["defeat", "overcome"], "wins": ["takes", "claims"], "new": ["fresh", "latest"],
        "reports": ["posts", "announces"], "growth": ["increase", "rise"], "shares": ["stocks"],
        "close": ["finish", "end"], "unveils": ["launches", "reveals"], "opens": ["launches"],
        "cuts": ["reduces", "lowers"], "fall": ["drop", "decline"], "announces": ["reveals"],
        "releases": ["launches", "issues"], "starts": ["begins"], "start": ["begin"],
        "earns": ["receives", "gets"], "film": ["movie"], "fixes": ["repairs"], "flaws": ["bugs"],
        "several": ["many", "multiple"], "profit": ["earnings"], "annual": ["yearly"],
        "tops": ["leads"], "upgrade": ["raise"], "longer": ["extended"], "sets": ["breaks"],
        "record": ["best"], "names": ["appoints"], "coach": ["manager"], "posts": ["reports"],
    },
}

PLACEHOLDER_RE = re.compile(r"(<[A-Z]+>)")


def tokenize(text: str, lang: str) -> list[str]:
    """Words of ``text``: jieba for Chinese, nltk's rule-based tokenizer for English (it needs no
    downloaded data).  Placeholders like ``<URL>`` stay whole."""
    out = []
    for i, piece in enumerate(PLACEHOLDER_RE.split(text)):
        if i % 2:
            out.append(piece)
        elif piece.strip():
            out += _tokenize_piece(piece, lang)
    return out


def _tokenize_piece(piece: str, lang: str) -> list[str]:
    if lang == "zh":
        import jieba
        return [w for w in jieba.lcut(piece) if w.strip()]
    from nltk.tokenize import NLTKWordTokenizer
    return NLTKWordTokenizer().tokenize(piece)


def detokenize(words: list[str], lang: str) -> str:
    """Chinese words are joined with nothing between them; English goes through nltk's Treebank
    detokenizer, which re-attaches punctuation and contractions ("Lee 's" -> "Lee's")."""
    if lang == "zh":
        return "".join(words)
    from nltk.tokenize.treebank import TreebankWordDetokenizer
    return TreebankWordDetokenizer().detokenize(words)


def _synonyms(word: str, lang: str) -> list[str]:
    return SYNONYMS[lang].get(word.lower() if lang == "en" else word, [])


def synonym_replacement(words: list[str], n: int, lang: str, rng: random.Random) -> list[str]:
    """Replace up to ``n`` distinct words that have synonyms by a random synonym each."""
    words = list(words)
    candidates = [i for i, w in enumerate(words) if _synonyms(w, lang)]
    for i in rng.sample(candidates, min(n, len(candidates))):
        words[i] = rng.choice(_synonyms(words[i], lang))
    return words


def random_insertion(words: list[str], n: int, lang: str, rng: random.Random) -> list[str]:
    """``n`` times: take a random word with a synonym, insert that synonym at a random position."""
    words = list(words)
    for _ in range(n):
        candidates = [w for w in words if _synonyms(w, lang)]
        if not candidates:
            break
        synonym = rng.choice(_synonyms(rng.choice(candidates), lang))
        words.insert(rng.randint(0, len(words)), synonym)
    return words


def random_swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    """``n`` times: swap the words at two random positions."""
    words = list(words)
    if len(words) < 2:
        return words
    for _ in range(n):
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return words


def random_deletion(words: list[str], p: float, rng: random.Random) -> list[str]:
    """Delete each word with probability ``p``; if all would go, keep one at random."""
    if len(words) <= 1:
        return list(words)
    kept = [w for w in words if rng.random() >= p]
    return kept or [rng.choice(words)]


OPERATIONS = ("sr", "ri", "rs", "rd")


def eda(text: str, lang: str, rng: random.Random, alpha: float = 0.1, num_aug: int = 4,
        operations=OPERATIONS) -> list[str]:
    """``num_aug`` augmented versions of ``text``, cycling through ``operations``; each changes
    max(1, alpha * number of words) words.  Versions equal to the original are left out."""
    words = tokenize(text, lang)
    n = changes_per_operation(len(words), alpha)
    out = []
    for k in range(num_aug):
        op = operations[k % len(operations)]
        if op == "sr":
            new = synonym_replacement(words, n, lang, rng)
        elif op == "ri":
            new = random_insertion(words, n, lang, rng)
        elif op == "rs":
            new = random_swap(words, n, rng)
        else:
            new = random_deletion(words, alpha, rng)
        augmented = detokenize(new, lang)
        if augmented != text and augmented not in out:
            out.append(augmented)
    return out


def augment_dataset(texts, labels, langs, seed: int = 0, **eda_kwargs) -> tuple[list[str], list]:
    """Originals followed by their EDA versions (labels copied), in a repeatable order."""
    rng = random.Random(seed)
    out_texts, out_labels = list(texts), list(labels)
    for text, label, lang in zip(texts, labels, langs):
        for augmented in eda(text, lang, rng, **eda_kwargs):
            out_texts.append(augmented)
            out_labels.append(label)
    return out_texts, out_labels


def changes_per_operation(num_words: int, alpha: float) -> int:
    """How many words one EDA operation changes: max(1, int(alpha * num_words))."""
    return max(1, int(alpha * num_words))


def check_eda_changes(num_words: int, alpha: float, answer) -> None:
    """Exercise 6b.3: how many words synonym replacement changes in a sentence of ``num_words`` words."""
    from course_utils.exercises import check_answer
    check_answer(answer, changes_per_operation(num_words, alpha), key="6b.3",
                 equal=lambda a, e: isinstance(a, (int, float)) and abs(float(a) - e) < 1e-9,
                 hints=["The answer is a count of words, so it is a whole number; how does EDA turn α × length into one?",
                        "n = max(1, int(α × number of words)): rounded down, but at least one word."],
                 mistakes=[(alpha * num_words, "α × words is not a whole number of words: EDA rounds it down "
                                               "(and changes at least one word).")])
