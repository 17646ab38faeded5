"""How supervised targets are represented: class ids, one-hot and multi-hot vectors,
standardised regression targets, and BIO tags aligned to subword tokens.

A sequence-level task has one label per sequence; only a token-level task (NER) has one
label per input token, and after subword tokenisation even those must be re-aligned:
special tokens and (by policy) continuation pieces get -100, the ``ignore_index`` that
``CrossEntropyLoss`` skips.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from course_utils.data import BIO_TAGS

IGNORE_INDEX = -100
LABEL2ID = {tag: i for i, tag in enumerate(BIO_TAGS)}
ID2LABEL = dict(enumerate(BIO_TAGS))


# --- Sequence-level labels ---------------------------------------------------------------

def class_ids(labels, classes) -> list[int]:
    """Integer encoding (what scikit-learn's ``LabelEncoder`` does): each label -> its index.

    The ids are names, not quantities: "finance" = 1 is not "between" sports = 0 and tech = 2.
    """
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({label for label in labels if label not in index})
    if unknown:
        raise ValueError(f"unknown labels {unknown}; known classes {list(classes)}")
    return [index[label] for label in labels]


def _check_ids(ids, num_classes: int, what: str = "class id") -> None:
    """Negative ids would silently wrap around (``eye(4)[-1]`` is class 3): refuse them by value."""
    bad = [int(i) for i in ids if not 0 <= int(i) < num_classes]
    if bad:
        raise ValueError(f"{what} {bad[0]} is out of range: expected 0 <= id < {num_classes}")


def one_hot(ids, num_classes: int):
    """One row per example with a single 1 at the class id (float, ready for soft-target losses).
    An id outside ``0 .. num_classes - 1`` raises ValueError naming it."""
    import torch
    ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
    _check_ids(ids.tolist(), num_classes)
    return torch.eye(num_classes)[ids]


def multi_hot(label_sets, classes):
    """Multi-label targets: one row per example with a 1 for EVERY label it has (0, 1 or many)."""
    import torch
    index = {c: i for i, c in enumerate(classes)}
    out = torch.zeros(len(label_sets), len(classes))
    for row, labels in enumerate(label_sets):
        for label in labels:
            if label not in index:
                raise ValueError(f"example {row}: unknown label {label!r}; known classes {list(classes)}")
            out[row, index[label]] = 1.0
    return out


def softmax_cross_entropy(logits, ids):
    """Multi-class loss by hand: mean of -log softmax(logits)[true class].  Equals F.cross_entropy."""
    import torch
    ids = torch.as_tensor(ids).long()
    _check_ids(ids.tolist(), logits.shape[-1])
    log_probs = torch.log_softmax(logits, dim=-1)
    return -log_probs.gather(1, ids.unsqueeze(1)).mean()


def sigmoid_binary_cross_entropy(logits, targets):
    """Multi-label loss by hand: an independent yes/no per class.  Equals F.binary_cross_entropy_with_logits.

    Written with logsigmoid so large logits do not overflow: log(1 - sigmoid(x)) = logsigmoid(-x).
    """
    import torch.nn.functional as F
    return -(targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits)).mean()


@dataclass
class Standardizer:
    """z = (y - mean) / std with the TRAINING set's mean and population std (ddof=0), like
    scikit-learn's ``StandardScaler``.  Predict in z units, then invert to report real units."""

    mean: float = 0.0
    std: float = 1.0

    def fit(self, values) -> "Standardizer":
        import numpy as np
        values = np.asarray(values, dtype=np.float64)
        self.mean = float(values.mean())
        std = float(values.std())
        self.std = std if std > 0 else 1.0  # a constant target: leave its scale alone
        return self

    def transform(self, values):
        import numpy as np
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std

    def inverse_transform(self, values):
        import numpy as np
        return np.asarray(values, dtype=np.float64) * self.std + self.mean


# --- Token-level labels (BIO) --------------------------------------------------------------

def continuation_tag(tag: str) -> str:
    """The tag a continuation piece of a word gets under the all-subtokens policy: B-X -> I-X,
    so an entity still has exactly one B."""
    return "I-" + tag[2:] if tag.startswith("B-") else tag


def align_word_labels(word_ids, word_tags, policy: str = "first", label2id=None) -> list[int]:
    """Word-level tags -> one label id per subword token, from ``encoding.word_ids()``.

    * special tokens (word id None) -> -100;
    * ``policy="first"``: the first piece of a word gets the word's tag, the rest -100;
    * ``policy="all"``: every piece is labelled, continuation pieces with :func:`continuation_tag`.
    """
    if policy not in ("first", "all"):
        raise ValueError("policy must be 'first' or 'all'")
    label2id = LABEL2ID if label2id is None else label2id
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE_INDEX)
            previous = word
            continue
        if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word < len(word_tags):
            raise ValueError(f"word id {word!r} is out of range: {len(word_tags)} word tags")
        if word != previous:
            labels.append(_tag_id(word_tags[word], label2id))
        elif policy == "all":
            labels.append(_tag_id(continuation_tag(word_tags[word]), label2id))
        else:
            labels.append(IGNORE_INDEX)
        previous = word
    return labels


def _tag_id(tag, label2id) -> int:
    if tag not in label2id:
        raise ValueError(f"unknown tag {tag!r}; known tags {list(label2id)}")
    return label2id[tag]


def align_char_labels(offsets, char_tags, policy: str = "first", label2id=None) -> list[int]:
    """Character-level tags (Chinese NER) -> one label id per token, from the offset mapping.

    A token's tag is the tag of the first character it covers.  Empty spans (special tokens)
    get -100.  A token that starts inside the same character as the token before it (a
    byte-level BPE splits one Chinese character into several byte pieces) is a continuation
    piece, handled by ``policy`` as in :func:`align_word_labels`.
    """
    if policy not in ("first", "all"):
        raise ValueError("policy must be 'first' or 'all'")
    label2id = LABEL2ID if label2id is None else label2id
    labels, previous_start = [], None
    for start, end in offsets:
        if end <= start:
            labels.append(IGNORE_INDEX)
            continue
        if not 0 <= start < len(char_tags):
            raise ValueError(f"offset ({start}, {end}) is outside the {len(char_tags)} tagged characters")
        if start == previous_start:
            labels.append(_tag_id(continuation_tag(char_tags[start]), label2id) if policy == "all" else IGNORE_INDEX)
        else:
            labels.append(_tag_id(char_tags[start], label2id))
        previous_start = start
    return labels


def entity_spans(tags) -> list[tuple[int, int, str]]:
    """(start, end, type) of each entity in a BIO sequence (end exclusive).  A stray I-X starts one."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        inside = tag.startswith("I-") and kind == tag[2:]
        if start is not None and not inside:
            spans.append((start, i, kind))
            start, kind = None, None
        if tag.startswith("B-") or (tag.startswith("I-") and not inside):
            start, kind = i, tag[2:]
    return spans


def tokens_crossing_entities(offsets, char_tags) -> int:
    """How many tokens cover characters from both inside and outside one entity (or from two
    entities).  Such a token cannot carry a correct BIO label under any policy."""
    owner = [None] * len(char_tags)
    for n, (start, end, _) in enumerate(entity_spans(char_tags)):
        for i in range(start, end):
            owner[i] = n
    return sum(end - start > 1 and len({owner[i] for i in range(start, end)}) > 1 for start, end in offsets)


def train_char_tokenizer(texts=None, vocab_size: int = 3000):
    """A WordPiece tokenizer that splits Chinese into single characters, as ``bert-base-chinese``
    does (its normalizer puts spaces around every CJK character), trained on the course text."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from course_utils.course_tokenizer import corpus_texts

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.normalizer = normalizers.BertNormalizer(handle_chinese_chars=True, lowercase=True)
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    raw.train_from_iterator(texts if texts is not None else corpus_texts(), trainer=trainer)
    cls_id, sep_id = raw.token_to_id("[CLS]"), raw.token_to_id("[SEP]")
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    raw.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


# --- Showing an alignment -----------------------------------------------------------------

ENTITY_COLOURS = {"PER": "#ffd6a5", "LOC": "#a0c4ff", "ORG": "#caffbf"}
IGNORED_COLOUR = "#e9ecef"


def _cell(value) -> str:
    text = "" if value is None else str(value)
    if value == IGNORE_INDEX or value == "-100":
        colour = IGNORED_COLOUR
    elif isinstance(value, str) and value[:2] in ("B-", "I-"):
        colour = ENTITY_COLOURS.get(value[2:], "#ffffff")
    else:
        colour = "#ffffff"
    weight = "bold" if isinstance(value, str) and value.startswith("B-") else "normal"
    return (f'<td style="background:{colour};font-weight:{weight};padding:2px 5px;'
            f'border:1px solid #ccc;text-align:center">{html.escape(text)}</td>')


def alignment_html(rows: dict) -> str:
    """An HTML table, one row per entry of ``rows`` (name -> values, one per token).  Tag cells
    are coloured by entity type (PER/LOC/ORG), -100 cells grey; B- tags are bold."""
    body = []
    for name, values in rows.items():
        header = f'<th style="text-align:left;padding:2px 6px;border:1px solid #ccc">{html.escape(name)}</th>'
        body.append("<tr>" + header + "".join(_cell(v) for v in values) + "</tr>")
    return '<table style="border-collapse:collapse;font-family:monospace;font-size:12px">' + "".join(body) + "</table>"


def id_row(label_ids, id2label=None) -> list:
    """Label ids as tag names for display, keeping -100 as it is."""
    id2label = ID2LABEL if id2label is None else id2label
    unknown = [i for i in label_ids if i != IGNORE_INDEX and i not in id2label]
    if unknown:
        raise ValueError(f"label id {unknown[0]!r} is not -100 and not one of {sorted(id2label)}")
    return [IGNORE_INDEX if i == IGNORE_INDEX else id2label[i] for i in label_ids]


# --- Exercises ---------------------------------------------------------------------------

EXERCISE_LABEL_SETS = [["sports", "finance"], [], ["tech"], ["entertainment", "tech", "finance"]]
EXERCISE_WORD_IDS = [None, 0, 1, 1, 1, 2, 3, 3, None]
EXERCISE_WORD_TAGS = ["B-PER", "B-ORG", "I-ORG", "O"]


def _as_list(answer):
    return answer.tolist() if hasattr(answer, "tolist") else answer


def _same_rows(answer, expected) -> bool:
    try:
        return [[float(x) for x in row] for row in _as_list(answer)] == [[float(x) for x in row] for row in expected]
    except (TypeError, ValueError):
        return False


def _same_ints(answer, expected) -> bool:
    try:
        return [int(x) for x in _as_list(answer)] == list(expected)
    except (TypeError, ValueError):
        return False


def check_multi_hot(answer) -> None:
    """Exercise 2.1: the multi-hot matrix of EXERCISE_LABEL_SETS over data.LABELS."""
    from course_utils.data import LABELS
    from course_utils.exercises import check_answer
    expected = multi_hot(EXERCISE_LABEL_SETS, LABELS).tolist()
    alphabetical = sorted(LABELS)
    check_answer(answer, expected, key="2.1", equal=_same_rows, hints=[
        "one row per example and one column per class; how many rows and columns should the matrix have?",
        "the columns follow the order of LABELS, not the alphabet; an example with no label is still a row.",
        "row i has a 1 in column j when LABELS[j] is in EXERCISE_LABEL_SETS[i], else 0.",
    ], mistakes=[
        (multi_hot(EXERCISE_LABEL_SETS, alphabetical).tolist(),
         "your columns are in alphabetical order (as LabelEncoder sorts them); use the order of LABELS."),
        ([row for row, s in zip(expected, EXERCISE_LABEL_SETS) if s],
         "the example with no label still needs a row, of zeros: multi-label data may have an empty label set."),
    ], why="Each row may hold any number of 1s, from none to all: that is what a sigmoid per class can express.")


def check_all_subtokens_labels(answer) -> None:
    """Exercise 2.2: label ids for EXERCISE_WORD_IDS / EXERCISE_WORD_TAGS under the all-subtokens policy."""
    from course_utils.exercises import check_answer
    expected = align_word_labels(EXERCISE_WORD_IDS, EXERCISE_WORD_TAGS, policy="all")
    own_tag = [IGNORE_INDEX if w is None else LABEL2ID[EXERCISE_WORD_TAGS[w]] for w in EXERCISE_WORD_IDS]
    check_answer(answer, expected, key="2.2", equal=_same_ints, hints=[
        "one label per token, so the list has as many entries as EXERCISE_WORD_IDS; what do the special tokens (None) get?",
        "a continuation piece (same word id as the token before) of a B-X word must not begin a second entity.",
        "None -> -100; the first piece of a word -> its tag; a continuation of B-X -> I-X, of anything else -> the "
        "word's own tag; then map tags to ids with LABEL2ID.",
    ], mistakes=[
        (align_word_labels(EXERCISE_WORD_IDS, EXERCISE_WORD_TAGS, policy="first"),
         "that is the first-subtoken policy (continuations -100); here every piece is trained."),
        (own_tag, "each continuation copies B-ORG, so the organisation would begin three times; continuations of "
                  "B-X get I-X."),
        ([LABEL2ID["O"] if x == IGNORE_INDEX else x for x in expected],
         "[CLS] and [SEP] are not words: they get -100, not O."),
    ], why="An entity keeps exactly one B- tag however many pieces its first word is cut into.")


# --- Write the code: first-subtoken alignment -------------------------------------------------

def word_label_cases(n: int = 60, seed: int = 0) -> list[tuple[list, list[str]]]:
    """Seeded random ``(word_ids, word_tags)`` like a fast tokenizer's: words cut into 1-3 pieces,
    usually framed by special tokens (None), sometimes not (``add_special_tokens=False``)."""
    import random
    rng = random.Random(seed)
    tags = list(LABEL2ID)
    cases = []
    for _ in range(n):
        n_words = rng.randint(1, 6)
        word_tags = [rng.choice(tags) for _ in range(n_words)]
        word_ids = [w for w in range(n_words) for _ in range(rng.choice([1, 1, 2, 3]))]
        if rng.random() < 0.8:
            word_ids = [None] + word_ids + [None]
        cases.append((word_ids, word_tags))
    return cases


def check_first_subtoken_alignment(function) -> None:
    """Exercise 2.3: the learner's ``function(word_ids, word_tags) -> list[int]`` against
    ``align_word_labels(..., policy="first")`` on :func:`word_label_cases`."""
    from course_utils.exercises import check_code
    check_code(function, lambda w, t: align_word_labels(w, t, policy="first"), word_label_cases(),
                      describe=lambda args: f"word_ids={args[0]}, word_tags={args[1]}")
