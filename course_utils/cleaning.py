"""Rule-based cleaning of raw text, one small rule per function.

The order matters and is the one :func:`clean_text` uses:

1. :func:`strip_html`: parse the markup with the standard library's ``html.parser`` (not a regex),
   keep the text, decode entities (``&amp;`` -> ``&``), drop ``<script>``/``<style>`` bodies;
2. :func:`normalize_text`: zero-width and control characters out, then Unicode NFKC (full-width
   ``Ａ１`` -> ``A1``, ideographic space -> space) while keeping Chinese full-width punctuation
   (``，！？：；（）``) in Chinese text, because NFKC would turn ``，`` into ``,``; then whitespace collapsed;
3. :func:`mask_pii`: URLs, e-mail addresses and phone numbers become placeholders (``<URL>`` ...);
   it runs after NFKC so full-width digits are already ASCII;
4. drop rules (:func:`drop_reason`): empty, too long for the budget, and the heuristic quality
   filters of :func:`quality_signals` (length, character-class ratios, repetition);
5. :func:`detect_lang`: Chinese or English from the share of Han characters among letters.

Each ``looks_like_*`` / ``has_*`` function is a detector: it says whether a rule would fire, so
the notebook can score every rule against the ``flags`` of ``news_cls``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

from course_utils.exercises import check_answer

# ---------------------------------------------------------------------------------------------
# 1. HTML
# ---------------------------------------------------------------------------------------------

# A tag (<p>, </div>, <br/>, <a href=...>) or a character reference (&amp; &#39; &#x4e2d;).
# Our own placeholders (<URL>, <EMAIL>, <PHONE>) are not tags: cleaning twice must change nothing.
HTML_TAG_RE = re.compile(r"</?(?!(?:URL|EMAIL|PHONE)>)[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
PLACEHOLDER_SPLIT_RE = re.compile(r"(<(?:URL|EMAIL|PHONE)>)")
HTML_ENTITY_RE = re.compile(r"&(?:[A-Za-z]{2,8}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});")
# Tags that separate blocks of text: replacing them by a space keeps "<p>a</p><p>b</p>" from gluing to "ab".
BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
              "section", "article", "header", "footer", "table", "blockquote", "hr"}
SKIP_TAGS = {"script", "style", "noscript"}


def looks_like_html(text: str) -> bool:
    """True when the text contains an HTML tag or character reference."""
    return bool(HTML_TAG_RE.search(text) or HTML_ENTITY_RE.search(text))


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)  # decodes &amp; &lt; &#x4e2d; for us
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIP_TAGS:
            self.skipping += 1
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """The visible text of an HTML fragment, entities decoded.  Text that does not look like HTML is
    returned unchanged, so a plain "3 < 5" is never parsed as markup."""
    if not looks_like_html(text):
        return text
    pieces = PLACEHOLDER_SPLIT_RE.split(text)  # placeholders (odd positions) pass through untouched
    for i in range(0, len(pieces), 2):
        pieces[i] = _visible_text(pieces[i])
    return normalize_whitespace("".join(pieces))


_MARKED_SECTION_RE = re.compile(r"<!\[(CDATA\[)?(.*?)\]\]?>", re.S)


def _drop_unclosed(fragment: str) -> str:
    """Cut an unclosed comment ("<!--" without "-->"), an unclosed marked section ("<![") and an
    unfinished tag at the end ("<script"), as a browser does: html.parser would pass them on as
    TEXT, so "<!--<script>" would come out as "<!--<script>"."""
    start = fragment.find("<!--")
    while start >= 0:
        end = fragment.find("-->", start + 4)
        if end < 0:
            fragment = fragment[:start]
            break
        start = fragment.find("<!--", end + 3)
    if "<![" in fragment:  # every closed one was replaced above
        fragment = fragment[:fragment.index("<![")]
    return _UNFINISHED_TAG_RE.sub("", fragment)


_UNFINISHED_TAG_RE = re.compile(r"<[A-Za-z/!?][^<>]*$")


def _visible_text(fragment: str) -> str:
    # html.parser (Python < 3.13) raises AssertionError on a marked section it does not know,
    # such as "<![foo]>": CDATA keeps its text, any other marked section is dropped first.
    fragment = _MARKED_SECTION_RE.sub(lambda m: html.escape(m.group(2)) if m.group(1) else " ", fragment)
    fragment = _drop_unclosed(fragment)
    parser = _TextExtractor()
    try:
        parser.feed(fragment)
        parser.close()
        return "".join(parser.parts)
    except AssertionError:  # still malformed: fall back to dropping anything tag-shaped
        return html.unescape(re.sub(r"<[^<>]*>", " ", fragment))


def strip_html_regex(text: str) -> str:
    """The common shortcut ``re.sub(r"<[^>]+>", "", text)``: shown in the notebook as what NOT to do
    (entities stay encoded, and "a<b and c>d" loses text)."""
    return re.sub(r"<[^>]+>", "", text)


# ---------------------------------------------------------------------------------------------
# 2. Unicode and whitespace
# ---------------------------------------------------------------------------------------------

HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Full-width punctuation that is correct in Chinese text and that NFKC would turn into ASCII.
CJK_PUNCT_KEEP = "，！？：；（）"
_KEEP_SPLIT_RE = re.compile(f"([{CJK_PUNCT_KEEP}])")
_INVISIBLE_RE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")  # zero-width chars, soft hyphen
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES_RE = re.compile(r"[^\S\n]+")  # any whitespace but a newline
_BLANK_LINES_RE = re.compile(r"\n\s*\n\s*(\n\s*)+")


def normalize_whitespace(text: str) -> str:
    """Runs of spaces/tabs -> one space, at most one blank line in a row, no space at line ends
    (a lone carriage return counts as a line break)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES_RE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES_RE.sub("\n\n", text).strip()


def normalize_text(text: str, keep_cjk_punct: bool = True) -> str:
    """NFKC, then invisible/control characters out and whitespace collapsed.

    NFKC folds compatibility forms: full-width ``Ａ１`` -> ``A1``, the ideographic space U+3000 -> " ",
    ``ﬁ`` -> ``fi``.  It also folds ``，`` -> ``,`` and ``（`` -> ``(``, which is wrong for Chinese,
    so when the text contains Han characters those punctuation marks are kept as they are.
    Invisible characters go first, so they cannot hide a pair NFKC would compose."""
    text = _CONTROL_RE.sub("", _INVISIBLE_RE.sub("", text))
    if keep_cjk_punct and HAN_RE.search(text):
        pieces = _KEEP_SPLIT_RE.split(text)  # odd positions are the kept marks
        text = "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(pieces))
    else:
        text = unicodedata.normalize("NFKC", text)
    return normalize_whitespace(text)


def has_width_variants(text: str) -> bool:
    """True when the text has full-width ASCII forms (U+FF01-FF5E) or the ideographic space,
    other than the Chinese punctuation :func:`normalize_text` keeps."""
    return any(("\uff01" <= ch <= "\uff5e" and ch not in CJK_PUNCT_KEEP) or ch == "\u3000" for ch in text)


# ---------------------------------------------------------------------------------------------
# 3. Personal data: URLs, e-mail addresses, phone numbers -> placeholders
# ---------------------------------------------------------------------------------------------

PLACEHOLDERS = {"url": "<URL>", "email": "<EMAIL>", "phone": "<PHONE>"}

# Stops at whitespace, quotes, angle brackets, Chinese punctuation and Han characters ("详见https://a.example/x发布会":
# the URL ends before 发; swallowing Han text would also make cleaning twice differ, since the kept Chinese
# punctuation depends on Han characters being left); trailing ".,;:!?)" is trimmed below.
URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"'，。！？、；：（）《》【】\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+",
                    re.IGNORECASE)
EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])", re.ASCII)
# Chinese mobile numbers (1[3-9]x xxxx xxxx, with or without - or spaces) and North-American
# numbers ((415) 555-0100, 415-555-0100), each with an optional +country code.  The look-arounds
# are ASCII-only on purpose: a Chinese character right before the number ("热线13812345678") is fine.
PHONE_RE = re.compile(
    r"(?<![0-9A-Za-z+])(?:\+\d{1,3}[ -]?)?"
    r"(?:1[3-9]\d[ -]?\d{4}[ -]?\d{4}|\(?\d{3}\)?[ -]\d{3}-\d{4})"
    r"(?![0-9A-Za-z])")


def _url_spans(text: str):
    for match in URL_RE.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in ".,;:!?)]'\"":
            end -= 1  # "see https://a.example/x." -> the dot ends the sentence, not the URL
        yield match.start(), end


def find_pii(text: str) -> dict[str, list[str]]:
    """The URLs, e-mail addresses and phone numbers found in ``text`` (after URLs are masked, so the
    digits of a URL are never read as a phone number)."""
    found = {"url": [text[a:b] for a, b in _url_spans(text)]}
    rest = _mask_urls(text)
    found["email"] = EMAIL_RE.findall(rest)
    rest = EMAIL_RE.sub(PLACEHOLDERS["email"], rest)
    found["phone"] = [m.group(0) for m in PHONE_RE.finditer(rest)]
    return found


def _mask_urls(text: str) -> str:
    out, last = [], 0
    for a, b in _url_spans(text):
        out += [text[last:a], PLACEHOLDERS["url"]]
        last = b
    return "".join(out) + text[last:]


def mask_pii(text: str) -> tuple[str, Counter]:
    """Replace URLs, then e-mail addresses, then phone numbers by placeholders.  Returns the masked
    text and how many of each were replaced."""
    counts = Counter()
    masked = _mask_urls(text)
    counts["url"] = masked.count(PLACEHOLDERS["url"]) - text.count(PLACEHOLDERS["url"])
    masked, counts["email"] = EMAIL_RE.subn(PLACEHOLDERS["email"], masked)
    masked, counts["phone"] = PHONE_RE.subn(PLACEHOLDERS["phone"], masked)
    return masked, +counts  # unary + drops the zero counts


# ---------------------------------------------------------------------------------------------
# 4. Quality heuristics and drop rules
# ---------------------------------------------------------------------------------------------

def char_classes(text: str) -> Counter:
    """Count characters by class: han, latin (letters), digit, space, punct (incl. symbols), other."""
    counts = Counter()
    for ch in text:
        if HAN_RE.match(ch):
            counts["han"] += 1
        elif ch.isascii() and ch.isalpha() or unicodedata.category(ch) in ("Lu", "Ll") and ch < "\u0250":
            counts["latin"] += 1
        elif ch.isdigit():
            counts["digit"] += 1
        elif ch.isspace():
            counts["space"] += 1
        elif unicodedata.category(ch)[0] in "PS":
            counts["punct"] += 1
        else:
            counts["other"] += 1
    return counts


def duplicate_ngram_fraction(text: str, n: int = 10) -> float:
    """Share of characters covered by character n-grams that occur more than once in the text.

    A character-level version of the "duplicate n-gram" repetition filter of the Gopher/MassiveText
    quality rules (Rae et al., 2021), so it works for Chinese, which has no spaces between words."""
    if len(text) < 2 * n:
        return 0.0
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(text)
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[i:i + n] = [True] * n
    return sum(covered) / len(text)


def quality_signals(text: str) -> dict[str, float]:
    """The numbers the heuristic filters look at."""
    classes = char_classes(text)
    visible = max(1, len(text) - classes["space"])
    return {
        "chars": len(text),
        "letter_ratio": (classes["han"] + classes["latin"]) / visible,
        "digit_ratio": classes["digit"] / visible,
        "punct_ratio": classes["punct"] / visible,
        "dup_ngram_fraction": duplicate_ngram_fraction(text),
    }


@dataclass(frozen=True)
class QualityThresholds:
    """Defaults suited to short news headlines; every corpus needs its own, checked on a sample."""
    min_chars: int = 5
    min_letter_ratio: float = 0.5
    max_digit_ratio: float = 0.3
    max_punct_ratio: float = 0.3
    max_dup_ngram_fraction: float = 0.3


def quality_problems(text: str, thresholds: QualityThresholds = QualityThresholds()) -> list[str]:
    """Names of the heuristic filters ``text`` fails (empty list = passes)."""
    s, t = quality_signals(text), thresholds
    problems = []
    if s["chars"] < t.min_chars:
        problems.append("too_short")
    if s["letter_ratio"] < t.min_letter_ratio:
        problems.append("few_letters")
    if s["digit_ratio"] > t.max_digit_ratio:
        problems.append("many_digits")
    if s["punct_ratio"] > t.max_punct_ratio:
        problems.append("many_symbols")
    if s["dup_ngram_fraction"] > t.max_dup_ngram_fraction:
        problems.append("repetitive")
    return problems


def drop_reason(text: str, max_len: int = 512, length_fn=len,
                thresholds: QualityThresholds | None = None) -> str | None:
    """Why a cleaned text should be dropped: "empty", "too_long" (``length_fn(text) > max_len``, e.g.
    characters or tokens), or the first failed quality filter; None when it is kept."""
    if not text.strip():
        return "empty"
    if length_fn(text) > max_len:
        return "too_long"
    if thresholds is not None:
        problems = quality_problems(text, thresholds)
        if problems:
            return problems[0]
    return None


# ---------------------------------------------------------------------------------------------
# 5. Language identification by script
# ---------------------------------------------------------------------------------------------

def han_ratio(text: str) -> float:
    """Han characters / (Han characters + Latin letters); 0.0 when there are no letters."""
    classes = char_classes(text)
    letters = classes["han"] + classes["latin"]
    return classes["han"] / letters if letters else 0.0


def detect_lang(text: str, zh_threshold: float = 0.2) -> str:
    """"zh", "en" or "unknown" from the script ratio.

    One Han character carries about as much as a short English word, so a Chinese sentence with an
    English name in it ("苹果发布iPhone") still has a Han ratio well above 0.2.  Placeholders such as
    ``<URL>`` are not language, so they are removed first."""
    for placeholder in PLACEHOLDERS.values():
        text = text.replace(placeholder, " ")
    classes = char_classes(text)
    if classes["han"] + classes["latin"] == 0:
        return "unknown"
    return "zh" if han_ratio(text) >= zh_threshold else "en"


# ---------------------------------------------------------------------------------------------
# The whole cleaning step
# ---------------------------------------------------------------------------------------------

@dataclass
class Cleaned:
    text: str
    changes: list[str] = field(default_factory=list)  # rules that changed the text: html, width, url, email, phone


def clean_text(text: str) -> Cleaned:
    """Strip HTML, normalise (NFKC + whitespace), mask personal data; report what changed.

    Control and zero-width characters go first, so they cannot hide a tag from the HTML step
    (``"<\\x00script>"`` is a script tag once the NUL is gone).  ``text`` must be a string."""
    if not isinstance(text, str):
        raise TypeError(f"clean_text expects a string, got {type(text).__name__}")
    text = _CONTROL_RE.sub("", _INVISIBLE_RE.sub("", text))
    changes = []
    if looks_like_html(text):
        text = strip_html(text)
        changes.append("html")
    if has_width_variants(text):
        changes.append("width")
    text, counts = mask_pii(normalize_text(text))
    changes += sorted(counts)
    return Cleaned(normalize_whitespace(text), changes)


def clean_batch(batch: dict[str, list], text_column: str = "text", max_len: int = 512) -> dict[str, list]:
    """A ``datasets.map(batched=True)`` function: cleaned text, the changes, and the drop reason
    ("" when kept) for every row of the batch.  A missing text (None) becomes "" and is dropped as
    "empty"; any other non-string raises TypeError naming the row."""
    cleaned = []
    for row, t in enumerate(batch[text_column]):
        if t is None:
            t = ""
        elif not isinstance(t, str):
            raise TypeError(f"row {row}, column {text_column!r}: expected a string, got {type(t).__name__}")
        cleaned.append(clean_text(t))
    return {text_column: [c.text for c in cleaned],
            "changes": [c.changes for c in cleaned],
            "drop_reason": [drop_reason(c.text, max_len) or "" for c in cleaned]}


def precision_recall(fired: list[bool], truth: list[bool]) -> tuple[float, float, int, int, int]:
    """(precision, recall, true positives, rule fired, truly positive) of a detector.
    Precision is 1.0 when the rule never fires and recall is 1.0 when there is nothing to find
    (nothing claimed wrongly / nothing missed)."""
    tp = sum(f and t for f, t in zip(fired, truth))
    n_fired, n_true = sum(fired), sum(truth)
    return (tp / n_fired if n_fired else 1.0, tp / n_true if n_true else 1.0, tp, n_fired, n_true)


# ---------------------------------------------------------------------------------------------
# exercise checks (notebook 06)
# ---------------------------------------------------------------------------------------------

def check_mask_pii(text: str, answer) -> None:
    """Exercise 6.1: the masked version of ``text``."""
    check_answer(answer, mask_pii(normalize_text(text))[0], key="6.1",
                 hints=["Look closely at the digits of the phone number: are they the characters the phone rule expects?",
                        "The pipeline normalises (NFKC) before it masks; then it masks URLs, e-mails and phones."],
                 mistakes=[(mask_pii(text)[0], "you masked the raw text: its full-width digits (１３８…) do not match "
                                               "the phone rule until NFKC turns them into ASCII digits.")])


def check_han_ratio(text: str, answer) -> None:
    """Exercise 6.2: Han characters / (Han characters + Latin letters), to 4 decimals."""
    han = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    digits = sum(1 for ch in text if ch.isdigit())
    check_answer(answer, round(han_ratio(text), 4), key="6.2",
                 hints=["Which characters count as 'script' characters here, and which are neither Chinese nor English?",
                        "Han characters / (Han characters + Latin letters); digits, spaces and punctuation are left out."],
                 mistakes=[(round(han / len(text), 4), "you divided by every character; only Han characters and Latin "
                                                       "letters are in the denominator."),
                           (round(han / (han + latin + digits), 4), "you counted the digits; they belong to neither script.")],
                 equal=lambda a, e: a is not None and abs(float(a) - e) < 5e-4)
