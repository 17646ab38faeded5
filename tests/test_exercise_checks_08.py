"""The exercise checks of notebook 08: each value check accepts the right answer, recognises the common
wrong ones and gives hints in tiers; the "write the code" check accepts a right implementation and
rejects plausible wrong ones.  Every check returns None, so a notebook cell ending with it shows only
the printed line.

Right answers are worked out here by hand (see notebooks/solutions/08_sft_causal_lm.md), not with the
package functions the checks use.
"""

import pytest

from course_utils import exercises, sft


def out(capsys):
    return capsys.readouterr().out.strip()


CHECKS = (sft.check_position_ids, sft.check_dynamic_padding, sft.check_packed_rows)


@pytest.mark.parametrize("check", CHECKS)
def test_no_answer_prints_only_what_to_do(check, capsys):
    assert check(None) is None
    assert out(capsys) == exercises.NOT_ANSWERED


def test_position_ids(capsys):
    assert sft.check_position_ids([0, 1, 2, 0, 1, 0, 1, 2, 3, 0]) is None
    assert out(capsys).startswith("✅")
    import torch
    sft.check_position_ids(torch.tensor([0, 1, 2, 0, 1, 0, 1, 2, 3, 0]))   # a tensor answer works too
    assert out(capsys).startswith("✅")
    for wrong, says in ((list(range(10)), "counted across the whole row"),
                        ([0, 1, 2, 0, 1, 0, 1, 2, 3, 4], "padding position continued"),
                        ([1, 2, 3, 1, 2, 1, 2, 3, 4, 1], "from 0, not 1"),
                        ([0, 1, 2, 0, 1, 0, 1, 2, 3], "9 positions")):
        sft.check_position_ids(wrong)
        assert says in out(capsys)


def test_position_ids_hints_come_in_tiers_and_the_first_is_only_a_nudge(capsys):
    texts = []
    for _ in range(4):
        sft.check_position_ids([0] * 10)
        texts.append(out(capsys))
    assert [t.split("Hint ")[1][:6] for t in texts] == ["1 of 3", "2 of 3", "3 of 3", "3 of 3"]
    assert "range" not in texts[0] and "0" not in texts[0].split("Hint 1 of 3:")[1]


def test_dynamic_padding(capsys):
    # pairs in order (9,3) (8,2) (7,7) (4,6): 18 + 16 + 14 + 12 = 60 positions, 46 real tokens
    assert sft.check_dynamic_padding(round(1 - 46 / 60, 3)) is None
    assert out(capsys).startswith("✅")
    for wrong, says in ((1 - 46 / 72, "longest of all"),            # all padded to 9
                        (1 - 46 / 50, "sorted the lengths"),         # (9,8) (7,7) (6,4) (3,2)
                        (14, "number of padding positions"),
                        (14 / 46, "divided the padding by the real tokens"),
                        (46 / 60, "share of real tokens")):
        sft.check_dynamic_padding(wrong)
        assert says in out(capsys)
    sft.check_dynamic_padding(0.5)
    text = out(capsys)
    assert "Hint 1 of 3" in text and "max" not in text and "2 x" not in text
    sft.check_dynamic_padding("a lot")
    assert "Hint 2 of 3" in out(capsys)


def test_packed_rows(capsys):
    assert sft.check_packed_rows(5) is None          # worked by hand in the solutions table
    assert out(capsys).startswith("✅")
    sft.check_packed_rows(4)                          # ceil(46 / 12)
    assert "lower bound" in out(capsys)
    sft.check_packed_rows(8)
    assert "one example per row" in out(capsys)
    sft.check_packed_rows(6)
    assert "Hint 1 of 3" in out(capsys)


# --- write the code: position_ids of a packed row --------------------------------------------------

def right(seq_lengths, row_length):
    ids = []
    for n in seq_lengths:
        ids.extend(range(n))
    return ids + list(range(row_length - len(ids)))


def no_restart(seq_lengths, row_length):
    return list(range(row_length))


def padding_continues(seq_lengths, row_length):
    ids = right(seq_lengths, row_length)[:sum(seq_lengths)]
    last = ids[-1] if ids else -1
    return ids + [last + 1 + k for k in range(row_length - len(ids))]


def padding_as_zero(seq_lengths, row_length):
    ids = right(seq_lengths, row_length)[:sum(seq_lengths)]
    return ids + [0] * (row_length - len(ids))


def forgets_padding(seq_lengths, row_length):
    return right(seq_lengths, sum(seq_lengths))


def test_reference_matches_hand_worked_rows():
    assert sft.packed_position_ids([3, 2, 4], 10) == [0, 1, 2, 0, 1, 0, 1, 2, 3, 0]
    assert sft.packed_position_ids([2, 1], 6) == [0, 1, 0, 0, 1, 2]


def test_position_ids_code_accepts_a_right_implementation(capsys):
    assert sft.check_position_ids_code(right) is None
    assert out(capsys) == f"✅ Correct on all {len(sft.packed_position_cases())} generated cases!"


@pytest.mark.parametrize("wrong", [no_restart, padding_continues, padding_as_zero, forgets_padding])
def test_position_ids_code_rejects_plausible_wrong_implementations(wrong, capsys):
    sft.check_position_ids_code(wrong)
    text = out(capsys)
    assert text.startswith("❌") and "Hint 1 of 3" in text


def test_position_ids_code_stub_and_none(capsys):
    def stub(seq_lengths, row_length):
        raise NotImplementedError
    sft.check_position_ids_code(stub)
    assert out(capsys).startswith("📝 No code yet")
    sft.check_position_ids_code(None)
    assert out(capsys).startswith("📝 No code yet")


def test_code_cases_do_not_show_exercise_8_1s_answer():
    assert ([3, 2, 4], 10) not in sft.packed_position_cases()
