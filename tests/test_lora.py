"""course_utils.lora against PEFT's own LoRA layers and torch's AdamW."""

from __future__ import annotations

import copy

import pytest
import torch

peft = pytest.importorskip("peft")

from course_utils import lora  # noqa: E402


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.Linear(6, 10, bias=False)
        self.down = torch.nn.Linear(10, 4, bias=True)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


def _adapted(r=2, alpha=6):
    torch.manual_seed(0)
    base = TwoLayers()
    model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=["up", "down"]))
    return base, model


def test_peft_layer_computes_w_plus_scaled_b_a():
    base, model = _adapted(r=2, alpha=6)
    (W, A, B, scaling), = [v for k, v in lora.adapter_matrices(model).items() if k.endswith("up")]
    with torch.no_grad():
        B.normal_()  # a trained-looking B (it starts at zero)
    assert scaling == 3.0
    x = torch.randn(5, 6)
    by_hand = x @ (W + lora.lora_delta(A, B, alpha=6, r=2)).T
    layer = dict(model.named_modules())["base_model.model.up"]
    assert torch.allclose(layer(x), by_hand, atol=1e-6)


def test_b_starts_at_zero_so_the_adapted_model_is_the_base():
    base, model = _adapted()
    x = torch.randn(3, 6)
    assert all(torch.count_nonzero(B) == 0 for _, _, B, _ in lora.adapter_matrices(model).values())
    assert torch.equal(model(x), base(x))


def test_a_and_b_both_zero_would_never_learn():
    _, model = _adapted()
    with torch.no_grad():
        for _, A, _, _ in lora.adapter_matrices(model).values():
            A.zero_()
    model(torch.randn(3, 6)).pow(2).sum().backward()
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad]
    assert grads and all(g is None or torch.count_nonzero(g) == 0 for g in grads)


def test_parameter_count_matches_peft():
    _, model = _adapted(r=2)
    trainable, total = lora.parameter_counts(model)
    assert trainable == model.get_nb_trainable_parameters()[0] == 2 * (6 + 10) + 2 * (10 + 4)
    assert lora.expected_lora_parameters(model) == trainable
    assert total == 6 * 10 + 10 * 4 + 4 + trainable


def test_merged_weights_give_the_adapter_outputs():
    _, model = _adapted()
    with torch.no_grad():
        for _, _, B, _ in lora.adapter_matrices(model).values():
            B.normal_()
    x = torch.randn(4, 6)
    adapted = model(x)
    merged = copy.deepcopy(model).merge_and_unload()
    assert isinstance(merged, TwoLayers)
    assert torch.allclose(merged(x), adapted, atol=1e-5)
    assert not torch.allclose(merged.up.weight, dict(model.named_modules())["base_model.model.up"].base_layer.weight)


def test_adamw_state_bytes_measured_equal_expected():
    _, model = _adapted()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, fused=True)
    model(torch.randn(2, 6)).sum().backward()
    optimizer.step()
    n = sum(p.numel() for p in params)
    assert lora.optimizer_state_bytes(optimizer) == lora.expected_adamw_state_bytes(n, len(params))
    memory = lora.training_memory(model, optimizer)
    assert memory.gradients == 4 * n and memory.optimizer_state == 8 * n + 4 * len(params)


def test_lora_delta_checks_shapes():
    with pytest.raises(ValueError, match="r=3"):
        lora.lora_delta(torch.zeros(2, 5), torch.zeros(4, 2), alpha=1, r=3)


def test_exercise_check(capsys):
    lora.check_lora_count(16 * (896 + 896) * 2 + 16 * (896 + 128) * 2)
    assert capsys.readouterr().out.startswith("✅")
    lora.check_lora_count(896 * 896 * 2 + 128 * 896 * 2)
    assert "full matrices" in capsys.readouterr().out
    lora.check_lora_count(90_000)
    assert capsys.readouterr().out.startswith("❌")


def test_qwen_counts_on_meta_match_the_formula():
    trainable, total = lora.count_on_meta(lora.QWEN25_05B_CONFIG,
                                          peft.LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    h, i, kv, layers, vocab = 896, 4864, 128, 24, 151936
    per_layer_lora = 16 * (2 * (h + h) + 2 * (h + kv) + 2 * (h + i) + (i + h))  # q, o; k, v; gate, up; down
    assert trainable == layers * per_layer_lora == 8_798_208
    per_layer = (h * h + h) + 2 * (h * kv + kv) + h * h + 3 * h * i + 2 * h  # q, k, v with biases; o; MLP; 2 norms
    assert total == vocab * h + layers * per_layer + h  # tied embeddings, final norm


def test_a_reused_lora_config_adapts_only_the_first_models_layers():
    config = peft.LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")
    from course_utils.models import resolve_causal_lm
    peft.get_peft_model(resolve_causal_lm(online=False, verbose=False).model, config)  # 2 layers
    reused, _ = lora.count_on_meta(lora.QWEN25_05B_CONFIG, config)
    assert reused == 2 * 16 * (2 * (896 + 896) + 2 * (896 + 128) + 2 * (896 + 4864) + (4864 + 896))
