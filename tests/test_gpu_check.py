"""The CPU-side pieces of benchmarks/gpu_check.py: parameter and FLOP counts, batches, and the
no-GPU exit.  (The GPU runs themselves need a CUDA machine.)"""

import importlib.util
from pathlib import Path

import pytest
import torch

SPEC = importlib.util.spec_from_file_location(
    "gpu_check", Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gpu_check)


def on_meta(auto_cls, config):
    with torch.device("meta"):  # shapes only: a 0.5B model costs no memory here
        return auto_cls.from_config(config)


def test_qwen25_05b_sizes_match_the_published_parameter_count():
    from transformers import AutoModelForCausalLM
    config, origin = gpu_check.load_config("Qwen/Qwen2.5-0.5B", use_hub=False)
    assert origin == "built from the published sizes"
    model = on_meta(AutoModelForCausalLM, config)
    assert sum(p.numel() for p in model.parameters()) == 494_032_768  # Qwen2.5-0.5B: 0.49B parameters
    H, I, V, L, kv = 896, 4864, 151936, 24, 2 * 64  # 2 key/value heads of 64
    per_layer = (H * H + H) + 2 * (H * kv + kv) + H * H + 3 * H * I  # q, k, v (with bias), o, gate/up/down
    assert gpu_check.matmul_parameters(model) == L * per_layer + V * H  # the tied LM head multiplies once


def test_bert_base_chinese_matmul_parameters_leave_out_the_embeddings():
    from transformers import AutoModelForSequenceClassification
    config, _ = gpu_check.load_config("bert-base-chinese", use_hub=False)
    config.num_labels = 15
    model = on_meta(AutoModelForSequenceClassification, config)
    H, I, L = 768, 3072, 12
    per_layer = 4 * (H * H + H) + (H * I + I) + (I * H + H)
    assert gpu_check.matmul_parameters(model) == L * per_layer + (H * H + H) + (H * 15 + 15)
    embeddings = (21128 + 512 + 2) * H
    assert sum(p.numel() for p in model.parameters()) - gpu_check.matmul_parameters(model) == embeddings + (2 * L + 1) * 2 * H


def test_training_flops_count_real_tokens_only():
    from transformers import BertConfig, BertForSequenceClassification
    model = BertForSequenceClassification(BertConfig(vocab_size=60, hidden_size=8, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16, num_labels=3))
    n = 4 * (8 * 8 + 8) + (8 * 16 + 16) + (16 * 8 + 8) + (8 * 8 + 8) + (8 * 3 + 3)  # = 667
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    batch = {"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": mask}
    assert gpu_check.matmul_parameters(model) == n == 667
    assert gpu_check.training_flops(model, [batch]) == 6 * 667 * 8 + 12 * 1 * 8 * (3 * 3 + 5 * 5)


def test_batch_builders_pad_and_pack_as_the_notebooks_do():
    lengths = [5, 9, 12, 30, 7]
    batches = gpu_check.encoder_batches(lengths, vocab_size=2000, n_batches=3, batch_size=4)
    for b in batches:
        assert b["input_ids"].shape[1] == max(gpu_check.real_lengths(b))  # padded to the longest in the batch
        assert ((b["input_ids"] == 0) == (b["attention_mask"] == 0)).all()
    packed = gpu_check.packed_batches([40, 100, 250], vocab_size=2000, n_batches=3, row=512, rows_per_batch=2)
    assert len(packed) == 3 and all(b["input_ids"].shape == (2, 512) for b in packed)
    for b in packed:
        real = sum(gpu_check.real_lengths(b))
        assert real == int((b["input_ids"] != 0).sum())  # the ids are >= 1000; pad is 0


@pytest.mark.parametrize("recipe, shrink", [
    ("07", dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=1100)),
    ("08", dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                intermediate_size=32, vocab_size=1100)),
])
def test_a_recipe_runs_end_to_end_on_a_cpu_with_tiny_sizes(recipe, shrink):
    """The same code path as on the GPU; run() asserts that the loop's real-token count equals its own."""
    row = gpu_check.run(recipe, "fp16", steps=2, warmup=1, device="cpu", shrink=shrink)
    assert row["tokens_per_s"] > 0 and row["mfu"] is None and 0 <= row["padding"] < 1
    text = gpu_check.report([row], "test device", (8, 0), "now")
    assert "| 2 |" in text and "n/a" in text


def test_without_cuda_it_exits_with_a_message(tmp_path, capsys):
    assert not torch.cuda.is_available()
    assert gpu_check.main(["--output", str(tmp_path / "out.md")]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "out.md").exists()
