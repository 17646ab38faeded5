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
    """Exercise: trainable LoRA parameters of rank 16 on q, k, v and o of ONE Qwen2.5-0.5B layer.
    (Returns None, so a notebook cell that ends with the check shows only its line.)"""
    from course_utils.exercises import check_answer
    expected = sum(lora_parameter_count(d_out, d_in, EXERCISE_RANK) for d_out, d_in in EXERCISE_SHAPES.values())
    full = sum(d_out * d_in for d_out, d_in in EXERCISE_SHAPES.values())
    check_answer(
        answer, expected, key="09.lora_count",
        hints=["each matrix gets A (r x d_in) and B (d_out x r): r * (d_in + d_out) numbers.",
               "q: 16 * (896 + 896); k and v: 16 * (896 + 128) each; o like q. Add the four."],
        mistakes=[(full, "that is the number of weights in the four full matrices: LoRA trains A and B only."),
                  (EXERCISE_RANK * sum(d_in for _, d_in in EXERCISE_SHAPES.values()),
                   "that counts A only; B (d_out x r) trains too.")],
        why=f"LoRA trains {expected:,} numbers here, {expected / full:.1%} of the {full:,} it adapts.")
