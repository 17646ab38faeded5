"""Hand-written losses against torch.nn.functional, on random inputs with fixed seeds and several shapes."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import losses as L

SHAPES = [(2, 3), (5, 7), (2, 6, 11)]  # (N, C) and (batch, seq, vocab)


def random_case(shape, seed, ignore_fraction=0.0):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(shape, generator=g, dtype=torch.float64)
    target = torch.randint(0, shape[-1], shape[:-1], generator=g)
    if ignore_fraction:
        drop = torch.rand(target.shape, generator=g) < ignore_fraction
        drop.view(-1)[-1] = True   # at least one ignored position ...
        drop.view(-1)[0] = False   # ... and at least one trained one
        target = target.masked_fill(drop, L.IGNORE_INDEX)
    return logits, target


def torch_ce(logits, target, **kw):
    """F.cross_entropy wants the class dimension second; flatten (..., C) to (N, C)."""
    reduction = kw.get("reduction", "mean")
    out = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), **kw)
    return out.reshape(target.shape) if reduction == "none" else out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_log_softmax_and_logsumexp_match_torch(shape, seed):
    logits, _ = random_case(shape, seed)
    assert torch.allclose(L.log_softmax(logits), torch.log_softmax(logits, dim=-1), atol=1e-12)
    assert torch.allclose(L.softmax(logits), torch.softmax(logits, dim=-1), atol=1e-12)
    assert torch.allclose(L.logsumexp(logits), torch.logsumexp(logits, dim=-1), atol=1e-12)


def test_stable_softmax_survives_logits_where_naive_overflows():
    big = torch.tensor([1000.0, 999.0, 998.0])
    assert torch.isnan(L.softmax_naive(big)).any()
    assert torch.allclose(L.softmax(big), torch.softmax(torch.tensor([2.0, 1.0, 0.0]), dim=-1))
    all_blocked = torch.full((3,), float("-inf"))
    assert L.logsumexp(all_blocked).item() == float("-inf")


def test_cross_entropy_steps_worked_example():
    steps = L.cross_entropy_steps(torch.tensor([2.0, 1.0, 0.1], dtype=torch.float64), 0)
    # -log(e^2 / (e^2 + e^1 + e^0.1)), worked out independently of torch
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(1) + math.exp(0.1)))
    assert steps["loss"].item() == pytest.approx(expected, abs=1e-12)
    assert steps["loss"].item() == pytest.approx(0.4170, abs=5e-5)
    assert steps["probs"].sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"weight": True}, {"weight": True, "label_smoothing": 0.25}])
def test_cross_entropy_matches_torch(shape, reduction, options):
    logits, target = random_case(shape, seed=3, ignore_fraction=0.3)
    kw = dict(options)
    if kw.get("weight"):
        kw["weight"] = torch.rand(shape[-1], generator=torch.Generator().manual_seed(4), dtype=torch.float64) + 0.1
    ours = L.cross_entropy(logits, target, reduction=reduction, **kw)
    ref = torch_ce(logits, target, reduction=reduction, **kw)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-10)


def test_all_ignored_gives_nan_like_torch():
    logits, target = torch.randn(3, 4, dtype=torch.float64), torch.full((3,), L.IGNORE_INDEX)
    assert torch.isnan(L.cross_entropy(logits, target)) and torch.isnan(torch_ce(logits, target))


def test_cross_entropy_gradient_matches_torch():
    logits, target = random_case((2, 6, 11), seed=5, ignore_fraction=0.3)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    L.cross_entropy(a, target, label_smoothing=0.1).backward()
    torch_ce(b, target, label_smoothing=0.1).backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-12)
    ignored = target == L.IGNORE_INDEX
    assert ignored.any() and a.grad[ignored].abs().max() == 0  # -100 positions get no gradient


def test_label_smoothing_equals_soft_target_ce():
    logits, target = random_case((6, 5), seed=6)
    q = L.smoothed_targets(target, 5, 0.2).double()
    assert torch.allclose(L.cross_entropy(logits, target, label_smoothing=0.2),
                          L.soft_target_cross_entropy(logits, q), atol=1e-12)


def test_binary_cross_entropy_worked_example():
    p, y = torch.tensor(0.8, dtype=torch.float64, requires_grad=True), torch.tensor(1.0, dtype=torch.float64)
    loss = L.binary_cross_entropy(p, y)
    assert loss.item() == pytest.approx(0.2231, abs=5e-5) and loss.item() > 0
    loss.backward()
    assert p.grad.item() == pytest.approx(-1.25, abs=1e-12)
    assert L.bce_grad_wrt_prob(0.8, 1.0) == pytest.approx(-1.25)
    z = torch.logit(torch.tensor(0.8, dtype=torch.float64)).requires_grad_()
    L.binary_cross_entropy_with_logits(z, y).backward()
    assert z.grad.item() == pytest.approx(-0.2, abs=1e-12)
    numeric = L.central_difference(lambda v: L.binary_cross_entropy_with_logits(torch.tensor(v, dtype=torch.float64), y).item(), z.item())
    assert numeric == pytest.approx(-0.2, abs=1e-8)


@pytest.mark.parametrize("shape", [(4,), (3, 5), (2, 3, 4)])
def test_bce_and_bce_with_logits_match_torch(shape):
    g = torch.Generator().manual_seed(7)
    z = 4 * torch.randn(shape, generator=g, dtype=torch.float64)
    y = (torch.rand(shape, generator=g) < 0.4).double()
    pos_weight = torch.rand(shape[-1], generator=g, dtype=torch.float64) * 3
    assert torch.allclose(L.binary_cross_entropy(torch.sigmoid(z), y), F.binary_cross_entropy(torch.sigmoid(z), y), atol=1e-12)
    assert torch.allclose(L.binary_cross_entropy_with_logits(z, y), F.binary_cross_entropy_with_logits(z, y), atol=1e-12)
    assert torch.allclose(L.binary_cross_entropy_with_logits(z, y, pos_weight),
                          F.binary_cross_entropy_with_logits(z, y, pos_weight=pos_weight), atol=1e-12)
    assert torch.allclose(L.mse(z, y), F.mse_loss(z, y), atol=1e-12)


def test_bce_with_logits_gradient_matches_torch_including_zero_logits():
    z = torch.tensor([0.0, 0.0, 3.0, -2.0, 40.0], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    L.binary_cross_entropy_with_logits(a, y).backward()
    F.binary_cross_entropy_with_logits(b, y).backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-12)
    assert torch.allclose(a.grad, (torch.sigmoid(z) - y) / len(z), atol=1e-12)


def test_bce_with_logits_is_stable_for_extreme_logits():
    z, y = torch.tensor([-120.0, 120.0]), torch.tensor([1.0, 0.0])
    assert torch.allclose(L.binary_cross_entropy_with_logits(z, y), torch.tensor(120.0))


def test_token_and_sequence_means():
    # Two sequences with 1 and 3 trained tokens; uniform logits over 4 classes give log 4 per token,
    # so plant a known extra loss on the lone token of sequence 0.
    logits = torch.zeros(2, 3, 4, dtype=torch.float64)
    logits[0, 0] = torch.tensor([0.0, 0.0, 0.0, math.log(4.0)])  # target 0 there
    labels = torch.tensor([[0, -100, -100], [1, 2, 3]])
    per_token = L.cross_entropy(logits, labels, reduction="none")
    assert L.trained_token_count(labels) == 4
    assert L.token_mean_loss(logits, labels).item() == pytest.approx(per_token.sum().item() / 4)
    seq0, seq1 = per_token[0, 0].item(), math.log(4)
    assert L.sequence_mean_loss(logits, labels).item() == pytest.approx((seq0 + seq1) / 2)
    assert L.perplexity(torch.zeros(1, 5, 9), torch.arange(5)[None]).item() == pytest.approx(9.0)


def test_gradient_accumulation_token_normalisation_equals_big_batch():
    torch.manual_seed(0)
    vocab = 12
    model = torch.nn.Sequential(torch.nn.Embedding(vocab, 6), torch.nn.Linear(6, vocab)).double()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (4, 7), generator=g)
    labels = torch.randint(0, vocab, (4, 7), generator=g)
    for row, keep in enumerate([1, 2, 6, 7]):  # very different numbers of trained tokens
        labels[row, keep:] = L.IGNORE_INDEX
    model.zero_grad()
    big = L.token_mean_loss(model(ids), labels)
    big.backward()
    big_grads = [p.grad.clone() for p in model.parameters()]
    micro = [{"input_ids": ids[:2], "labels": labels[:2]}, {"input_ids": ids[2:], "labels": labels[2:]}]
    loss, grads = L.accumulated_loss_and_grads(model, micro, normalisation="tokens")
    assert torch.allclose(loss, big, atol=1e-12)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(grads, big_grads))
    naive_loss, naive_grads = L.accumulated_loss_and_grads(model, micro, normalisation="naive")
    assert abs(naive_loss.item() - big.item()) > 1e-3
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(naive_grads, big_grads))


def test_check_functions_accept_right_and_reject_wrong(capsys):
    L.check_cross_entropy([2.0, 1.0, 0.1], 0, 0.4170)
    L.check_cross_entropy([2.0, 1.0, 0.1], 0, -0.4170)
    L.check_token_mean([[[0.0, 0.0]]], [[1]], math.log(2))
    L.check_accumulation_divisor([[[1, -100]], [[2, 3]]], 3)
    L.check_accumulation_divisor([[[1, -100]], [[2, 3]]], 2)
    L.check_bce(0.8, 1, 0.2231)
    L.check_bce(0.8, 1, None)
    lines = capsys.readouterr().out.splitlines()
    assert [line.startswith("✅") for line in lines] == [True, False, True, True, False, True, False]
