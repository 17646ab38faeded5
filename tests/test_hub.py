"""The hub path with stand-ins of the real models in a temporary HF cache (no network).

Covers the course policy (GPU only, classroom mode from the cache, pinned revisions, one printed
line with the reason for a fallback), a Qwen2.5-style tokenizer and config (no pad_token_id in
config.json, ChatML template with a default system turn and no generation markers), the
padding report of the training loop, and ``load_public_dataset`` with the real schemas."""

import json
import re

import pytest
import torch

import hub_standins as standins
from course_utils import chat_format, hub, models, packing, sft, tasks
from course_utils.training import CausalLMCrossEntropy, TrainConfig, train


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    return standins.build_hub_cache(tmp_path_factory.mktemp("hf") / "hub")


@pytest.fixture
def use_cache(hub_cache, monkeypatch):
    """The stand-in cache as the HF cache, offline (HF_HUB_OFFLINE=1 from conftest), forced on a CPU."""
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv(hub.FORCE_ON_CPU_ENV, "1")
    return hub_cache


@pytest.fixture(scope="module")
def qwen(hub_cache):
    import huggingface_hub.constants
    saved = huggingface_hub.constants.HF_HUB_CACHE
    huggingface_hub.constants.HF_HUB_CACHE = str(hub_cache)
    try:
        return models.resolve_causal_lm(hub.QWEN, online=True, verbose=False)
    finally:
        huggingface_hub.constants.HF_HUB_CACHE = saved


def zh_records(n, seed=0):
    rng, out = __import__("random").Random(seed), []
    while len(out) < n:
        record = tasks.sample_task(rng)
        if record["lang"] == "zh":
            out.append(record)
    return out


# --- Policy and classroom mode -----------------------------------------------------------------

def test_classroom_mode_loads_the_cached_qwen_offline(use_cache, capsys):
    resolved = models.resolve_causal_lm(hub.QWEN)
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r"Model: Qwen/Qwen2\.5-0\.5B from the local Hugging Face cache \(pretrained, 0\.\dM parameters\)", line), line
    assert resolved.source == "hub" and resolved.cached and resolved.pretrained
    assert resolved.revision == hub.QWEN25_05B_REVISION == "060db6499f32faf8b98477b0a26969ef7d8b9987"
    assert {p.dtype for p in resolved.model.parameters()} == {torch.float32}  # fp32 master weights
    tokenizer, config = resolved.tokenizer, resolved.model.config
    # As published: config.json names no pad id; eos and pad are <|endoftext|>; the embedding has spare rows.
    snapshot = use_cache / "models--Qwen--Qwen2.5-0.5B" / "snapshots" / hub.QWEN25_05B_REVISION
    assert "pad_token_id" not in json.loads((snapshot / "config.json").read_text())
    assert config.pad_token_id is None
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    assert config.vocab_size > len(tokenizer)
    # The resolver hands the tokenizer's pad id to generate() (and the loop's padding count).
    assert resolved.model.generation_config.pad_token_id == tokenizer.pad_token_id


def test_classroom_mode_loads_the_cached_bert_base_chinese(use_cache, capsys):
    resolved = models.resolve_encoder(hub.BERT_CHINESE, labels=["a", "b", "c"])
    assert capsys.readouterr().out.startswith("Model: bert-base-chinese from the local Hugging Face cache "
                                              "(pretrained body, new randomly initialised head,")
    assert resolved.source == "hub" and resolved.model.config.num_labels == 3
    assert resolved.tokenizer.tokenize("球队夺冠") == ["球", "队", "夺", "冠"]  # one token per character


def test_cpu_with_internet_falls_back_and_says_why(use_cache, monkeypatch, capsys):
    monkeypatch.delenv(hub.FORCE_ON_CPU_ENV)
    monkeypatch.setattr("course_utils.runtime.hub_reachable", lambda timeout=2.0: True)
    monkeypatch.setattr(hub, "gpu_present", lambda: False)
    resolved = models.resolve_causal_lm(hub.QWEN, num_hidden_layers=1)
    line = capsys.readouterr().out.strip()
    assert resolved.source == "config" and not resolved.pretrained
    assert line.endswith(f"instead of Qwen/Qwen2.5-0.5B ({hub.NO_GPU})")
    assert line.count("\n") == 0


def test_no_network_and_nothing_cached_says_hub_not_reachable(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # empty cache
    monkeypatch.setenv(hub.FORCE_ON_CPU_ENV, "1")
    route = hub.decide(hub.QWEN)
    assert (route.use, route.reason) == (False, "hub not reachable")
    models.resolve_encoder(hub.BERT_CHINESE, labels=["a", "b"])
    assert capsys.readouterr().out.strip().endswith("instead of bert-base-chinese (hub not reachable)")


def test_every_course_asset_has_a_revision_constant():
    for kind, repo_id, _, licence in hub.COURSE_ASSETS:
        revision = hub.model_revision(repo_id) if kind == "model" else hub.dataset_revision(repo_id)
        assert revision == "main" or re.fullmatch(r"[0-9a-f]{40}", revision), (repo_id, revision)
        assert licence


# --- The Qwen-style template and SFT examples ----------------------------------------------------

def test_standin_template_renders_qwen25s_documented_format(qwen):
    messages = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}]
    assert qwen.tokenizer.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n你好！<|im_end|>\n")
    assert qwen.tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True).endswith(
        "<|im_start|>assistant\n")
    assert not sft.has_generation_markers(qwen.tokenizer)


def test_sft_examples_train_the_answer_and_im_end_never_the_default_system_turn(qwen):
    tokenizer = qwen.tokenizer
    system_ids = tokenizer("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")["input_ids"]
    for record in zh_records(20):
        example = sft.sft_example(tokenizer, sft.to_messages(record))
        ids, labels = example["input_ids"], example["labels"]
        trained = [t for t, y in zip(ids, labels) if y != -100]
        assert tokenizer.decode(trained) == record["output"] + "<|im_end|>"
        assert [t for t, y in zip(ids, labels) if y != -100] == [y for y in labels if y != -100]  # labels = ids
        assert ids[:len(system_ids)] == system_ids                       # the default system turn is there ...
        assert all(y == -100 for y in labels[:len(system_ids)])          # ... and never trained


# --- Padding: what the loop reports equals what the masks say --------------------------------------

def _fresh(resolved):
    model = type(resolved.model)(resolved.model.config)
    model.generation_config = resolved.model.generation_config
    return model


def test_padding_of_padded_batches_is_counted_from_the_attention_masks(qwen):
    tokenizer = qwen.tokenizer
    examples = [sft.sft_example(tokenizer, sft.to_messages(r)) for r in zh_records(24)]
    collate = chat_format.SFTCollator(pad_token_id=tokenizer.pad_token_id)
    batches = [collate(examples[i:i + 6]) for i in range(0, 24, 6)]
    masks_real = sum(int(b["attention_mask"].sum()) for b in batches)
    positions = sum(b["input_ids"].numel() for b in batches)
    assert masks_real < positions  # there is padding to find
    result = train(_fresh(qwen), batches, TrainConfig(max_steps=4, progress=False), loss=CausalLMCrossEntropy())
    assert (result.real_tokens, result.total_positions) == (masks_real, positions)


def test_padding_of_packed_rows_uses_the_tokenizers_pad_id_not_the_config(qwen):
    """Packed rows carry no 2-D mask; Qwen2.5's config has no pad id.  The loop used to report
    0% padding here; the real share is the room packing left empty."""
    tokenizer = qwen.tokenizer
    examples = [sft.sft_example(tokenizer, sft.to_messages(r)) for r in zh_records(30)]
    rows = packing.pack_examples(examples, 256, tokenizer.pad_token_id)
    batches = [packing.PackedCollator()(rows[i:i + 2]) for i in range(0, len(rows), 2)]
    real = sum(len(e["input_ids"]) for e in examples)
    positions = 256 * len(rows)
    assert real < positions
    model = _fresh(qwen)
    assert model.config.pad_token_id is None
    result = train(model, batches, TrainConfig(max_steps=len(batches), progress=False), loss=CausalLMCrossEntropy())
    assert (result.real_tokens, result.total_positions) == (real, positions)
    assert result.padding_fraction == pytest.approx(1 - real / positions)
    # A model loaded without the resolver knows no pad id: pass the tokenizer's explicitly.
    bare = _fresh(qwen)
    bare.generation_config.pad_token_id = None
    explicit = train(bare, batches, TrainConfig(max_steps=len(batches), progress=False),
                     loss=CausalLMCrossEntropy(), pad_token_id=tokenizer.pad_token_id)
    assert explicit.real_tokens == real


# --- Datasets ----------------------------------------------------------------------------------

@pytest.fixture
def stub_datasets(monkeypatch):
    import datasets
    calls = []

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split, kwargs))
        return standins.stub_load_dataset(path, name, split=split, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_load_public_dataset_tnews_from_the_cache(stub_datasets, monkeypatch, capsys):
    monkeypatch.setenv(hub.FORCE_ON_CPU_ENV, "1")
    ds = hub.load_public_dataset("clue/clue", "tnews", split="validation", fallback="news_cls")
    assert capsys.readouterr().out == "Dataset: clue/clue/tnews validation from the local Hugging Face cache (150 rows)\n"
    assert stub_datasets == [("clue/clue", "tnews", "validation", {"revision": hub.CLUE_REVISION_UNPINNED})]
    assert set(ds.column_names) == {"sentence", "label", "idx"}
    assert ds.features["label"].names == standins.TNEWS_CODES and len(standins.TNEWS_CODES) == 15
    test = standins.stub_load_dataset("clue/clue", "tnews", split="test")
    assert set(test["label"]) == {-1}


def test_load_public_dataset_falls_back_in_one_line(stub_datasets, monkeypatch, capsys):
    monkeypatch.setenv(hub.FORCE_ON_CPU_ENV, "1")
    assert hub.load_public_dataset("no/such-set", split="train", fallback="sft_alpaca") is None
    assert capsys.readouterr().out == "Dataset: offline fallback sft_alpaca (hub not reachable)\n"
    monkeypatch.delenv(hub.FORCE_ON_CPU_ENV)
    assert hub.load_public_dataset("shibing624/alpaca-zh", split="train[:10]", fallback="sft_alpaca") is None
    assert capsys.readouterr().out == "Dataset: offline fallback sft_alpaca (hub not reachable)\n"
    assert stub_datasets == [("no/such-set", None, "train", {"revision": None})]  # no GPU: not even tried


def test_alpaca_zh_stub_has_the_real_columns_and_slices(stub_datasets, monkeypatch, capsys):
    monkeypatch.setenv(hub.FORCE_ON_CPU_ENV, "1")
    ds = hub.load_public_dataset("shibing624/alpaca-zh", split="train[:10]", fallback="sft_alpaca")
    assert ds.column_names == ["instruction", "input", "output"] and len(ds) == 10
    assert "(10 rows)" in capsys.readouterr().out


def test_the_courses_qwen25_template_renders_like_the_published_one(qwen):
    """course_utils.chat_templates reproduces Qwen2.5-Instruct's format without copying it; with
    a system message given (the defaults differ: the base model's is "You are a helpful
    assistant.", the Instruct model's names Qwen) both must render the same text."""
    from course_utils import chat_templates
    course = chat_templates.format_tokenizer("qwen2.5")
    conversations = [
        [{"role": "system", "content": "你是助手。"}, {"role": "user", "content": "1+1=?"},
         {"role": "assistant", "content": "2"}, {"role": "user", "content": " 再见 "}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo\n"}],
    ]
    for messages in conversations:
        for add in (False, True):
            assert course.apply_chat_template(messages, tokenize=False, add_generation_prompt=add) == \
                qwen.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add)


def test_a_gpu_with_internet_downloads_at_the_pinned_revision(monkeypatch, tmp_path):
    """No cache, hub reachable, a GPU: the real id is loaded from the hub at the pinned revision."""
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("course_utils.runtime.hub_reachable", lambda timeout=2.0: True)
    monkeypatch.setattr(hub, "gpu_present", lambda: True)
    monkeypatch.delenv(hub.FORCE_ON_CPU_ENV, raising=False)
    route = hub.decide(hub.QWEN)
    assert (route.use, route.cached, route.revision) == (True, False, hub.QWEN25_05B_REVISION)
    loads = []

    def from_pretrained(hub_id, **kwargs):
        loads.append((hub_id, kwargs.get("revision"), kwargs.get("local_files_only")))
        raise OSError("stubbed: no download in tests")

    from transformers import AutoModelForCausalLM
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    resolved = models.resolve_causal_lm(hub.QWEN, verbose=False, num_hidden_layers=1)
    assert loads == [(hub.QWEN, hub.QWEN25_05B_REVISION, False)]
    assert resolved.source == "config" and resolved.reason == "could not load Qwen/Qwen2.5-0.5B: OSError"


def test_load_public_dataset_online_says_hub(stub_datasets, monkeypatch, capsys):
    monkeypatch.setattr("course_utils.runtime.hub_reachable", lambda timeout=2.0: True)
    monkeypatch.setattr(hub, "gpu_present", lambda: True)
    ds = hub.load_public_dataset("clue/clue", "tnews", split="train[:5%]", fallback="news_cls")
    assert capsys.readouterr().out == "Dataset: clue/clue/tnews train[:5%] from the Hugging Face hub (30 rows)\n"
    assert len(ds) == 30


def test_offline_mode_restores_the_flags():
    import datasets.config
    import huggingface_hub.constants
    before = (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    with hub.offline_mode():
        assert huggingface_hub.constants.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE
    assert (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE) == before


def test_a_cached_config_alone_is_not_classroom_mode(use_cache, tmp_path, monkeypatch):
    """AutoConfig caches config.json only; that must not send the resolver to a cache without weights."""
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    snapshot = use_cache / "models--Qwen--Qwen2.5-0.5B" / "snapshots" / hub.QWEN25_05B_REVISION
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.json").write_text((snapshot / "config.json").read_text())
    standins.add_to_cache(tmp_path, hub.QWEN, tmp_path / "config", hub.QWEN25_05B_REVISION)
    assert not hub.in_local_cache(hub.QWEN, hub.QWEN25_05B_REVISION)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(use_cache))
    assert hub.in_local_cache(hub.QWEN, hub.QWEN25_05B_REVISION)
