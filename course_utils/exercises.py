"""Instant feedback for exercises.

Each topic module defines ``check_*`` functions that compute the expected answer themselves and
report through one of the functions here:

* :func:`check_answer` for an exercise whose answer is a value.  With no answer yet it says only
  what to do; a wrong answer gets the explanation of a recognised common mistake ("you averaged
  in the ignored position"), or else the next of a few tiered hints, from a nudge to the method.
* :func:`check_code` for a "write the code" exercise: the learner's function is run on generated
  inputs beside the package's version, and the first input where they differ is shown.
* :func:`feedback` is the older one-line form, kept for checks that have a single hint.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable, Iterable, Sequence

NOT_ANSWERED = "📝 No answer yet: set `answer` above and run the cell again."
_attempts: dict[str, int] = defaultdict(int)


def feedback(ok: bool, hint: str) -> None:
    """Print one line: a tick when right, else the hint.  (Returns None, so a notebook cell
    that ends with a check shows only the line.)"""
    print("✅ Correct!" if ok else f"❌ Not yet. Hint: {hint}")


def same_value(answer: Any, expected: Any, rel: float = 1e-4, abs_tol: float = 1e-6) -> bool:
    """Equality that forgives float rounding (also inside lists and tuples) but not types of mistake."""
    if isinstance(expected, float) or isinstance(answer, float):
        try:
            return math.isclose(float(answer), float(expected), rel_tol=rel, abs_tol=abs_tol)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, (list, tuple)) and isinstance(answer, (list, tuple)):
        return len(answer) == len(expected) and all(same_value(a, e, rel, abs_tol) for a, e in zip(answer, expected))
    try:
        return bool(answer == expected)
    except Exception:  # e.g. comparing tensors of different shapes
        return False


def check_answer(answer: Any, expected: Any, *, key: str, hints: Sequence[str],
                 mistakes: Iterable[tuple[Any, str]] = (), equal: Callable[[Any, Any], bool] = same_value,
                 why: str = "") -> bool:
    """Check a value answer and print one line of feedback.  Returns whether it was right.

    ``hints`` go from a nudge to the method; attempt *k* shows hint *k* (the last one repeats).
    ``mistakes`` pairs a wrong answer that learners often give with what went wrong; it is
    recognised before any hint is shown.  ``key`` names the exercise, so attempts are counted
    per exercise.  ``why`` is printed after a correct answer, to consolidate the idea."""
    if answer is None or answer is Ellipsis:
        print(NOT_ANSWERED)
        return False
    if equal(answer, expected):
        print("✅ Correct!" + (f" {why}" if why else ""))
        _attempts.pop(key, None)
        return True
    for wrong, explanation in mistakes:
        if equal(answer, wrong):
            print(f"❌ Not yet: {explanation}")
            return False
    _attempts[key] += 1
    k = min(_attempts[key], len(hints))
    print(f"❌ Not yet (attempt {_attempts[key]}). Hint {k} of {len(hints)}: {hints[k - 1]}")
    return False


def check_code(function: Callable | None, reference: Callable, cases: Iterable[tuple], *,
               equal: Callable[[Any, Any], bool] = same_value, describe: Callable[[tuple], str] = repr) -> bool:
    """Run the learner's ``function`` and the package's ``reference`` on every case (a tuple of
    arguments) and report the first disagreement.  Returns whether every case agreed."""
    if function is None:
        print("📝 No code yet: write the function above and run the cell again.")
        return False
    n = 0
    for args in cases:
        n += 1
        expected = reference(*args)
        try:
            got = function(*args)
        except NotImplementedError:
            print("📝 No code yet: replace `raise NotImplementedError` with your implementation.")
            return False
        except Exception as error:  # the learner's bug, shown with the input that triggered it
            print(f"❌ Case {n} raised {type(error).__name__}: {error}\n   input: {describe(args)}")
            return False
        if not equal(got, expected):
            print(f"❌ Case {n} differs.\n   input:    {describe(args)}\n   expected: {expected!r}\n   got:      {got!r}")
            return False
    print(f"✅ Correct on all {n} generated cases!")
    return True


def check_code_with_hints(function: Callable | None, reference: Callable, cases: Iterable[tuple], *, key: str,
                          hints: Sequence[str], **options) -> bool:
    """:func:`check_code`, then, when the learner's code ran but disagreed, the next of a few tiered hints
    (attempt *k* shows hint *k*), as :func:`check_answer` does for values.  (Added for notebook 01.)"""
    wrote_code = [function is not None]

    def run(*args):
        try:
            return function(*args)
        except NotImplementedError:
            wrote_code[0] = False
            raise

    ok = check_code(None if function is None else run, reference, cases, **options)
    if ok:
        _attempts.pop(key, None)
    elif wrote_code[0]:
        _attempts[key] += 1
        k = min(_attempts[key], len(hints))
        print(f"   Hint {k} of {len(hints)}: {hints[k - 1]}")
    return ok

def check_clean_finance_zh_count(answer) -> None:
    """Exercise 0.1: how many Chinese rows of ``news_cls`` are labelled ``finance`` and carry no flag?"""
    from course_utils.data import load_records
    rows = load_records("news_cls")
    zh_finance = [r for r in rows if r["lang"] == "zh" and r["label"] == "finance"]
    clean_finance = [r for r in rows if r["label"] == "finance" and not r["flags"]]
    check_answer(answer, sum(not r["flags"] for r in zh_finance), key="0.1",
                 hints=["Three conditions must hold for a row to count: its language, its label and its flags.",
                        "Filter load_records('news_cls') on lang == 'zh', label == 'finance' and an empty flags list."],
                 mistakes=[(len(zh_finance), "that counts the flagged rows too (duplicates, HTML, wrong labels...): "
                                             "keep only rows whose flags list is empty."),
                           (len(clean_finance), "that counts both languages: keep only lang == 'zh'.")])


def clean_label_counts_reference(rows, lang: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        if row["lang"] == lang and not row["flags"]:
            counts[row["label"]] = counts.get(row["label"], 0) + 1
    return counts


def clean_label_count_cases(n: int = 20, seed: int = 0) -> list[tuple[list[dict], str]]:
    """Random samples of news_cls (some with no row of the language, some with only flagged rows)."""
    import random

    from course_utils.data import load_records
    rows = load_records("news_cls")
    rng = random.Random(seed)
    cases = [([], "zh"), ([r for r in rows if r["flags"]][:30], "en")]
    while len(cases) < n:
        cases.append((rng.sample(rows, rng.randint(1, 200)), rng.choice(["zh", "en"])))
    return cases


def check_clean_label_counts_code(function) -> None:
    """Exercise 0.2 (write the code): ``function(rows, lang)`` returns {label: number of rows in ``lang``
    with no flags}, leaving out labels with no such row."""
    check_code(function, clean_label_counts_reference, clean_label_count_cases(),
               describe=lambda args: f"{len(args[0])} rows, lang={args[1]!r}")
