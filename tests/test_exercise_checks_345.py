"""The exercise checks of notebooks 03, 04 and 05: each accepts a right answer, recognises the common
wrong ones, and gives hints in tiers; each "write the code" check accepts a right implementation and
rejects plausible wrong ones.

Right answers and right implementations are written here from the formulas, independently of the
package code the checks use; the wrong ones are the slips the checks are meant to catch.
"""

import math

import pytest
import torch

from course_utils import attention as A
from course_utils import exercises
from course_utils import losses as L
from course_utils import optim as O


def out(capsys):
    return capsys.readouterr().out.strip()


# --- value exercises: None, right, recognised mistakes, tiered hints ---------------------------------

def test_no_answer_prints_only_what_to_do(capsys):
    for check in (lambda: L.check_cross_entropy([1.0, 2.0, 0.5], 2, None),
                  lambda: O.check_adam_first_step(1.0, 0.5, 0.1, None),
                  lambda: A.check_attention_weight([[1.0, 0.0], [2.0, 1.0]], [[1.0, 0.0], [2.0, 1.0]], 0, 1, None)):
        assert check() is False
        text = out(capsys)
        assert text == exercises.NOT_ANSWERED and "Hint" not in text


def test_cross_entropy_exercise(capsys):
    p = [math.exp(z) for z in (1.0, 2.0, 0.5)]
    right = -math.log(p[2] / sum(p))                      # 1.7014, by the formula
    assert L.check_cross_entropy([1.0, 2.0, 0.5], 2, round(right, 4))
    assert not L.check_cross_entropy([1.0, 2.0, 0.5], 2, -right)
    assert "sign" in out(capsys)
    assert not L.check_cross_entropy([1.0, 2.0, 0.5], 2, -math.log10(p[2] / sum(p)))
    assert "base 10" in out(capsys)
    assert not L.check_cross_entropy([1.0, 2.0, 0.5], 2, p[2] / sum(p))
    assert "probability of the true class" in out(capsys)


def test_token_mean_exercise_recognises_the_ignored_position(capsys):
    logits = [[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]
    first = math.log(math.exp(2) + 2) - 2                 # label 0 at position 0
    third = math.log(3)                                   # label 2 at position 2, uniform logits
    assert L.check_token_mean(logits, [[0, -100, 2]], (first + third) / 2)
    assert not L.check_token_mean(logits, [[0, -100, 2]], (first + third) / 3)
    assert "you averaged in the ignored position" in out(capsys)


def test_accumulation_divisor_mistakes(capsys):
    labels = [[[3, 4, -100, -100]], [[-100, 5, 6, 7], [1, -100, -100, -100]], [[2, 2, 2, 2]]]
    assert L.check_accumulation_divisor(labels, 10)
    assert L.check_accumulation_divisor(labels, torch.tensor(10))          # e.g. (labels != -100).sum()
    assert not L.check_accumulation_divisor(labels, True)
    assert not L.check_accumulation_divisor(labels, 16) and "-100 too" in out(capsys)
    assert not L.check_accumulation_divisor(labels, 3) and "naive" in out(capsys)
    assert not L.check_accumulation_divisor(labels, 4) and "sequences" in out(capsys)


def test_bce_exercise(capsys):
    assert L.check_bce(0.3, 0, -math.log(0.7))
    assert not L.check_bce(0.3, 0, -math.log(0.3))
    assert "other label" in out(capsys)


def test_hints_come_in_tiers_and_the_first_does_not_give_the_method(capsys):
    for attempt in range(1, 4):
        O.check_adam_first_step(1.0, 0.5, 0.1, 0.123)       # a wrong value that is no known mistake
        text = out(capsys)
        assert f"Hint {attempt} of 3" in text
        if attempt == 1:
            assert "|g|" not in text and "sign" not in text
    assert "|g|" in text                                     # the last hint is the method
    O.check_adam_first_step(1.0, 0.5, 0.1, 0.123)
    assert "Hint 3 of 3" in out(capsys)                      # and it repeats


def test_adam_first_step_mistakes(capsys):
    right = 1.0 - 0.1 * 0.5 / (0.5 + 1e-8)                    # m̂ = g, v̂ = g²
    assert O.check_adam_first_step(1.0, 0.5, 0.1, right)
    no_correction = 1.0 - 0.1 * (0.1 * 0.5) / (math.sqrt(0.001 * 0.25) + 1e-8)
    assert not O.check_adam_first_step(1.0, 0.5, 0.1, no_correction) and "bias correction" in out(capsys)
    assert not O.check_adam_first_step(1.0, 0.5, 0.1, 1.0 - 0.1 * 0.5) and "SGD" in out(capsys)
    assert not O.check_adam_first_step(1.0, 0.5, 0.1, 1.1) and "against" in out(capsys)


def test_warmup_and_clip_mistakes(capsys):
    right = 3e-4 * (100 - 40) / (100 - 8)
    assert O.check_warmup_lr(40, 3e-4, 8, 100, right)
    assert not O.check_warmup_lr(40, 3e-4, 8, 100, 3e-4 * 60 / 100) and "total - warmup" in out(capsys)
    assert not O.check_warmup_lr(40, 3e-4, 8, 100, 3e-4 * 40 / 8) and "warming up" in out(capsys)
    grads = [[3.0, 0.0], [[0.0, 4.0], [0.0, 0.0]]]
    assert O.check_clip_factor(grads, 2.0, 0.4)
    assert not O.check_clip_factor(grads, 2.0, 2.0 / 7) and "added the tensors' norms" in out(capsys)
    assert not O.check_clip_factor(grads, 2.0, 5.0) and "global norm itself" in out(capsys)


def test_mask_exercise(capsys):
    am = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    right = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    for b in range(2):
        for i in range(4):
            for j in range(i + 1):
                right[b, 0, i, j] = bool(am[b, j])
    assert A.check_causal_padding_mask(am, right)
    assert not A.check_causal_padding_mask(am, right.long()) and "dtype" in out(capsys)
    causal = torch.tril(torch.ones(4, 4, dtype=torch.bool)).expand(2, 1, 4, 4)
    assert not A.check_causal_padding_mask(am, causal) and "causal mask alone" in out(capsys)
    rows = torch.tril(torch.ones(4, 4, dtype=torch.bool)) & am.bool()[:, None, :, None]
    assert not A.check_causal_padding_mask(am, rows) and "QUERIES" in out(capsys)


def test_attention_weight_mistakes(capsys):
    q = [[1.0, 0.0], [2.0, 1.0]]
    s0, s1 = 1.0 / math.sqrt(2), 2.0 / math.sqrt(2)          # q0·k0 and q0·k1, scaled
    assert A.check_attention_weight(q, q, 0, 1, math.exp(s1) / (math.exp(s0) + math.exp(s1)))
    assert not A.check_attention_weight(q, q, 0, 1, math.exp(2) / (math.e + math.exp(2))) and "sqrt(d_k)" in out(capsys)


# --- write-the-code exercises ------------------------------------------------------------------------

def masked_mean_right(logits, labels):
    log_p = logits - torch.logsumexp(logits, -1, keepdim=True)
    keep = labels != -100
    picked = log_p.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return -(picked * keep).sum() / keep.sum()


def masked_mean_zeros_counted(logits, labels):            # averages in the ignored positions as zeros
    log_p = logits - torch.logsumexp(logits, -1, keepdim=True)
    keep = labels != -100
    return -(log_p.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * keep).mean()


def masked_mean_per_sequence(logits, labels):             # sequence mean instead of token mean
    log_p = logits - torch.logsumexp(logits, -1, keepdim=True)
    keep = labels != -100
    per_row = -(log_p.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * keep).sum(-1)
    counted = keep.sum(-1)
    return (per_row[counted > 0] / counted[counted > 0]).mean()


def masked_mean_no_mask(logits, labels):                  # -100 turned into token 0 and trained
    log_p = logits - torch.logsumexp(logits, -1, keepdim=True)
    return -log_p.gather(-1, labels.clamp(min=0)[..., None]).mean()


def test_masked_token_mean_check(capsys):
    assert L.check_masked_token_mean(masked_mean_right)
    assert out(capsys).startswith("✅ Correct on all 40 generated cases")


@pytest.mark.parametrize("wrong", [masked_mean_zeros_counted, masked_mean_per_sequence, masked_mean_no_mask])
def test_masked_token_mean_check_rejects(wrong, capsys):
    assert not L.check_masked_token_mean(wrong)
    assert "differs" in out(capsys)


def test_masked_token_mean_cases_would_separate_token_and_sequence_means():
    cases = L.masked_token_mean_cases()
    assert cases[0][1].tolist() == L.masked_token_mean_cases()[0][1].tolist()     # seeded
    assert all((labels != -100).any() for _, labels in cases)
    assert any(len(set((labels != -100).sum(-1).tolist())) > 1 for _, labels in cases)


def adam_right(theta, grad, m, v, t, lr, betas, eps):
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad ** 2
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return theta - lr * m_hat / (v_hat.sqrt() + eps), m, v


def adam_no_correction(theta, grad, m, v, t, lr, betas, eps):
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad ** 2
    return theta - lr * m / (v.sqrt() + eps), m, v


def adam_correction_off_by_one(theta, grad, m, v, t, lr, betas, eps):   # corrects with t + 1
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad ** 2
    t = t + 1
    return theta - lr * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + eps), m, v


def adam_raw_m(theta, grad, m, v, t, lr, betas, eps):   # steps with m, not m̂
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad ** 2
    return theta - lr * m / ((v / (1 - b2 ** t)).sqrt() + eps), m, v


def test_adam_step_reference_matches_torch():
    theta = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    p = theta.clone().requires_grad_()
    opt = torch.optim.Adam([p], lr=0.05, betas=(0.8, 0.99))
    m = v = torch.zeros(3, dtype=torch.float64)
    ours = theta
    for t, g in enumerate([torch.tensor([1.0, -2.0, 0.1]), torch.tensor([0.3, 0.2, -5.0]), torch.tensor([-1.0, 1.0, 1.0])], 1):
        p.grad = g.double().clone()
        opt.step()
        ours, m, v = O.adam_step(ours, g.double(), m, v, t, lr=0.05, betas=(0.8, 0.99))
        assert torch.allclose(ours, p.detach(), atol=1e-12)


def test_adam_step_check(capsys):
    assert O.check_adam_step(adam_right)
    assert out(capsys).startswith("✅ Correct on all 30 generated cases")


@pytest.mark.parametrize("wrong", [adam_no_correction, adam_correction_off_by_one, adam_raw_m])
def test_adam_step_check_rejects(wrong, capsys):
    assert not O.check_adam_step(wrong)
    assert "differs" in out(capsys)


def test_adam_step_check_says_when_there_is_no_code(capsys):
    def todo(*args):
        raise NotImplementedError
    assert not O.check_adam_step(todo)
    assert out(capsys).startswith("📝")


def block_causal_right(segment_ids):
    n = len(segment_ids)
    return torch.tensor([[bool(j <= i and segment_ids[i] == segment_ids[j]) for j in range(n)] for i in range(n)])


def block_causal_causal_only(segment_ids):            # forgets the example boundaries
    n = len(segment_ids)
    return torch.ones(n, n, dtype=torch.bool).tril()


def block_causal_no_causal(segment_ids):              # same example, but sees its own future
    return segment_ids[:, None] == segment_ids[None, :]


def block_causal_strict(segment_ids):                 # tril(-1): a token cannot see itself
    return (segment_ids[:, None] == segment_ids[None, :]) & torch.ones(len(segment_ids), len(segment_ids), dtype=torch.bool).tril(-1)


def test_block_causal_check(capsys):
    assert A.check_block_causal_mask(block_causal_right)
    assert out(capsys).startswith("✅ Correct on all 40 generated cases")


@pytest.mark.parametrize("wrong", [block_causal_causal_only, block_causal_no_causal, block_causal_strict])
def test_block_causal_check_rejects(wrong, capsys):
    assert not A.check_block_causal_mask(wrong)
    assert "differs" in out(capsys)


def test_packed_row_cases_hold_several_examples():
    cases = A.packed_row_cases()
    assert any(len(set(seg.tolist())) >= 3 for (seg,) in cases)
    assert any(len(set(seg.tolist())) == 1 for (seg,) in cases)
