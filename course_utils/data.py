"""Load the shipped datasets, validating every record against its schema.

A malformed record is never skipped silently: it becomes a :class:`RecordError` that
names the file, the line, the field and the reason.  ``strict=True`` raises the first
one; ``strict=False`` drops bad records and reports what was kept and what was dropped.

The reading contract (tests/test_robust_readers.py, tests/test_fuzz.py):

* only :class:`RecordError` comes out (a ``ValueError``); a problem with the file as a whole
  (missing, a FIFO, a device, a directory, over :data:`MAX_FILE_BYTES`, a bad CSV header) raises it
  with line 0 (or 1) even when ``strict=False``, since no line can be read;
* every physical line is accounted for: ``kept + len(dropped) + blank == lines``.  Lines end at LF,
  CR LF or a lone CR; a UTF-8 BOM on line 1 is dropped; blank lines are counted, not records;
* JSON is read strictly (:func:`loads_strict`): duplicate keys, NaN/Infinity, integer literals over
  4,300 digits, nesting deeper than 64 and lone surrogates are errors, never silently changed;
* a CSV record is one line (a quoted field may not span lines), under a header without duplicates;
* a valid record is returned exactly as it was written.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import os
import re
import stat
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
        # Bad input may put lone surrogates into a field name; keep every message printable as UTF-8.
        file, field, reason = (str(x).encode("utf-8", "backslashreplace").decode("utf-8") for x in (file, field, reason))
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
    "news_cls": {"id": text, "text": text, "label": one_of(LABELS), "lang": one_of(LANGS), "template_id": text,
                 "flags": list_of(text)},
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
    """What happened to every line of a file: ``kept + len(dropped) + blank == lines``."""

    file: str
    kept: int = 0
    dropped: list[RecordError] = field(default_factory=list)
    blank: int = 0   # empty or whitespace-only lines: counted, neither records nor errors
    lines: int = 0   # physical lines read (CSV: not counting the header)

    def summary(self) -> str:
        blank = f", blank {self.blank}" if self.blank else ""
        line = f"{self.file}: kept {self.kept}, dropped {len(self.dropped)}{blank}"
        reasons = "".join(f"\n  dropped: {err}" for err in self.dropped[:10])
        more = f"\n  ... and {len(self.dropped) - 10} more" if len(self.dropped) > 10 else ""
        return line + reasons + more


# --- Reading files: bounded, line by line, never trusting the input ---------------------------

MAX_FILE_BYTES = 1 << 30     # a larger file is refused before reading (a runaway or wrong path)
MAX_LINE_BYTES = 1 << 20     # a longer line is skipped in bounded pieces and reported
MAX_INT_DIGITS = 4300        # Python's own limit for int(str); longer integer literals are an error
MAX_DEPTH = 64               # nesting of JSON arrays/objects; deeper records are an error
_NEWLINE = re.compile(rb"\r\n|\r|\n")
_SURROGATE = re.compile("[\ud800-\udfff]")


def display_name(path) -> str:
    """A file name that can always be printed and written as UTF-8 (undecodable bytes as \\xNN)."""
    return os.fsencode(Path(path).name).decode("utf-8", "backslashreplace")


def check_regular_file(path, max_bytes: int | None = None, name: str | None = None) -> int:
    """The size of ``path``; a :class:`RecordError` (line 0, field ``<file>``) when it is missing, not a
    regular file (a FIFO would block forever, ``/dev/zero`` never ends) or larger than ``max_bytes``."""
    name = name or display_name(path)
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    try:
        info = os.stat(path)
    except OSError as exc:
        raise RecordError(name, 0, "<file>", f"cannot read the file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a special file")
        raise RecordError(name, 0, "<file>", f"{kind}, not a regular file")
    if info.st_size > max_bytes:
        raise RecordError(name, 0, "<file>", f"file of {info.st_size} bytes is over the limit of {max_bytes} bytes")
    return info.st_size


def read_lines(path, max_line_bytes: int | None = None, name: str | None = None, chunk: int = 1 << 16):
    """Yield (line number, bytes without the line ending, or RecordError) for every physical line.

    ``\\n``, ``\\r\\n`` and a lone ``\\r`` all end a line (old Mac files use CR only).  A line over
    ``max_line_bytes`` is never held whole: it becomes one RecordError and reading goes on."""
    name = name or display_name(path)
    max_line_bytes = MAX_LINE_BYTES if max_line_bytes is None else max_line_bytes
    with open(path, "rb") as f:
        number, buffer, overflow = 0, b"", 0
        while True:
            block = f.read(chunk)
            buffer += block
            pos = 0  # lines are cut at offsets, not by re-slicing the buffer (that would be quadratic)
            while True:
                match = _NEWLINE.search(buffer, pos)
                # A CR at the very end may be the first half of CR LF: wait for the next block.
                if match is None or (match.group() == b"\r" and match.end() == len(buffer) and block):
                    break
                number += 1
                line = buffer[pos:match.start()]
                pos = match.end()
                if overflow or len(line) > max_line_bytes:
                    yield number, _too_long(name, number, overflow + len(line), max_line_bytes)
                    overflow = 0
                else:
                    yield number, line
            buffer = buffer[pos:]
            if len(buffer) > max_line_bytes + 1:  # keep one byte: it may be a CR of a CR LF
                overflow += len(buffer) - 1
                buffer = buffer[-1:]
            if not block:
                if buffer or overflow:
                    number += 1
                    size = overflow + len(buffer)
                    yield number, (_too_long(name, number, size, max_line_bytes) if size > max_line_bytes else buffer)
                return


def _too_long(name, number, size, limit) -> RecordError:
    return RecordError(name, number, "<line>", f"line of {size} bytes is over the limit of {limit} bytes")


def decode_line(raw: bytes, name: str, number: int) -> str:
    """UTF-8 text of one line; a BOM at the start of line 1 is dropped (Windows editors write one)."""
    if number == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(name, number, "<line>", f"invalid UTF-8 ({exc.reason} at byte {exc.start})") from None


class _Reject(Exception):
    """Raised inside the JSON decoder's hooks; becomes a RecordError with the line's position."""


def _pairs_without_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:  # json keeps the LAST value silently: "content":"Delete everything","content":"Hi"
            raise _Reject(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name):
    raise _Reject(f"{name} is not a JSON number")


def _checked_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise _Reject(f"integer literal of {len(literal)} digits (limit {MAX_INT_DIGITS})")
    return int(literal)


def _checked_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Reject(f"number {literal[:40]} is out of the float range")
    return value


def loads_strict(line: str, name: str = "<string>", number: int = 0, check_strings: bool = True):
    """``json.loads`` that refuses what plain json accepts silently or crashes on: duplicate keys,
    NaN/Infinity, integer literals over :data:`MAX_INT_DIGITS` digits, floats that overflow, nesting
    deeper than :data:`MAX_DEPTH`, and strings with lone surrogates (``"\\ud800"``: UTF-8 cannot hold
    them, so they would crash any later write; ``check_strings=False`` leaves that check to the
    caller).  Every refusal is a :class:`RecordError`."""
    try:
        value = json.loads(line, object_pairs_hook=_pairs_without_duplicates, parse_constant=_reject_constant,
                           parse_int=_checked_int, parse_float=_checked_float)
    except json.JSONDecodeError as exc:
        msg = exc.msg.removesuffix(" at")  # json says "Invalid control character at"
        raise RecordError(name, number, "<json>", f"not valid JSON ({msg} at column {exc.colno})") from None
    except _Reject as exc:
        raise RecordError(name, number, "<json>", f"not accepted: {exc}") from None
    except RecursionError:
        raise RecordError(name, number, "<json>", f"nested deeper than {MAX_DEPTH} levels") from None
    problem = _structure_problem(value, check_strings)
    if problem:
        raise RecordError(name, number, *problem)
    return value


def _structure_problem(value, check_strings: bool = True):
    """(field path, reason) for the first over-deep container or lone surrogate, else None."""
    stack = [(value, "<record>", 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            if check_strings and _SURROGATE.search(item):
                return where, "invalid unicode: a lone surrogate (\\ud800-\\udfff) cannot be stored as UTF-8"
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                return "<json>", f"nested deeper than {MAX_DEPTH} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    path = key if where == "<record>" else f"{where}.{key}"
                    if check_strings and _SURROGATE.search(key):
                        return where, "invalid unicode: a lone surrogate in a key"
                    stack.append((child, path, depth + 1))
            else:
                base = "" if where == "<record>" else where
                stack += [(child, f"{base}[{i}]", depth + 1) for i, child in enumerate(item)]
    return None


class _Blank:
    """What :func:`raw_records` yields for a blank line (not None: a JSON line "null" parses to None)."""

    def __repr__(self):
        return "BLANK"


BLANK = _Blank()


def _csv_records(path: Path, name: str, report: LoadReport, max_line_bytes: int):
    """CSV, one record per physical line.  A quoted field may not hold a line break: a stray quote
    would otherwise swallow every following row into one field (and hide them from the counts)."""
    header = None
    for number, raw in read_lines(path, max_line_bytes, name):
        if header is not None:
            report.lines += 1
        try:
            if isinstance(raw, RecordError):
                raise raw
            line = decode_line(raw, name, number)
            if not line.strip():
                if header is not None:
                    report.blank += 1
                    yield number, BLANK
                continue
            try:
                cells = next(csv.reader([line], strict=True))
            except csv.Error as exc:
                raise RecordError(name, number, "<csv>", f"not a valid CSV row ({exc}; a quoted field must "
                                  "close on the same line)") from None
        except RecordError as err:
            if header is None:
                raise  # without a header no row can be read
            yield number, err
            continue
        if header is None:
            duplicates = sorted({c for c in cells if cells.count(c) > 1})
            if duplicates:
                raise RecordError(name, number, duplicates[0], "duplicate column in the header")
            header = cells
            continue
        if len(cells) != len(header):
            yield number, RecordError(name, number, "<csv>", f"{len(cells)} fields for {len(header)} header columns")
            continue
        yield number, dict(zip(header, cells))


def raw_records(path: Path, report: LoadReport | None = None, max_line_bytes: int | None = None,
                max_file_bytes: int | None = None):
    """Yield (line number, parsed record or RecordError) from a JSONL or CSV file.

    A blank (empty or whitespace-only) line yields ``(number, BLANK)`` and counts in ``report.blank``;
    every physical line counts in ``report.lines``.  Problems with the file itself (missing, not a
    regular file, too large, a bad CSV header) raise :class:`RecordError` with line 0 (or 1)."""
    path = Path(path)
    report = report if report is not None else LoadReport(display_name(path))
    name = report.file
    check_regular_file(path, max_file_bytes, name)
    if path.suffix == ".csv":
        yield from _csv_records(path, name, report, max_line_bytes)
        return
    for number, raw in read_lines(path, max_line_bytes, name):
        report.lines += 1
        try:
            if isinstance(raw, RecordError):
                raise raw
            line = decode_line(raw, name, number)
            if not line.strip():
                report.blank += 1
                yield number, BLANK
                continue
            yield number, loads_strict(line, name, number)
        except RecordError as err:
            yield number, err


def read_records(path, schema: dict, strict: bool = True, rules=()) -> tuple[list[dict], LoadReport]:
    """Read and validate a JSONL or CSV file.  Bad records raise (strict) or are reported as dropped;
    blank lines are counted.  Afterwards ``report.kept + len(report.dropped) + report.blank == report.lines``."""
    path = Path(path)
    report, records = LoadReport(display_name(path)), []
    for number, record in raw_records(path, report):
        if record is BLANK:
            continue
        try:
            if isinstance(record, RecordError):
                raise record
            validate_record(record, schema, report.file, number, rules)
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


FREE_FORM_FIELDS = {"params"}  # objects whose keys differ from record to record (task parameters)


def _is_message(value) -> bool:
    return isinstance(value, dict) and set(value) == {"role", "content"} and all(isinstance(v, str) for v in value.values())


def to_dataset(records: list[dict]):
    """A ``datasets.Dataset``.  Free-form objects (task params) are stored as JSON text so
    Arrow does not merge their differing keys into one struct full of nulls.  The choice is made
    per COLUMN: if any record holds an object there (other than a chat message), every record's
    value in that column is stored as JSON text, so ``[]``, ``[{}]`` and ``{}`` load too."""
    import datasets

    def free_form(value) -> bool:
        return isinstance(value, dict) or (isinstance(value, list) and any(
            isinstance(v, (dict, list)) and not _is_message(v) for v in value))

    columns = {k for r in records for k, v in r.items() if k in FREE_FORM_FIELDS or free_form(v)}
    return datasets.Dataset.from_list([{k: json.dumps(v, ensure_ascii=False) if k in columns else v
                                        for k, v in r.items()} for r in records])


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
