"""Issue 13: a deterministic fuzz test of everything that reads or checks outside data.

More than 10,000 generated bad and borderline inputs (fixed seeds, no hypothesis database) go
through the readers (``data.read_records`` on JSONL and CSV, ``chat_format.read_chat_jsonl``,
``construction.extract``), the validators, the format converters, the cleaner, the label helpers and
packing.  The oracle is the documented contract, not the implementation:

* only the documented error types come out (``RecordError`` and its subclass ``ChatFormatError``
  for data, ``ValueError`` for the label and packing helpers, ``TypeError`` for a non-string text);
* every physical line is accounted for: kept + dropped + blank == lines (counted here, from the bytes);
* every line built to be valid is kept, unaltered and in order, and every line built to be bad is
  dropped with its own file name and line number;
* nothing hangs (each check runs under a time limit).

Run with ``-s`` to see how many inputs each entry point received.
"""

import json
import math
import random
import signal
import string
from collections import Counter
from contextlib import contextmanager

import pytest
import torch

from course_utils import chat_format, cleaning, construction, data, labels, packing
from course_utils.construction import PipelineConfig
from course_utils.data import RecordError

COUNTS: Counter = Counter()   # inputs per entry point, printed at the end
LIMIT_S = 20                  # per test: a hang fails instead of stalling the suite


@contextmanager
def time_limit(seconds=LIMIT_S):
    def fail(*_):
        raise TimeoutError(f"fuzz check took longer than {seconds} s: something hangs")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- generators -------------------------------------------------------------------------------

TRICKY = ["", " ", "好", "é", "\u200b", "\ufeff", "😀", "a\tb", "<p>", "&amp;", "\\", "\"", "'", ",", "\u3000",
          "\x7f", "ｆｕｌｌ", "\u2028", "\u0085", "\x0c", "null", "[]", "{}"]


def text(rng, n=12, printable_only=False):
    """A string of mixed scripts, escapes and look-alike structure."""
    pool = string.ascii_letters + string.digits + " .,!?-" + "华星科技发布新款智能手机" + "".join(TRICKY)
    out = "".join(rng.choice(pool) for _ in range(rng.randrange(n)))
    if printable_only:
        out = "".join(ch for ch in out if ch.isprintable() and ch not in "\r\n\x85\u2028\u2029")
    return out


def valid_news(rng, i):
    rec = {"id": f"r{i}-{text(rng, 6, True)}", "text": text(rng, 30), "label": rng.choice(data.LABELS),
           "lang": rng.choice(data.LANGS), "flags": [text(rng, 5) for _ in range(rng.randrange(3))]}
    if "template_id" in data.SCHEMAS["news_cls"]:
        rec["template_id"] = text(rng, 8, True)
    return {k: rec[k] for k in data.SCHEMAS["news_cls"]}


def dumps(rng, record) -> bytes:
    """Valid JSON, in one of several legal spellings."""
    ascii_ = rng.random() < 0.5
    sep = rng.choice([(",", ":"), (", ", ": "), (" ,", " : ")])
    line = json.dumps(record, ensure_ascii=ascii_, separators=sep)
    return (rng.choice(["", " ", "\t"]) + line + rng.choice(["", " ", "\t"])).encode("utf-8")


def bad_json_line(rng, good: dict) -> tuple[bytes, str]:
    """A line that the contract says must be dropped, and why (for the failure message)."""
    body = json.dumps(good, ensure_ascii=False)
    kind = rng.randrange(13)
    if kind == 0:
        return body[: rng.randrange(1, len(body) - 1)].encode(), "truncated"
    if kind == 1:
        return b"[" * rng.choice([70, 1000, 100_000]) + b"]" * 3, "deep nesting"
    if kind == 2:
        return body.replace('"id"', '"id": "x", "id"', 1).encode(), "duplicate key"
    if kind == 3:
        return body[:-1].encode() + b', "id": ' + b"9" * rng.choice([4301, 10_000]) + b"}", "huge int"
    if kind == 4:
        return body.replace('"text": ', '"text": "\\ud800" , "x": ', 1).encode(), "surrogate/unknown field"
    if kind == 5:
        return json.dumps({**good, "text": "a\ud800b"}).encode(), "lone surrogate"
    if kind == 6:
        return body[:-1].encode() + b', "n": ' + rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e999"]) + b"}", "nan"
    if kind == 7:
        return rng.choice([b"[1, 2]", b'"a string"', b"42", b"null", b"true"]), "not an object"
    if kind == 8:
        return body.encode("utf-8")[:5] + bytes([rng.choice([0xff, 0xfe, 0xc0, 0x80])]) + body.encode()[5:], "bad utf-8"
    if kind == 9:
        missing = dict(good)
        missing.pop(rng.choice(list(good)))
        return json.dumps(missing).encode(), "missing field"
    if kind == 10:
        return json.dumps({**good, rng.choice(list(good)): rng.choice([1, None, 2.5, True, {"a": 1}])}).encode(), "type"
    if kind == 11:
        return json.dumps({**good, "label": "weather"}).encode(), "unknown label"
    return b'{"id": "big", "text": "' + b"x" * (data.MAX_LINE_BYTES + rng.randrange(1, 5000)) + b'"}', "too long"


def random_mutation(rng, line: bytes) -> bytes:
    """Flip, drop or insert a few bytes: validity unknown, accounting still required."""
    b = bytearray(line)
    for _ in range(rng.randrange(1, 4)):
        if not b:
            break
        i = rng.randrange(len(b))
        op = rng.randrange(3)
        if op == 0:
            b[i] = rng.randrange(256)
        elif op == 1:
            del b[i]
        else:
            b.insert(i, rng.choice(b'{}[]",:\\ \x00\xff'))
    return bytes(b).replace(b"\r", b"").replace(b"\n", b"")  # stay one line


def build_file(rng, make_valid, make_bad, n_lines):
    """(bytes, expectations): each physical line is 'valid' (the record), 'blank', 'bad' or 'unknown'."""
    style = rng.choice(["\n", "\r\n", "\r", "mixed"])
    parts, expect = [], []
    for i in range(n_lines):
        roll = rng.random()
        if roll < 0.45:
            record = make_valid(rng, i)
            line, kind = dumps(rng, record), ("valid", record)
        elif roll < 0.6:
            line, kind = rng.choice([b"", b" ", b"\t  ", b"\x0c", b"\x0b"]), ("blank", None)
            if line in (b"\x0c", b"\x0b") and style == "\r":
                line = b" "
        elif roll < 0.85:
            line, why = make_bad(rng, make_valid(rng, i))
            kind = ("bad", why)
        else:
            line, kind = random_mutation(rng, dumps(rng, make_valid(rng, i))), ("unknown", None)
        if b"\x0c" in line or b"\x0b" in line:
            kind = ("unknown", None) if kind[0] != "blank" else kind
        parts.append(line)
        expect.append(kind)
    if expect and rng.random() < 0.3 and expect[0][0] == "valid":
        parts[0] = b"\xef\xbb\xbf" + parts[0]
    ends = [rng.choice(["\n", "\r\n"]) if style == "mixed" else style for _ in parts]
    payload = b"".join(p + e.encode() for p, e in zip(parts, ends))
    if parts and rng.random() < 0.3 and parts[-1]:
        payload = payload[: -len(ends[-1])]  # no newline at the end of the file
    return payload, expect


def check_lines(records, report, expect, file, first_line=1):
    """The reader's output against what each generated line was built to be."""
    assert report.kept + len(report.dropped) + report.blank == report.lines == len(expect)
    assert report.kept == len(records)
    dropped_at = {err.line for err in report.dropped}
    for err in report.dropped:
        assert isinstance(err, RecordError) and err.file == file and isinstance(err.field, str) and err.reason
        assert str(err).startswith(f"{file}, line {err.line}, field ")
        str(err).encode("utf-8")  # printable
    valid = [rec for kind, rec in expect if kind == "valid"]
    for number, (kind, payload) in enumerate(expect, start=first_line):
        if kind == "bad":
            assert number in dropped_at, (number, payload)
        elif kind in ("valid", "blank"):
            assert number not in dropped_at, (number, kind)
    blank = sum(kind == "blank" for kind, _ in expect)
    assert report.blank >= blank
    kept_iter = iter(records)  # every valid record is kept, equal, in order (unknown lines may sit between)
    for record in valid:
        assert any(r == record for r in kept_iter), record


# --- readers ----------------------------------------------------------------------------------

def test_fuzz_jsonl_reader(tmp_path):
    rng = random.Random(1301)
    schema = data.SCHEMAS["news_cls"]
    with time_limit(60):
        for f in range(160):
            payload, expect = build_file(rng, valid_news, bad_json_line, rng.randrange(1, 30))
            path = tmp_path / f"f{f}.jsonl"
            path.write_bytes(payload)
            records, report = data.read_records(path, schema, strict=False)
            check_lines(records, report, expect, path.name)
            COUNTS["data.read_records (JSONL lines)"] += len(expect)
            if any(kind == "bad" for kind, _ in expect):
                with pytest.raises(RecordError):
                    data.read_records(path, schema, strict=True)


def valid_chat(rng, i):
    turns = [{"role": "system", "content": text(rng, 10) + "s"}] if rng.random() < 0.3 else []
    for _ in range(rng.randint(1, 3)):
        turns += [{"role": "user", "content": text(rng, 20) + "q"}, {"role": "assistant", "content": text(rng, 20) + "a"}]
    fmt = rng.randrange(3)
    if fmt == 0:
        return {"id": f"c{i}", "messages": turns}
    if fmt == 1:
        return {"id": f"c{i}", "conversations": [{"from": chat_format.SHAREGPT_ROLE[t["role"]], "value": t["content"]}
                                                 for t in turns]}
    return {"id": f"c{i}", **{k: v for k, v in chat_format.to_alpaca({"messages": turns}).items()}}


def bad_chat_line(rng, good):
    kind = rng.randrange(5)
    if kind == 0:
        key = "messages" if "messages" in good else "conversations" if "conversations" in good else "output"
        broken = dict(good)
        broken[key] = rng.choice([None, 3, "text", [], [{"role": "tool", "content": "x"}]])
        if key == "output":
            broken[key] = rng.choice([None, 3, "  ", ["x"]])
        return json.dumps(broken).encode(), "invalid " + key
    if kind == 1:
        return json.dumps({**good, "ouput": "typo"}).encode(), "unknown key"
    if kind == 2:
        return json.dumps({"id": "x", "messages": [{"role": "user", "content": "q\ud800"},
                                                   {"role": "assistant", "content": "a"}]}).encode(), "surrogate"
    return bad_json_line(rng, {"id": "x", "text": "t", "label": "sports"})


def test_fuzz_chat_reader_and_converters(tmp_path):
    rng = random.Random(1302)
    with time_limit(60):
        for f in range(110):
            payload, expect = build_file(rng, valid_chat, bad_chat_line, rng.randrange(1, 25))
            path = tmp_path / f"chat{f}.jsonl"
            path.write_bytes(payload)
            kept, report = chat_format.read_chat_jsonl(path, extra_keys=("id",))
            check_lines(kept, report, expect, path.name)
            for err in report.dropped:
                if isinstance(err, chat_format.ChatFormatError):
                    assert err.kind in chat_format.ERROR_KINDS
            COUNTS["chat_format.read_chat_jsonl (lines)"] += len(expect)
            for record in kept:   # converters agree on the conversation and never modify the input
                snapshot = json.dumps(record, sort_keys=True)
                messages = chat_format.to_messages(record, extra_keys=("id",))["messages"]
                for convert in (chat_format.to_sharegpt, chat_format.to_alpaca):
                    again = chat_format.to_messages(convert(record, extra_keys=("id",)), extra_keys=("id",))
                    assert again["messages"] == messages
                assert json.dumps(record, sort_keys=True) == snapshot
                COUNTS["chat_format converters (records)"] += 1


CSV_SCHEMA = {"id": data.text, "text": data.text}


def csv_field(rng):
    value = text(rng, 15, printable_only=True)
    if any(c in value for c in ',"') or rng.random() < 0.3:
        return '"' + value.replace('"', '""') + '"', value
    return value, value


def test_fuzz_csv_reader(tmp_path):
    rng = random.Random(1303)
    with time_limit(60):
        for f in range(110):
            lines, expect = [b"id,text"], []
            for i in range(rng.randrange(1, 20)):
                roll = rng.random()
                if roll < 0.5:
                    (id_cell, id_value), (text_cell, text_value) = csv_field(rng), csv_field(rng)
                    lines.append(f"{id_cell},{text_cell}".encode())
                    expect.append(("valid", {"id": id_value, "text": text_value}))
                elif roll < 0.6:
                    lines.append(rng.choice([b"", b"  "]))
                    expect.append(("blank", None))
                else:
                    bad = rng.choice([b'a,"unclosed', b"a,b,c", b"onlyone", b"a,\xff\xfe", b'a,"x"y',
                                      b"a," + b"y" * 200_000])
                    lines.append(bad)
                    expect.append(("bad", bad[:20]))
            end = rng.choice([b"\n", b"\r\n", b"\r"])
            path = tmp_path / f"rows{f}.csv"
            path.write_bytes(end.join(lines) + end)
            records, report = data.read_records(path, CSV_SCHEMA, strict=False)
            check_lines(records, report, expect, path.name, first_line=2)   # line 1 is the header
            COUNTS["data.read_records (CSV lines)"] += len(expect) + 1


def raw_valid(rng, i):
    record = {"text": text(rng, 40) + "新闻"}
    if rng.random() < 0.5:
        record["id"] = f"raw{i}-{rng.randrange(10**6)}"
    if rng.random() < 0.5:
        record["label"] = rng.choice(data.LABELS)
    return record


def raw_bad(rng, good):
    kind = rng.randrange(6)
    if kind == 0:
        return json.dumps({k: v for k, v in good.items() if k != "text"}).encode(), "no text"
    if kind == 1:
        return json.dumps({**good, "id": "x\udc80"}).encode(), "surrogate id"
    if kind == 2:
        return json.dumps({**good, "label": "weather"}).encode(), "label"
    while True:  # extract ignores unknown fields and leaves a surrogate TEXT to the clean stage
        line, why = bad_json_line(rng, {"id": "x", "text": "t", "label": "sports"})
        if why in RAW_BAD_KINDS:
            return line, why


RAW_BAD_KINDS = {"truncated", "deep nesting", "duplicate key", "huge int", "nan", "not an object", "bad utf-8",
                 "too long", "unknown label"}


def test_fuzz_construction_extract(tmp_path):
    rng = random.Random(1304)
    with time_limit(60):
        for f in range(60):
            payload, expect = build_file(rng, raw_valid, raw_bad, rng.randrange(1, 25))
            folder = tmp_path / f"d{f % 3}"   # same file names in three folders
            folder.mkdir(exist_ok=True)
            path = folder / f"in{f // 3}.jsonl"
            path.write_bytes(payload)
            records, report, failures = construction.extract([path], PipelineConfig())
            lines = len(expect) if payload else 0
            assert report.n_in == lines and report.kept + sum(report.dropped.values()) == report.n_in
            assert report.dropped["blank line"] >= sum(kind == "blank" for kind, _ in expect)
            failed_at = {err.line for err in failures}
            assert all(err.file == path.name for err in failures)
            texts = iter(r["text"] for r in records)
            for number, (kind, record) in enumerate(expect, start=1):
                if kind == "bad":
                    assert number in failed_at, number
                if kind == "valid":
                    assert number not in failed_at and any(t == record["text"] for t in texts)
            COUNTS["construction.extract (lines)"] += len(expect)


# --- validators -------------------------------------------------------------------------------

LEAVES = [None, True, 0, -1, 2.5, "", " ", "user", "assistant", "system", "gpt", "human", "hi", "\ud800", [], {}]
KEYS = ["messages", "conversations", "instruction", "input", "output", "history", "system", "role", "content",
        "from", "value", "id", "\udc00", ""]


def random_json(rng, depth=0):
    kind = rng.randrange(10 if depth < 5 else 3)
    if kind < 3:
        return rng.choice(LEAVES)
    if kind == 3:
        return text(rng, 8)
    if kind < 6:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def test_fuzz_validators():
    rng = random.Random(1305)
    with time_limit():
        for _ in range(2500):
            record = random_json(rng) if rng.random() < 0.6 else valid_chat(rng, 0)
            if isinstance(record, dict) and rng.random() < 0.5:
                record[rng.choice(KEYS)] = random_json(rng, 3)
            snapshot = repr(record)
            try:
                chat_format.parse_record(record, extra_keys=("id",))
                kept, report = chat_format.validate_records([record], extra_keys=("id",))
                assert kept == [record] and report.kept == 1
            except chat_format.ChatFormatError as err:
                assert err.kind in chat_format.ERROR_KINDS and str(err).encode("utf-8")
            assert repr(record) == snapshot
            COUNTS["chat_format.parse_record"] += 1
        for _ in range(1500):
            name = rng.choice(data.list_datasets())
            record = random_json(rng) if rng.random() < 0.3 else {
                k: random_json(rng, 4) if rng.random() < 0.3 else v for k, v in valid_news(rng, 0).items()}
            try:
                data.validate_record(record, data.SCHEMAS[name], "x.jsonl", 7, data.RECORD_RULES.get(name, ()))
            except RecordError as err:
                assert (err.file, err.line) == ("x.jsonl", 7) and isinstance(err.field, str) and str(err).encode("utf-8")
            COUNTS["data.validate_record"] += 1


# --- cleaner ----------------------------------------------------------------------------------

HTMLISH = ["<p>", "</p>", "<![foo]>", "<![CDATA[x<y]]>", "<!--", "-->", "<\x00script>", "</script>", "<style>",
           "&amp;", "&#99999999;", "&#x110000;", "<a href='x'>", "<br/>", "<?php ?>", "<!DOCTYPE html>", "<", ">",
           "\x00", "\x1b", "\u200b", "https://a.example/x?y=1", "a@b.co", "13812345678", "Ｆｕｌｌ　"]


def test_fuzz_cleaner():
    rng = random.Random(1306)
    with time_limit():
        batch = []
        for _ in range(1800):
            value = "".join(rng.choice(HTMLISH) if rng.random() < 0.4 else text(rng, 6) for _ in range(rng.randrange(8)))
            cleaned = cleaning.clean_text(value)
            assert isinstance(cleaned.text, str)
            assert not cleaning._CONTROL_RE.search(cleaned.text)          # no control characters left
            assert "<script" not in cleaned.text.lower() or "<script" in value.replace("&lt;", "<").lower() \
                or "&lt;script" in value.lower() or "&#" in value
            assert set(cleaned.changes) <= {"html", "width", "url", "email", "phone"}
            batch.append(value if rng.random() < 0.9 else None)
            COUNTS["cleaning.clean_text"] += 1
        out = cleaning.clean_batch({"text": batch})
        assert len(out["text"]) == len(batch)
        assert all(reason == "empty" for value, reason in zip(batch, out["drop_reason"]) if value is None)
        COUNTS["cleaning.clean_batch (rows)"] += len(batch)
        for bad in (3, b"bytes", ["list"]):
            with pytest.raises(TypeError):
                cleaning.clean_text(bad)


# --- labels -----------------------------------------------------------------------------------

def test_fuzz_label_helpers():
    rng = random.Random(1307)
    tags = list(labels.LABEL2ID)
    with time_limit():
        for _ in range(700):
            num_classes = rng.randint(1, 6)
            ids = [rng.randint(-3, num_classes + 2) for _ in range(rng.randrange(1, 8))]
            if all(0 <= i < num_classes for i in ids):
                out = labels.one_hot(ids, num_classes)
                assert out.shape == (len(ids), num_classes) and out.sum().item() == len(ids)
                assert [int(row.argmax()) for row in out] == ids
            else:
                with pytest.raises(ValueError, match="out of range"):
                    labels.one_hot(ids, num_classes)
            COUNTS["labels.one_hot"] += 1
        for _ in range(700):
            n_words = rng.randint(0, 5)
            word_tags = [rng.choice(tags + ["B-XXX", "bogus"]) if rng.random() < 0.1 else rng.choice(tags)
                         for _ in range(n_words)]
            word_ids = [None] + [rng.choice([None, rng.randint(-2, n_words + 1)] + list(range(n_words)))
                                 for _ in range(rng.randrange(8))] + [None]
            ok_ids = all(w is None or 0 <= w < n_words for w in word_ids)
            used = {word_tags[w] for w in word_ids if w is not None and 0 <= w < n_words}
            used |= {labels.continuation_tag(t) for t in used}
            policy = rng.choice(["first", "all"])
            needed = {word_tags[w] for w in word_ids if w is not None and 0 <= w < n_words}
            if policy == "all":
                needed |= {labels.continuation_tag(t) for t in needed}
            if ok_ids and needed <= set(tags):
                out = labels.align_word_labels(word_ids, word_tags, policy)
                assert len(out) == len(word_ids)
                assert all(lab == labels.IGNORE_INDEX for w, lab in zip(word_ids, out) if w is None)
                assert all(lab == labels.IGNORE_INDEX or 0 <= lab < len(tags) for lab in out)
            else:
                try:
                    labels.align_word_labels(word_ids, word_tags, policy)
                except ValueError:
                    pass
                else:   # only fine if the offending tag/id was never looked up ("first" skips continuations)
                    assert ok_ids and policy == "first"
            COUNTS["labels.align_word_labels"] += 1
        for _ in range(300):
            sets = [[rng.choice(data.LABELS + ["weather"]) for _ in range(rng.randrange(3))] for _ in range(3)]
            if any(label == "weather" for s in sets for label in s):
                with pytest.raises(ValueError, match="unknown label 'weather'"):
                    labels.multi_hot(sets, data.LABELS)
            else:
                out = labels.multi_hot(sets, data.LABELS)
                assert [sorted(data.LABELS[j] for j in range(4) if row[j]) for row in out] == [sorted(set(s)) for s in sets]
            COUNTS["labels.multi_hot"] += 1


# --- packing ----------------------------------------------------------------------------------

def test_fuzz_packing():
    rng = random.Random(1308)
    with time_limit():
        for _ in range(500):
            max_length = rng.randint(4, 24)
            examples = []
            for _ in range(rng.randint(1, 8)):
                n = rng.randint(0 if rng.random() < 0.1 else 1, max_length + (2 if rng.random() < 0.1 else 0))
                ids = [rng.randrange(3, 100) for _ in range(n)]
                labs = [rng.choice([t, packing.IGNORE_INDEX]) for t in ids]
                if rng.random() < 0.1:
                    labs = labs[:-1] if labs and rng.random() < 0.5 else labs + [7]
                examples.append({"input_ids": ids, "labels": labs})
            fine = all(0 < len(e["input_ids"]) == len(e["labels"]) <= max_length for e in examples)
            COUNTS["packing.pack_examples"] += 1
            if not fine:
                with pytest.raises(ValueError):
                    packing.pack_examples(examples, max_length, 0)
                continue
            rows = packing.pack_examples(examples, max_length, 0)
            assert all(len(r["input_ids"]) == len(r["labels"]) == len(r["position_ids"]) == max_length for r in rows)
            assert sum(r["n_real"] for r in rows) == sum(len(e["input_ids"]) for e in examples)
            # every example's tokens and (after its first) labels appear intact in some row
            pieces = Counter()
            for r in rows:
                start = 0
                for n in r["seq_lengths"]:
                    pieces[(tuple(r["input_ids"][start:start + n]), tuple(r["labels"][start + 1:start + n]))] += 1
                    assert r["labels"][start] == packing.IGNORE_INDEX and r["position_ids"][start] == 0
                    start += n
            assert pieces == Counter((tuple(e["input_ids"]), tuple(e["labels"][1:])) for e in examples)
            mask = rng.choice(["position_ids", "4d"])
            batch = packing.PackedCollator(mask=mask)(rows)
            assert {tuple(v.shape[:2]) if k != "attention_mask" else tuple(v.shape[::2][:2]) for k, v in batch.items()} \
                == {(len(rows), max_length)}
            if mask == "4d":
                assert batch["attention_mask"].dtype == torch.float32
                assert (batch["attention_mask"].diagonal(dim1=-2, dim2=-1) == 0).all()   # every token sees itself
            COUNTS["packing.PackedCollator"] += 1


def test_fuzz_total_is_at_least_10000():
    """Runs last in this file: the inputs generated above add up to the promised number."""
    total = sum(COUNTS.values())
    print("\nfuzz inputs per entry point:")
    for name, n in sorted(COUNTS.items()):
        print(f"  {name:<40} {n:>6,}")
    print(f"  {'total':<40} {total:>6,}")
    if len(COUNTS) >= 16:   # the whole file ran (not a -k selection)
        assert total >= 10_000
    assert not math.isnan(total)
