"""Automated construction of a labelled dataset, as one re-runnable pipeline.

    extract -> clean -> annotate -> deduplicate -> validate -> split -> write

* **extract** reads JSONL files line by line and never stops on bad input: a malformed line,
  invalid UTF-8, a line over ``max_line_bytes`` (read in bounded pieces, never whole), an empty,
  missing or non-regular file (a FIFO, a device) each become a :class:`course_utils.data.RecordError`
  naming file, line, field and reason, and the next line is read.  Lines end at LF, CR LF or a lone
  CR.  The bounded line reader, the strict JSON parser and the field checks are those of
  :mod:`course_utils.data`; only fallback encodings are added here.  Record ids default to
  ``<file>:<line>``, with parent folders added when two inputs share a file name.
* **clean** applies :func:`course_utils.cleaning.clean_text` and the drop rules.
* **annotate** keeps given labels, then labels the rest with keyword rules (weak labels), then
  with a small model's pseudo-labels, accepted only above a confidence threshold.
* **deduplicate** joins exact and near duplicates (:mod:`course_utils.dedup`), keeps one record
  per group and resolves its label by majority; a tie is a label conflict and the group is dropped.
* **validate** checks every output record against :data:`OUTPUT_SCHEMA`, unique ids, and the
  language.
* **split** is group-aware and stratified (:func:`course_utils.splits.group_split`): texts that are
  still similar after deduplication (Jaccard >= ``group_threshold``) stay on one side.
* **write** produces ``train/validation/test.jsonl``, ``rejected.jsonl`` (every dropped record
  with its stage and reason, and for unconfident ones the model's guess: nothing disappears
  silently), ``failures.jsonl`` and ``datasheet.md``
  with the counts in, kept and dropped-and-why at every stage.

The same input files and seed give byte-identical output: records are processed in input order,
every random choice is seeded, JSON is written with sorted keys, and no time stamp or absolute
path is written.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from course_utils import cleaning, dedup, splits
from course_utils.data import (LABELS, LANGS, RecordError, check_regular_file, display_name, loads_strict,
                               one_of, read_lines, text, validate_record)
from course_utils.small_classifier import ClassifierConfig, predict_proba, train_classifier

LABEL_SOURCES = ["given", "rule", "model"]


def optional_probability(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0 or math.isnan(value):
        return f"expected a probability in [0, 1] or null, got {value!r}"
    return None


OUTPUT_SCHEMA = {"id": text, "text": text, "label": one_of(LABELS), "lang": one_of(LANGS),
                 "label_source": one_of(LABEL_SOURCES), "confidence": optional_probability, "source": text}
# Raw input: only ``text`` is required; other fields are ignored unless named here.
RAW_REQUIRED = {"text": text}
RAW_OPTIONAL = {"id": text, "label": one_of(LABELS)}

# Weak labelling rules: a keyword of exactly one topic labels the text; none or several abstain.
KEYWORDS = {
    "sports": ["夺得", "战胜", "冠军", "赛", "选手", "主帅", "连胜", "beat", "wins", "coach", "runners", "streak"],
    "finance": ["股价", "营收", "净利润", "楼市", "汇率", "存款准备金", "shares", "revenue", "profit", "sales", "analysts"],
    "tech": ["芯片", "算法", "数据中心", "固件", "开源", "chip", "algorithm", "data centre", "firmware", "open-sources"],
    "entertainment": ["票房", "专辑", "演唱会", "电视剧", "综艺", "box office", "album", "concert", "drama", "reality show"],
}


def keyword_label(text_: str, keywords: dict = KEYWORDS) -> str | None:
    """The one topic whose keywords occur in the text, else None (no keyword, or a conflict)."""
    low = text_.lower()
    hits = [label for label, words in keywords.items() if any(w in low for w in words)]
    return hits[0] if len(hits) == 1 else None


@dataclass(frozen=True)
class PipelineConfig:
    seed: int = 0
    max_line_bytes: int = 1 << 20
    fallback_encodings: tuple = ()  # e.g. ("gb18030",): tried, and counted, when UTF-8 fails
    max_chars: int = 512
    quality: cleaning.QualityThresholds = cleaning.QualityThresholds()
    confidence_threshold: float = 0.9
    near_dup_threshold: float = 0.5   # LSH candidates from this estimated Jaccard ...
    min_containment: float = 1.0      # ... are duplicates when one contains the other's shingles
    group_threshold: float = 0.8      # similar texts (estimated Jaccard) kept in one split
    fractions: tuple = (0.8, 0.1, 0.1)
    classifier: ClassifierConfig = ClassifierConfig()


@dataclass
class StageReport:
    name: str
    n_in: int
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # things changed or counted, not dropped

    def check(self) -> None:
        """Every record that came in either went on or was dropped with a reason."""
        assert self.n_in == self.kept + sum(self.dropped.values()), self


@dataclass
class PipelineResult:
    stages: list[StageReport]
    failures: list[RecordError]
    splits: dict[str, list[dict]]
    rejected: list[dict]
    files: dict[str, str]  # file name -> sha256

    def summary(self) -> str:
        lines = [f"{'stage':<12}{'in':>6}{'kept':>6}  dropped (why)"]
        for s in self.stages:
            why = ", ".join(f"{k} {v}" for k, v in sorted(s.dropped.items())) or "-"
            lines.append(f"{s.name:<12}{s.n_in:>6}{s.kept:>6}  {why}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# extract
# ---------------------------------------------------------------------------------------------

def source_names(paths) -> list[str]:
    """A printable name per input file: its file name, or as many parent folders as it takes to tell
    two different files of the same name apart (``a/x.jsonl``, ``b/x.jsonl``), because record ids
    default to ``<name>:<line>``.  Never an absolute path, so outputs do not depend on where you run."""
    paths = [Path(p) for p in paths]
    parts = [[display_name(q) for q in reversed([p, *p.parents]) if q.name] for p in paths]
    real = [os.path.abspath(p) for p in paths]
    names = []
    for i, mine in enumerate(parts):
        k = 1
        while k < len(mine) and any(real[j] != real[i] and parts[j][-k:] == mine[-k:] for j in range(len(paths))):
            k += 1
        names.append("/".join(mine[-k:]))
    return names


def decode_line(raw: bytes, file: str, number: int, fallbacks=()) -> tuple[str, str]:
    """(text, encoding used).  UTF-8 first (a BOM on line 1 is dropped), then each fallback."""
    if number == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        for encoding in fallbacks:
            try:
                return raw.decode(encoding), encoding
            except UnicodeDecodeError:
                continue
        raise RecordError(file, number, "<line>", f"invalid UTF-8 ({exc.reason} at byte {exc.start})") from None


def parse_raw(line: str, file: str, number: int) -> dict:
    """The fields the pipeline uses, checked; unknown fields are ignored.  The JSON is read strictly
    (:func:`course_utils.data.loads_strict`: no duplicate keys, NaN, huge numbers or deep nesting).  A
    lone surrogate in ``text`` is let through to the clean stage, which rejects it into rejected.jsonl
    (nothing disappears); in ``id`` or ``label`` it is an error here, since ids are written out."""
    record = loads_strict(line, file, number, check_strings=False)
    if not isinstance(record, dict):
        raise RecordError(file, number, "<record>", f"expected a JSON object, got {type(record).__name__}")
    out = {}
    for name, check in {**RAW_REQUIRED, **RAW_OPTIONAL}.items():
        if name not in record or (name in RAW_OPTIONAL and record[name] is None):
            if name in RAW_REQUIRED:
                raise RecordError(file, number, name, "missing required field")
            continue
        reason = check(record[name])
        if not reason and name != "text" and _has_lone_surrogate(record[name]):
            reason = "invalid unicode: a lone surrogate (\\ud800-\\udfff) cannot be written as UTF-8"
        if reason:
            raise RecordError(file, number, name, reason)
        out[name] = record[name]
    return out


def failure_kind(err: RecordError) -> str:
    """A short category for the datasheet's counts."""
    if err.field == "<line>":
        return "invalid UTF-8" if "UTF-8" in err.reason else "line over the size limit"
    return {"<json>": "not JSON", "<record>": "not a JSON object"}.get(err.field, f"bad field '{err.field}'")


def extract(paths, config: PipelineConfig) -> tuple[list[dict], StageReport, list[RecordError]]:
    records, failures = [], []
    report = StageReport("extract", 0)
    for path, name in zip(map(Path, paths), source_names(paths)):
        if not os.path.lexists(path):
            failures.append(RecordError(name, 0, "<file>", "file not found"))
            report.notes["missing file"] += 1
            continue
        try:  # a FIFO would block forever and /dev/zero never ends: regular files only, size-capped
            size = check_regular_file(path, None, name)  # data.MAX_FILE_BYTES
        except RecordError as err:
            failures.append(err)
            report.notes["unreadable file"] += 1
            continue
        if size == 0:
            failures.append(RecordError(name, 0, "<file>", "empty file: no records"))
            report.notes["empty file"] += 1
            continue
        for number, raw in read_lines(path, config.max_line_bytes, name):
            report.n_in += 1
            try:
                if isinstance(raw, RecordError):
                    raise raw
                line, encoding = decode_line(raw, name, number, config.fallback_encodings)
                if encoding != "utf-8":
                    report.notes[f"decoded as {encoding}"] += 1
                if not line.strip():
                    report.dropped["blank line"] += 1
                    continue
                record = parse_raw(line, name, number)
            except RecordError as err:
                failures.append(err)
                report.dropped[failure_kind(err)] += 1
                continue
            source = f"{name}:{number}"
            records.append({"id": record.get("id", source), "text": record["text"],
                            "label": record.get("label"), "source": source})
    report.kept = len(records)
    return records, report, failures


# ---------------------------------------------------------------------------------------------
# clean, annotate, deduplicate, validate, split
# ---------------------------------------------------------------------------------------------

def _has_lone_surrogate(s: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in s)  # JSON "\ud800" decodes to one; UTF-8 cannot hold it


def clean_stage(records, config: PipelineConfig, rejected: list) -> tuple[list[dict], StageReport]:
    report, out = StageReport("clean", len(records)), []
    for r in records:
        if _has_lone_surrogate(r["text"]):
            reason = "invalid unicode"
        else:
            cleaned = cleaning.clean_text(r["text"])
            reason = cleaning.drop_reason(cleaned.text, config.max_chars, thresholds=config.quality)
        if reason:
            report.dropped[reason] += 1
            rejected.append({**r, "stage": "clean", "reason": reason})
            continue
        report.notes.update(cleaned.changes)
        out.append({**r, "text": cleaned.text, "lang": cleaning.detect_lang(cleaned.text)})
    report.kept = len(out)
    return out, report


def annotate_stage(records, config: PipelineConfig, rejected: list) -> tuple[list[dict], StageReport]:
    report = StageReport("annotate", len(records))
    for r in records:
        if r["label"] is not None:
            r["label_source"], r["confidence"] = "given", None
        else:
            r["label"] = keyword_label(r["text"])
            r["label_source"], r["confidence"] = ("rule", None) if r["label"] else (None, None)
    labelled = [r for r in records if r["label"] is not None]
    unlabelled = [r for r in records if r["label"] is None]
    if unlabelled and labelled:
        model = train_classifier([r["text"] for r in labelled], [LABELS.index(r["label"]) for r in labelled],
                                 len(LABELS), config.classifier, seed=config.seed)
        proba = predict_proba(model, [r["text"] for r in unlabelled])
        for r, p in zip(unlabelled, proba):
            best = int(p.argmax())
            if p[best] >= config.confidence_threshold:
                r["label"], r["label_source"], r["confidence"] = LABELS[best], "model", round(float(p[best]), 4)
            else:  # kept in rejected.jsonl, so a person can label it or audit the threshold
                r["model_guess"] = {"label": LABELS[best], "confidence": round(float(p[best]), 4)}
    out = []
    for r in records:
        if r["label"] is None:
            report.dropped["no confident label"] += 1
            rejected.append({**r, "stage": "annotate", "reason": "no confident label"})
        else:
            report.notes[f"label from {r['label_source']}"] += 1
            out.append(r)
    report.kept = len(out)
    return out, report


def dedup_stage(records, config: PipelineConfig, rejected: list) -> tuple[list[dict], StageReport]:
    report = StageReport("deduplicate", len(records))
    texts = [r["text"] for r in records]
    uf = dedup.UnionFind(len(records))
    for group in dedup.exact_duplicate_groups(texts):
        for i in group[1:]:
            uf.union(group[0], i)
    exact_links = sum(len(g) - 1 for g in uf.groups())
    for i, j in dedup.near_duplicate_pairs(texts, config.near_dup_threshold, seed=config.seed,
                                           min_containment=config.min_containment).tolist():
        uf.union(i, j)
    out = []
    for group in uf.groups(min_size=1):
        members = [records[i] for i in group]
        if len(members) == 1:
            out.append(members[0])
            continue
        # The label: majority among the most trusted label source present in the group.
        best_source = min(LABEL_SOURCES.index(m["label_source"]) for m in members)
        votes = Counter(m["label"] for m in members if LABEL_SOURCES.index(m["label_source"]) == best_source)
        ranked = votes.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            report.dropped["label conflict"] += len(members)
            rejected += [{**m, "stage": "deduplicate", "reason": "label conflict"} for m in members]
            continue
        keep = min((m for m in members if m["label"] == ranked[0][0]),
                   key=lambda m: LABEL_SOURCES.index(m["label_source"]))  # input order breaks ties
        out.append(keep)
        for m in members:
            if m is not keep:
                report.dropped["duplicate"] += 1
                rejected.append({**m, "stage": "deduplicate", "reason": f"duplicate of {keep['id']}"})
    report.notes["exact-duplicate links"] = exact_links
    report.kept = len(out)
    return out, report


def validate_stage(records, rejected: list) -> tuple[list[dict], StageReport]:
    report, out, seen = StageReport("validate", len(records)), [], set()
    for r in records:
        record = {k: r[k] for k in OUTPUT_SCHEMA}
        try:
            file, _, line = r["source"].rpartition(":")
            validate_record(record, OUTPUT_SCHEMA, file, int(line))
            if record["id"] in seen:
                raise RecordError(file, int(line), "id", f"duplicate id {record['id']!r}")
            detected = cleaning.detect_lang(record["text"])
            if detected != record["lang"]:
                raise RecordError(file, int(line), "lang", f"language {record['lang']!r} but the text reads as {detected!r}")
        except RecordError as err:
            report.dropped[f"invalid {err.field}"] += 1
            rejected.append({**r, "stage": "validate", "reason": str(err)})
            continue
        seen.add(record["id"])
        out.append(record)
    report.kept = len(out)
    return out, report


def split_stage(records, config: PipelineConfig) -> tuple[dict[str, list[dict]], StageReport]:
    report = StageReport("split", len(records))
    texts = [r["text"] for r in records]
    pairs = dedup.near_duplicate_pairs(texts, config.group_threshold, seed=config.seed) if records else []
    groups = dedup.group_labels(len(records), pairs)
    parts = splits.group_split([r["label"] for r in records], groups, config.fractions, config.seed) if records \
        else {name: np.array([], dtype=int) for name in splits.SPLIT_NAMES}
    report.notes["similarity groups"] = len(set(groups))
    report.notes["groups in two splits"] = splits.straddling_groups(groups, parts) if records else 0
    out = {name: sorted((records[i] for i in idx), key=lambda r: r["id"]) for name, idx in parts.items()}
    for name, rows in out.items():
        report.notes[f"{name} rows"] = len(rows)
    report.kept = len(records)
    return out, report


# ---------------------------------------------------------------------------------------------
# write
# ---------------------------------------------------------------------------------------------

def to_jsonl(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def datasheet(result: PipelineResult, inputs: dict[str, str], config: PipelineConfig) -> str:
    """A markdown datasheet: inputs, settings, every stage's counts, label sources, splits, failures."""
    lines = ["# Datasheet: constructed news topic dataset", "",
             "Made by `course_utils.construction.run_pipeline`. Re-running it on the same inputs with the",
             "same seed rewrites every file byte for byte.", "", "## Inputs", ""]
    lines += [f"- `{name}`: sha256 `{digest[:16]}...`" for name, digest in sorted(inputs.items())]
    lines += ["", "## Settings", ""]
    for key, value in sorted(vars(config).items()):
        lines.append(f"- `{key}`: `{value}`")
    lines += ["", "## Stages", "", "| stage | in | kept | dropped (why) | notes |", "|---|---|---|---|---|"]
    for s in result.stages:
        why = "; ".join(f"{k}: {v}" for k, v in sorted(s.dropped.items())) or "-"
        notes = "; ".join(f"{k}: {v}" for k, v in sorted(s.notes.items())) or "-"
        lines.append(f"| {s.name} | {s.n_in} | {s.kept} | {why} | {notes} |")
    lines += ["", "## Splits", "", "| split | rows | " + " | ".join(LABELS) + " | label from given/rule/model |",
              "|---|---|" + "---|" * (len(LABELS) + 1)]
    for name, rows in result.splits.items():
        labels = Counter(r["label"] for r in rows)
        sources = Counter(r["label_source"] for r in rows)
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(str(labels[lab]) for lab in LABELS)
                     + " | " + "/".join(str(sources[s]) for s in LABEL_SOURCES) + " |")
    lines += ["", f"## Failures ({len(result.failures)})", "",
              "Each bad line or file, with where and why (all of them are in `failures.jsonl`):", ""]
    lines += [f"- {err}" for err in result.failures[:50]]
    if len(result.failures) > 50:
        lines.append(f"- ... and {len(result.failures) - 50} more")
    lines += ["", "## Outputs", ""]
    lines += [f"- `{name}`: sha256 `{digest[:16]}...`" for name, digest in sorted(result.files.items())]
    return "\n".join(lines) + "\n"


def run_pipeline(paths, out_dir, config: PipelineConfig = PipelineConfig()) -> PipelineResult:
    """Run every stage on the JSONL files ``paths`` and write the results into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rejected: list[dict] = []
    records, extract_report, failures = extract(paths, config)
    records, clean_report = clean_stage(records, config, rejected)
    records, annotate_report = annotate_stage(records, config, rejected)
    records, dedup_report = dedup_stage(records, config, rejected)
    records, validate_report = validate_stage(records, rejected)
    parts, split_report = split_stage(records, config)
    stages = [extract_report, clean_report, annotate_report, dedup_report, validate_report, split_report]
    for stage in stages:
        stage.check()
    rejected_rows = [{**{k: r.get(k) for k in ("id", "source", "stage", "reason", "label", "model_guess")},
                      "text": r["text"].encode("utf-8", "backslashreplace").decode("utf-8")}  # lone surrogates as \\udXXX
                     for r in rejected]
    failure_rows = [{"file": e.file, "line": e.line, "field": e.field, "reason": e.reason} for e in failures]
    payloads = {f"{name}.jsonl": to_jsonl(rows) for name, rows in parts.items()}
    payloads["rejected.jsonl"] = to_jsonl(sorted(rejected_rows, key=lambda r: (r["stage"], r["source"])))
    payloads["failures.jsonl"] = to_jsonl(failure_rows)
    for name, data in payloads.items():
        (out_dir / name).write_bytes(data)
    result = PipelineResult(stages, failures, parts, rejected_rows, {n: sha256(d) for n, d in payloads.items()})
    inputs = {name: file_sha256(Path(p)) for p, name in zip(paths, source_names(paths)) if Path(p).is_file()}
    (out_dir / "datasheet.md").write_bytes(datasheet(result, inputs, config).encode("utf-8"))
    result.files["datasheet.md"] = sha256((out_dir / "datasheet.md").read_bytes())
    return result


# ---------------------------------------------------------------------------------------------
# exercise checks (notebook 06b)
# ---------------------------------------------------------------------------------------------

def check_failure_lines(path, answer, max_line_bytes: int = 1 << 20) -> None:
    """Exercise 6b.1: the line numbers of ``path`` that the extract stage reports as failures."""
    from course_utils.exercises import check_answer
    _, _, failures = extract([path], PipelineConfig(max_line_bytes=max_line_bytes))
    expected = [err.line for err in failures]
    check_answer(None if answer is None else list(answer), expected, key="6b.1",
                 hints=["Open the file and read it line by line: which lines could a JSON reader not turn into a record "
                        "with a 'text'?",
                        "A line fails when it is not UTF-8, not JSON, not an object, too long, or lacks a valid 'text'; "
                        "blank lines are counted as blank, not as failures."])
