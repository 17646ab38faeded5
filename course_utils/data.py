"""Load the shipped datasets, validating every record against its schema.

A malformed record is never skipped silently: it becomes a :class:`RecordError` that
names the file, the line, the field and the reason.  ``strict=True`` raises the first
one; ``strict=False`` drops bad records and reports what was kept and what was dropped.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
LABELS = ["sports", "finance", "tech", "entertainment"]
LANGS = ["zh", "en"]
BIO_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
ROLES = ["system", "user", "assistant"]


class RecordError(ValueError):
    """One bad record: where it is and what is wrong with it."""

    def __init__(self, file: str, line: int, field: str, reason: str):
        self.file, self.line, self.field, self.reason = file, line, field, reason
        super().__init__(f"{file}, line {line}, field '{field}': {reason}")


class UnknownDatasetError(LookupError):
    pass


# --- Field checks: each returns None when the value is fine, else the reason --------------

def _type_name(value) -> str:
    return type(value).__name__


def text(value):
    return None if isinstance(value, str) else f"expected a string, got {_type_name(value)}"


def one_of(options):
    def check(value):
        if not isinstance(value, str):
            return f"expected a string, got {_type_name(value)}"
        return None if value in options else f"unknown value {value!r}; expected one of {options}"
    return check


def list_of(item_check):
    def check(value):
        if not isinstance(value, list):
            return f"expected a list, got {_type_name(value)}"
        for i, item in enumerate(value):
            reason = item_check(item)
            if reason:
                return f"item {i}: {reason}"
        return None
    return check


def mapping(value):
    return None if isinstance(value, dict) else f"expected an object, got {_type_name(value)}"


def message(value):
    if not isinstance(value, dict):
        return f"expected an object with role and content, got {_type_name(value)}"
    if set(value) != {"role", "content"}:
        return f"expected keys ['content', 'role'], got {sorted(value)}"
    return one_of(ROLES)(value["role"]) or text(value["content"])


SCHEMAS = {
    "news_cls": {"id": text, "text": text, "label": one_of(LABELS), "lang": one_of(LANGS), "flags": list_of(text)},
    "ner_bio": {"id": text, "lang": one_of(LANGS), "tokens": list_of(text), "tags": list_of(one_of(BIO_TAGS))},
    "sft_alpaca": {"id": text, "lang": one_of(LANGS), "task": text, "template_id": text,
                   "instruction": text, "input": text, "output": text, "params": mapping},
    "sft_chat": {"id": text, "lang": one_of(LANGS), "tasks": list_of(text), "template_ids": list_of(text),
                 "params": list_of(mapping), "messages": list_of(message)},
}

# Cross-field rules a per-field check cannot see.
def _ner_lengths(record):
    if len(record["tokens"]) != len(record["tags"]):
        return "tags", f"{len(record['tags'])} tags for {len(record['tokens'])} tokens"
    return None


RECORD_RULES = {"ner_bio": [_ner_lengths]}

DESCRIPTIONS = {
    "news_cls": "news headlines, 4 topics, zh + en, with flagged mess for cleaning",
    "ner_bio": "PER/LOC/ORG entities in BIO tags; zh per character, en per word",
    "sft_alpaca": "verifiable instruction tasks as instruction/input/output",
    "sft_chat": "the same kind of tasks as chat messages, some multi-turn, some with a system prompt",
}


def validate_record(record, schema: dict, file: str, line: int, rules=()) -> None:
    """Raise :class:`RecordError` for the first problem in ``record``."""
    if not isinstance(record, dict):
        raise RecordError(file, line, "<record>", f"expected a JSON object, got {_type_name(record)}")
    for name in record:
        if name not in schema:
            raise RecordError(file, line, name, f"unknown field; expected fields {sorted(schema)}")
    for name, check in schema.items():
        if name not in record:
            raise RecordError(file, line, name, "missing required field")
        reason = check(record[name])
        if reason:
            raise RecordError(file, line, name, reason)
    for rule in rules:
        problem = rule(record)
        if problem:
            raise RecordError(file, line, *problem)


@dataclass
class LoadReport:
    file: str
    kept: int = 0
    dropped: list[RecordError] = field(default_factory=list)

    def summary(self) -> str:
        line = f"{self.file}: kept {self.kept}, dropped {len(self.dropped)}"
        reasons = "".join(f"\n  dropped: {err}" for err in self.dropped[:10])
        more = f"\n  ... and {len(self.dropped) - 10} more" if len(self.dropped) > 10 else ""
        return line + reasons + more


def raw_records(path: Path):
    """Yield (line number, parsed record or RecordError) from a JSONL or CSV file."""
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                yield reader.line_num, row
        return
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, RecordError(path.name, number, "<line>", f"invalid UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            if not line.strip():
                continue
            try:
                yield number, json.loads(line.strip())
            except json.JSONDecodeError as exc:
                yield number, RecordError(path.name, number, "<json>", f"not valid JSON ({exc.msg} at column {exc.colno})")


def read_records(path, schema: dict, strict: bool = True, rules=()) -> tuple[list[dict], LoadReport]:
    """Read and validate a JSONL or CSV file.  Bad records raise (strict) or are reported as dropped."""
    path = Path(path)
    report, records = LoadReport(path.name), []
    for number, record in raw_records(path):
        try:
            if isinstance(record, RecordError):
                raise record
            validate_record(record, schema, path.name, number, rules)
        except RecordError as err:
            if strict:
                raise
            report.dropped.append(err)
            continue
        records.append(record)
    report.kept = len(records)
    return records, report


def list_datasets() -> list[str]:
    return sorted(SCHEMAS)


def dataset_path(name: str) -> Path:
    if name not in SCHEMAS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    return DATA_DIR / f"{name}.jsonl"


def load_records(name: str, strict: bool = True, verbose: bool = False) -> list[dict]:
    """The validated records of a shipped dataset, as plain Python dicts."""
    records, report = read_records(dataset_path(name), SCHEMAS[name], strict, RECORD_RULES.get(name, ()))
    if verbose:
        print(report.summary())
    return records


def to_dataset(records: list[dict]):
    """A ``datasets.Dataset``.  Free-form objects (task params) are stored as JSON text so
    Arrow does not merge their differing keys into one struct full of nulls."""
    import datasets

    def arrow_safe(value):
        if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)
                                       and "role" not in value[0]):
            return json.dumps(value, ensure_ascii=False)
        return value

    return datasets.Dataset.from_list([{k: arrow_safe(v) for k, v in r.items()} for r in records])


def load(name: str, strict: bool = True, verbose: bool = True):
    """Load a shipped dataset as a ``datasets.Dataset``, printing what was kept and dropped."""
    return to_dataset(load_records(name, strict=strict, verbose=verbose))


def datasheet(name: str) -> str:
    """The section of ``DATASHEET.md`` that documents ``name``."""
    dataset_path(name)
    sheet = (DATA_DIR / "DATASHEET.md").read_text(encoding="utf-8")
    sections = sheet.split("\n## ")
    for section in sections[1:]:
        if section.startswith(f"`{name}`"):
            return "## " + section.strip()
    raise UnknownDatasetError(f"DATASHEET.md has no section for {name!r}")
