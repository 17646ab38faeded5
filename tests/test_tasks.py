"""Verifiable tasks: hand-computed answers, and the property the shared-input tasks exist for.

On the tasks of ``tasks.FAMILIES`` the input is the same for every task of a family, so only the
instruction can say which answer is wanted.  The tests pin hand-worked answers, check that every
family really shares its input and really has different answers on it, and that the paraphrase
pool neither repeats a trained phrasing nor leaks the held-out one.
"""

import random
import re
import string

import pytest

from course_utils import tasks

SLOTS = re.compile(r"\{\w+\}")


@pytest.mark.parametrize(("task", "lang", "params", "expected"), [
    ("count", "en", {"s": "abcde", "c": "z"}, "5"),
    ("first", "en", {"s": "qwer", "c": "z"}, "q"),
    ("last", "zh", {"s": "qwer", "c": "z"}, "r"),
    ("contains", "en", {"s": "qwer", "c": "w"}, "yes"),
    ("contains", "en", {"s": "qwer", "c": "z"}, "no"),
    ("contains", "zh", {"s": "qwer", "c": "e"}, "是"),
    ("contains", "zh", {"s": "qwer", "c": "a"}, "否"),
    # unit 0 is km / metres (1000): the input number is 3000; as metres it is 3 km,
    # as km it is 3,000,000 metres
    ("to_larger", "en", {"unit": 0, "k": 3}, "3"),
    ("to_smaller", "en", {"unit": 0, "k": 3}, "3000000"),
    # unit 2 is hours / minutes (60): 7 * 60 = 420; as hours that is 25,200 minutes
    ("to_smaller", "zh", {"unit": 2, "k": 7}, "25200"),
    ("to_larger", "zh", {"unit": 2, "k": 7}, "7"),
    ("name", "en", {"name": "Emma", "age": 39, "city": "Dublin"}, "Emma"),
    ("age", "zh", {"name": "李娜", "age": 41, "city": "成都"}, "41"),
    ("city", "en", {"name": "Emma", "age": 39, "city": "Dublin"}, "Dublin"),
])
def test_hand_computed_answers(task, lang, params, expected):
    assert tasks.solve(task, lang, params) == expected


def test_quantity_and_record_inputs_render_as_written():
    assert tasks.render("to_larger", "en", 0, {"unit": 0, "k": 3})[1] == "3000; units: km, metres"
    assert tasks.render("to_smaller", "zh", 1, {"unit": 2, "k": 7})[1] == "420；单位：小时、分钟"
    assert tasks.render("age", "en", 0, {"name": "Emma", "age": 39, "city": "Dublin"})[1] == \
        "Name: Emma; Age: 39; City: Dublin"
    instruction, inp = tasks.render("contains", "en", 0, {"s": "qwer", "c": "w"})
    assert inp == "qwer" and "letter w?" in instruction


@pytest.mark.parametrize("family", sorted(tasks.FAMILIES))
def test_family_members_share_their_input_but_not_their_answers(family):
    rng = random.Random(0)
    differing = 0
    for lang in ("zh", "en"):
        for _ in range(50):
            params = tasks.sample_family_params(family, lang, rng)
            members = tasks.FAMILIES[family]
            inputs = {tasks.render(task, lang, k, params)[1] for task in members for k in (0, 1, 2)}
            assert len(inputs) == 1, "every task and phrasing of a family shows the same input"
            answers = [tasks.solve(task, lang, params) for task in members]
            differing += len(set(answers)) == len(answers)
    # Almost always every task of the family wants a different answer for the same input (a
    # string can start and end with the same letter, a record's fields and a conversion's two answers always differ).
    assert differing >= 80


def test_contains_is_balanced_and_counts_only_lowercase_letters():
    rng = random.Random(3)
    draws = [tasks.sample_family_params("string", "en", rng) for _ in range(2000)]
    share_yes = sum(d["c"] in d["s"] for d in draws) / len(draws)
    assert 0.45 < share_yes < 0.55
    assert all(set(d["s"]) <= set(string.ascii_lowercase) and 3 <= len(d["s"]) <= 6 for d in draws)


@pytest.mark.parametrize("key", sorted(tasks.PARAPHRASES))
def test_paraphrases_keep_the_slots_and_never_use_a_trained_or_held_out_phrasing(key):
    trained, held_out = tasks.TEMPLATES[key][:2], tasks.TEMPLATES[key][2]
    pool = tasks.PARAPHRASES[key]
    assert len(pool) == len(set(pool)) >= 4
    for text in pool:
        assert text not in tasks.TEMPLATES[key]
        assert sorted(SLOTS.findall(text)) == sorted(SLOTS.findall(trained[0]))
    # The held-out frame ("look at ... tell me", "告诉我"; for count, the shipped "length" / "个数")
    # is never in the pool.
    if key[0] == "count":
        frames = ("个数",) if key[1] == "zh" else ("length",)
    else:
        frames = ("告诉我", "看下面") if key[1] == "zh" else ("tell me", "look at")
    assert any(f in held_out.lower() for f in frames)
    assert not any(f in text.lower() for f in frames for text in pool)


def test_every_shared_task_has_three_phrasings_and_a_pool():
    for task in tasks.SHARED_INPUT_TASKS:
        for lang in ("zh", "en"):
            assert len(tasks.TEMPLATES[(task, lang)]) == 3
            assert (task, lang) in tasks.PARAPHRASES


def test_the_shipped_task_list_is_unchanged():
    # sft_alpaca, sft_chat and the course tokenizer's corpus are drawn from TASKS: adding the
    # shared-input tasks must not change them (tests/test_data.py regenerates the files byte for byte).
    assert tasks.TASKS == ["add", "reverse", "upper", "count", "unit", "date", "extract", "sentiment"]
