"""LoRA (low-rank adaptation, 低秩适配) in numbers, and what it saves at the same training budget.

LoRA freezes a weight matrix ``W`` (d_out x d_in) and learns a low-rank update instead:

    W' = W + (alpha / r) * B @ A,      A: r x d_in,   B: d_out x r

Only ``A`` and ``B`` train: ``r * (d_in + d_out)`` numbers per adapted matrix instead of
``d_in * d_out``.  ``B`` starts at zero, so at step 0 the adapted model *is* the base model, and
``A`` starts random, so the first gradient of ``B`` (which is ``dL/dW' @ A.T``) is not zero.
Both at zero would leave both gradients zero for ever.  After training, ``W + (alpha/r) B A`` can
be written into ``W`` (merging): same outputs, no extra cost at inference.

The helpers here do the arithmetic the notebook checks against PEFT's own modules, and count the
memory that differs between LoRA and full fine-tuning: trainable parameters, their gradients and
AdamW's two moment tensors (optimiser state, 优化器状态).
"""

from __future__ import annotations

from dataclasses import dataclass


def lora_delta(A, B, alpha: float, r: int):
    """The update LoRA adds to a weight: ``(alpha / r) * B @ A`` (shape d_out x d_in)."""
    if A.shape[0] != r or B.shape[1] != r:
        raise ValueError(f"A must be r x d_in and B d_out x r with r={r}; got A {tuple(A.shape)}, B {tuple(B.shape)}")
    return (alpha / r) * (B @ A)


def lora_parameter_count(d_out: int, d_in: int, r: int) -> int:
    """Trainable numbers of one adapted matrix: A has r * d_in, B has d_out * r."""
    return r * (d_in + d_out)


def adapter_matrices(peft_model, adapter: str = "default") -> dict[str, tuple]:
    """Every adapted linear layer of a PEFT model: name -> (base weight W, A, B, scaling)."""
    out = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and adapter in getattr(module, "lora_A", {}):
            out[name] = (module.base_layer.weight, module.lora_A[adapter].weight,
                         module.lora_B[adapter].weight, module.scaling[adapter])
    return out


def expected_lora_parameters(peft_model, adapter: str = "default") -> int:
    """Sum of :func:`lora_parameter_count` over the adapted layers, from their base weights' shapes."""
    total = 0
    for W, A, _, _ in adapter_matrices(peft_model, adapter).values():
        total += lora_parameter_count(W.shape[0], W.shape[1], A.shape[0])
    return total


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) numbers of parameters: what the optimiser updates, and what the model holds."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def optimizer_state_bytes(optimizer) -> int:
    """Bytes held in the optimiser's state tensors (for AdamW: exp_avg, exp_avg_sq and step)."""
    import torch
    return sum(v.numel() * v.element_size() for state in optimizer.state.values()
               for v in state.values() if torch.is_tensor(v))


def expected_adamw_state_bytes(n_trainable: int, n_tensors: int, bytes_per_value: int = 4) -> int:
    """AdamW keeps two moments per trainable number (fp32: 8 bytes) plus one step counter per tensor."""
    return 2 * bytes_per_value * n_trainable + 4 * n_tensors


@dataclass
class TrainingMemory:
    """Bytes of what training keeps besides activations: weights, gradients, optimiser state."""

    weights: int
    gradients: int
    optimizer_state: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_state

    def row(self) -> dict:
        mib = 2 ** 20
        return {"weights (MiB)": self.weights / mib, "gradients (MiB)": self.gradients / mib,
                "optimiser state (MiB)": self.optimizer_state / mib, "total (MiB)": self.total / mib}


def training_memory(model, optimizer=None) -> TrainingMemory:
    """Weights of every parameter, gradients of the trainable ones (same dtype), and the optimiser's
    state (measured when ``optimizer`` has taken a step, else AdamW's fp32 expectation)."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    gradients = sum(p.numel() * p.element_size() for p in trainable)
    if optimizer is not None and optimizer.state:
        state = optimizer_state_bytes(optimizer)
    else:
        state = expected_adamw_state_bytes(sum(p.numel() for p in trainable), len(trainable))
    return TrainingMemory(weights, gradients, state)


def full_vs_lora_estimate(n_params: int, n_lora: int, bytes_per_weight: int = 2) -> dict:
    """Rough training memory (GiB) without activations, for a model of ``n_params`` weights.

    Full fine-tuning with mixed precision keeps fp32 master weights, fp32 gradients and AdamW's
    two fp32 moments: 16 bytes per parameter.  LoRA keeps the frozen base in ``bytes_per_weight``
    (2 for bf16/fp16, 0.5 for 4-bit NF4 as in QLoRA) plus 16 bytes per adapter parameter."""
    gib = 2 ** 30
    return {"full fine-tuning": 16 * n_params / gib,
            "LoRA": (bytes_per_weight * n_params + 16 * n_lora) / gib}


# Qwen2.5-0.5B's architecture, from its config.json on the hub
# (https://huggingface.co/Qwen/Qwen2.5-0.5B/blob/main/config.json, checked 2026-11-29).
QWEN25_05B_CONFIG = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)


def count_on_meta(config: dict | None = None, lora_config=None) -> tuple[int, int]:
    """(trainable LoRA parameters, total parameters) of a Qwen2 model built on the meta device:
    shapes only, no memory and no download, so a CPU can count a model it could not hold."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(Qwen2Config(**(config or QWEN25_05B_CONFIG)))
    n_total = sum(p.numel() for p in model.parameters())
    if lora_config is None:
        return 0, n_total
    from peft import get_peft_model
    return parameter_counts(get_peft_model(model, lora_config))[0], n_total


# --- Exercise ------------------------------------------------------------------------------

EXERCISE_SHAPES = {"q_proj": (896, 896), "k_proj": (128, 896), "v_proj": (128, 896), "o_proj": (896, 896)}
EXERCISE_RANK = 16


def check_lora_count(answer) -> None:
    """Exercise 9.1: trainable LoRA parameters of rank 16 on q, k, v and o of ONE Qwen2.5-0.5B layer.
    (Returns None, so a notebook cell that ends with the check shows only its line.)"""
    from course_utils.exercises import check_answer
    r, shapes = EXERCISE_RANK, EXERCISE_SHAPES
    per_matrix = {name: lora_parameter_count(d_out, d_in, r) for name, (d_out, d_in) in shapes.items()}
    expected = sum(per_matrix.values())
    full = sum(d_out * d_in for d_out, d_in in shapes.values())
    a_only = r * sum(d_in for _, d_in in shapes.values())      # equals q + o only for these shapes
    b_only = r * sum(d_out for d_out, _ in shapes.values())
    square = len(shapes) * r * 2 * shapes["q_proj"][1]         # as if k and v were 896 x 896 too
    biases = expected + sum(d_out for name, (d_out, _) in shapes.items() if name != "o_proj")  # Qwen2.5: q, k, v biases
    check_answer(
        answer, expected, key="09.lora_count",
        hints=["LoRA leaves each of the four matrices frozen and trains something small beside it. "
               "What does it add to one matrix, and of which shapes?",
               "Each adapted matrix gets two trainable matrices, A and B (section 4 gives their shapes). "
               "Count both, for each of the four matrices, with each matrix's own d_out and d_in.",
               "r * (d_in + d_out) per matrix: q and o are 896 x 896, k and v are 128 x 896. Add the four."],
        mistakes=[(full, "that is the number of weights in the four full matrices; they stay frozen, LoRA trains "
                         "only the small matrices A and B beside each."),
                  (a_only, "that counts only A (r x d_in) for each matrix (or A and B of only q and o): B "
                           "(d_out x r) trains too, and so do the adapters of k and v."),
                  (b_only, "that counts only B (d_out x r): A (r x d_in) trains too."),
                  (square, "that treats k and v as 896 x 896. They are 128 x 896 (grouped-query attention: fewer "
                           "key/value heads), so use each matrix's own d_out, r * (d_in + d_out), not r * 2d."),
                  (biases, "LoRA adds no bias: the base layers' biases stay frozen (PEFT's default bias='none'), "
                           "and A and B have none of their own."),
                  (per_matrix["q_proj"] + per_matrix["v_proj"],
                   "that is q and v only (the original LoRA paper's choice); the exercise adapts all four: q, k, v "
                   "and o."),
                  (24 * expected, "the question is about ONE layer; Qwen2.5-0.5B has 24 of them.")],
        why=f"LoRA trains {expected:,} numbers here, {expected / full:.1%} of the {full:,} it adapts.")


def lora_forward(x, W, A, B, alpha: float, r: int):
    """The output of a LoRA-adapted linear layer without merging: ``x W^T + (alpha / r) (x A^T) B^T``.

    The update ``B A`` (d_out x d_in) is never formed: ``x`` goes through A down to r numbers and
    through B back up, which is how PEFT's LoRA layer computes it (the base layer's bias, if any, is
    left out here)."""
    if A.shape[0] != r or B.shape[1] != r:
        raise ValueError(f"A must be r x d_in and B d_out x r with r={r}; got A {tuple(A.shape)}, B {tuple(B.shape)}")
    return x @ W.T + (alpha / r) * ((x @ A.T) @ B.T)


def lora_forward_cases(n: int = 12, seed: int = 0) -> list[tuple]:
    """Seeded random cases ``(x, W, A, B, alpha, r)``: non-square W, d_out != d_in, B not zero (as after
    training), alpha / r not 1 (and not 2, so r / alpha and alpha * r differ from it), 2-D and 3-D x."""
    import torch
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(n):
        d_in, d_out = (int(v) for v in torch.randint(3, 12, (2,), generator=g))
        if d_in == d_out:
            d_out += 1
        r = int(torch.randint(1, 5, (1,), generator=g))
        alpha = float([3, 8, 16, 5][i % 4])
        if alpha / r in (1.0, 2.0):
            alpha += 1.0
        shape = (2, 3, d_in) if i % 3 == 2 else (int(torch.randint(1, 5, (1,), generator=g)), d_in)
        x = torch.randn(*shape, generator=g)
        W, A, B = (torch.randn(d_out, d_in, generator=g), torch.randn(r, d_in, generator=g),
                   torch.randn(d_out, r, generator=g))
        cases.append((x, W, A, B, alpha, r))
    return cases


def _same_tensor(got, expected) -> bool:
    import torch
    return (torch.is_tensor(got) and got.shape == expected.shape
            and torch.allclose(got.to(expected.dtype), expected, rtol=1e-4, atol=1e-5))


def check_lora_forward_code(function) -> None:
    """Exercise 9.3 (write the code): ``function(x, W, A, B, alpha, r)`` returns what a LoRA layer outputs
    for ``x``; run beside :func:`lora_forward` on seeded random tensors."""
    from course_utils.exercises import check_code_with_hints
    check_code_with_hints(
        function, lora_forward, lora_forward_cases(), key="09.lora_forward", equal=_same_tensor,
        describe=lambda c: (f"x {tuple(c[0].shape)}, W {tuple(c[1].shape)}, A {tuple(c[2].shape)}, "
                            f"B {tuple(c[3].shape)}, alpha={c[4]}, r={c[5]}"),
        hints=["Compare the shape of what you return with the expected one, then the size of the difference: "
               "the frozen path and the adapter path are two separate terms.",
               "A linear layer maps x to x W^T. The adapter path is the same idea with a low-rank matrix in place of W, "
               "and it is scaled: check which way round the scale is.",
               "x @ W.T + (alpha / r) * (x @ A.T) @ B.T"])
