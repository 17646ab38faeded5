"""Stand-ins for the hub: tiny models of the real architectures in an HF cache under the real ids,
and ``datasets.load_dataset`` stubs with the real schemas.  No network is ever used.

* ``Qwen/Qwen2.5-0.5B``: a 2-layer Qwen2 whose tokenizer behaves like the real base model's:
  a byte-level BPE with Qwen2's pre-tokenizer, the chat template of Qwen2.5-0.5B's
  tokenizer_config.json (ChatML, a default system turn "You are a helpful assistant.", no
  ``{% generation %}`` markers), ``<|endoftext|>`` as eos and pad, ``<|im_end|>`` closing turns,
  no ``pad_token_id`` in config.json, and an embedding matrix larger than the vocabulary.
* ``bert-base-chinese``: a 2-layer BERT with a bert-base-chinese-style vocabulary ([PAD] 0,
  [unused..], [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, then single characters and ##pieces).
* ``clue/clue`` ``tnews``: ``sentence``, ``label`` (ClassLabel of the 15 TNEWS codes), ``idx``;
  test labels are all -1, as in the real set.  ``shibing624/alpaca-zh``: ``instruction``,
  ``input``, ``output``.

Notebook kernels are separate processes: :func:`write_sitecustomize` writes a ``sitecustomize.py``
that installs the dataset stubs and the probes (:func:`install_probes`) in every kernel started
with its folder on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

QWEN_ID = "Qwen/Qwen2.5-0.5B"
BERT_ID = "bert-base-chinese"

# Qwen2.5-0.5B's chat template, as published in its tokenizer_config.json at commit
# 060db6499f32faf8b98477b0a26969ef7d8b9987 (the base model's default system turn is
# "You are a helpful assistant."; the Instruct model's names Qwen).
QWEN25_CHAT_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""
DEFAULT_SYSTEM = "You are a helpful assistant."

# The 15 TNEWS label codes (105 and 111 are unused in the published data).
TNEWS_CODES = ["100", "101", "102", "103", "104", "106", "107", "108", "109", "110", "112", "113", "114", "115", "116"]
# Words per code for stand-in headlines (the topics of CLUE's labels.json: story, culture, ...).
_TNEWS_TOPICS = {
    "100": "故事 老人 村里 往事", "101": "文化 书法 博物馆 诗词", "102": "明星 电影 综艺 演唱会",
    "103": "球队 比赛 冠军 球员", "104": "经济 银行 理财 市场", "106": "房价 楼盘 买房 租房",
    "107": "汽车 新车 车型 油耗", "108": "高考 学校 老师 学生", "109": "手机 芯片 科技 软件",
    "110": "军事 导弹 航母 部队", "112": "旅游 景点 门票 古镇", "113": "国际 总统 外交 选举",
    "114": "股票 股市 基金 涨停", "115": "农业 种植 农民 粮食", "116": "游戏 玩家 电竞 手游",
}
_FILLER = "今天 为什么 这样 一个 我们 发布 最新 消息 如何 真的".split()


# --- The HF cache layout ----------------------------------------------------------------------

def add_to_cache(cache_dir, repo_id: str, files_dir, revision: str, repo_type: str = "model",
                 commit: str | None = None) -> Path:
    """Put ``files_dir`` in a hub cache as ``repo_id`` at ``revision`` (a branch or a commit hash),
    with the layout huggingface_hub reads: ``<type>s--<org>--<name>/snapshots/<commit>`` and
    ``refs/<branch>`` holding the commit."""
    is_hash = len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
    commit = revision if is_hash else (commit or "0" * 39 + "1")
    repo = Path(cache_dir) / f"{repo_type}s--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(files_dir, snapshot, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ("main" if is_hash else revision)).write_text(commit)
    return snapshot


# --- Qwen2 stand-in ---------------------------------------------------------------------------

def _corpus() -> list[str]:
    from course_utils.data import load_records
    texts = []
    for record in load_records("sft_alpaca"):
        texts += [record["instruction"], record["input"], record["output"]]
    texts += [r["text"] for r in load_records("news_cls")]
    texts += [r["instruction"] + r["output"] for r in alpaca_zh_rows()]
    texts += [DEFAULT_SYSTEM, "system user assistant"]
    return [t for t in texts if t]


def build_qwen_tokenizer(vocab_size: int = 900):
    """A byte-level BPE trained on the course texts, wrapped in transformers' Qwen2Tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=state["vocab"], merges=merges, errors="replace", unk_token=None,
                               additional_special_tokens=["<|im_start|>", "<|im_end|>"], model_max_length=131072)
    tokenizer.chat_template = QWEN25_CHAT_TEMPLATE
    return tokenizer


def build_qwen_standin(folder) -> Path:
    """Save a tiny Qwen2 (config without pad_token_id, vocabulary padded past the tokenizer)."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM
    folder = Path(folder)
    tokenizer = build_qwen_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    padded_vocab = -(-len(tokenizer) // 128) * 128 + 128  # like 151,936 rows for 151,665 tokens
    config = Qwen2Config(vocab_size=padded_vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=eos, eos_token_id=eos, rope_theta=1000000.0)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)  # the hub checkpoint is stored in bf16
    model.generation_config = GenerationConfig(bos_token_id=eos, eos_token_id=eos, do_sample=False,
                                               max_new_tokens=2048)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # The published config.json has no pad_token_id; transformers may write a null one.
    for name in ("config.json", "generation_config.json"):
        data = json.loads((folder / name).read_text())
        data.pop("pad_token_id", None)
        (folder / name).write_text(json.dumps(data, indent=2))
    return folder


# --- BERT stand-in ----------------------------------------------------------------------------

def bert_chinese_vocab() -> list[str]:
    """A vocabulary laid out like bert-base-chinese's vocab.txt: specials at their real ids,
    then punctuation, digits, Latin letters, single CJK characters and ##pieces."""
    from course_utils.data import load_records
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    ascii_chars = [chr(c) for c in range(33, 127)]
    texts = [r["text"] for r in load_records("news_cls")] + [r["sentence"] for r in _tnews_rows("train", 400)]
    cjk = sorted({ch for t in texts for ch in t if "\u4e00" <= ch <= "\u9fff"})
    pieces = [f"##{chr(c)}" for c in range(33, 127)] + [f"##{ch}" for ch in cjk[:200]]
    for token in ascii_chars + cjk + pieces:
        if token not in vocab:
            vocab.append(token)
    return vocab


def build_bert_standin(folder) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = bert_chinese_vocab()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=False,
                              tokenize_chinese_chars=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=512, pad_token_id=0)
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_hub_cache(cache_dir) -> Path:
    """Both stand-ins in ``cache_dir`` under the real ids, at the course's pinned revisions."""
    from course_utils import hub
    cache_dir = Path(cache_dir)
    work = cache_dir.parent / (cache_dir.name + "-build")
    add_to_cache(cache_dir, QWEN_ID, build_qwen_standin(work / "qwen"), hub.model_revision(QWEN_ID))
    add_to_cache(cache_dir, BERT_ID, build_bert_standin(work / "bert"), hub.model_revision(BERT_ID))
    shutil.rmtree(work)
    return cache_dir


# --- Dataset stubs ----------------------------------------------------------------------------

def _tnews_rows(split: str, n: int) -> list[dict]:
    rng = random.Random({"train": 0, "validation": 1, "test": 2}[split])
    rows = []
    for i in range(n):
        label = rng.randrange(len(TNEWS_CODES))
        topic = _TNEWS_TOPICS[TNEWS_CODES[label]].split()
        words = rng.sample(topic, 2) + rng.sample(_FILLER, 2)
        rng.shuffle(words)
        rows.append({"sentence": "".join(words) + rng.choice(["？", "！", "", "。"]),
                     "label": -1 if split == "test" else label, "idx": i})
    return rows


def tnews_dataset_dict(sizes=(("train", 600), ("validation", 150), ("test", 100))):
    """TNEWS with the schema of ``load_dataset("clue/clue", "tnews")``."""
    import datasets
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=TNEWS_CODES),
                                  "idx": datasets.Value("int32")})
    return datasets.DatasetDict({split: datasets.Dataset.from_list(_tnews_rows(split, n), features=features)
                                 for split, n in sizes})


def alpaca_zh_rows(n: int = 240) -> list[dict]:
    """Chinese instruction/input/output rows: the course's verifiable tasks in Chinese."""
    from course_utils import tasks
    rng = random.Random(0)
    rows = []
    while len(rows) < n:
        record = tasks.sample_task(rng)
        if record["lang"] == "zh":
            rows.append({"instruction": record["instruction"], "input": record["input"], "output": record["output"]})
    return rows


def alpaca_zh_dataset_dict():
    import datasets
    features = datasets.Features({k: datasets.Value("string") for k in ("instruction", "input", "output")})
    return datasets.DatasetDict({"train": datasets.Dataset.from_list(alpaca_zh_rows(), features=features)})


STUB_DATASETS = {("clue/clue", "tnews"): tnews_dataset_dict, ("shibing624/alpaca-zh", None): alpaca_zh_dataset_dict}


def stub_load_dataset(path, name=None, split=None, **kwargs):
    """``datasets.load_dataset`` for the stubbed ids; split strings like ``train[:100]`` work."""
    import datasets
    key = (path, name)
    if key not in STUB_DATASETS:
        raise FileNotFoundError(f"no stand-in for dataset {path!r} {name!r} (and no network in tests)")
    full = STUB_DATASETS[key]()
    if split is None:
        return full
    instruction = datasets.ReadInstruction.from_spec(split)
    parts = []
    for absolute in instruction.to_absolute({k: len(v) for k, v in full.items()}):
        parts.append(full[absolute.splitname].select(range(absolute.from_, absolute.to)))
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


# --- Probes for the notebook runs -------------------------------------------------------------

def _log(record: dict) -> None:
    path = os.environ.get("COURSE_HUB_PROBE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def install_probes() -> None:
    """Record what the notebook does, for the test to check afterwards with its own code:

    * every SFT example built by ``course_utils.sft.sft_example`` (messages, ids, labels);
    * per ``training.train`` call: the real tokens it reports and the real tokens counted here
      from each batch's 2-D attention mask, or for packed rows as the positions that are not the
      pad token (``COURSE_HUB_PAD_ID``), plus the first batch's ids and the model's name;
    * every ``generate`` call: its end-of-sequence ids and the generated rows."""
    import torch
    from course_utils import sft, training
    from transformers.generation.utils import GenerationMixin

    pad_id = int(os.environ.get("COURSE_HUB_PAD_ID", "-1"))
    original_example = sft.sft_example

    built = [0]

    def sft_example(tokenizer, messages, *args, **kwargs):
        example = original_example(tokenizer, messages, *args, **kwargs)
        loss_on = kwargs.get("loss_on", args[0] if args else "assistant")
        built[0] += 1
        if built[0] <= 300 or built[0] % 50 == 0:  # notebook 08 builds ~30,000: log a spread sample
            _log({"kind": "sft_example", "messages": messages, "loss_on": loss_on,
                  "input_ids": [int(x) for x in example["input_ids"]], "labels": [int(x) for x in example["labels"]]})
        return example

    counted = []
    original_accumulate = training.accumulate_gradients

    def accumulate_gradients(model, micro_batches, *args, **kwargs):
        for batch in micro_batches:
            mask = batch.get("attention_mask")
            if mask is not None and mask.dim() == 2:
                counted.append(int(mask.sum()))
            else:
                counted.append(int((batch["input_ids"] != pad_id).sum()))
            if len(counted) == 1:
                counted_first.append(batch["input_ids"][:4].tolist())
        return original_accumulate(model, micro_batches, *args, **kwargs)

    counted_first = []
    original_train = training.train

    def train(model, loader, config, *args, **kwargs):
        counted.clear()
        counted_first.clear()
        result = original_train(model, loader, config, *args, **kwargs)
        _log({"kind": "train", "resume": bool(kwargs.get("resume")), "model": type(model).__name__,
              "name": getattr(model.config, "_name_or_path", ""), "reported_real": result.real_tokens,
              "reported_positions": result.total_positions, "counted_real": sum(counted),
              "first_ids": counted_first[0] if counted_first else []})
        return result

    original_generate = GenerationMixin.generate

    def generate(self, *args, **kwargs):
        out = original_generate(self, *args, **kwargs)
        try:
            eos = kwargs.get("eos_token_id", self.generation_config.eos_token_id)
            prompt = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]
            rows = out.sequences if hasattr(out, "sequences") else out
            _log({"kind": "generate", "eos": eos if isinstance(eos, list) else [eos],
                  "pad": kwargs.get("pad_token_id", self.generation_config.pad_token_id),
                  "rows": rows[:, prompt.shape[1]:].tolist()[:64]})
        except Exception as error:  # a probe must never change what the notebook does
            _log({"kind": "generate_probe_error", "error": repr(error)})
        return out

    sft.sft_example = sft_example
    training.accumulate_gradients = accumulate_gradients
    training.train = train
    GenerationMixin.generate = generate


def install_dataset_stubs() -> None:
    import datasets
    datasets.load_dataset = stub_load_dataset


SITECUSTOMIZE = '''\
# Written by tests/hub_standins.py for the hub-path notebook tests only.
import os, sys
sys.path.insert(0, {tests_dir!r})
try:
    import hub_standins
    hub_standins.install_dataset_stubs()
    hub_standins.install_probes()
except Exception as error:  # never break the kernel; the test sees the missing probe records
    print("hub stand-in hooks failed:", repr(error), file=sys.stderr)
'''


def write_sitecustomize(folder) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sitecustomize.py"
    path.write_text(SITECUSTOMIZE.format(tests_dir=str(Path(__file__).resolve().parent)))
    return path
