"""Hand-written optimisers, schedules and clipping against torch.optim, transformers and clip_grad_norm_."""

import math

import pytest
import torch

from course_utils import optim as O

SHAPES = [((2,),), ((3, 4), (5,)), ((2, 3, 2),)]
CASES = [
    (O.HandSGD, torch.optim.SGD, dict(lr=0.1)),
    (O.HandSGD, torch.optim.SGD, dict(lr=0.05, weight_decay=0.01)),
    (O.HandSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (O.HandSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.01)),
    (O.HandSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (O.HandAdam, torch.optim.Adam, dict(lr=0.01)),
    (O.HandAdam, torch.optim.Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (O.HandAdam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (O.HandAdamW, torch.optim.AdamW, dict(lr=0.01)),
    (O.HandAdamW, torch.optim.AdamW, dict(lr=0.02, weight_decay=0.3, betas=(0.95, 0.98))),
]


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("hand, reference, hyper", CASES, ids=lambda x: getattr(x, "__name__", None) or str(x))
def test_hand_optimiser_matches_torch_over_100_steps(hand, reference, hyper, shapes):
    assert O.max_deviation_from_torch(hand, reference, shapes=shapes, steps=100, seed=len(shapes), **hyper) < 1e-7


def test_adamw_equals_adam_with_decoupled_decay():
    a = O.HandAdamW(torch.tensor([1.0, -2.0], dtype=torch.float64), lr=0.1, weight_decay=0.5)
    b = O.HandAdam(torch.tensor([1.0, -2.0], dtype=torch.float64), lr=0.1, weight_decay=0.5, decoupled_weight_decay=True)
    for g in ([0.3, 0.1], [-1.0, 2.0]):
        a.step(torch.tensor(g, dtype=torch.float64))
        b.step(torch.tensor(g, dtype=torch.float64))
    assert torch.equal(a.params[0], b.params[0])


def test_adam_first_step_is_lr_times_sign_worked_example():
    # t = 1: m_hat = g and v_hat = g^2, so the step is -lr * g / (|g| + eps) whatever the size of g.
    opt = O.HandAdam(torch.tensor([1.0, 1.0], dtype=torch.float64), lr=0.1)
    (record,) = opt.step(torch.tensor([0.001, -50.0], dtype=torch.float64))
    assert torch.allclose(record["m_hat"], record["grad"])
    assert torch.allclose(record["update"], torch.tensor([-0.1, 0.1], dtype=torch.float64), atol=1e-5)


def test_momentum_buffer_pytorch_formulation_worked_example():
    # Constant gradient 1, mu = 0.9: buffer 1, 1.9, 2.71 (b_1 = g_1, then b = mu b + g).
    opt = O.HandSGD(torch.zeros(1, dtype=torch.float64), lr=1.0, momentum=0.9)
    buffers = [opt.step(torch.ones(1, dtype=torch.float64))[0]["buffer"].item() for _ in range(3)]
    assert buffers == pytest.approx([1.0, 1.9, 2.71])
    assert opt.params[0].item() == pytest.approx(-5.61)


@pytest.mark.parametrize("wrong", [dict(bias_correction=False), dict(take_sqrt=False)])
def test_wrong_adam_variants_diverge_from_torch(wrong):
    deviation = O.max_deviation_from_torch(lambda p, **kw: O.HandAdam(p, **kw, **wrong), torch.optim.Adam, lr=0.01)
    assert deviation > 1e-2


def test_step_table_shape_and_values():
    table = O.step_table(O.HandAdam(torch.tensor([-8.0, 2.0], dtype=torch.float64), lr=0.5), O.valley_loss, steps=3)
    assert table.shape[0] == 6 and list(table.index.levels[0]) == [1, 2, 3]
    first = table.loc[1]
    assert first["m̂"].tolist() == pytest.approx(first["g"].tolist())
    assert (first["θ after"] - first["θ before"]).tolist() == pytest.approx(first["update Δθ"].tolist())


@pytest.mark.parametrize("name, ours, extra", [
    ("linear", O.linear_warmup_decay_lr, {}),
    ("cosine", O.cosine_warmup_lr, {}),
    ("cosine_with_min_lr", O.cosine_warmup_lr, {"min_lr_rate": 0.1}),
])
@pytest.mark.parametrize("warmup, total", [(0, 20), (10, 100), (7, 33)])
def test_schedules_match_transformers_step_for_step(name, ours, extra, warmup, total):
    reference = O.transformers_schedule_lrs(name, peak_lr=3e-4, warmup_steps=warmup, total_steps=total, **extra)
    kw = {"min_lr_ratio": extra["min_lr_rate"]} if extra else {}
    mine = [ours(s, peak_lr=3e-4, warmup_steps=warmup, total_steps=total, **kw) for s in range(total)]
    assert mine == pytest.approx(reference, abs=1e-15)


def test_schedule_worked_values():
    assert O.linear_warmup_decay_lr(5, peak_lr=1.0, warmup_steps=10, total_steps=110) == 0.5
    assert O.linear_warmup_decay_lr(60, peak_lr=1.0, warmup_steps=10, total_steps=110) == 0.5
    assert O.cosine_warmup_lr(60, peak_lr=1.0, warmup_steps=10, total_steps=110) == pytest.approx(0.5)
    assert O.cosine_warmup_lr(110, peak_lr=1.0, warmup_steps=10, total_steps=110, min_lr_ratio=0.1) == pytest.approx(0.1)


def _model_pair(seed, dtype=torch.float64):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(dtype)
    twin = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(dtype)
    twin.load_state_dict(model.state_dict())
    x = torch.randn(16, 4, dtype=dtype) * 5
    for m in (model, twin):
        (m(x) ** 2).sum().backward()
    return model, twin


@pytest.mark.parametrize("max_norm", [0.5, 1.0, 1e6])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_clip_by_global_norm_matches_torch(max_norm, dtype):
    model, twin = _model_pair(0, dtype)
    ours = O.clip_by_global_norm(model.parameters(), max_norm)
    ref = torch.nn.utils.clip_grad_norm_(twin.parameters(), max_norm)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert torch.allclose(ours, ref, rtol=tol)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=tol, atol=tol)
    # After clipping the norm is exactly torch's norm times torch's factor: max_norm when the norm was
    # above it (minus the eps), unchanged below.  A clip that did nothing, or scaled wrongly, fails.
    after = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in twin.parameters()]).double()).item()
    expected = ref.item() * min(1.0, max_norm / (ref.item() + 1e-6))
    assert O.global_grad_norm(model.parameters()).item() == pytest.approx(expected, rel=tol * 10)
    assert after == pytest.approx(expected, rel=tol * 10)
    assert (expected < ref.item()) == (max_norm < ref.item())  # the cases do reach both branches


@pytest.mark.parametrize("values", [[1e30, 1e30], [3e19, 1.0], [float("inf"), 1.0], [float("nan"), 2.0],
                                    [1e19, -1e19], [0.0, 0.0]])
def test_clip_by_global_norm_matches_torch_on_overflow_inf_nan_and_zero(values):
    ours, theirs = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    ours.grad, theirs.grad = torch.tensor(values), torch.tensor(values)
    norm = O.clip_by_global_norm([ours], 1.0)
    ref = torch.nn.utils.clip_grad_norm_([theirs], 1.0)
    torch.testing.assert_close(norm, ref, equal_nan=True)
    torch.testing.assert_close(ours.grad, theirs.grad, equal_nan=True)


def test_global_clipping_keeps_direction_per_tensor_does_not():
    model, twin = _model_pair(1)
    before = torch.cat([p.grad.flatten() for p in model.parameters()])
    O.clip_by_global_norm(model.parameters(), 1.0)
    O.clip_each_tensor_separately(twin.parameters(), 1.0)
    cos = torch.nn.functional.cosine_similarity
    after_global = torch.cat([p.grad.flatten() for p in model.parameters()])
    after_each = torch.cat([p.grad.flatten() for p in twin.parameters()])
    assert cos(before, after_global, dim=0).item() == pytest.approx(1.0, abs=1e-12)
    assert cos(before, after_each, dim=0).item() < 0.999


def test_trajectory_and_valley():
    path = O.trajectory(O.HandSGD(torch.tensor([-8.0, 2.0], dtype=torch.float64), lr=0.9), steps=10)
    assert path.shape == (11, 2)
    assert O.valley_loss(torch.tensor(path[-1])) < O.valley_loss(torch.tensor(path[0]))
    # Beyond lr = 2 / (largest curvature 2) = 1, plain SGD diverges along the steep direction.
    bad = O.trajectory(O.HandSGD(torch.tensor([-8.0, 2.0], dtype=torch.float64), lr=1.05), steps=30)
    assert abs(bad[-1, 1]) > abs(bad[0, 1])


def test_check_functions(capsys):
    O.check_adam_first_step(1.0, 0.5, 0.1, 0.9)
    O.check_adam_first_step(1.0, 0.5, 0.1, 0.95)
    O.check_warmup_lr(5, 1e-3, 10, 100, 5e-4)
    O.check_warmup_lr(5, 1e-3, 10, 100, 1e-3)
    O.check_clip_factor([[3.0, 4.0]], 1.0, 0.2)
    O.check_clip_factor([[3.0, 4.0]], 1.0, 1.0)
    lines = capsys.readouterr().out.splitlines()
    assert [line.startswith("✅") for line in lines] == [True, False, True, False, True, False]
