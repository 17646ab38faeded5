"""Scaled dot-product attention (缩放点积注意力), step by step, checked against
``torch.nn.functional.scaled_dot_product_attention``.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + mask) V

Masks follow torch's convention for ``attn_mask``: a boolean mask is True where a query MAY look at
a key; a float mask is added to the scores (0 to keep, -inf to block).  A query row whose keys are
all blocked gets all-zero weights (and a zero output), as torch does, instead of NaN.

:func:`attention_steps` returns every intermediate matrix for the worked example of
``05_attention.ipynb``; :func:`scaled_dot_product_attention` is the same computation returning only
the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from course_utils.exercises import feedback
from course_utils.losses import softmax


@dataclass
class AttentionSteps:
    scores: torch.Tensor   # Q K^T: one row per query, one column per key
    scaled: torch.Tensor   # scores / sqrt(d_k)
    masked: torch.Tensor   # scaled, with blocked positions at -inf
    weights: torch.Tensor  # softmax over keys: each row sums to 1 (0 if every key is blocked)
    output: torch.Tensor   # weights V: each query's weighted average of the value vectors


def causal_mask(query_len: int, key_len: int | None = None) -> torch.Tensor:
    """Boolean (query_len, key_len) mask, True on and below the diagonal: token i sees tokens 0..i.
    Aligned top-left like torch's ``is_causal=True``."""
    key_len = query_len if key_len is None else key_len
    return torch.ones(query_len, key_len, dtype=torch.bool).tril()


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """From a tokenizer's ``attention_mask`` (batch, seq) of 1 = real token, 0 = padding to a boolean
    key mask (batch, 1, 1, seq) that broadcasts over heads and queries: no query may look at a pad."""
    return attention_mask.bool()[:, None, None, :]


def combine_masks(*masks: torch.Tensor) -> torch.Tensor:
    """A query may look at a key only if EVERY mask allows it (logical AND, broadcast)."""
    combined = masks[0]
    for mask in masks[1:]:
        combined = combined & mask
    return combined


def attention_steps(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, *,
                    is_causal: bool = False, scale: float | None = None) -> AttentionSteps:
    """Scaled dot-product attention with every intermediate kept.  Shapes (..., L, d_k), (..., S, d_k),
    (..., S, d_v); ``mask`` broadcasts to (..., L, S)."""
    scores = q @ k.transpose(-2, -1)
    scaled = scores * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    allowed = None
    additive = torch.zeros_like(scaled)
    if is_causal:
        allowed = causal_mask(q.shape[-2], k.shape[-2]).to(q.device)
    if mask is not None:
        if mask.dtype == torch.bool:
            allowed = mask if allowed is None else allowed & mask
        else:
            additive = additive + mask
    masked = scaled + additive
    if allowed is not None:
        masked = masked.masked_fill(~allowed, float("-inf"))
    weights = softmax(masked, dim=-1)
    weights = torch.nan_to_num(weights, nan=0.0)  # fully blocked rows: 0/0 -> 0, as torch does
    return AttentionSteps(scores=scores, scaled=scaled, masked=masked, weights=weights, output=weights @ v)


def scaled_dot_product_attention(q, k, v, mask=None, *, is_causal: bool = False, scale: float | None = None):
    """softmax(Q K^T / sqrt(d_k) + mask) V: same arguments and result as ``F.scaled_dot_product_attention``
    (with ``attn_mask=mask``)."""
    return attention_steps(q, k, v, mask, is_causal=is_causal, scale=scale).output


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, seq, num_heads * d_head) -> (batch, num_heads, seq, d_head): each head attends on its own slice."""
    batch, seq, width = x.shape
    return x.view(batch, seq, num_heads, width // num_heads).transpose(1, 2)


# ---------------------------------------------------------------------------------------------
# exercise checks (notebook 05)
# ---------------------------------------------------------------------------------------------

def check_causal_padding_mask(attention_mask, answer) -> None:
    """Exercise 5.1: the boolean (batch, 1, seq, seq) mask combining causal and padding masks."""
    attention_mask = torch.as_tensor(attention_mask)
    expected = combine_masks(causal_mask(attention_mask.shape[-1]), padding_mask(attention_mask))
    ok = (isinstance(answer, torch.Tensor) and answer.dtype == torch.bool
          and answer.shape == expected.shape and bool((answer == expected).all()))
    feedback(ok, "AND a (seq, seq) lower-triangular mask with attention_mask[:, None, None, :]; "
                 "shape (batch, 1, seq, seq), dtype bool.")


def check_attention_weight(q, k, query: int, key: int, answer) -> None:
    """Exercise 5.2: one entry of the attention weight matrix (no mask)."""
    q, k = torch.as_tensor(q, dtype=torch.float64), torch.as_tensor(k, dtype=torch.float64)
    expected = float(attention_steps(q, k, k).weights[query, key])
    ok = answer is not None and abs(float(answer) - expected) < 5e-4
    feedback(ok, "scores = q_i · k_j / sqrt(d_k) for every key j, then softmax over j.")
