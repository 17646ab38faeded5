"""Loss functions of fine-tuning, written out by hand and checked against ``torch.nn.functional``.

Everything here is a few lines of tensor arithmetic so a learner can read it next to the maths:

* :func:`log_softmax` / :func:`softmax` use the log-sum-exp trick: subtract the row maximum before
  ``exp`` so nothing overflows (:func:`softmax_naive` shows what happens otherwise);
* :func:`cross_entropy` follows ``F.cross_entropy`` exactly, including ``weight``,
  ``label_smoothing`` and ``ignore_index=-100``, with the class dimension LAST
  (the ``(batch, seq, vocab)`` layout language models produce);
* binary cross-entropy on probabilities and on logits, mean squared error;
* token-level averaging for language-model labels, perplexity, and gradient accumulation with the
  right normaliser (sum of token losses divided by the number of trained tokens).

The notebook ``03_losses.ipynb`` prints every intermediate number from these functions and
``tests/test_losses.py`` pins each one against torch.
"""

from __future__ import annotations

import math

import torch

from course_utils.exercises import check_answer, check_code

IGNORE_INDEX = -100  # the label value PyTorch and Hugging Face skip in the loss


# ---------------------------------------------------------------------------------------------
# softmax and log-softmax
# ---------------------------------------------------------------------------------------------

def softmax_naive(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """exp(z) / sum(exp(z)) straight from the definition.  Overflows once a logit passes ~88 (fp32)."""
    exp = torch.exp(logits)
    return exp / exp.sum(dim=dim, keepdim=True)


def logsumexp(logits: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """log(sum(exp(z))) computed as m + log(sum(exp(z - m))) with m = max(z): the largest term
    becomes exp(0) = 1, so the sum can neither overflow nor be zero."""
    m = logits.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()  # a row of all -inf stays -inf
    out = m + torch.log(torch.exp(logits - m).sum(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def _minus_max(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """z - max(z).  A row of all -inf is left as it is (its max would give -inf - -inf = nan too
    early); a row holding +inf gives nan, as in torch: +inf logits have no probability distribution."""
    m = logits.amax(dim=dim, keepdim=True)
    m = torch.where(m == float("-inf"), torch.zeros_like(m), m).detach()
    return logits - m


def log_softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log p = z - logsumexp(z), computed as (z - max z) - log(sum(exp(z - max z))): the stable
    form every framework uses.  Matches ``torch.log_softmax`` also for inf and nan entries."""
    shifted = _minus_max(logits, dim)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Stable softmax: exp(z - max z) / sum(exp(z - max z)).  Subtracting the max changes nothing
    mathematically (it cancels) but keeps every exp in [0, 1]."""
    exp = torch.exp(_minus_max(logits, dim))
    return exp / exp.sum(dim=dim, keepdim=True)


def cross_entropy_steps(logits: torch.Tensor, target: int) -> dict[str, torch.Tensor]:
    """Every intermediate of cross-entropy for ONE example (a 1-D vector of logits), in order.

    The loss is -log p[target] = logsumexp(z) - z[target]."""
    m = logits.max()
    shifted = logits - m
    exp = torch.exp(shifted)
    total = exp.sum()
    lse = m + torch.log(total)
    log_probs = logits - lse
    probs = torch.exp(log_probs)
    return {"logits": logits, "max": m, "shifted": shifted, "exp(shifted)": exp, "sum": total,
            "logsumexp": lse, "log_probs": log_probs, "probs": probs,
            "loss": -log_probs[target]}


# ---------------------------------------------------------------------------------------------
# cross-entropy (multi-class and token-level)
# ---------------------------------------------------------------------------------------------

def cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, weight: torch.Tensor | None = None,
                  ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy between logits ``(..., C)`` and class ids ``(...)``, as ``F.cross_entropy`` computes it.

    * positions whose target is ``ignore_index`` contribute nothing and are not counted;
    * ``weight[c]`` scales the loss of examples of class c; the ``"mean"`` then divides by the SUM OF
      THE WEIGHTS of the counted targets (not by their number);
    * ``label_smoothing`` = eps trains against (1 - eps) * one-hot + eps / C: a mix of the usual loss
      and the mean of -log p over all classes.
    """
    num_classes = logits.shape[-1]
    target_shape = target.shape
    logits = logits.reshape(-1, num_classes)
    target = target.reshape(-1)
    logp = log_softmax(logits, dim=-1)
    counted = target != ignore_index
    safe_target = torch.where(counted, target, torch.zeros_like(target))  # any valid index; masked below
    nll = -logp.gather(1, safe_target[:, None]).squeeze(1)
    target_weight = counted.to(logp.dtype)
    if weight is not None:
        target_weight = target_weight * weight.to(logp.dtype)[safe_target]
    nll = nll * target_weight
    if label_smoothing > 0:
        class_weight = 1.0 if weight is None else weight.to(logp.dtype)
        smooth = -(logp * class_weight).sum(dim=1) * counted
        per_position = (1 - label_smoothing) * nll + label_smoothing / num_classes * smooth
    else:
        per_position = nll
    if reduction == "none":
        return per_position.reshape(target_shape)
    if reduction == "sum":
        return per_position.sum()
    if reduction == "mean":
        return per_position.sum() / target_weight.sum()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def smoothed_targets(target: torch.Tensor, num_classes: int, label_smoothing: float) -> torch.Tensor:
    """The target distribution label smoothing trains against: (1 - eps) * one-hot + eps / C."""
    one_hot = torch.nn.functional.one_hot(target, num_classes).to(torch.get_default_dtype())
    return (1 - label_smoothing) * one_hot + label_smoothing / num_classes


def soft_target_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Mean over examples of -sum_c q_c log p_c, for a target DISTRIBUTION q."""
    return -(target_probs * log_softmax(logits, dim=-1)).sum(dim=-1).mean()


# ---------------------------------------------------------------------------------------------
# binary cross-entropy and mean squared error
# ---------------------------------------------------------------------------------------------

def binary_cross_entropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of -[y log p + (1 - y) log(1 - p)] over probabilities p.  Each term is >= 0 because
    log of a probability is <= 0.  Like torch, each log is clamped at -100 so p = 0 stays finite."""
    log_p = torch.log(p).clamp_min(-100)
    log_1mp = torch.log1p(-p).clamp_min(-100)
    return -(y * log_p + (1 - y) * log_1mp).mean()


def bce_grad_wrt_prob(p: float, y: float) -> float:
    """dL/dp = -y/p + (1 - y)/(1 - p), from differentiating the binary cross-entropy."""
    return -y / p + (1 - y) / (1 - p)


def binary_cross_entropy_with_logits(z: torch.Tensor, y: torch.Tensor,
                                     pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """BCE on logits z without ever forming sigmoid(z):  (1 - y) z + w * log(1 + exp(-z)),
    where log(1 + exp(-z)) = logsumexp(0, -z) is computed with the max-shift trick, so large |z|
    cannot overflow (and autograd gets the exact derivative sigmoid(z) - y, even at z = 0).
    ``pos_weight`` w (one per label) multiplies the positive term, as in ``BCEWithLogitsLoss``."""
    softplus_neg = logsumexp(torch.stack([torch.zeros_like(z), -z]), dim=0)
    w = 1.0 if pos_weight is None else 1 + (pos_weight - 1) * y
    return ((1 - y) * z + w * softplus_neg).mean()


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error: the loss for real-valued (regression) targets."""
    return ((prediction - target) ** 2).mean()


def central_difference(f, x: float, h: float = 1e-6) -> float:
    """Finite-difference estimate of f'(x): (f(x + h) - f(x - h)) / 2h, error O(h^2)."""
    return (f(x + h) - f(x - h)) / (2 * h)


# ---------------------------------------------------------------------------------------------
# language-model labels: averaging, perplexity, gradient accumulation
# ---------------------------------------------------------------------------------------------

def trained_token_count(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> int:
    """How many label positions the loss actually trains on."""
    return int((labels != ignore_index).sum())


def token_mean_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Sum of token losses over ALL trained tokens in the batch / their number.  What Hugging Face
    causal-LM models return: every trained token weighs the same, long answers weigh more."""
    return cross_entropy(logits, labels, ignore_index=ignore_index, reduction="mean")


def sequence_mean_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean over sequences of each sequence's own token mean: every SEQUENCE weighs the same,
    so a token of a short answer counts more than a token of a long one.

    A sequence whose labels are all ``ignore_index`` has no loss of its own (0 / 0): it is left out
    of the mean, not counted as 0 and not allowed to turn the batch into NaN.  If no sequence has a
    trained token the result is NaN, as ``F.cross_entropy`` gives for an all-ignored batch."""
    per_token = cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")
    counts = (labels != ignore_index).sum(dim=-1)
    trained = counts > 0
    return (per_token.sum(dim=-1)[trained] / counts[trained]).mean()


def perplexity(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """exp(mean token cross-entropy): the number of equally likely choices the model is, on average,
    as unsure as.  A uniform guess over V tokens has perplexity V."""
    return torch.exp(token_mean_loss(logits, labels, ignore_index))


def accumulated_loss_and_grads(model: torch.nn.Module, micro_batches: list[dict], *,
                               normalisation: str = "tokens",
                               ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One optimiser step's worth of gradient accumulation over ``micro_batches``
    (dicts with ``input_ids`` and ``labels``; ``model(input_ids)`` returns logits ``(..., vocab)``).

    * ``"naive"``: backward on each micro-batch's own token mean divided by the number of
      micro-batches, i.e. the mean of the micro-batch means.  Wrong whenever micro-batches hold
      different numbers of trained tokens.
    * ``"tokens"``: backward on each micro-batch's token-loss SUM divided by the trained tokens of
      ALL micro-batches.  Equals the loss and gradient of one big batch.

    Returns the accumulated loss and a copy of every parameter's gradient."""
    if normalisation not in ("naive", "tokens"):
        raise ValueError("normalisation must be 'naive' or 'tokens'")
    model.zero_grad()
    total_tokens = sum(trained_token_count(mb["labels"], ignore_index) for mb in micro_batches)
    losses = []
    for mb in micro_batches:
        logits = model(mb["input_ids"])
        if normalisation == "naive":
            loss = token_mean_loss(logits, mb["labels"], ignore_index) / len(micro_batches)
        else:
            loss = cross_entropy(logits, mb["labels"], ignore_index=ignore_index, reduction="sum") / total_tokens
        loss.backward()
        losses.append(loss.detach())
    return torch.stack(losses).sum(), [p.grad.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------------------------------------
# exercise checks (notebook 03): tiered hints, common mistakes recognised, one "write the code"
# ---------------------------------------------------------------------------------------------

def _close(tol: float):
    """Equality to ``tol`` (answers are asked for to 4 decimals); anything not a number is unequal."""
    def equal(answer, expected) -> bool:
        try:
            return abs(float(answer) - float(expected)) < tol
        except (TypeError, ValueError, RuntimeError):
            return False
    return equal


def _only_wrong(mistakes, expected, equal):
    """Drop a listed mistake that happens to equal the right answer for these inputs."""
    return [(wrong, why) for wrong, why in mistakes if not equal(wrong, expected)]


def check_cross_entropy(logits, target: int, answer) -> bool:
    """Exercise 3.1: the cross-entropy of one example, to 4 decimals."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    probs = torch.softmax(z, -1)
    expected = float(cross_entropy(z[None], torch.tensor([target])))
    equal = _close(5e-4)
    mistakes = [
        (-expected, "the sign is flipped. log p is negative for p < 1, so the loss -log p is positive."),
        (float(probs[target]), "that is the probability of the true class; the loss is the negative log of it."),
        (-math.log10(float(probs[target])), "that is the logarithm to base 10; losses use the natural log (math.log)."),
        (float(-torch.log(probs[(target - 1) % len(z)])), "that is the loss of the class before the true one: "
         "class ids count from 0, so class 2 is the third logit."),
        (float(-torch.log(probs.max())), "that is the loss of the most likely class, not of the true class."),
    ]
    return check_answer(answer, expected, key="3.1", equal=equal, mistakes=_only_wrong(mistakes, expected, equal), hints=[
        "The loss is about one class only, the true one. How likely does the model think that class is?",
        "Turn the logits into probabilities first: exp of each logit divided by the sum of the exps.",
        "loss = -log(softmax(logits)[target]) = logsumexp(logits) - logits[target].",
    ], why="Cross-entropy only looks at the probability of the true class.")


def check_token_mean(logits, labels, answer) -> bool:
    """Exercise 3.2: the token-mean loss of a batch whose labels contain -100."""
    logits, labels = torch.as_tensor(logits, dtype=torch.float64), torch.as_tensor(labels)
    expected = float(token_mean_loss(logits, labels))
    per_token = cross_entropy(logits, labels, reduction="none")
    equal = _close(5e-4)
    mistakes = [
        (float(per_token.mean()), "you averaged in the ignored position: its loss is 0, but it must not be counted "
         "in the denominator either. Divide by the number of trained tokens."),
        (float(per_token.sum()), "that is the sum of the token losses; the mean divides it by the number of trained tokens."),
    ]
    return check_answer(answer, expected, key="3.2", equal=equal, mistakes=_only_wrong(mistakes, expected, equal), hints=[
        "Which positions take part in the loss at all? Look at the labels.",
        "reduction='none' gives 0 at a position labelled -100. What should the sum be divided by?",
        "Sum the per-token losses and divide by (labels != -100).sum(), the number of trained tokens.",
    ], why="Ignored positions are left out of both the sum and the count.")


def check_accumulation_divisor(micro_batch_labels, answer) -> bool:
    """Exercise 3.3: what must every micro-batch's summed loss be divided by?"""
    tensors = [torch.as_tensor(lab) for lab in micro_batch_labels]
    expected = sum(trained_token_count(t) for t in tensors)
    mistakes = [
        (sum(t.numel() for t in tensors), "you counted the positions labelled -100 too; only trained tokens count."),
        (len(tensors), "that is the number of micro-batches: dividing by it averages the micro-batch means, "
         "which is the naive recipe of section 9."),
        (sum(t.shape[0] for t in tensors), "that is the number of sequences; the token mean counts tokens."),
    ]
    def equal(a, e) -> bool:   # an int, a float or a 0-d tensor such as (labels != -100).sum()
        try:
            return not isinstance(a, bool) and float(a) == float(e)
        except (TypeError, ValueError, RuntimeError):
            return False
    return check_answer(answer, expected, key="3.3", equal=equal, mistakes=_only_wrong(mistakes, expected, equal), hints=[
        "The accumulated loss must equal the loss of one big batch made of all three micro-batches.",
        "What does the token mean of one big batch divide by? Count it over the whole step.",
        "Count the labels that are not -100 in ALL micro-batches of the step together.",
    ], why="Every micro-batch divides by the same total, so the sum equals the big batch's token mean.")


def check_bce(p: float, y: int, answer) -> bool:
    """Exercise 3.4: binary cross-entropy of one prediction."""
    expected = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    other = -((1 - y) * math.log(p) + y * math.log(1 - p))
    equal = _close(5e-4)
    mistakes = [
        (-expected, "the sign is flipped: a cross-entropy loss is never negative."),
        (other, "you took the log of the probability of the other label. The model gives the true label "
         "y = %d the probability %s." % (y, "p" if y == 1 else "1 - p")),
        (expected / math.log(10), "that is the logarithm to base 10; use the natural log."),
    ]
    return check_answer(answer, expected, key="3.4", equal=equal, mistakes=_only_wrong(mistakes, expected, equal), hints=[
        "p is the probability of spam. What probability does the model give to the true answer, 'not spam'?",
        "With y = 0 only one of the two terms of the formula survives.",
        "L = -[y log p + (1 - y) log(1 - p)]; here L = -log(1 - p).",
    ], why="The loss is the negative log of the probability given to the true label.")


def masked_token_mean_cases(n: int = 40, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Seeded inputs for Exercise 3.5: logits (batch, seq, vocab) and labels with -100 at random
    positions (whole prompts, padding and single holes), at least one trained token per case, and
    rows of different lengths of answer so that a sequence mean would differ."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for _ in range(n):
        batch, seq, vocab = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((1, 4), (1, 9), (2, 8)))
        logits = 3 * torch.randn(batch, seq, vocab, generator=g, dtype=torch.float64)
        labels = torch.randint(0, vocab, (batch, seq), generator=g)
        labels[torch.rand(batch, seq, generator=g) < 0.4] = IGNORE_INDEX
        if (labels == IGNORE_INDEX).all():
            labels[0, -1] = 0
        cases.append((logits, labels))
    return cases


def check_masked_token_mean(function) -> bool:
    """Exercise 3.5 (write the code): ``function(logits, labels)`` must return the token-mean
    cross-entropy with ``ignore_index=-100``, as ``F.cross_entropy`` and :func:`token_mean_loss` do."""
    def equal(got, expected) -> bool:
        try:
            return torch.as_tensor(got).numel() == 1 and math.isclose(float(got), float(expected), rel_tol=1e-6, abs_tol=1e-9)
        except (TypeError, ValueError, RuntimeError):
            return False
    describe = lambda args: f"logits of shape {tuple(args[0].shape)}, labels {args[1].tolist()}"
    return check_code(function, token_mean_loss, masked_token_mean_cases(), equal=equal, describe=describe)
