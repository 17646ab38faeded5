"""Instant feedback for exercises.  Each topic module defines ``check_*`` functions that
compute the expected answer themselves and report through :func:`feedback`."""

from __future__ import annotations


def feedback(ok: bool, hint: str) -> None:
    """Print one line: a tick when right, else the hint.  (Returns None, so a notebook cell
    that ends with a check shows only the line.)"""
    print("✅ Correct!" if ok else f"❌ Not yet. Hint: {hint}")


def check_finance_zh_count(answer) -> None:
    """Notebook 00: how many Chinese rows of ``news_cls`` are labelled ``finance``?"""
    from course_utils.data import load_records
    expected = sum(r["lang"] == "zh" and r["label"] == "finance" for r in load_records("news_cls"))
    feedback(answer == expected, "filter load_records('news_cls') on lang == 'zh' and label == 'finance', then count.")
