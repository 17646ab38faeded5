"""Hand-written scaled dot-product attention against F.scaled_dot_product_attention."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import attention as A

SHAPES = [(4, 4, 4, 4), (2, 5, 5, 8, 3), (2, 3, 6, 7, 16)]  # (..., L, S, d_k, d_v) with optional batch/heads


def qkv(shape, seed):
    *lead, q_len, k_len, d_k, d_v = shape
    g = torch.Generator().manual_seed(seed)
    make = lambda *s: torch.randn(*lead, *s, generator=g, dtype=torch.float64)
    return make(q_len, d_k), make(k_len, d_k), make(k_len, d_v)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_unmasked_matches_torch(shape, seed):
    q, k, v = qkv(shape, seed)
    assert torch.allclose(A.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-12)
    steps = A.attention_steps(q, k, v)
    assert torch.allclose(steps.weights.sum(-1), torch.ones(steps.weights.shape[:-1], dtype=torch.float64))
    assert torch.allclose(steps.scaled, steps.scores / math.sqrt(q.shape[-1]))


@pytest.mark.parametrize("shape", SHAPES)
def test_causal_matches_torch(shape):
    q, k, v = qkv(shape, 2)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(A.scaled_dot_product_attention(q, k, v, is_causal=True), ref, atol=1e-12)
    mask = A.causal_mask(q.shape[-2], k.shape[-2])
    assert torch.allclose(A.scaled_dot_product_attention(q, k, v, mask), ref, atol=1e-12)
    weights = A.attention_steps(q, k, v, is_causal=True).weights
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()  # nothing from the future


def test_causal_mask_worked_example():
    assert A.causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]


@pytest.mark.parametrize("pad_side", ["right", "left"])
@pytest.mark.parametrize("causal", [False, True])
def test_padding_and_combined_masks_match_torch(pad_side, causal):
    g = torch.Generator().manual_seed(3)
    batch, heads, seq, d = 3, 2, 6, 8
    q, k, v = (torch.randn(batch, heads, seq, d, generator=g, dtype=torch.float64) for _ in range(3))
    lengths = [6, 4, 1]
    attention_mask = torch.zeros(batch, seq, dtype=torch.long)
    for row, n in enumerate(lengths):
        if pad_side == "right":
            attention_mask[row, :n] = 1
        else:
            attention_mask[row, seq - n:] = 1
    mask = A.padding_mask(attention_mask)
    assert mask.shape == (batch, 1, 1, seq)
    if causal:
        mask = A.combine_masks(A.causal_mask(seq), mask)
    ours = A.scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(ours, ref, atol=1e-12)  # includes fully masked rows (left padding + causal): zeros
    assert not torch.isnan(ours).any()


def test_float_additive_mask_matches_torch():
    q, k, v = qkv((2, 5, 5, 4, 4), 4)
    additive = torch.zeros(5, 5, dtype=torch.float64).masked_fill(~A.causal_mask(5), float("-inf"))
    additive[:, 0] += 0.7  # any finite bias is just added to the scores
    assert torch.allclose(A.scaled_dot_product_attention(q, k, v, additive),
                          F.scaled_dot_product_attention(q, k, v, attn_mask=additive), atol=1e-12)


def test_custom_scale_matches_torch():
    q, k, v = qkv((3, 3, 4, 4), 5)
    assert torch.allclose(A.scaled_dot_product_attention(q, k, v, scale=0.3),
                          F.scaled_dot_product_attention(q, k, v, scale=0.3), atol=1e-12)


def test_padding_mask_makes_real_tokens_independent_of_padding():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(1, 3, 4, generator=g, dtype=torch.float64)          # 3 real tokens
    pads = torch.randn(1, 2, 4, generator=g, dtype=torch.float64)       # 2 pad vectors
    padded = torch.cat([x, pads], dim=1)
    mask = A.padding_mask(torch.tensor([[1, 1, 1, 0, 0]]))[:, 0]        # (1, 1, 5) without a heads axis
    alone = A.scaled_dot_product_attention(x, x, x)
    masked = A.scaled_dot_product_attention(padded, padded, padded, mask)[:, :3]
    unmasked = A.scaled_dot_product_attention(padded, padded, padded)[:, :3]
    assert torch.allclose(masked, alone, atol=1e-12)
    assert not torch.allclose(unmasked, alone, atol=1e-3)


def test_split_heads_then_attention_matches_torch_multihead_layout():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 5, 12, generator=g, dtype=torch.float64)
    heads = A.split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    assert torch.equal(heads[:, 1], x[..., 4:8])
    assert torch.allclose(A.scaled_dot_product_attention(heads, heads, heads, is_causal=True),
                          F.scaled_dot_product_attention(heads, heads, heads, is_causal=True), atol=1e-12)


def test_check_functions(capsys):
    am = [[1, 1, 0]]
    # by hand: query i may see key j when j <= i and key j is not padding (the third token is)
    right = torch.tensor([[[[True, False, False], [True, True, False], [True, True, False]]]])
    A.check_causal_padding_mask(am, right)
    A.check_causal_padding_mask(am, A.causal_mask(3))
    q = [[1.0, 0.0], [0.0, 1.0]]
    w = torch.softmax(torch.tensor([1.0, 0.0]) / math.sqrt(2), dim=0)[0].item()
    A.check_attention_weight(q, q, 0, 0, w)
    A.check_attention_weight(q, q, 0, 0, 0.5)
    lines = capsys.readouterr().out.splitlines()
    assert [line.startswith("✅") for line in lines] == [True, False, True, False]
