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

from course_utils.exercises import check_answer, check_code
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
# exercise checks (notebook 05): tiered hints, common mistakes recognised, one "write the code"
# ---------------------------------------------------------------------------------------------

def _same_mask_values(answer, expected) -> bool:
    """Same True/False pattern once broadcast to ``expected``'s shape (dtype and shape not checked)."""
    try:
        answer = torch.as_tensor(answer)
        return bool((torch.broadcast_to(answer.bool(), expected.shape) == expected).all())
    except (TypeError, ValueError, RuntimeError):
        return False


def check_causal_padding_mask(attention_mask, answer) -> bool:
    """Exercise 5.1: the boolean (batch, 1, seq, seq) mask combining causal and padding masks."""
    attention_mask = torch.as_tensor(attention_mask)
    seq = attention_mask.shape[-1]
    expected = combine_masks(causal_mask(seq), padding_mask(attention_mask))
    if (isinstance(answer, torch.Tensor) and _same_mask_values(answer, expected)
            and (answer.dtype != torch.bool or answer.shape != expected.shape)):
        print(f"❌ Not yet: the True/False pattern is right, but give it shape {tuple(expected.shape)} and dtype "
              f"torch.bool (got {tuple(answer.shape)}, {answer.dtype}): torch reads a float mask as numbers to ADD.")
        return False
    causal_only = causal_mask(seq).expand(expected.shape)
    query_side = causal_mask(seq) & attention_mask.bool()[:, None, :, None]
    mistakes = [
        (causal_only, "that is the causal mask alone: real tokens can still look at the pads."),
        (padding_mask(attention_mask).expand(expected.shape), "that is the padding mask alone: every token can see the future."),
        (causal_mask(seq) | padding_mask(attention_mask), "you combined with OR; a key must be allowed by BOTH masks (AND)."),
        (query_side, "you masked pad QUERIES (rows) instead of pad KEYS (columns): index attention_mask as [:, None, None, :]."),
        (torch.ones(seq, seq, dtype=torch.bool).triu() & padding_mask(attention_mask), "your triangle is the wrong way "
         "round: token i may see keys 0..i, the lower triangle (torch.tril)."),
    ]
    strict = lambda a, e: isinstance(a, torch.Tensor) and a.dtype == torch.bool and a.shape == e.shape and bool((a == e).all())
    mistakes = [(wrong, why) for wrong, why in mistakes if not torch.equal(wrong.expand(expected.shape), expected)]
    # a recognised mistake is matched by its pattern, whatever the learner's dtype or shape
    equal = lambda a, e: strict(a, e) if e is expected else _same_mask_values(a, e.expand(expected.shape))
    return check_answer(answer, expected, key="5.1", equal=equal, mistakes=mistakes, hints=[
        "Two rules must hold at once: no looking at later tokens, and no looking at pads. Build each as a boolean mask.",
        "Causal: a (seq, seq) lower triangle. Padding: one row per sentence, True at real tokens, broadcast over queries.",
        "torch.ones(seq, seq, dtype=torch.bool).tril() & attention_mask.bool()[:, None, None, :]",
    ], why="Both masks must allow a key; the padding mask hides pad columns for every query.")


def check_attention_weight(q, k, query: int, key: int, answer) -> bool:
    """Exercise 5.2: one entry of the attention weight matrix (no mask)."""
    q, k = torch.as_tensor(q, dtype=torch.float64), torch.as_tensor(k, dtype=torch.float64)
    steps = attention_steps(q, k, k)
    expected = float(steps.weights[query, key])

    def equal(answer, expected) -> bool:
        try:
            return abs(float(answer) - float(expected)) < 5e-4
        except (TypeError, ValueError, RuntimeError):
            return False

    mistakes = [
        (float(torch.softmax(steps.scores, -1)[query, key]), "you forgot to divide the scores by sqrt(d_k)."),
        (float(steps.scaled[query, key]), "that is the scaled score; the weight is the softmax of the scores in its row."),
        (float(torch.softmax(steps.scaled, 0)[query, key]), "you normalised over the queries (a column); "
         "each query's weights are a softmax over the keys (its row)."),
        (float(steps.scores[query, key]), "that is the raw dot product q·k, before scaling and softmax."),
    ]
    mistakes = [(w, why) for w, why in mistakes if not equal(w, expected)]
    return check_answer(answer, expected, key="5.2", equal=equal, mistakes=mistakes, hints=[
        "Token 0 spreads its attention over ALL keys, itself included, and the weights sum to 1.",
        "Compute token 0's score against every key, scale, then normalise over the keys.",
        "scores_j = q_0 · k_j / sqrt(d_k) for j = 0, 1; weight = softmax(scores)[1].",
    ], why="Each row of the weight matrix is a softmax over the keys.")


def packed_row_cases(n: int = 40, seed: int = 0) -> list[tuple[torch.Tensor]]:
    """Seeded inputs for Exercise 5.3: the segment ids of one packed row, e.g. [0, 0, 0, 1, 1, 2],
    1 to 4 examples of 1 to 5 tokens (a row that holds a single example included)."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for _ in range(n):
        lengths = torch.randint(1, 6, (int(torch.randint(1, 5, (1,), generator=g)),), generator=g).tolist()
        cases.append((torch.tensor([k for k, length in enumerate(lengths) for _ in range(length)]),))
    return cases


def check_block_causal_mask(function) -> bool:
    """Exercise 5.3 (write the code): ``function(segment_ids)`` returns the boolean (L, L) mask of a
    packed row: query i may see key j iff j <= i and both belong to the same example.  Compared with
    ``course_utils.packing.block_causal_mask`` (which adds batch and head axes)."""
    from course_utils.packing import block_causal_mask

    def equal(got, expected) -> bool:
        return (isinstance(got, torch.Tensor) and got.dtype == torch.bool and got.shape == expected.shape
                and bool((got == expected).all()))

    return check_code(function, lambda seg: block_causal_mask(seg)[0, 0], packed_row_cases(), equal=equal,
                      describe=lambda args: f"segment_ids = {args[0].tolist()}")
