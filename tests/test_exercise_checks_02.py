"""The exercise checks of notebooks 02 and 05b: each accepts a right answer and rejects plausible wrong ones.

Right answers are worked out here by hand or written independently of the checked package code; the wrong
ones are the slips the checks are meant to catch (and, for value answers, to explain).
"""

import pytest

from course_utils import chat_format as cf
from course_utils import labels
from course_utils.course_tokenizer import load_course_tokenizer

X = -100


def last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


def passes(check, answer, capsys) -> bool:
    """Run a check (they print, and return None so a notebook cell shows only the line) and read its verdict."""
    capsys.readouterr()
    assert check(answer) is None
    out = capsys.readouterr().out
    print(out, end="")                     # keep it readable by last_line
    return out.startswith("✅")


# --- 02, Exercise 2.3: first-subtoken alignment, written by the learner -------------------------------

def align_first_right(word_ids, word_tags):
    out = []
    for i, w in enumerate(word_ids):
        if w is None:
            out.append(X)
        elif i > 0 and word_ids[i - 1] == w:
            out.append(X)
        else:
            out.append(labels.LABEL2ID[word_tags[w]])
    return out


def align_every_piece(word_ids, word_tags):        # forgets to mask continuation pieces
    return [X if w is None else labels.LABEL2ID[word_tags[w]] for w in word_ids]


def align_specials_as_o(word_ids, word_tags):      # gives [CLS]/[SEP] the tag O
    return [0 if x == X and w is None else x for x, w in zip(align_first_right(word_ids, word_tags), word_ids)]


def test_first_subtoken_check_accepts_a_right_implementation(capsys):
    assert passes(labels.check_first_subtoken_alignment, align_first_right, capsys)
    assert last_line(capsys).startswith("✅ Correct on all 60 generated cases")


@pytest.mark.parametrize("wrong", [align_every_piece, align_specials_as_o])
def test_first_subtoken_check_rejects_wrong_implementations(wrong, capsys):
    assert not passes(labels.check_first_subtoken_alignment, wrong, capsys)
    assert "differs" in capsys.readouterr().out


def test_first_subtoken_cases_cover_the_hard_parts():
    cases = labels.word_label_cases()
    assert any(len(w) != len(set(w)) for w, _ in cases)            # some word cut into pieces
    assert any(None not in w for w, _ in cases) and any(None in w for w, _ in cases)
    assert labels.word_label_cases() == cases                       # seeded


def test_first_subtoken_check_says_when_there_is_no_code(capsys):
    def todo(word_ids, word_tags):
        raise NotImplementedError
    assert not passes(labels.check_first_subtoken_alignment, todo, capsys)
    assert capsys.readouterr().out.startswith("📝")


# --- 05b, Exercise 5b.3: completion labels from offsets, written by the learner -----------------------

def completion_right(input_ids, offsets, prompt_length):
    return [t if end > prompt_length else X for t, (start, end) in zip(input_ids, offsets)]


def completion_by_start(input_ids, offsets, prompt_length):    # drops the token that straddles the join
    return [t if start >= prompt_length else X for t, (start, end) in zip(input_ids, offsets)]


def completion_off_by_one(input_ids, offsets, prompt_length):  # trains the prompt's last token
    return [t if end >= prompt_length else X for t, (start, end) in zip(input_ids, offsets)]


def test_completion_check_accepts_a_right_implementation(capsys):
    assert passes(cf.check_completion_labels, completion_right, capsys)
    assert last_line(capsys).startswith("✅")


@pytest.mark.parametrize("wrong", [completion_by_start, completion_off_by_one])
def test_completion_check_rejects_wrong_implementations(wrong, capsys):
    assert not passes(cf.check_completion_labels, wrong, capsys)
    assert "differs" in capsys.readouterr().out


def test_completion_labels_on_a_hand_worked_case():
    # "Answer: Paris" with the prompt "Answer: " (8 characters); the token " P" spans 7..9 and straddles the join.
    offsets = [(0, 6), (6, 7), (7, 9), (9, 11), (11, 13)]
    assert cf.completion_labels([1, 2, 3, 4, 5], offsets, 8) == [X, X, 3, 4, 5]
    straddling = sum(any(a < p < b for a, b in offs) for _, offs, p in cf.completion_label_cases())
    assert straddling >= 20                                        # the straddling case is common in the cases


# --- value exercises: right answers by hand, common slips explained -----------------------------------

def test_multi_hot_check(capsys):
    assert passes(labels.check_multi_hot, [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 1]], capsys)
    # alphabetical columns: entertainment, finance, sports, tech
    assert not passes(labels.check_multi_hot, [[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 0, 1]], capsys)
    assert "alphabetical" in last_line(capsys)


def test_all_subtokens_check(capsys):
    assert passes(labels.check_all_subtokens_labels, [X, 1, 5, 6, 6, 6, 0, 0, X], capsys)
    assert not passes(labels.check_all_subtokens_labels, [X, 1, 5, X, X, 6, 0, X, X], capsys)
    assert "first-subtoken" in last_line(capsys)
    assert not passes(labels.check_all_subtokens_labels, [X, 1, 5, 5, 5, 6, 0, 0, X], capsys)
    assert "begin three times" in last_line(capsys)


# One repair per record makes it valid: so each record has exactly one error, whatever order the validator checks.
REPAIRS = [
    lambda r: r,
    lambda r: {"messages": [r["messages"][0]] + r["messages"][2:]},
    lambda r: {k: v for k, v in r.items() if k != "sytem"},
    lambda r: {"messages": r["messages"][:2] + [{"role": "assistant", "content": "4"}]},
    lambda r: {"messages": [r["messages"][0], {"role": "assistant", "content": "4"}]},
    lambda r: {"messages": r["messages"][1:]},
]


def test_each_exercise_record_has_exactly_one_error():
    for record, repair in zip(cf.EXERCISE_RECORDS, REPAIRS, strict=True):
        cf.parse_record(repair(record))


def test_rejection_kinds_check(capsys):
    right = [None, "role_order", "unknown_key", "empty_turn", "wrong_type", "role_order"]
    assert passes(cf.check_rejection_kinds, right, capsys)
    assert not passes(cf.check_rejection_kinds, [None, "role_order", "unknown_key", "missing_assistant", "wrong_type",
                                                 "role_order"], capsys)
    assert "its text is the problem" in last_line(capsys)
    assert not passes(cf.check_rejection_kinds, None, capsys)
    assert last_line(capsys).startswith("📝")


def test_trained_token_count_check(capsys):
    tok = load_course_tokenizer()
    # by hand: each reply's own tokens plus one <|im_end|>
    replies = [m["content"] for m in cf.EXERCISE_CHAT if m["role"] == "assistant"]
    right = sum(len(tok(r, add_special_tokens=False)["input_ids"]) + 1 for r in replies)
    assert passes(cf.check_trained_token_count, right, capsys)
    assert not passes(cf.check_trained_token_count, right - len(replies), capsys)
    assert "end-of-turn" in last_line(capsys)
    assert not passes(cf.check_trained_token_count, right + len(replies), capsys)
    assert "newline" in last_line(capsys)


def test_last_turn_check(capsys):
    assert passes(cf.check_last_turn_text, " ABC</s>", capsys)     # by hand from Mistral's template: " " + reply + "</s>"
    assert not passes(cf.check_last_turn_text, "ABC</s>", capsys)
    assert "space" in last_line(capsys)
