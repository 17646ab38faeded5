"""The exercise feedback: what a learner sees with no answer, a right one, a known mistake and a wrong one."""

import pytest

from course_utils import exercises as ex


def run(capsys, *args, **kwargs):
    result = ex.check_answer(*args, **kwargs)
    return result, capsys.readouterr().out.strip()


HINTS = ["nudge", "method"]
MISTAKES = [(0.5, "you averaged in the ignored position")]


def test_no_answer_says_only_what_to_do(capsys):
    ok, out = run(capsys, None, 0.75, key="k", hints=HINTS, mistakes=MISTAKES)
    assert not ok and out == ex.NOT_ANSWERED
    assert "nudge" not in out and "0.75" not in out


def test_right_answer_forgives_rounding_only(capsys):
    assert run(capsys, 0.750001, 0.75, key="k", hints=HINTS)[0]
    assert not run(capsys, 0.76, 0.75, key="k", hints=HINTS)[0]
    assert run(capsys, [1, 2.0000001], [1, 2.0], key="k", hints=HINTS)[0]
    assert not run(capsys, [1, 2], [1, 2, 3], key="k", hints=HINTS)[0]
    assert not run(capsys, "x", 0.75, key="k", hints=HINTS)[0]


def test_known_mistake_is_explained_before_hints(capsys):
    ok, out = run(capsys, 0.5, 0.75, key="k", hints=HINTS, mistakes=MISTAKES)
    assert not ok and "ignored position" in out and "Hint" not in out


def test_hints_are_tiered_per_exercise(capsys):
    outs = [run(capsys, 9, 1, key="a", hints=HINTS)[1] for _ in range(3)]
    assert "Hint 1 of 2: nudge" in outs[0]
    assert "Hint 2 of 2: method" in outs[1] and "Hint 2 of 2: method" in outs[2]
    assert "Hint 1 of 2" in run(capsys, 9, 1, key="b", hints=HINTS)[1]  # another exercise starts over


def reference_mean(xs):
    return sum(xs) / len(xs)


CASES = [([1, 2, 3],), ([4.0],), ([0, 0, 1, 1],)]


def test_check_code_accepts_a_right_implementation(capsys):
    assert ex.check_code(lambda xs: sum(xs) / len(xs), reference_mean, CASES)
    assert "all 3 generated cases" in capsys.readouterr().out


def test_check_code_shows_the_first_failing_case(capsys):
    assert not ex.check_code(lambda xs: sum(xs) / 3, reference_mean, CASES)
    out = capsys.readouterr().out
    assert "Case 2 differs" in out and "[4.0]" in out and "expected: 4.0" in out


def test_check_code_reports_crashes_and_missing_code(capsys):
    assert not ex.check_code(lambda xs: xs[5], reference_mean, CASES)
    assert "raised IndexError" in capsys.readouterr().out

    def todo(xs):
        raise NotImplementedError

    assert not ex.check_code(todo, reference_mean, CASES)
    assert "No code yet" in capsys.readouterr().out
    assert not ex.check_code(None, reference_mean, CASES)


# Notebook 00's exercises, with expected values counted here from the raw JSONL (not through course_utils.data).
def _raw_news():
    import json
    from course_utils.data import DATA_DIR
    return [json.loads(line) for line in (DATA_DIR / "news_cls.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def test_exercise_0_1_answer_and_slips(capsys):
    rows = _raw_news()
    right = sum(r["lang"] == "zh" and r["label"] == "finance" and not r["flags"] for r in rows)
    with_flags = sum(r["lang"] == "zh" and r["label"] == "finance" for r in rows)
    ex.check_clean_finance_zh_count(right)
    assert "Correct" in capsys.readouterr().out
    ex.check_clean_finance_zh_count(with_flags)
    assert "flagged rows too" in capsys.readouterr().out


def test_exercise_0_2_write_the_code(capsys):
    from collections import Counter

    def right(rows, lang):
        return dict(Counter(r["label"] for r in rows if r["lang"] == lang and not r["flags"]))

    def forgets_flags(rows, lang):
        return dict(Counter(r["label"] for r in rows if r["lang"] == lang))

    def lists_every_label(rows, lang):
        counts = dict.fromkeys(["sports", "finance", "tech", "entertainment"], 0)
        counts.update(right(rows, lang))
        return counts

    ex.check_clean_label_counts_code(right)
    assert "all 20 generated cases" in capsys.readouterr().out
    for wrong in (forgets_flags, lists_every_label):
        ex.check_clean_label_counts_code(wrong)
        assert "differs" in capsys.readouterr().out
