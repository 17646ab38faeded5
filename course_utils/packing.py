"""Sequence packing: put several short examples into one fixed-length row instead of padding each.

Padding wastes compute on positions that carry no token.  Three ways to batch SFT examples:

* **fixed padding** (固定长度填充): every example padded to one ``max_length``;
* **dynamic padding** (动态填充): each batch padded to its own longest example;
* **packing** (序列打包): examples laid end to end in rows of ``max_length`` tokens, chosen by
  *best-fit decreasing* (最佳适应递减) so that little room is left over.

A packed row must not let one example see another.  Two ingredients do that: ``position_ids``
that restart at 0 for every example (so rotary positions are the ones the example has alone),
and an attention mask that is causal *within* each example and blocks attention *across*
examples (block-diagonal, 块对角).  :func:`block_causal_mask` builds that mask explicitly, and
:func:`additive_mask` turns it into the 0 / most-negative float form that both the ``sdpa`` and
the ``eager`` attention of transformers apply correctly (eager would ADD a boolean mask).
transformers (v5) can also derive it from the restarting ``position_ids``, but only when no
2-D ``attention_mask`` and no KV cache are passed (``use_cache=False``); tests/test_packing.py
shows both the safe set-ups and the ones that leak.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

IGNORE_INDEX = -100


# --- Bin packing -------------------------------------------------------------------------

def best_fit_decreasing(lengths, capacity: int) -> list[list[int]]:
    """Group example indices into bins of total length <= ``capacity``.

    Longest first; each example goes into the open bin whose free room is the *smallest* that
    still fits it (best fit), else into a new bin.  Free rooms are kept sorted, so each
    placement is one binary search: O(n log n) overall.  Returns bins of indices into
    ``lengths``; within a bin, examples keep the decreasing-length order they were placed in.
    """
    lengths = [int(n) for n in lengths]
    too_long = [i for i, n in enumerate(lengths) if n > capacity]
    if too_long:
        raise ValueError(f"{len(too_long)} example(s) longer than capacity {capacity} "
                         f"(first: index {too_long[0]}, length {lengths[too_long[0]]}); truncate them first")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    rooms: list[tuple[int, int]] = []  # (free room, bin id), sorted
    for i in order:
        k = bisect.bisect_left(rooms, (lengths[i], -1))  # first bin with room >= length
        if k == len(rooms):
            bins.append([i])
            bisect.insort(rooms, (capacity - lengths[i], len(bins) - 1))
        else:
            room, b = rooms.pop(k)
            bins[b].append(i)
            bisect.insort(rooms, (room - lengths[i], b))
    return bins


# --- Packed rows -------------------------------------------------------------------------

def pack_examples(examples, max_length: int, pad_token_id: int) -> list[dict]:
    """Pack tokenised examples (``input_ids``, ``labels``) into rows of exactly ``max_length``.

    Each row has ``input_ids``, ``labels`` (each example's first label set to -100, as
    ``transformers.DataCollatorWithFlattening`` does), ``position_ids`` (restarting at 0 per example),
    ``seq_lengths`` (the real examples' lengths, in order) and ``n_real``.  The room left at the
    end is filled with pad tokens whose labels are -100 and whose positions also restart at 0,
    so they form one more "example" that nothing real attends to.

    Every example must have at least one token and exactly one label per token (labels are not
    shifted); otherwise a ValueError names the example, because a misaligned example would move
    labels onto its neighbour in the row.
    """
    for i, e in enumerate(examples):
        n_ids, n_labels = len(e["input_ids"]), len(e["labels"])
        if n_ids == 0:
            raise ValueError(f"example {i} is empty (no input_ids); drop it before packing")
        if n_ids != n_labels:
            raise ValueError(f"example {i}: {n_labels} labels for {n_ids} input_ids; they must align one to one")
    bins = best_fit_decreasing([len(e["input_ids"]) for e in examples], max_length)
    rows = []
    for members in bins:
        input_ids, labels, positions, seq_lengths = [], [], [], []
        for i in members:
            ids = list(examples[i]["input_ids"])
            input_ids += ids
            # The loss shifts labels left: label t is predicted from position t-1.  An example's
            # first label would be predicted from the previous example's last token, so drop it
            # (run alone, the first token is never a target either).
            labels += [IGNORE_INDEX] + list(examples[i]["labels"])[1:]
            positions += range(len(ids))
            seq_lengths.append(len(ids))
        n_real = len(input_ids)
        n_pad = max_length - n_real
        input_ids += [pad_token_id] * n_pad
        labels += [IGNORE_INDEX] * n_pad
        positions += range(n_pad)
        rows.append({"input_ids": input_ids, "labels": labels, "position_ids": positions,
                     "seq_lengths": seq_lengths, "n_real": n_real})
    return rows


def segment_ids(seq_lengths, row_length: int) -> list[int]:
    """Which example each position belongs to (0, 1, ...); trailing padding gets its own id."""
    ids = [k for k, n in enumerate(seq_lengths) for _ in range(n)]
    return ids + [len(seq_lengths)] * (row_length - len(ids))


def block_causal_mask(segments):
    """Boolean attention mask (batch, 1, L, L): query i may see key j iff j <= i and both lie in
    the same example.  True = attend, the convention of ``scaled_dot_product_attention``."""
    import torch
    segments = torch.as_tensor(segments)
    if segments.dim() == 1:
        segments = segments[None]
    length = segments.size(-1)
    same = segments[:, :, None] == segments[:, None, :]
    causal = torch.ones(length, length, dtype=torch.bool, device=segments.device).tril()
    return (same & causal)[:, None]


def additive_mask(allowed, dtype=None):
    """A boolean "may attend" mask as the float mask transformers' attention adds to the scores:
    0 where allowed, the most negative finite value of ``dtype`` where blocked (what transformers'
    own eager masks use, so a row never becomes all -inf).  The ``eager`` attention adds whatever
    mask it gets, so a BOOLEAN mask there adds 1 instead of blocking; this form works for eager and
    sdpa alike."""
    import torch
    dtype = dtype or torch.float32
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


@dataclass
class PackedCollator:
    """Stack packed rows into tensors.

    ``mask="position_ids"`` returns ``input_ids``, ``labels`` and ``position_ids`` only: call the
    model with ``use_cache=False`` (or ``model.config.use_cache = False``) and transformers
    builds the per-example mask from the restarting positions.  ``mask="4d"`` also returns the
    explicit block-diagonal causal ``attention_mask`` as an additive float mask (:func:`additive_mask`,
    dtype ``mask_dtype``), which works with ``attn_implementation="sdpa"`` and ``"eager"`` and with the
    KV cache on (tests/test_packing.py checks both implementations against the examples run alone).

    Rows must all have the same length, with ``labels`` and ``position_ids`` as long as ``input_ids``
    (rows from :func:`pack_examples` do); otherwise a ValueError names the row.
    """

    mask: str = "position_ids"
    mask_dtype: object = None  # torch dtype of the 4-D mask; None = float32

    def __call__(self, rows):
        import torch
        if self.mask not in ("position_ids", "4d"):
            raise ValueError(f"mask must be 'position_ids' or '4d', not {self.mask!r}")
        if not rows:
            raise ValueError("no rows to collate")
        width = len(rows[0]["input_ids"])
        for i, r in enumerate(rows):
            lengths = {key: len(r[key]) for key in ("input_ids", "labels", "position_ids")}
            if set(lengths.values()) != {width}:
                raise ValueError(f"row {i}: lengths {lengths}; every row needs {width} of each")
            if sum(r["seq_lengths"]) > width:
                raise ValueError(f"row {i}: seq_lengths add up to {sum(r['seq_lengths'])}, more than the row's {width}")
        batch = {key: torch.tensor([r[key] for r in rows], dtype=torch.long)
                 for key in ("input_ids", "labels", "position_ids")}
        if self.mask == "4d":
            allowed = block_causal_mask([segment_ids(r["seq_lengths"], width) for r in rows])
            batch["attention_mask"] = additive_mask(allowed, self.mask_dtype)
        return batch


# --- Padding accounting ------------------------------------------------------------------

def fixed_padding_fraction(lengths, max_length: int) -> float:
    """Share of positions that are padding when every example is padded to ``max_length``."""
    return 1 - sum(lengths) / (len(lengths) * max_length)


def dynamic_padding_fraction(lengths, batch_size: int) -> float:
    """Share of padding when consecutive batches of ``batch_size`` are padded to their longest."""
    lengths = list(lengths)
    positions = sum(max(lengths[i:i + batch_size]) * len(lengths[i:i + batch_size])
                    for i in range(0, len(lengths), batch_size))
    return 1 - sum(lengths) / positions


def packed_padding_fraction(rows) -> float:
    """Share of padding in packed rows (the room best-fit decreasing could not fill)."""
    positions = sum(len(r["input_ids"]) for r in rows)
    return 1 - sum(r["n_real"] for r in rows) / positions
