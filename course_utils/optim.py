"""Optimisers, learning-rate schedules and gradient clipping, written out by hand.

Each update rule follows ``torch.optim`` line for line, so in float64 the hand version and torch's
agree to ~1e-15 (``tests/test_optim.py`` holds them to 1e-7 over 100 random steps):

* :class:`HandSGD`: plain SGD, and momentum in PyTorch's formulation
  ``b = mu * b + (1 - dampening) * g`` (``b = g`` on the first step), ``theta -= lr * b``;
* :class:`HandAdam`: first and second moments, bias correction, ``theta -= lr * m_hat / (sqrt(v_hat) + eps)``;
  ``weight_decay`` adds ``wd * theta`` to the gradient (L2), unless ``decoupled_weight_decay``;
* :class:`HandAdamW`: Adam with DECOUPLED weight decay, ``theta *= 1 - lr * wd`` before the Adam step.

Every ``step`` returns, per parameter tensor, a record of all intermediate values, which
:func:`step_table` turns into the tables of ``04_optimisers.ipynb``.

Schedules (:func:`linear_warmup_decay_lr`, :func:`cosine_warmup_lr`) are functions of the step
number that reproduce ``transformers.get_scheduler``; :func:`clip_by_global_norm` reproduces
``torch.nn.utils.clip_grad_norm_``.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from course_utils.exercises import check_answer, check_code


def _as_list(params) -> list[torch.Tensor]:
    return [params] if isinstance(params, torch.Tensor) else list(params)


class HandOptimiser:
    """Holds plain tensors (updated in place) and a step counter t (1 on the first step, as in torch)."""

    def __init__(self, params: torch.Tensor | Iterable[torch.Tensor]):
        self.params = [p.detach() for p in _as_list(params)]
        self.t = 0
        self.state: list[dict] = [{} for _ in self.params]

    def step(self, grads: torch.Tensor | Iterable[torch.Tensor]) -> list[dict]:
        """Apply one update with the given gradients; return one record of intermediates per tensor."""
        grads = _as_list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"got {len(grads)} gradients for {len(self.params)} parameters")
        self.t += 1
        records = []
        for param, grad, state in zip(self.params, grads, self.state):
            before = param.clone()
            record = self._update(param, grad.detach(), state)
            records.append({"step": self.t, "param": before, "grad": grad.detach().clone(), **record,
                            "update": param - before, "new_param": param.clone()})
        return records

    def _update(self, param, grad, state) -> dict:
        raise NotImplementedError


class HandSGD(HandOptimiser):
    """SGD as ``torch.optim.SGD``.  With momentum mu the buffer is b_1 = g_1, b_t = mu b_{t-1} + (1 - dampening) g_t,
    and the step is -lr * b_t (PyTorch's form: the learning rate multiplies the buffer, it is not inside it)."""

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def _update(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param  # L2: part of the gradient
        record = {}
        direction = grad
        if self.momentum:
            if "buffer" not in state:
                state["buffer"] = grad.clone()
            else:
                state["buffer"] = self.momentum * state["buffer"] + (1 - self.dampening) * grad
            record["buffer"] = state["buffer"].clone()
            direction = grad + self.momentum * state["buffer"] if self.nesterov else state["buffer"]
        param.sub_(self.lr * direction)
        return record


class HandAdam(HandOptimiser):
    """Adam as ``torch.optim.Adam``:

        m_t = b1 m_{t-1} + (1 - b1) g_t           (first moment: running mean of gradients)
        v_t = b2 v_{t-1} + (1 - b2) g_t^2         (second moment: running mean of squared gradients)
        m_hat = m_t / (1 - b1^t),  v_hat = v_t / (1 - b2^t)   (bias correction: m_0 = v_0 = 0)
        theta -= lr * m_hat / (sqrt(v_hat) + eps)

    ``weight_decay`` without ``decoupled_weight_decay`` adds wd * theta to g (L2 regularisation, which
    the adaptive denominator then rescales).  ``bias_correction=False`` and ``take_sqrt=False`` reproduce
    two mistakes often seen in tutorials, for the pitfall demo; leave them at their defaults."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, decoupled_weight_decay: bool = False,
                 bias_correction: bool = True, take_sqrt: bool = True):
        super().__init__(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.decoupled_weight_decay = weight_decay, decoupled_weight_decay
        self.bias_correction, self.take_sqrt = bias_correction, take_sqrt

    def _update(self, param, grad, state):
        beta1, beta2 = self.betas
        record = {}
        if self.weight_decay:
            if self.decoupled_weight_decay:
                record["decay"] = -self.lr * self.weight_decay * param  # shrink theta itself, outside Adam
                param.mul_(1 - self.lr * self.weight_decay)
            else:
                grad = grad + self.weight_decay * param
                record["grad_with_l2"] = grad.clone()
        m = state["m"] = beta1 * state.get("m", torch.zeros_like(param)) + (1 - beta1) * grad
        v = state["v"] = beta2 * state.get("v", torch.zeros_like(param)) + (1 - beta2) * grad * grad
        if self.bias_correction:
            m_hat, v_hat = m / (1 - beta1 ** self.t), v / (1 - beta2 ** self.t)
        else:
            m_hat, v_hat = m, v
        denominator = (v_hat.sqrt() if self.take_sqrt else v_hat) + self.eps
        adam_update = -self.lr * m_hat / denominator
        param.add_(adam_update)
        if "decay" in record:
            record["adam_update"] = adam_update  # with decoupled decay the update has two parts
        return {"m": m.clone(), "v": v.clone(), "m_hat": m_hat, "v_hat": v_hat, **record}


class HandAdamW(HandAdam):
    """AdamW (Loshchilov & Hutter, 2019) as ``torch.optim.AdamW``: theta *= 1 - lr * wd, then the Adam step
    on the raw gradient.  The decay is the same for every weight, whatever its gradient history."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)


# ---------------------------------------------------------------------------------------------
# tables, comparisons with torch, trajectories
# ---------------------------------------------------------------------------------------------

COLUMN_NAMES = {"param": "θ before", "grad": "g", "grad_with_l2": "g + wd·θ", "buffer": "buffer b",
                "m": "m", "v": "v", "m_hat": "m̂", "v_hat": "v̂", "decay": "decay -lr·wd·θ",
                "adam_update": "Adam step", "update": "update Δθ", "new_param": "θ after"}


def valley_loss(theta: torch.Tensor) -> torch.Tensor:
    """An elongated valley (狭长山谷): f(x, y) = 0.01 x^2 + y^2.  The curvature along y (2) is 100 times
    the curvature along x (0.02), so no single learning rate suits both directions: plain gradient
    descent must keep lr < 2 / 2 = 1 for y, and then crawls along x."""
    return 0.01 * theta[..., 0] ** 2 + theta[..., 1] ** 2


def autograd_grads(loss_fn: Callable, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradients of ``loss_fn(*params)`` at the current values, by autograd."""
    leaves = [p.detach().clone().requires_grad_() for p in params]
    loss = loss_fn(*leaves)
    return list(torch.autograd.grad(loss, leaves))


def step_table(optimiser: HandOptimiser, loss_fn: Callable, steps: int = 3, names: list[str] | None = None):
    """Run ``steps`` updates of ``optimiser`` on ``loss_fn`` (one parameter tensor) and return a pandas
    DataFrame with one row per (step, coordinate) and one column per intermediate value."""
    import pandas as pd

    rows = []
    for _ in range(steps):
        (record,) = optimiser.step(autograd_grads(loss_fn, optimiser.params))
        flat = {key: value.reshape(-1) for key, value in record.items() if isinstance(value, torch.Tensor)}
        for j in range(optimiser.params[0].numel()):
            coordinate = names[j] if names else f"θ{j + 1}"
            rows.append({"step": record["step"], "coord": coordinate,
                         **{COLUMN_NAMES[key]: float(flat[key][j]) for key in COLUMN_NAMES if key in flat}})
    return pd.DataFrame(rows).set_index(["step", "coord"])


def max_deviation_from_torch(hand_class: type, torch_class: type, *, shapes=((2,),), steps: int = 100,
                             seed: int = 0, dtype=torch.float64, **hyper) -> float:
    """Run the hand optimiser and the torch optimiser side by side for ``steps`` steps on random
    gradients (noise plus a pull towards zero, so they depend on the parameters) and return the
    largest absolute difference between their parameters seen at any step."""
    generator = torch.Generator().manual_seed(seed)
    start = [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes]
    reference = [x.clone().requires_grad_() for x in start]
    torch_optimiser = torch_class(reference, **hyper)
    hand = hand_class([x.clone() for x in start], **hyper)
    worst = 0.0
    for _ in range(steps):
        grads = [torch.randn(r.shape, generator=generator, dtype=dtype) + 0.5 * r.detach() for r in reference]
        for r, g in zip(reference, grads):
            r.grad = g.clone()
        torch_optimiser.step()
        hand.step([g.clone() for g in grads])
        worst = max(worst, max(float((h - r.detach()).abs().max()) for h, r in zip(hand.params, reference)))
    return worst


def trajectory(optimiser: HandOptimiser, loss_fn: Callable = valley_loss, steps: int = 50):
    """The path of a single 2-D parameter under ``optimiser`` on ``loss_fn``: a (steps + 1, 2) numpy array."""
    import numpy as np

    points = [optimiser.params[0].clone()]
    for _ in range(steps):
        optimiser.step(autograd_grads(loss_fn, optimiser.params))
        points.append(optimiser.params[0].clone())
    return np.stack([p.numpy() for p in points])


# ---------------------------------------------------------------------------------------------
# learning-rate schedules
# ---------------------------------------------------------------------------------------------

def linear_warmup_decay_lr(step: int, *, peak_lr: float, warmup_steps: int, total_steps: int) -> float:
    """LR for optimiser step ``step`` (0-based): rises linearly from 0 to ``peak_lr`` over
    ``warmup_steps``, then falls linearly to 0 at ``total_steps`` (transformers' "linear" schedule)."""
    if step < warmup_steps:
        return peak_lr * step / max(1, warmup_steps)
    return peak_lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def cosine_warmup_lr(step: int, *, peak_lr: float, warmup_steps: int, total_steps: int,
                     num_cycles: float = 0.5, min_lr_ratio: float = 0.0) -> float:
    """Linear warmup, then a cosine from ``peak_lr`` down to ``min_lr_ratio * peak_lr`` (half a cosine
    wave by default): transformers' "cosine" and "cosine_with_min_lr" schedules."""
    if step < warmup_steps:
        return peak_lr * step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    factor = 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress))
    return peak_lr * max(0.0, factor * (1 - min_lr_ratio) + min_lr_ratio)


def transformers_schedule_lrs(name: str, *, peak_lr: float, warmup_steps: int, total_steps: int,
                              **scheduler_specific_kwargs) -> list[float]:
    """The learning rate each of ``total_steps`` optimiser steps uses under ``transformers.get_scheduler``
    (read from the optimiser before each step, as a training loop would)."""
    from transformers import get_scheduler

    dummy = torch.nn.Parameter(torch.zeros(1))
    optimiser = torch.optim.SGD([dummy], lr=peak_lr)
    scheduler = get_scheduler(name, optimiser, num_warmup_steps=warmup_steps, num_training_steps=total_steps,
                              scheduler_specific_kwargs=scheduler_specific_kwargs or None)
    lrs = []
    for _ in range(total_steps):
        lrs.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        scheduler.step()
    return lrs


# ---------------------------------------------------------------------------------------------
# gradient clipping
# ---------------------------------------------------------------------------------------------

def _grads(parameters) -> list[torch.Tensor]:
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


def _norm_of(grads: list[torch.Tensor]) -> torch.Tensor:
    """sqrt(sum of g^2) per tensor, then the same over the per-tensor norms, in the gradients' own
    dtype, as ``clip_grad_norm_`` computes it.  So it overflows where torch does: fp32 squares pass
    3.4e38 once an entry passes ~1.8e19, the norm is inf, and clipping then zeroes the gradients
    (0 * inf entries become nan), exactly as torch does, so a training loop can see the spike."""
    if not grads:
        return torch.tensor(0.0)
    per_tensor = torch.stack([torch.sqrt((g ** 2).sum()) for g in grads])
    return torch.sqrt((per_tensor ** 2).sum())


def global_grad_norm(parameters) -> torch.Tensor:
    """L2 norm of ALL gradients seen as one long vector: sqrt(sum over tensors of sum of g^2)."""
    return _norm_of(_grads(parameters))


def clip_by_global_norm(parameters, max_norm: float, eps: float = 1e-6) -> torch.Tensor:
    """Scale every gradient by min(1, max_norm / (norm + eps)), in place, as ``clip_grad_norm_`` does.
    One factor for all tensors keeps the update's DIRECTION; only its length is capped.
    Returns the norm before clipping (log it: spikes show up there first)."""
    grads = _grads(parameters)  # a list: ``model.parameters()`` is a generator, usable only once
    total = _norm_of(grads)
    scale = torch.clamp(max_norm / (total + eps), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return total


def clip_each_tensor_separately(parameters, max_norm: float) -> None:
    """The WRONG alternative, for the misconception demo: cap each tensor's own norm.  Tensors get
    different factors, so the direction of the whole update changes."""
    for g in _grads(parameters):
        g.mul_(torch.clamp(max_norm / (g.norm() + 1e-6), max=1.0))


# ---------------------------------------------------------------------------------------------
# exercise checks (notebook 04): tiered hints, common mistakes recognised, one "write the code"
# ---------------------------------------------------------------------------------------------

def _close(tol: float, relative: bool = False):
    def equal(answer, expected) -> bool:
        try:
            a, e = float(answer), float(expected)
        except (TypeError, ValueError, RuntimeError):
            return False
        return math.isclose(a, e, rel_tol=tol, abs_tol=1e-12) if relative else abs(a - e) < tol
    return equal


def _only_wrong(mistakes, expected, equal):
    return [(wrong, why) for wrong, why in mistakes if not equal(wrong, expected)]


def _one_adam_step(theta: float, grad: float, lr: float, **wrong) -> float:
    optimiser = HandAdam(torch.tensor([theta], dtype=torch.float64), lr=lr, **wrong)
    optimiser.step(torch.tensor([grad], dtype=torch.float64))
    return float(optimiser.params[0][0])


def check_adam_first_step(theta: float, grad: float, lr: float, answer) -> bool:
    """Exercise 4.1: theta after ONE Adam step (default betas and eps)."""
    expected = _one_adam_step(theta, grad, lr)
    equal = _close(5e-5)
    mistakes = [
        (theta - lr * grad, "that is a plain SGD step, θ - ηg. Adam divides the (averaged) gradient by its own size."),
        (_one_adam_step(theta, grad, lr, bias_correction=False),
         "you left out the bias correction: m₁ = (1-β1)g and v₁ = (1-β2)g² are far too small on step 1."),
        (_one_adam_step(theta, grad, lr, take_sqrt=False), "you divided by v̂ itself; Adam divides by its square root."),
        (2 * theta - expected, "you moved along the gradient; descent moves against it."),
    ]
    return check_answer(answer, expected, key="4.1", equal=equal, mistakes=_only_wrong(mistakes, expected, equal), hints=[
        "Start from m₀ = v₀ = 0 and write down m₁ and v₁ with the formulas of section 4.",
        "Now apply the bias correction for t = 1. What are m̂₁ and v̂₁ in terms of g?",
        "m̂₁ = g and v̂₁ = g², so θ₁ = θ₀ - η·g/(|g| + ε): the first step has length η whatever the size of g.",
    ], why="At step 1 Adam moves every parameter by about η, whatever its gradient.")


def check_warmup_lr(step: int, peak_lr: float, warmup_steps: int, total_steps: int, answer) -> bool:
    """Exercise 4.2: the linear-warmup-then-linear-decay learning rate at a given step."""
    expected = linear_warmup_decay_lr(step, peak_lr=peak_lr, warmup_steps=warmup_steps, total_steps=total_steps)
    equal = _close(1e-6, relative=True)
    mistakes = [
        (peak_lr * step / warmup_steps, "you kept warming up: after the warmup steps the rate decays."),
        (peak_lr * (total_steps - step) / total_steps, "you decayed over all the steps; the decay starts at the end "
         "of warmup, so it spans total - warmup steps."),
        (peak_lr, "that is the peak, reached at the end of warmup; the rate has been decaying since."),
        (peak_lr * (total_steps - step - 1) / (total_steps - warmup_steps), "off by one step: the schedule "
         "is a function of the 0-based step number itself."),
    ]
    return check_answer(answer, expected, key="4.2", equal=equal, mistakes=_only_wrong(mistakes, expected, equal), hints=[
        "Is this step still inside the warmup, or already in the decay?",
        "In the decay the rate falls on a straight line: the peak at the end of warmup, 0 at the last step.",
        "After warmup, lr = peak · (total - step) / (total - warmup).",
    ], why="Warmup and decay are just two straight lines in the step number.")


def check_clip_factor(grads, max_norm: float, answer) -> bool:
    """Exercise 4.3: the factor clip_grad_norm_ multiplies every gradient by."""
    tensors = [torch.as_tensor(g, dtype=torch.float64) for g in grads]
    norm = math.sqrt(sum(float((t ** 2).sum()) for t in tensors))
    expected = min(1.0, max_norm / (norm + 1e-6))
    equal = _close(5e-4)
    mistakes = [
        (norm, "that is the global norm itself; the factor compares it with max_norm."),
        (min(1.0, max_norm / sum(float(t.norm()) for t in tensors)), "you added the tensors' norms. The global norm "
         "is the length of ONE vector made of all entries: the square root of the sum of all squares."),
        (norm / max_norm, "the fraction is upside down: the factor shrinks a too-long gradient to length max_norm."),
    ]
    return check_answer(answer, expected, key="4.3", equal=equal, mistakes=_only_wrong(mistakes, expected, equal), hints=[
        "Every gradient gets the SAME factor. Which single length is compared with max_norm?",
        "Put every entry of both tensors into one long vector. How long is it?",
        "global norm = sqrt(sum of all squared entries); factor = min(1, max_norm / norm).",
    ], why="One factor for all tensors keeps the direction of the update.")


def adam_step(theta: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int, *,
              lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
    """One Adam step as a pure function: returns ``(new_theta, new_m, new_v)`` for step number ``t``
    (1 on the first step), given the moments ``m`` and ``v`` after step t - 1.  The package's version
    for Exercise 4.4: it runs :class:`HandAdam` (tested against ``torch.optim.Adam``) from that state."""
    optimiser = HandAdam(theta.detach().clone(), lr=lr, betas=betas, eps=eps)
    optimiser.t = t - 1
    optimiser.state[0].update(m=m.clone(), v=v.clone())
    optimiser.step(grad)
    return optimiser.params[0], optimiser.state[0]["m"], optimiser.state[0]["v"]


def adam_step_cases(n: int = 30, seed: int = 0) -> list[tuple]:
    """Seeded inputs for Exercise 4.4: (theta, grad, m, v, t, lr, betas, eps), with t from 1 to 50
    (bias correction matters most at small t), gradients of very different sizes, and non-default betas."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(n):
        size = int(torch.randint(1, 6, (1,), generator=g))
        scale = 10.0 ** float(torch.randint(-3, 2, (1,), generator=g))
        theta = torch.randn(size, generator=g, dtype=torch.float64)
        grad = scale * torch.randn(size, generator=g, dtype=torch.float64)
        t = 1 if i < 3 else int(torch.randint(1, 51, (1,), generator=g))
        m = torch.zeros(size, dtype=torch.float64) if t == 1 else 0.5 * scale * torch.randn(size, generator=g, dtype=torch.float64)
        v = torch.zeros(size, dtype=torch.float64) if t == 1 else (scale * torch.randn(size, generator=g, dtype=torch.float64)) ** 2
        betas = (0.9, 0.999) if i % 3 else (0.8, 0.99)
        lr = [1e-3, 1e-2, 0.1][i % 3]
        cases.append((theta, grad, m, v, t, lr, betas, 1e-8))
    return cases


def check_adam_step(function) -> bool:
    """Exercise 4.4 (write the code): ``function(theta, grad, m, v, t, lr, betas, eps)`` returns
    ``(new_theta, new_m, new_v)`` for one bias-corrected Adam step."""
    reference = lambda theta, grad, m, v, t, lr, betas, eps: adam_step(theta, grad, m, v, t, lr=lr, betas=betas, eps=eps)

    def equal(got, expected) -> bool:
        try:
            return len(got) == 3 and all(torch.allclose(torch.as_tensor(a, dtype=torch.float64), b, rtol=1e-7, atol=1e-10)
                                         for a, b in zip(got, expected))
        except (TypeError, ValueError, RuntimeError):
            return False

    def describe(args) -> str:
        theta, grad, m, v, t, lr, betas, eps = args
        show = lambda x: [round(float(e), 6) for e in x]
        return f"theta={show(theta)}, grad={show(grad)}, m={show(m)}, v={show(v)}, t={t}, lr={lr}, betas={betas}, eps={eps}"

    # Learners mutate theta/m/v in place sometimes; give each side its own copies.
    cases = adam_step_cases()
    copied = lambda case: tuple(x.clone() if isinstance(x, torch.Tensor) else x for x in case)
    return check_code(function, lambda *a: reference(*copied(a)), [copied(c) for c in cases], equal=equal, describe=describe)
