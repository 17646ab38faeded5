"""course_utils.training: resume, accumulation, precision choice, FLOP counting."""

import math

import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler

from course_utils import training
from course_utils.models import small_encoder_config
from course_utils.training import (IGNORE_INDEX, CausalLMCrossEntropy, TokenCrossEntropy, TrainConfig,
                                   accumulate_gradients, autocast_dtype, needs_grad_scaler, train)

VOCAB = 50


def tiny_bert(num_labels=3, dropout=0.1, head="sequence", seed=0):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification
    torch.manual_seed(seed)
    config = small_encoder_config(VOCAB, labels=[f"c{i}" for i in range(num_labels)], hidden_size=16,
                                  num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                  hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    cls = AutoModelForSequenceClassification if head == "sequence" else AutoModelForTokenClassification
    return cls.from_config(config)


def rows(n, seed=0, max_len=12, token_labels=False, num_labels=3):
    """Random sequences of random lengths (1..max_len) with labels."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(1, max_len + 1, (1,), generator=g))
        ids = torch.randint(1, VOCAB, (length,), generator=g)
        if token_labels:
            labels = torch.randint(0, num_labels, (length,), generator=g)
            labels[torch.rand(length, generator=g) < 0.5] = IGNORE_INDEX   # uneven trained targets
        else:
            labels = torch.randint(0, num_labels, (), generator=g)
        out.append({"input_ids": ids, "labels": labels})
    return out


def collate(items):
    """Right-pad to the longest row; padded label positions are ignored."""
    width = max(len(item["input_ids"]) for item in items)
    ids = torch.zeros(len(items), width, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.long)
    token_labels = items[0]["labels"].dim() == 1
    labels = torch.full((len(items), width), IGNORE_INDEX) if token_labels else torch.stack([i["labels"] for i in items])
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        ids[row, :n], mask[row, :n] = item["input_ids"], 1
        if token_labels:
            labels[row, :n] = item["labels"]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# --- Resume ------------------------------------------------------------------------------

def run(tmp_path, stop_after=None, resume=False, save_every=None, device="cpu"):
    data = rows(40, seed=1)
    loader = DataLoader(data, batch_size=4, collate_fn=collate,
                        sampler=RandomSampler(data, generator=torch.Generator().manual_seed(0)))
    val = collate(rows(12, seed=2))

    def eval_fn(model):
        logits = model(input_ids=val["input_ids"].to(device), attention_mask=val["attention_mask"].to(device)).logits.cpu()
        return {"loss": float(torch.nn.functional.cross_entropy(logits, val["labels"]))}

    model = tiny_bert(dropout=0.1, seed=0 if not resume else 123)   # resume must overwrite the weights
    config = TrainConfig(learning_rate=3e-3, epochs=3, grad_accum_steps=2, seed=7, progress=False, save_every=save_every)
    result = train(model, loader, config, eval_fn=eval_fn, checkpoint_dir=tmp_path / "ckpt",
                   resume=resume, stop_after_steps=stop_after, device=device)
    return result, model


@pytest.fixture(scope="module")
def unbroken_run(tmp_path_factory):
    return run(tmp_path_factory.mktemp("unbroken"))


@pytest.mark.parametrize("stop_after", [3, 5, 12])  # mid-epoch, at an epoch boundary (5 steps/epoch), later
def test_interrupted_and_resumed_run_equals_unbroken_run(tmp_path, unbroken_run, stop_after):
    unbroken, unbroken_model = unbroken_run
    first, _ = run(tmp_path / "b", stop_after=stop_after)
    assert first.stopped_early and first.steps == stop_after
    resumed, resumed_model = run(tmp_path / "b", resume=True)
    assert resumed.steps == unbroken.steps == 15
    assert resumed.losses == unbroken.losses            # bit for bit, dropout included
    assert resumed.lrs == unbroken.lrs
    assert resumed.evals == unbroken.evals
    assert resumed.real_tokens == unbroken.real_tokens
    for (name, a), (_, b) in zip(unbroken_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: dropout masks come from the CUDA generator")
def test_resume_on_gpu_restores_the_dropout_masks(tmp_path):
    unbroken, _ = run(tmp_path / "a", device="cuda")
    first, _ = run(tmp_path / "b", stop_after=3, device="cuda")
    resumed, _ = run(tmp_path / "b", resume=True, device="cuda")
    # CUDA sums (embedding backward) are not bit-reproducible; other dropout masks move the loss far more.
    assert first.losses == pytest.approx(unbroken.losses[:3], rel=1e-4)
    assert resumed.losses == pytest.approx(unbroken.losses, rel=1e-4)


def test_checkpoint_files_are_safetensors_with_optimizer_and_scheduler_state(tmp_path):
    import json

    from safetensors.torch import load_file
    run(tmp_path, stop_after=4)
    folder = tmp_path / "ckpt"
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "optimizer.safetensors", "trainer_state.json"]
    optimizer_tensors = load_file(str(folder / "optimizer.safetensors"))
    assert any(k.endswith("exp_avg_sq") for k in optimizer_tensors) and "rng.torch" in optimizer_tensors
    meta = json.loads((folder / "trainer_state.json").read_text())
    assert meta["scheduler"]["last_epoch"] == 4 and meta["result"]["steps"] == 4


def test_seed_data_order_repeats_an_epoch():
    data = list(range(20))
    loader = DataLoader(data, batch_size=5, sampler=RandomSampler(data, generator=torch.Generator()))
    training.seed_data_order(loader, 3)
    first = [b.tolist() for b in loader]
    training.seed_data_order(loader, 3)
    again = [b.tolist() for b in loader]
    training.seed_data_order(loader, 4)
    other = [b.tolist() for b in loader]
    assert first == again and first != other


# --- Gradient accumulation -----------------------------------------------------------------

def grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("token_labels", [False, True])
def test_accumulated_micro_batches_equal_one_big_batch(token_labels):
    """Uneven micro-batches (3, 1, 5, 2 rows; per-token labels half masked) give the big batch's
    loss and gradient when each sums its losses and divides by the step's total targets."""
    data = rows(11, seed=5, token_labels=token_labels)
    sizes = [3, 1, 5, 2]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    micro = [collate(data[s:s + n]) for s, n in zip(starts, sizes)]
    big = collate(data)
    head = "token" if token_labels else "sequence"
    loss = TokenCrossEntropy()
    device = torch.device("cpu")

    model = tiny_bert(dropout=0.0, head=head).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(30)   # confident predictions, so per-row losses differ
    step_loss, _ = accumulate_gradients(model, micro, loss, device)
    accumulated = grads(model)

    model.zero_grad()
    logits = model(input_ids=big["input_ids"], attention_mask=big["attention_mask"]).logits
    reference = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), big["labels"].reshape(-1),
                                                  ignore_index=IGNORE_INDEX)   # torch's own mean over targets
    reference.backward()
    assert step_loss == pytest.approx(reference.item(), rel=1e-5)
    torch.testing.assert_close(accumulated, grads(model), rtol=1e-4, atol=1e-6)

    # The common mistake, averaging the micro-batch means, gives a different loss here.
    counts = [loss.count(b) for b in micro]
    assert len(set(counts)) > 1
    model.zero_grad()
    mean_of_means = sum(loss.loss_sum(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits,
                                      b["labels"]).item() / c for b, c in zip(micro, counts)) / len(micro)
    assert abs(mean_of_means - reference.item()) > 1e-3


def test_train_with_accumulation_matches_big_batch_training():
    """End to end: accumulation 4 over uneven micro-batches == accumulation 1 over the merged batches."""
    data = rows(22, seed=9)
    sizes = [3, 1, 5, 2, 4, 2, 1, 4]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    micro = [collate(data[s:s + n]) for s, n in zip(starts, sizes)]
    merged = [collate(data[starts[i]:starts[i + 4] if i + 4 < len(starts) else len(data)]) for i in (0, 4)]
    config = dict(learning_rate=1e-2, epochs=1, seed=0, progress=False, warmup_ratio=0.0)

    small = tiny_bert(dropout=0.0)
    result_small = train(small, micro, TrainConfig(grad_accum_steps=4, **config), device="cpu")
    large = tiny_bert(dropout=0.0)
    result_large = train(large, merged, TrainConfig(grad_accum_steps=1, **config), device="cpu")
    assert result_small.steps == result_large.steps == 2
    assert result_small.losses == pytest.approx(result_large.losses, rel=1e-5)
    for a, b in zip(small.parameters(), large.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_causal_lm_loss_counts_shifted_targets():
    labels = torch.tensor([[5, 6, IGNORE_INDEX, 7], [IGNORE_INDEX, IGNORE_INDEX, 8, 9]])
    batch = {"labels": labels}
    assert TokenCrossEntropy().count(batch) == 5
    assert CausalLMCrossEntropy().count(batch) == 4          # the first position is never a target
    logits = torch.randn(2, 4, 10)
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 10), labels[:, 1:].reshape(-1),
                                                 ignore_index=IGNORE_INDEX, reduction="sum")
    torch.testing.assert_close(CausalLMCrossEntropy().loss_sum(logits, labels), expected)


# --- Precision -----------------------------------------------------------------------------

@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                                  ((8, 9), torch.bfloat16), ((9, 0), torch.bfloat16),
                                                  ((7, 0), torch.float16)])
def test_auto_precision_follows_compute_capability(monkeypatch, capability, expected):
    from course_utils.runtime import RuntimeInfo
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    dtype = autocast_dtype("auto", torch.device("cuda"))
    assert dtype == expected
    assert needs_grad_scaler(dtype) == (expected == torch.float16)   # fp16 (a T4) needs a GradScaler
    info = RuntimeInfo(colab=False, device="cuda", gpu_name="x", compute_capability=capability,
                       hub_online=False, cjk_font=None, seed=0)
    assert info.amp_dtype == dtype                                    # the same rule as the runtime's


def test_explicit_and_cpu_precision():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert autocast_dtype("fp32", cuda) is None
    assert autocast_dtype("bf16", cuda) == torch.bfloat16
    assert autocast_dtype("fp16", cuda) == torch.float16
    for setting in ("auto", "fp32", "bf16", "fp16"):
        assert autocast_dtype(setting, cpu) is None                   # fp32 on a CPU
    assert not needs_grad_scaler(None) and not needs_grad_scaler(torch.bfloat16)
    with pytest.raises(ValueError):
        autocast_dtype("fp8", cpu)


def test_cpu_run_reports_fp32_and_measurements():
    data = [collate(rows(4, seed=s)) for s in range(3)]
    result = train(tiny_bert(dropout=0.0), data, TrainConfig(progress=False), device="cpu")
    assert result.precision == "fp32" and result.device == "cpu" and result.mfu is None
    real = sum(int(b["attention_mask"].sum()) for b in data)
    total = sum(b["input_ids"].numel() for b in data)
    assert result.real_tokens == real and result.total_positions == total
    assert result.padding_fraction == pytest.approx(1 - real / total)


# --- FLOPs ----------------------------------------------------------------------------------

def test_training_flops_hand_count():
    # 6 x 10 params x 5 tokens + 12 x 2 layers x 4 hidden x 30 (sum of squared lengths)
    assert training.training_flops(10, 5, 2, 4, 30) == 300 + 2880


def test_mfu_uses_the_device_peak(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    mfu = training.model_flops_utilisation(989e12 * 0.25 * 2, 2.0, torch.device("cuda"), torch.bfloat16)
    assert math.isclose(mfu, 0.25)
    assert training.model_flops_utilisation(1e12, 1.0, torch.device("cpu"), None) is None
