"""Notebooks 07 and 08 along their hub branch, end to end, with stand-ins (no network).

The kernels see a temporary HF cache holding tiny models of the real architectures under the
real ids (``hub_standins``), ``HF_HUB_OFFLINE=1`` (so the resolvers take the real ids from the
cache: classroom mode), ``COURSE_HUB_ON_CPU=1`` (the hub branch is GPU-only otherwise), and a
``sitecustomize.py`` that stubs ``datasets.load_dataset`` with the real schemas and records what
the notebook does (probes).  Outputs are not compared; these properties are asserted, each
checked here with the test's own code:

* the hub model was used, and the public dataset was loaded (issue 12, item 5);
* every SFT example's trained tokens decode to the answer plus ``<|im_end|>``, and the default
  system turn is never trained;
* the padding the loop reports equals the padding counted from the attention masks (or, for
  packed rows, the positions that are not the pad token);
* the classifier trains on Chinese text;
* generation stops at ``<|im_end|>``.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

import hub_standins as standins

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubnb")
    cache = standins.build_hub_cache(root / "hf" / "hub")
    site = root / "site"
    standins.write_sitecustomize(site)
    qwen_dir = next((cache / "models--Qwen--Qwen2.5-0.5B" / "snapshots").iterdir())
    bert_dir = next((cache / "models--bert-base-chinese" / "snapshots").iterdir())
    from transformers import AutoTokenizer
    qwen_tok, bert_tok = AutoTokenizer.from_pretrained(qwen_dir), AutoTokenizer.from_pretrained(bert_dir)
    env = {"HF_HOME": str(root / "hf"), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "COURSE_HUB_ON_CPU": "1", "COURSE_HUB_PAD_ID": str(qwen_tok.pad_token_id),
           "PYTHONPATH": os.pathsep.join([str(site)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    return {"root": root, "env": env, "qwen": qwen_tok, "bert": bert_tok}


def execute(name, hub_env, monkeypatch):
    """Run notebook ``name`` in a scratch folder; return its printed text and the probe records."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    work = hub_env["root"] / name.split("_")[0]
    work.mkdir()
    shutil.copy(NOTEBOOKS / name, work / name)
    log = work / "probes.jsonl"
    for key, value in {**hub_env["env"], "COURSE_HUB_PROBE_LOG": str(log)}.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(work / name, as_version=4)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    except CellExecutionError as error:
        pytest.fail(f"{name} failed on its hub branch (stand-in models, COURSE_HUB_ON_CPU=1):\n{error}")
    text = "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []) if out.get("output_type") == "stream" and out["name"] == "stdout")
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert not [r for r in records if r["kind"].endswith("probe_error")], records
    return text, records


def cjk_share(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    return sum("\u4e00" <= c <= "\u9fff" for c in chars) / max(len(chars), 1)


def padding_problems(records) -> list[str]:
    runs = [r for r in records if r["kind"] == "train" and not r["resume"]]
    if not runs:
        return ["the notebook never called course_utils.training.train"]
    return [f"train() on {r['model']} reported {r['reported_real']} real tokens; the masks count {r['counted_real']}"
            for r in runs if r["reported_real"] != r["counted_real"]]


def test_07_hub_branch(hub_env, monkeypatch):
    text, records = execute("07_finetune_encoder_classifier.ipynb", hub_env, monkeypatch)
    problems = padding_problems(records)
    if "Model: bert-base-chinese from the local Hugging Face cache" not in text:
        problems.append("the resolver did not take bert-base-chinese from the cache")
    if not re.search(r"Dataset: clue/clue/tnews \S+ from the local Hugging Face cache", text):
        problems.append("TNEWS was not loaded through course_utils.hub.load_public_dataset (issue 12 item 5)")
    hub_runs = [r for r in records if r["kind"] == "train" and "bert-base-chinese" in r["name"]]
    if not hub_runs:
        problems.append("no training run of the bert-base-chinese model")
    for run in hub_runs:  # the classifier reads Chinese: decode its first batch with the BERT tokenizer
        decoded = hub_env["bert"].batch_decode(run["first_ids"], skip_special_tokens=True)
        if cjk_share("".join(decoded)) <= 0.5:
            problems.append(f"bert-base-chinese trained on non-Chinese text: {decoded[:2]}")
    assert not problems, "\n".join(problems)


def test_08_hub_branch(hub_env, monkeypatch):
    tokenizer = hub_env["qwen"]
    text, records = execute("08_sft_causal_lm.ipynb", hub_env, monkeypatch)
    problems = padding_problems(records)
    if "Model: Qwen/Qwen2.5-0.5B from the local Hugging Face cache" not in text:
        problems.append("the resolver did not take Qwen/Qwen2.5-0.5B from the cache")
    if not re.search(r"Dataset: shibing624/alpaca-zh \S+ from the local Hugging Face cache", text):
        problems.append("alpaca-zh was not loaded through course_utils.hub.load_public_dataset (issue 12 item 5)")
    system = tokenizer("<|im_start|>system\n" + standins.DEFAULT_SYSTEM + "<|im_end|>\n")["input_ids"]
    examples = [r for r in records if r["kind"] == "sft_example" and r["loss_on"] == "assistant"]
    if not examples:
        problems.append("the notebook built no SFT examples through course_utils.sft.sft_example")
    for ex in examples:
        ids, labels = ex["input_ids"], ex["labels"]
        trained = tokenizer.decode([t for t, y in zip(ids, labels) if y != -100])
        if trained != ex["messages"][-1]["content"] + "<|im_end|>":
            problems.append(f"trained tokens {trained!r} are not the answer + <|im_end|>")
        if ex["messages"][0]["role"] != "system":  # Qwen2.5's template adds its default system turn ...
            if ids[:len(system)] != system or any(y != -100 for y in labels[:len(system)]):
                problems.append("the default system turn is missing or trained")  # ... never trained
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    generations = [r for r in records if r["kind"] == "generate"]
    if not generations:
        problems.append("the notebook never generated")
    for gen in generations:
        if im_end not in gen["eos"]:
            problems.append(f"generate() does not stop at <|im_end|>: eos {gen['eos']}")
        for row in gen["rows"]:
            if im_end in row and not set(row[row.index(im_end) + 1:]) <= {gen["pad"]}:
                problems.append(f"tokens after <|im_end|>: {row}")
    assert not problems, "\n".join(sorted(set(problems))[:20])
