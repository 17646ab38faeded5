"""Fine-tune an encoder text classifier on the course's news headlines.

The pieces notebook 07 builds, in the order it uses them: clean the data, split it with
stratification, tokenise with ``map(batched=True)``, batch with dynamic padding and length
grouping, evaluate, and rank training examples by loss.  Run as a script, it is the same
training, data-parallel over processes with ``accelerate`` (torch.distributed underneath):

    python -m course_utils.train_classifier --tiny                  # one process
    torchrun --nproc_per_node 2 -m course_utils.train_classifier --tiny --cpu   # 2 CPU ranks (gloo)
    accelerate launch --num_processes 8 -m course_utils.train_classifier       # 8 GPUs

(On a CPU, ``accelerate launch --cpu --num_processes 2`` started only one process in our tests;
``torchrun`` with ``Accelerator(cpu=True)`` gives two ranks.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from course_utils.data import LABELS, load_records

# Every flag but ``mislabeled`` marks an added copy of a base row (with HTML, a URL, personal data,
# full-width letters or repetition put in) or an empty text; see the datasheet.
KEEP_FLAGS = ("mislabeled",)
MODEL_COLUMNS = ("input_ids", "attention_mask", "token_type_ids", "labels")


# --- Data -------------------------------------------------------------------------------

def clean_news(records: list[dict], keep_flags=KEEP_FLAGS) -> list[dict]:
    """Keep the clean rows, and the rows whose flags are all in ``keep_flags``.

    The other flagged rows are messy copies of rows that are also in the set: cleaning their
    text would only give back the original, a duplicate that could land in train and test at
    once.  Rows flagged ``mislabeled`` are kept on purpose: finding them is error analysis's job."""
    return [record for record in records if set(record["flags"]) <= set(keep_flags)]


def news_splits(lang: str | None = "en", val_size: float = 0.2, test_size: float = 0.3, seed: int = 0,
                records: list[dict] | None = None, keep_flags=KEEP_FLAGS, by: str = "template"):
    """Cleaned ``news_cls`` rows as a ``DatasetDict`` (train / validation / test).

    ``by="template"`` (the default) keeps whole templates in one split, per topic, language and
    ambiguous-or-not (:func:`course_utils.splits.template_split`): every validation and test
    headline then comes from a phrasing the model never saw.  ``by="random"`` is a random split
    stratified by label, where every template also appears in training.

    Only rows whose label we trust go to validation and test.  The flagged ``mislabeled`` rows
    join the training split, so validation and test measure the model against correct labels,
    and the training split carries label noise for error analysis to find."""
    import datasets

    from course_utils.make_datasets import is_ambiguous_template
    from course_utils.splits import template_split

    records = clean_news(records if records is not None else load_records("news_cls"), keep_flags)
    if lang is not None:
        records = [r for r in records if r["lang"] == lang]
    rows = [{"id": r["id"], "text": r["text"], "label": LABELS.index(r["label"]), "lang": r["lang"],
             "template_id": r["template_id"], "ambiguous": is_ambiguous_template(r["template_id"]),
             "mislabeled": "mislabeled" in r["flags"]} for r in records]
    features = datasets.Features({"id": datasets.Value("string"), "text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=LABELS), "lang": datasets.Value("string"),
                                  "template_id": datasets.Value("string"), "ambiguous": datasets.Value("bool"),
                                  "mislabeled": datasets.Value("bool")})
    if by == "template":
        parts = template_split([r["template_id"] for r in rows],
                               [(r["template_id"].rsplit("-", 1)[0], r["ambiguous"]) for r in rows],
                               (1 - val_size - test_size, val_size, test_size), seed=seed)
        pick = {name: [rows[i] for i in idx if name == "train" or not rows[i]["mislabeled"]]
                for name, idx in parts.items()}
        return datasets.DatasetDict({name: datasets.Dataset.from_list(part, features=features)
                                     for name, part in pick.items()})
    if by != "random":
        raise ValueError(f"by must be 'template' or 'random', got {by!r}")
    trusted = datasets.Dataset.from_list([r for r in rows if not r["mislabeled"]], features=features)
    noisy = datasets.Dataset.from_list([r for r in rows if r["mislabeled"]], features=features)
    first = trusted.train_test_split(test_size=test_size, stratify_by_column="label", seed=seed)
    second = first["train"].train_test_split(test_size=val_size / (1 - test_size), stratify_by_column="label", seed=seed)
    return datasets.DatasetDict({"train": datasets.concatenate_datasets([second["train"], noisy]),
                                 "validation": second["test"], "test": first["test"]})


# The 15 TNEWS label codes and their names, from CLUE's labels.json (codes 105 and 111 are unused).
TNEWS_LABEL_NAMES = {
    "100": "news_story", "101": "news_culture", "102": "news_entertainment", "103": "news_sports",
    "104": "news_finance", "106": "news_house", "107": "news_car", "108": "news_edu", "109": "news_tech",
    "110": "news_military", "112": "news_travel", "113": "news_world", "114": "news_stock",
    "115": "news_agriculture", "116": "news_game",
}


def tnews_splits(train, validation, train_rows: int = 3000, seed: int = 0):
    """TNEWS (``clue/clue``, ``tnews``) as a ``DatasetDict`` with the course's column names.

    Its test split has no labels (all -1), so the validation split serves as the test set, and a
    slice of train is held out for validation.  ``label`` stays a ClassLabel, renamed from the
    codes ("100") to their names ("news_story")."""
    import datasets

    codes = train.features["label"].names
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=[TNEWS_LABEL_NAMES.get(c, c) for c in codes])})

    def course_columns(split):
        return datasets.Dataset.from_dict({"text": split["sentence"], "label": split["label"]}, features=features)

    train = course_columns(train).shuffle(seed=seed)
    n = min(train_rows, len(train) * 4 // 5)
    return datasets.DatasetDict({"train": train.select(range(n)),
                                 "validation": train.select(range(n, min(len(train), n + n // 5))),
                                 "test": course_columns(validation)})


def tokenize_splits(splits, tokenizer, max_length: int = 128):
    """Tokenise every split in batches of 1,000 rows (one fast-tokenizer call each) and store lengths."""
    def encode(batch):
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return splits.map(encode, batched=True).rename_column("label", "labels")


def make_loader(dataset, tokenizer, batch_size: int, group_by_length: bool = True, shuffle: bool = True,
                pad_to: int | None = None):
    """A DataLoader that pads each batch only to its own longest row (``DataCollatorWithPadding``).

    With ``group_by_length`` the order is random but rows of similar length share a batch
    (``LengthGroupedSampler``), so there is little padding.  ``pad_to`` pads every batch to a fixed
    length instead, for comparison."""
    from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
    from transformers import DataCollatorWithPadding
    from transformers.trainer_pt_utils import LengthGroupedSampler

    columns = [c for c in MODEL_COLUMNS if c in dataset.column_names]
    # The sampler owns its generator, which course_utils.training.train seeds each epoch, so the
    # order is the same in one process and on every data-parallel rank.
    generator = torch.Generator().manual_seed(0)
    if group_by_length:
        sampler = LengthGroupedSampler(batch_size, lengths=list(dataset["length"]), generator=generator)
    else:
        sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    collator = DataCollatorWithPadding(tokenizer, padding="max_length" if pad_to else "longest", max_length=pad_to)
    return DataLoader(dataset.select_columns(columns), batch_size=batch_size, sampler=sampler, collate_fn=collator)


def batch_padding_fraction(lengths, batches, pad_to: int | None = None) -> float:
    """Share of padded positions when each batch (a list of row indices) is padded to its longest
    row, or to ``pad_to`` for every batch."""
    real = sum(lengths[i] for batch in batches for i in batch)
    total = sum(len(batch) * (pad_to or max(lengths[i] for i in batch)) for batch in batches)
    return 1 - real / total


def sampler_batches(sampler, batch_size: int) -> list[list[int]]:
    """The index batches one pass of ``sampler`` produces."""
    order = list(iter(sampler))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


# --- Evaluation -------------------------------------------------------------------------

@torch.no_grad()
def predict(model, dataset, tokenizer, batch_size: int = 64, device=None) -> torch.Tensor:
    """Logits for every row of ``dataset``, in its order (batches sorted by length for speed)."""
    from transformers import DataCollatorWithPadding

    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    columns = [c for c in MODEL_COLUMNS if c in dataset.column_names and c != "labels"]
    lengths = list(dataset["length"])
    order = sorted(range(len(dataset)), key=lambda i: lengths[i])
    collator = DataCollatorWithPadding(tokenizer)
    features = dataset.select_columns(columns)
    logits = torch.empty(len(dataset), model.config.num_labels)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        batch = collator([features[i] for i in index])
        logits[index] = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
    model.train(was_training)
    return logits


def evaluate(model, dataset, tokenizer, labels=LABELS, batch_size: int = 64) -> dict:
    """Mean loss, accuracy and macro precision / recall / F1 of ``model`` on ``dataset``."""
    from course_utils.metrics import classification_report

    logits = predict(model, dataset, tokenizer, batch_size)
    targets = torch.tensor(list(dataset["labels"]))
    report = classification_report(targets.numpy(), logits.argmax(-1).numpy(), list(labels))
    report.pop("per_class")
    return {"loss": float(F.cross_entropy(logits, targets)), **report}


def per_example_losses(logits: torch.Tensor, labels) -> torch.Tensor:
    """Cross-entropy of each row against its (possibly wrong) label: high = the model disagrees."""
    return F.cross_entropy(logits, torch.as_tensor(labels), reduction="none")


# --- Exercise checks (notebook 07) ------------------------------------------------------

def _to_4_decimals(answer, expected) -> bool:
    from course_utils.exercises import same_value
    return same_value(answer, expected, rel=0.0, abs_tol=5e-4)


def check_fixed_padding_fraction(answer, lengths, pad_to: int) -> None:
    """Exercise 7.3: the padding fraction when every row is padded to ``pad_to`` tokens (a fraction, 0 to 1)."""
    from course_utils.exercises import check_answer
    lengths = [min(n, pad_to) for n in lengths]   # a longer row would be truncated to pad_to
    real, total = sum(lengths), len(lengths) * pad_to
    expected = 1 - real / total
    check_answer(
        answer, expected, key="7.3", equal=_to_4_decimals,
        hints=["Count positions: how many does the padded batch hold in all, and how many of them are real tokens?",
               "Every row takes pad_to positions; the real ones are the row lengths.",
               "fraction = 1 - (sum of the lengths) / (number of rows x pad_to)."],
        mistakes=[(real / total, "that is the share of real positions; the question asks for the padding share."),
                  (100 * expected, "that is a percentage; give a fraction between 0 and 1."),
                  (float(total - real), "that is the number of pad positions; divide it by all the positions."),
                  (1 - real / (len(lengths) * max(lengths)),
                   "that pads to the longest row (dynamic padding of one big batch), not to the fixed length.")],
        why="A fixed length pays for the longest row you might see on every row; dynamic padding pays only per batch.")


def check_mislabeled_precision_at_k(answer, losses, mislabeled, k: int) -> None:
    """Exercise 7.4: precision@k of the ``mislabeled`` flag among the ``k`` highest-loss rows."""
    import numpy as np

    from course_utils.exercises import check_answer
    from course_utils.metrics import precision_at_k
    losses, mislabeled = np.asarray(losses, dtype=float), np.asarray(mislabeled, dtype=bool)
    expected = precision_at_k(losses, mislabeled, k)
    n_flagged = int(mislabeled.sum())
    hits = round(expected * k)
    mistakes = [(float(hits), f"that is the number of flagged rows among the top {k}; divide it by {k}."),
                (precision_at_k(-losses, mislabeled, k),
                 "you took the lowest-loss rows: the suspicious rows are the ones the model disagrees with most."),
                (hits / n_flagged if n_flagged else -1.0,
                 "you divided by the number of flagged rows, which is recall@k; precision divides by the cut-off.")]
    if k == 2 * n_flagged:
        mistakes.insert(0, (precision_at_k(losses, mislabeled, n_flagged),
                            "that is precision@k, printed in section 8; this exercise asks for the top 2k rows."))
    check_answer(
        answer, expected, key="7.4", equal=_to_4_decimals,
        hints=[f"Which rows are 'the top {k}'? Order the training rows by something first.",
               f"Order the rows by loss, highest first, and keep the first {k} of them.",
               f"Count the flagged rows among those {k} and divide by {k} (course_utils.metrics.precision_at_k does this)."],
        mistakes=mistakes,
        why=f"Only {n_flagged} rows are flagged, so among the top {k} at most {min(n_flagged, k)} can be: "
            f"precision@{k} is at most {min(n_flagged, k) / k:.3f} however good the model is.")


# --- The script -------------------------------------------------------------------------

def build_model(args):
    """The encoder to fine-tune: the resolver's model, or a tiny config-built BERT for tests."""
    from course_utils.models import resolve_encoder

    if not args.tiny:
        return resolve_encoder(args.model, labels=LABELS, verbose=args.verbose)
    from transformers import AutoModelForSequenceClassification

    from course_utils.course_tokenizer import load_course_tokenizer
    from course_utils.models import ResolvedModel, small_encoder_config
    tokenizer = load_course_tokenizer()
    # No dropout, so that N ranks and one process see exactly the same computation.
    config = small_encoder_config(len(tokenizer), LABELS, pad_token_id=tokenizer.pad_token_id,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return ResolvedModel(AutoModelForSequenceClassification.from_config(config), tokenizer, "tiny BERT", "config", False)


def defaults_for(resolved, lang: str = "auto", lr: float | None = None) -> tuple[str | None, float]:
    """Language and learning rate that follow the model actually loaded: a hub model
    (bert-base-chinese) reads Chinese and, at BERT-base size, wants 2e-5 to 5e-5; the offline
    MiniLM reads English and the config-built tiny BERT trains from scratch, both at 1e-4."""
    hub = resolved.source == "hub"
    if lang == "auto":
        lang = "zh" if hub else "en"
    return (None if lang == "all" else lang), (lr if lr is not None else (3e-5 if hub else 1e-4))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bert-base-chinese", help="hub id (offline: the resolver's fallback)")
    parser.add_argument("--lang", default="auto", choices=["auto", "en", "zh", "all"],
                        help="auto: Chinese for the hub model, English for the offline MiniLM and --tiny")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer BERT built from a config (for tests)")
    parser.add_argument("--train-rows", type=int, default=None, help="use only the first N training rows")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16, help="per process, per micro-batch")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--lr", type=float, default=None,
                        help="default: 3e-5 for the hub BERT-base, 1e-4 for the small offline and tiny models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu", action="store_true", help="force CPU (gloo backend)")
    parser.add_argument("--out", default=None, help="write the metrics here as JSON (main process only)")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    from accelerate import Accelerator

    from course_utils.training import TrainConfig, train

    args = parse_args(argv)
    accelerator = Accelerator(cpu=args.cpu)
    torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    resolved = build_model(args)
    lang, lr = defaults_for(resolved, args.lang, args.lr)
    splits = tokenize_splits(news_splits(lang, seed=args.seed), resolved.tokenizer)
    train_set = splits["train"]
    if args.train_rows:
        train_set = train_set.select(range(args.train_rows))
    loader = make_loader(train_set, resolved.tokenizer, args.batch_size)
    config = TrainConfig(learning_rate=lr, epochs=args.epochs, max_steps=args.max_steps, seed=args.seed,
                         grad_accum_steps=args.grad_accum, progress=args.verbose and accelerator.is_main_process)
    result = train(resolved.model, loader, config, accelerator=accelerator,
                   eval_fn=lambda model: evaluate(model, splits["validation"], resolved.tokenizer))
    metrics = {"world_size": accelerator.num_processes, "rank": accelerator.process_index,
               "steps": result.steps, "losses": result.losses, "evals": result.evals,
               "real_tokens": result.real_tokens, "padding_fraction": result.padding_fraction,
               "summary": result.summary()}
    if args.out and accelerator.is_main_process:
        Path(args.out).write_text(json.dumps(metrics, indent=1))
    if accelerator.is_main_process and args.verbose:
        print(result.summary())
        print(json.dumps(result.evals[-1] if result.evals else {}, indent=1))
    accelerator.wait_for_everyone()
    # One write per line: under torchrun the ranks share one stdout pipe.
    sys.stdout.write(f"rank {accelerator.process_index} of {accelerator.num_processes} finished\n")
    sys.stdout.flush()
    accelerator.end_training()
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
