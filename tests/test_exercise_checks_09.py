"""Exercise checks of notebook 09: right answers pass, known slips are recognised, wrong code is caught.

Expected values are worked out here by hand, and the reference LoRA forward is checked against PEFT's own LoRA layer,
not against the formula the check uses."""

import peft
import pytest
import torch
import torch.nn.functional as F

from course_utils import lora


def said(capsys, check, *args):
    assert check(*args) is None          # a returned value would show as cell output
    return capsys.readouterr().out


# --- Exercise 9.1: LoRA parameters of rank 16 on q, k, v, o of one Qwen2.5-0.5B layer ---------------------------
# q, o: 896 x 896 -> 16 * 1792 = 28,672 each; k, v: 128 x 896 -> 16 * 1024 = 16,384 each.
RIGHT = 2 * 28_672 + 2 * 16_384          # 90,112


def test_lora_count_right_and_empty(capsys):
    assert RIGHT == 90_112
    assert said(capsys, lora.check_lora_count, None).startswith("📝 No answer yet")
    assert said(capsys, lora.check_lora_count, RIGHT).startswith("✅")


@pytest.mark.parametrize("wrong, words", [
    (2 * 896 * 896 + 2 * 128 * 896, "full matrices"),          # 1,835,008: every weight
    (16 * 896 * 4, "only A"),                                  # 57,344: A of each matrix
    (16 * (896 + 128 + 128 + 896), "only B"),                  # 32,768: B of each matrix
    (4 * 16 * 2 * 896, "128 x 896"),                           # 114,688: k and v taken as square
    (RIGHT + 896 + 128 + 128, "no bias"),                      # 91,264: q, k, v biases added
    (28_672 + 16_384, "q and v only"),                         # 45,056: the LoRA paper's choice
    (24 * RIGHT, "ONE layer"),                                 # all 24 layers
])
def test_lora_count_recognises_slips(capsys, wrong, words):
    out = said(capsys, lora.check_lora_count, wrong)
    assert out.startswith("❌") and words in out


def test_lora_count_hints_go_from_nudge_to_method(capsys):
    first = said(capsys, lora.check_lora_count, 12_345)
    assert "Hint 1 of 3" in first and "d_in + d_out" not in first and "A and B" not in first
    assert "Hint 2 of 3" in said(capsys, lora.check_lora_count, 12_345)
    assert "r * (d_in + d_out)" in said(capsys, lora.check_lora_count, 12_345)


# --- Exercise 9.3: lora_forward(x, W, A, B, alpha, r), written by the learner ---------------------------------

def test_reference_forward_equals_peft_layer():
    """The package's reference against PEFT's LoRA layer (independent code) on the exercise's cases."""
    for x, W, A, B, alpha, r in lora.lora_forward_cases():
        net = torch.nn.Sequential(torch.nn.Linear(W.shape[1], W.shape[0], bias=False))
        net = peft.get_peft_model(net, peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=["0"]))
        layer = net.base_model.model[0]
        with torch.no_grad():
            layer.base_layer.weight.copy_(W)
            layer.lora_A["default"].weight.copy_(A)
            layer.lora_B["default"].weight.copy_(B)
            assert torch.allclose(net(x), lora.lora_forward(x, W, A, B, alpha, r), atol=1e-5)


def right_merged(x, W, A, B, alpha, r):
    return F.linear(x, W + alpha / r * torch.einsum("or,ri->oi", B, A))


def right_unmerged(x, W, A, B, alpha, r):
    return F.linear(x, W) + (alpha / r) * F.linear(F.linear(x, A), B)


def stub(x, W, A, B, alpha, r):
    raise NotImplementedError


@pytest.mark.parametrize("function", [right_merged, right_unmerged])
def test_lora_forward_accepts_right_code(capsys, function):
    assert "✅ Correct on all 12" in said(capsys, lora.check_lora_forward_code, function)


@pytest.mark.parametrize("function", [
    lambda x, W, A, B, alpha, r: x @ W.T + (x @ A.T) @ B.T,                      # scaling forgotten
    lambda x, W, A, B, alpha, r: x @ W.T + (r / alpha) * (x @ A.T) @ B.T,        # scaling upside down
    lambda x, W, A, B, alpha, r: (alpha / r) * (x @ A.T) @ B.T,                  # frozen path dropped
    lambda x, W, A, B, alpha, r: x @ W.T,                                        # adapter dropped
])
def test_lora_forward_rejects_wrong_code(capsys, function):
    out = said(capsys, lora.check_lora_forward_code, function)
    assert "❌ Case" in out and "differs" in out and "Hint 1 of 3" in out


def test_lora_forward_reports_shape_errors_and_stubs(capsys):
    out = said(capsys, lora.check_lora_forward_code, lambda x, W, A, B, alpha, r: x @ W + (alpha / r) * (x @ A) @ B)
    assert "raised RuntimeError" in out                                           # W not transposed (d_out != d_in)
    assert said(capsys, lora.check_lora_forward_code, stub).startswith("📝 No code yet")
    assert said(capsys, lora.check_lora_forward_code, None).startswith("📝 No code yet")
