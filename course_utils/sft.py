"""Instruction SFT of a causal LM, end to end: split, examples, pre-training text, generation, scoring.

The recipe the notebook follows:

1. split the verifiable tasks so that every test prompt is unseen in training
   (:func:`make_split`: a held-out phrasing per task, and fresh training records that never
   repeat a test prompt).  On tasks that share their input (:func:`make_shared_input_split`)
   each test item is also asked without its instruction, with another task's instruction and in
   the held-out phrasing (:func:`control_version`), so that instruction following can be tested
   against a control; :func:`augment_instructions` (EDA) and :func:`paraphrase_instructions`
   (hand-written wordings) vary the training instructions;
2. render each record with the tokenizer's chat template and train only the assistant's tokens
   and its end-of-turn token (``chat_format.build_sft_example``; :func:`sft_example` also
   handles templates without ``{% generation %}`` markers and the all-tokens ablation);
3. pack the examples into fixed-length rows (``course_utils.packing``) and train with the
   course loop (``course_utils.training``);
4. score greedy generations by exact match and by the share that end with the end-of-turn token
   (:func:`generate_answers`, :func:`score`).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter

from course_utils import tasks
from course_utils.chat_format import IGNORE_INDEX, build_sft_example, build_sft_example_by_diff

END_OF_TURN = "<|im_end|>"

# A public Chinese instruction set for the online path.  shibing624/alpaca-zh: about 49k
# instruction/input/output rows, Chinese answers written by GPT-4 for the Alpaca prompts
# (Peng et al. 2023, "Instruction Tuning with GPT-4"); licence CC BY-NC 4.0 (non-commercial).
PUBLIC_ZH_INSTRUCTIONS = "shibing624/alpaca-zh"
PUBLIC_ZH_LICENCE = "CC BY-NC 4.0 (research and non-commercial use only)"


# --- 1. Data: which prompts the model may see --------------------------------------------

def template_index(record: dict) -> int:
    """The phrasing number k of a record whose ``template_id`` is ``task-lang-k``."""
    return int(record["template_id"].rsplit("-", 1)[1])


def instance_key(record: dict) -> tuple:
    """What makes two records the same question: task, language, phrasing and parameters."""
    params = record["params"]
    params = json.loads(params) if isinstance(params, str) else params
    return record["task"], record["lang"], record["template_id"], json.dumps(params, sort_keys=True)


# The tasks a 0.6M-parameter model trained from scratch learns within a CPU minute.  Addition
# with carries, calendar arithmetic, reversing and upper-casing need far more training (the last
# two ask for the letters inside multi-letter BPE tokens); a pretrained hub model gets all eight.
SMALL_MODEL_TASKS = ("count", "unit", "extract", "sentiment")


def split_by_template(records, held_out: int = 2) -> tuple[list[dict], list[dict]]:
    """Records whose phrasing is NOT template ``held_out``, and those that are.

    Every task and language has three phrasings (0, 1, 2), so the held-out phrasing of each
    task is a prompt the model never sees in training."""
    train = [r for r in records if template_index(r) != held_out]
    test = [r for r in records if template_index(r) == held_out]
    return train, test


def fresh_training_records(n: int, seed: int, templates=(0, 1), exclude=(), task_names=None) -> list[dict]:
    """``n`` new task records drawn with ``tasks.sample_task`` from the given phrasings.

    Records whose :func:`instance_key` is in ``exclude`` (the test set) are skipped, so no test
    prompt appears in training even by chance."""
    rng = random.Random(seed)
    excluded = {instance_key(r) for r in exclude}
    names = list(task_names or tasks.TASKS)
    out = []
    while len(out) < n:
        record = tasks.sample_task(rng, task=rng.choice(names), templates=tuple(templates))
        if instance_key(record) not in excluded:
            out.append(record)
    return out


def make_split(records, n_train: int, seed: int, task_names=None, held_out: int = 2) -> dict:
    """Train and test sets in which every test prompt is unseen.

    * ``test_new_phrasing``: the shipped records of phrasing ``held_out``, never trained on;
    * ``test_seen_phrasing``: the shipped records of the other phrasings.  Their phrasings are
      trained on, but not these prompts: training uses ``n_train`` fresh records drawn with
      another seed, minus any that repeat a test prompt;
    * ``train``: those fresh records, phrasings other than ``held_out`` only.
    """
    names = tuple(task_names or tasks.TASKS)
    records = [r for r in records if r["task"] in names]
    seen, new = split_by_template(records, held_out)
    phrasings = tuple(k for k in (0, 1, 2) if k != held_out)
    train = fresh_training_records(n_train, seed, templates=phrasings, exclude=seen + new, task_names=names)
    return {"train": train, "test_seen_phrasing": seen, "test_new_phrasing": new}


# --- 1b. Instruction augmentation: more wordings of the same task ---------------------------

_SLOT = re.compile(r"\s*\{\w+\}\s*")  # a parameter slot such as {n}, with the spaces around it


def reword_template(template: str, lang: str, rng: random.Random, p_delete: float = 0.2, n_swap: int = 1) -> str:
    """A reworded task phrasing made with notebook 06b's EDA operations on its words: random
    deletion (each word goes with probability ``p_delete``), then ``n_swap`` random swaps.

    The parameter slots (``{n}``, ``{src}``, ...) are never deleted and never move, so the
    reworded template still asks for the same answer.  If every word would go, none does."""
    from course_utils import augment
    slots = _SLOT.findall(template)
    names = iter(f"<SLOT{chr(65 + i)}>" for i in range(len(slots)))  # augment keeps <UPPER> tokens whole
    words = augment.tokenize(_SLOT.sub(lambda m: f" {next(names)} ", template), lang)
    def is_slot(word):
        return word.startswith("<SLOT")

    kept = [w for w in words if is_slot(w) or rng.random() >= p_delete]
    if all(map(is_slot, kept)):
        kept = list(words)
    # Swap among the words only: the slots keep their places.
    free = [i for i, w in enumerate(kept) if not is_slot(w)]
    for i, word in zip(free, augment.random_swap([kept[i] for i in free], n_swap, rng)):
        kept[i] = word
    text = augment.detokenize(kept, lang)
    for i, slot in enumerate(slots):
        text = text.replace(f"<SLOT{chr(65 + i)}>", slot)
    return re.sub(r" {2,}", " ", text).strip()


def augment_instructions(records, share: float, seed: int, **reword_kwargs) -> list[dict]:
    """Copies of ``records`` in which a random ``share`` has its instruction rendered from a
    :func:`reword_template` version of its own phrasing (marked ``reworded=True``).  Inputs,
    parameters and answers are unchanged: the answer is computed from the parameters."""
    rng = random.Random(seed)
    out = []
    for record in records:
        record = dict(record)
        if rng.random() < share:
            template = tasks.TEMPLATES[(record["task"], record["lang"])][template_index(record)]
            reworded = reword_template(template, record["lang"], rng, **reword_kwargs)
            record["instruction"], _ = tasks.render_text(record["task"], record["lang"], reworded, record["params"])
            record["reworded"] = True
        out.append(record)
    return out


def paraphrase_instructions(records, share: float, seed: int) -> list[dict]:
    """Like :func:`augment_instructions`, but a chosen record's instruction is rendered from a
    hand-written, meaning-preserving wording of its task (``tasks.PARAPHRASES``, marked
    ``paraphrased=True``).  The same ``share`` of records changes, so the two augmentations
    differ only in how the new wording is made."""
    rng = random.Random(seed)
    out = []
    for record in records:
        record = dict(record)
        if rng.random() < share:
            template = rng.choice(tasks.PARAPHRASES[(record["task"], record["lang"])])
            record["instruction"], _ = tasks.render_text(record["task"], record["lang"], template, record["params"])
            record["paraphrased"] = True
        out.append(record)
    return out


# --- 1c. Controls: does the model read the instruction at all? ------------------------------
# On tasks that share their input (``tasks.FAMILIES``) the input alone cannot decide the answer.
# Each test item is asked four ways; only "full" beating "no instruction" on the same items shows
# that the instruction is being followed.

CONTROLS = ("full", "no_instruction", "wrong_instruction", "held_out_phrasing")


def _slot_values(template: str, task: str, lang: str, params: dict) -> list[str]:
    """The values a template's slots take for these parameters (``{c}`` -> ``"v"``), in order."""
    import string as _string
    names = [name for _, name, _, _ in _string.Formatter().parse(template) if name]
    rendered = [tasks.render_text(task, lang, "{" + name + "}", params)[0] for name in names]
    return rendered


def other_task(task: str) -> str:
    """The next task of ``task``'s family (cyclically): the "wrong instruction" asked of the same input."""
    members = tasks.FAMILIES[tasks.FAMILY_OF[task]]
    return members[(members.index(task) + 1) % len(members)]


def control_version(record: dict, control: str, held_out: int = 2) -> dict:
    """``record`` (a shared-input task in a trained phrasing) asked one of the :data:`CONTROLS` ways.

    * ``full``: unchanged;
    * ``no_instruction``: the instruction is replaced by its slot values only (``"v"`` for
      "contains v"; nothing for most tasks), the input is kept;
    * ``wrong_instruction``: the instruction of :func:`other_task`, same phrasing, same input.
      ``task`` and ``output`` become that task's, so exact match measures following the
      instruction given; ``asked_task``/``original_output`` keep the original;
    * ``held_out_phrasing``: the same item in phrasing ``held_out``, never trained on.
    """
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, not {control!r}")
    task, lang, params = record["task"], record["lang"], record["params"]
    out = dict(record, control=control)
    k = template_index(record)
    if control == "no_instruction":
        out["instruction"] = " ".join(_slot_values(tasks.TEMPLATES[(task, lang)][k], task, lang, params))
    elif control == "wrong_instruction":
        other = other_task(task)
        out.update(task=other, template_id=f"{other}-{lang}-{k}", asked_task=task, original_output=record["output"],
                   output=tasks.solve(other, lang, params))
        out["instruction"], _ = tasks.render(other, lang, k, params)
    elif control == "held_out_phrasing":
        out["template_id"] = f"{task}-{lang}-{held_out}"
        out["instruction"], _ = tasks.render(task, lang, held_out, params)
    return out


def make_shared_input_split(n_inputs: int, n_train: int, seed: int, families=None, held_out: int = 2) -> dict:
    """Test items on which only the instruction decides the answer, and training records.

    ``test``: for each family and language, ``n_inputs`` inputs drawn with
    ``tasks.sample_family_params``; each input is asked with *every* task of its family, in a
    trained phrasing chosen at random.  ``train``: ``n_train`` fresh records of the same tasks in
    the trained phrasings, drawn with another seed; any whose prompt (instruction + input) is a
    test prompt is dropped.  The held-out phrasing is never trained on.
    """
    families = tuple(families or tasks.FAMILIES)
    phrasings = tuple(k for k in (0, 1, 2) if k != held_out)
    rng = random.Random(seed)
    test = []
    for family in families:
        for lang in ("zh", "en"):
            for _ in range(n_inputs):
                params = tasks.sample_family_params(family, lang, rng)
                for task in tasks.FAMILIES[family]:
                    k = rng.choice(phrasings)
                    instruction, inp = tasks.render(task, lang, k, params)
                    test.append({"lang": lang, "task": task, "template_id": f"{task}-{lang}-{k}",
                                 "instruction": instruction, "input": inp,
                                 "output": tasks.solve(task, lang, params), "params": params})
    test_prompts = {(r["lang"], user_message(r)) for r in test}
    rng = random.Random(seed + 1)
    names = [t for f in families for t in tasks.FAMILIES[f]]
    train = []
    while len(train) < n_train:
        task, lang, k = rng.choice(names), rng.choice(("zh", "en")), rng.choice(phrasings)
        params = tasks.sample_family_params(tasks.FAMILY_OF[task], lang, rng)
        instruction, inp = tasks.render(task, lang, k, params)
        record = {"lang": lang, "task": task, "template_id": f"{task}-{lang}-{k}", "instruction": instruction,
                  "input": inp, "output": tasks.solve(task, lang, params), "params": params}
        if (lang, user_message(record)) not in test_prompts:
            train.append(record)
    return {"train": train, "test": test}


def correct(records, generations) -> list[bool]:
    """Per item: the answer is right and the turn was closed (what :func:`score` averages)."""
    return [bool(g["ended"] and tasks.is_correct(r, g["prediction"]))
            for r, g in zip(records, generations, strict=True)]


def user_message(record: dict) -> str:
    """The user turn of an alpaca record: the instruction, then the input on a new line if any
    (an empty instruction, as in the no-instruction control, leaves the input alone)."""
    return "\n".join(part for part in (record["instruction"], record["input"]) if part)


def to_messages(record: dict, with_answer: bool = True, system: str | None = None) -> list[dict]:
    """An alpaca record as chat messages (user, then assistant when ``with_answer``)."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user_message(record)})
    if with_answer:
        messages.append({"role": "assistant", "content": record["output"]})
    return messages


def pretraining_texts() -> list[str]:
    """Plain text for a short language-model pre-training: the clean news headlines and the NER
    sentences.  The instruction data is left out on purpose, so that pre-training never shows
    the model a test prompt."""
    from course_utils.data import load_records
    texts = [r["text"] for r in load_records("news_cls") if not r["flags"] and r["text"].strip()]
    texts += [("" if r["lang"] == "zh" else " ").join(r["tokens"]) for r in load_records("ner_bio")]
    return texts


def pretraining_examples(tokenizer, texts) -> list[dict]:
    """Each text plus an end-of-text token, with every token trained (labels = input_ids)."""
    out = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        out.append({"input_ids": ids, "labels": list(ids)})
    return out


# --- 2. Examples: tokens and labels -------------------------------------------------------

def has_generation_markers(tokenizer) -> bool:
    """Whether the chat template marks the assistant's text with ``{% generation %}``."""
    return bool(tokenizer.chat_template) and re.search(r"{%-?\s*generation\s*-?%}", tokenizer.chat_template) is not None


def sft_example(tokenizer, messages, loss_on: str = "assistant", max_length: int | None = None,
                turns: str = "all") -> dict:
    """``input_ids`` / ``labels`` for one conversation.

    ``loss_on="assistant"`` trains the assistant tokens and their end-of-turn token only:
    every assistant turn with ``turns="all"``, the last one with ``turns="last"``.  With a
    template that has ``{% generation %}`` markers this is ``chat_format.build_sft_example``;
    a template without them (most hub models, e.g. Qwen2.5) goes through
    ``chat_format.build_sft_example_by_diff``, which finds each reply by rendering the chat's
    prefixes and gives the same labels.  ``loss_on="all"`` trains every token, prompt included
    (the ablation).
    """
    if loss_on not in ("assistant", "all"):
        raise ValueError(f"loss_on must be 'assistant' or 'all', not {loss_on!r}")
    if has_generation_markers(tokenizer):
        example = build_sft_example(tokenizer, messages, max_length=max_length, turns=turns)
    else:
        example = build_sft_example_by_diff(tokenizer, messages, max_length=max_length, turns=turns)
    if loss_on == "all":
        example["labels"] = list(example["input_ids"])
    return example


def trained_token_share(examples) -> float:
    """Share of all positions that carry a target: how much of each sequence the loss sees."""
    trained = sum(sum(int(x) != IGNORE_INDEX for x in e["labels"]) for e in examples)
    return trained / sum(len(e["input_ids"]) for e in examples)


# --- 3. Generation and scoring ------------------------------------------------------------

def generate_answers(model, tokenizer, records, batch_size: int = 64, max_new_tokens: int = 16,
                     system: str | None = None) -> list[dict]:
    """Greedy answers to each record's prompt, in batches with left padding.

    Returns, per record, the decoded ``prediction`` (up to the end-of-turn token) and ``ended``:
    whether the model closed its turn with the end-of-turn token within ``max_new_tokens``."""
    import torch
    eot = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # a decoder continues from the right end of every row
    device = next(model.parameters()).device
    model.eval()
    out = []
    try:
        for start in range(0, len(records), batch_size):
            chunk = records[start:start + batch_size]
            prompts = [tokenizer.apply_chat_template(to_messages(r, with_answer=False, system=system),
                                                     tokenize=False, add_generation_prompt=True) for r in chunk]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.no_grad():
                generated = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                           eos_token_id=eot, pad_token_id=tokenizer.pad_token_id)
            for row in generated[:, enc["input_ids"].size(1):].tolist():
                ended = eot in row
                answer_ids = row[:row.index(eot)] if ended else row
                out.append({"prediction": tokenizer.decode(answer_ids, skip_special_tokens=True), "ended": ended})
    finally:
        tokenizer.padding_side = side
    return out


def score(records, generations) -> dict:
    """Exact match (the answer, trimmed, equals the computed one AND the turn was closed),
    format-following rate (the turn ended with the end-of-turn token), and exact match per task."""
    hits, total = Counter(), Counter()
    for record, gen in zip(records, generations, strict=True):
        total[record["task"]] += 1
        hits[record["task"]] += gen["ended"] and tasks.is_correct(record, gen["prediction"])
    n = len(records)
    return {"exact_match": sum(hits.values()) / n,
            "format_rate": sum(g["ended"] for g in generations) / n,
            "per_task": {task: hits[task] / total[task] for task in sorted(total)}}


# --- Online: a public Chinese instruction set ----------------------------------------------
# Loaded in notebook 08 with ``course_utils.hub.load_public_dataset(PUBLIC_ZH_INSTRUCTIONS, ...)``,
# which pins the revision and prints one line saying where the data came from.


# --- Exercises ---------------------------------------------------------------------------
# Each check computes its expected answer from the package and prints one line (returns None, so a
# notebook cell ending with a check shows only that line).  Hints go from a nudge to the method;
# the slips learners make most often are recognised and explained.

def _as_list(answer):
    return answer.tolist() if hasattr(answer, "tolist") else answer


def packed_position_ids(seq_lengths, row_length: int) -> list[int]:
    """``position_ids`` of one packed row, as :func:`course_utils.packing.pack_examples` lays it out:
    positions restart at 0 for every example, and the trailing padding starts its own run."""
    from course_utils.packing import segment_ids
    segments = segment_ids(list(seq_lengths), row_length)
    return [sum(1 for s in segments[:i] if s == segments[i]) for i in range(row_length)]


def check_position_ids(answer) -> None:
    """Exercise 8.1: ``position_ids`` of one 10-token row packing examples of lengths 3, 2 and 4, in order."""
    from course_utils.exercises import check_answer
    check_answer(_as_list(answer), packed_position_ids([3, 2, 4], 10), key="8.1",
                 hints=["What should the first token of the second example 'believe' its position is, "
                        "if it is to be treated as it would be alone?",
                        "Positions count from 0 inside each example and start again at the next one; "
                        "the padding after the last example is one more run of its own.",
                        "Write range(3), then range(2), then range(4), then range(10 - 9) one after the other."],
                 mistakes=[(list(range(10)), "you counted across the whole row: then the second example's tokens "
                                             "sit at positions 3 and 4, not where they would be alone. Restart at 0 "
                                             "for every example."),
                           ([0, 1, 2, 0, 1, 0, 1, 2, 3, 4], "the padding position continued the last example's run "
                                                            "(4): it starts its own run at 0, so nothing real "
                                                            "treats it as part of an example."),
                           ([1, 2, 3, 1, 2, 1, 2, 3, 4, 1], "positions count from 0, not 1."),
                           ([0, 1, 2, 0, 1, 0, 1, 2, 3], "that is 9 positions; the row has 10, and the padding "
                                                         "position needs one too.")],
                 why="Restarting positions is what makes a packed example see the rotary positions it has alone.")


EXERCISE_LENGTHS = [9, 3, 8, 2, 7, 7, 4, 6]


def _close_to_3_decimals(answer, expected) -> bool:
    try:
        return abs(float(answer) - float(expected)) < 1e-3
    except (TypeError, ValueError):
        return False


def check_dynamic_padding(answer) -> None:
    """Exercise 8.2: padding fraction of ``EXERCISE_LENGTHS`` in batches of 2, in this order, each padded
    to its longest member."""
    from course_utils.exercises import check_answer
    from course_utils.packing import dynamic_padding_fraction, fixed_padding_fraction
    lengths = EXERCISE_LENGTHS
    expected = dynamic_padding_fraction(lengths, 2)
    positions = sum(lengths) / (1 - expected)
    check_answer(answer, expected, key="8.2", equal=_close_to_3_decimals,
                 hints=["Count two things: the positions the batches occupy, and the real tokens among them.",
                        "Take the lengths two at a time in the given order; each batch occupies 2 x its longer "
                        "length positions.",
                        "Padding fraction = 1 - (sum of lengths) / (sum over batches of 2 x max of the pair)."],
                 mistakes=[(fixed_padding_fraction(lengths, max(lengths)),
                            "you padded every example to the longest of all; dynamic padding pads each batch only "
                            "to its own longest member."),
                           (dynamic_padding_fraction(sorted(lengths), 2),
                            "you sorted the lengths first (length grouping); here the batches are taken in the given "
                            "order."),
                           (round(positions - sum(lengths)),
                            "that is the number of padding positions; the question asks for their fraction of all "
                            "positions."),
                           ((positions - sum(lengths)) / sum(lengths),
                            "you divided the padding by the real tokens; divide by all positions."),
                           (1 - expected, "that is the share of real tokens, not of padding.")],
                 why="The order of the examples decides the padding: sort by length and it drops.")


def check_packed_rows(answer) -> None:
    """Exercise 8.3: how many rows of 12 tokens does best-fit decreasing need for ``EXERCISE_LENGTHS``?"""
    import math

    from course_utils.exercises import check_answer
    from course_utils.packing import best_fit_decreasing
    lengths = EXERCISE_LENGTHS
    check_answer(answer, len(best_fit_decreasing(lengths, 12)), key="8.3",
                 hints=["Do it by hand: the longest lengths first, and keep a list of the room left in each row.",
                        "Each length goes into the open row with the least room that still fits it; "
                        "if none fits, it opens a new row.",
                        "Sorted: 9, 8, 7, 7, 6, 4, 3, 2. Track the rooms: 12-9=3, 12-8=4, ... and place 4, 3 and 2."],
                 mistakes=[(math.ceil(sum(lengths) / 12),
                            "that is the lower bound ceil(46 / 12); it is not reachable here. Which of 9, 8, 7, 7 "
                            "and 6 could share a row?"),
                           (len(lengths), "that is one example per row: nothing was packed.")],
                 why="Any two of 9, 8, 7, 7 and 6 exceed 12, so five rows is also the fewest possible.")


def packed_position_cases(n: int = 30, seed: int = 0) -> list[tuple[list[int], int]]:
    """Random (seq_lengths, row_length) cases: full rows, rows with padding, a single example, length-1 examples."""
    rng = random.Random(seed)
    cases = [([4, 1, 3], 11), ([5], 5), ([1, 1, 1], 4), ([2, 3], 5)]
    while len(cases) < n:
        seq_lengths = [rng.randint(1, 8) for _ in range(rng.randint(1, 5))]
        cases.append((seq_lengths, sum(seq_lengths) + rng.choice([0, 0, 1, 3, 7])))
    return cases


def check_position_ids_code(function) -> None:
    """Exercise 8.4 (write the code): ``function(seq_lengths, row_length)`` returns the ``position_ids``
    of a packed row holding examples of ``seq_lengths`` in order, then padding up to ``row_length``."""
    from course_utils.exercises import check_code_with_hints
    check_code_with_hints(function, packed_position_ids, packed_position_cases(), key="8.4",
                          equal=lambda got, expected: _as_list(got) == expected,
                          describe=lambda args: f"seq_lengths={args[0]}, row_length={args[1]}",
                          hints=["Look at the failing input: where does your output first differ, and what is "
                                 "special about that position?",
                                 "Every example, and the padding after the last one, starts again at 0.",
                                 "Extend a list with range(n) for each length, then with range(row_length - total)."])
