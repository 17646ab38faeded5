"""Issue 13, readers: each bad input the independent fuzz run found becomes a RecordError naming
file, line, field and reason, and the lines around it still load.  Expected values are written by
hand from the documented contract, not computed with the readers."""

import json
import os
import threading

import pytest

from course_utils import chat_format, construction, data
from course_utils.construction import PipelineConfig, run_pipeline

SCHEMA = {"id": data.text, "text": data.text}


def write(path, payload: bytes):
    path.write_bytes(payload)
    return path


def lenient(path):
    records, report = data.read_records(path, SCHEMA, strict=False)
    assert report.kept + len(report.dropped) + report.blank == report.lines
    return records, report


@pytest.mark.parametrize("line, field, words", [
    (b'{"id": "a", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "<json>", "nested deeper"),
    (b'{"id": "a", "text": ' + b"[" * 70 + b"]" * 70 + b"}", "<json>", "nested deeper than 64"),
    (b'{"id": "a", "text": "x", "n": ' + b"9" * 5000 + b"}", "<json>", "integer literal of 5000 digits"),
    (b'{"id": "a", "text": "x\\ud800"}', "text", "lone surrogate"),
    (b'{"id": "a", "text": "x", "\\udc00": 1}', "<record>", "lone surrogate in a key"),
    (b'{"id": "a", "text": "Delete everything", "text": "Hi"}', "<json>", "duplicate key 'text'"),
    (b'{"id": "a", "text": NaN}', "<json>", "NaN is not a JSON number"),
    (b'{"id": "a", "text": -Infinity}', "<json>", "-Infinity is not a JSON number"),
    (b'{"id": "a", "text": 1e999}', "<json>", "out of the float range"),
])
def test_hostile_json_is_one_dropped_line(tmp_path, line, field, words):
    path = write(tmp_path / "bad.jsonl", b'{"id": "1", "text": "ok"}\n' + line + b'\n{"id": "3", "text": "ok"}\n')
    records, report = lenient(path)
    assert [r["id"] for r in records] == ["1", "3"]
    (err,) = report.dropped
    assert (err.file, err.line, err.field) == ("bad.jsonl", 2, field)
    assert words in err.reason
    with pytest.raises(data.RecordError, match="bad.jsonl, line 2"):
        data.read_records(path, SCHEMA)


def test_blank_lines_bom_and_line_endings_are_counted(tmp_path):
    rows = [b'{"id": "%d", "text": "t"}' % i for i in range(4)]
    # BOM on line 1, CR LF, a lone CR (old Mac), LF, a blank and a whitespace-only line, no final newline
    payload = b"\xef\xbb\xbf" + rows[0] + b"\r\n" + rows[1] + b"\r" + b"  \t \n" + b"\n" + rows[2] + b"\n" + rows[3]
    records, report = lenient(write(tmp_path / "mixed.jsonl", payload))
    assert [r["id"] for r in records] == ["0", "1", "2", "3"]
    assert (report.lines, report.kept, report.blank, report.dropped) == (6, 4, 2, [])
    assert report.summary() == "mixed.jsonl: kept 4, dropped 0, blank 2"


def test_cr_only_file_reads_every_record(tmp_path):
    path = write(tmp_path / "mac.jsonl", b'{"id": "a", "text": "x"}\r{"id": "b", "text": "y"}\r')
    records, report = lenient(path)
    assert [r["id"] for r in records] == ["a", "b"] and report.lines == 2


def test_line_over_the_limit_is_reported_with_its_size(tmp_path):
    big = b'{"id": "a", "text": "' + b"x" * (data.MAX_LINE_BYTES + 10) + b'"}'
    records, report = lenient(write(tmp_path / "big.jsonl", big + b'\n{"id": "b", "text": "y"}\n'))
    assert [r["id"] for r in records] == ["b"]
    assert report.dropped[0].line == 1 and f"line of {len(big)} bytes" in report.dropped[0].reason


@pytest.mark.parametrize("payload, kept, dropped", [
    # an unbalanced quote may not swallow the rows after it: 4 data lines -> 3 kept, 1 dropped
    (b'id,text\na,"unclosed\nb,two\nc,three\nd,four\n', ["b", "c", "d"], [(2, "<csv>")]),
    (b"id,text\na,\xff\xfe\nb,ok\n", ["b"], [(2, "<line>")]),
    (b"id,text\na,one,extra\nb,ok\n", ["b"], [(2, "<csv>")]),
    (b"id,text\na," + b"x" * 200_000 + b"\nb,ok\n", ["b"], [(2, "<csv>")]),
    (b'\xef\xbb\xbfid,text\r\na,"quoted, comma"\r\n\r\nb,ok', ["a", "b"], []),
])
def test_csv_rows_are_one_line_each(tmp_path, payload, kept, dropped):
    records, report = lenient(write(tmp_path / "rows.csv", payload))
    assert [r["id"] for r in records] == kept
    assert [(e.line, e.field) for e in report.dropped] == dropped


def test_csv_duplicate_header_is_an_error(tmp_path):
    with pytest.raises(data.RecordError) as info:
        data.read_records(write(tmp_path / "dup.csv", b"id,text,text\na,b,c\n"), SCHEMA, strict=False)
    assert (info.value.line, info.value.field) == (1, "text") and "duplicate column" in info.value.reason


def test_fifo_and_devices_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    outcome = {}

    def read():
        try:
            data.read_records(fifo, SCHEMA)
        except data.RecordError as err:
            outcome["err"] = err

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert outcome["err"].field == "<file>" and "FIFO" in outcome["err"].reason
    with pytest.raises(data.RecordError, match="a device, not a regular file"):
        chat_format.read_chat_jsonl("/dev/zero")
    with pytest.raises(data.RecordError, match="a directory"):
        data.read_records(tmp_path, SCHEMA)


def test_file_size_cap(tmp_path, monkeypatch):
    path = write(tmp_path / "x.jsonl", b'{"id": "a", "text": "b"}\n' * 10)
    monkeypatch.setattr(data, "MAX_FILE_BYTES", 100)
    with pytest.raises(data.RecordError, match="over the limit of 100 bytes"):
        data.read_records(path, SCHEMA)


@pytest.mark.parametrize("params", [[], [{}], [{"role": "x"}], [{"a": [1, {"b": None}]}]])
def test_params_that_pass_the_schema_also_load_into_arrow(params):
    records = data.load_records("sft_chat")[:3]
    for i in range(3):
        changed = [dict(r) for r in records]
        changed[i]["params"] = params
        ds = data.to_dataset(changed)
        assert json.loads(ds[i]["params"]) == params
        assert ds[i]["messages"] == changed[i]["messages"]


def test_read_chat_jsonl_counts_blank_lines_and_rejects_surrogates(tmp_path):
    ok = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    path = write(tmp_path / "chat.jsonl", (ok + "\n\n   \n" + ok.replace('"a"', '"a\\ud800"') + "\n" + ok).encode())
    kept, report = chat_format.read_chat_jsonl(path)
    assert len(kept) == 2 and report.blank == 2 and report.lines == 5
    assert [(e.line, e.field) for e in report.dropped] == [(4, "messages[1].content")]
    # an in-memory record (not read from JSON) with a lone surrogate gets the documented kind
    with pytest.raises(chat_format.ChatFormatError) as info:
        chat_format.parse_record({"messages": [{"role": "user", "content": "q\udfff"},
                                               {"role": "assistant", "content": "a"}]})
    assert info.value.kind == "invalid_text"


# --- construction ------------------------------------------------------------------------------

ROW = {"text": "华星科技发布新款智能手机芯片，续航提升明显", "label": "tech"}
ROW2 = {"text": "Aster Bank shares rose after quarterly profit beat analysts", "label": "finance"}


def test_same_file_name_in_two_folders_gets_distinct_ids(tmp_path):
    for folder, row in (("a", ROW), ("b", ROW2)):
        (tmp_path / folder).mkdir()
        write(tmp_path / folder / "x.jsonl", json.dumps(row, ensure_ascii=False).encode() + b"\n")
    records, report, failures = construction.extract([tmp_path / "a" / "x.jsonl", tmp_path / "b" / "x.jsonl"],
                                                     PipelineConfig())
    assert [r["id"] for r in records] == ["a/x.jsonl:1", "b/x.jsonl:1"] and not failures
    assert construction.source_names([tmp_path / "x.jsonl", tmp_path / "y.jsonl"]) == ["x.jsonl", "y.jsonl"]


def test_pipeline_survives_surrogate_ids_odd_file_names_fifos_and_cr_files(tmp_path):
    odd = tmp_path / os.fsdecode(b"caf\xff.jsonl")  # not valid UTF-8
    write(odd, json.dumps({**ROW, "id": "s\ud800"}).encode() + b"\n" + json.dumps(ROW2).encode() + b"\n")
    mac = write(tmp_path / "mac.jsonl", json.dumps({**ROW, "id": "m1"}).encode() + b"\r"
                + json.dumps({**ROW2, "id": "m2", "text": ROW2["text"] + " again"}).encode() + b"\r")
    dup = write(tmp_path / "dup.jsonl", b'{"text": "Delete everything", "text": "Hi"}\n')
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    result = run_pipeline([odd, mac, dup, fifo], tmp_path / "out", PipelineConfig())
    where = [(e.file, e.line, e.field) for e in result.failures]
    assert where == [("caf\\xff.jsonl", 1, "id"), ("dup.jsonl", 1, "<json>"), ("pipe.jsonl", 0, "<file>")]
    assert "duplicate key 'text'" in result.failures[1].reason
    assert result.stages[0].kept == 3
    written = (tmp_path / "out" / "failures.jsonl").read_text("utf-8")
    assert "caf\\\\xff.jsonl" in written and "lone surrogate" in written


# --- cleaning, labels, make_datasets (issue 13's reproduced cases) --------------------------------

def test_clean_text_survives_marked_sections_and_control_characters():
    from course_utils import cleaning
    assert cleaning.clean_text("<p>a<![foo]>b</p>").text == "a b"            # was AssertionError from html.parser
    assert cleaning.clean_text("<p>a<![CDATA[x<y]]>b</p>").text == "ax<yb"    # CDATA keeps its text
    assert cleaning.clean_text("<\x00script>alert(1)</script>ok").text == "ok"  # was "<script>alert(1)"
    assert cleaning.clean_text("<\u200bscript>alert(1)</script>ok").text == "ok"
    assert cleaning.clean_text("x<!--<script>alert(1)").text == "x"           # unclosed comment hides the rest
    out = cleaning.clean_batch({"text": [None, "Hello world"]})
    assert out["text"] == ["", "Hello world"] and out["drop_reason"] == ["empty", ""]
    with pytest.raises(TypeError, match="row 0, column 'text': expected a string, got int"):
        cleaning.clean_batch({"text": [3]})


def test_label_helpers_name_the_bad_value():
    from course_utils import labels
    with pytest.raises(ValueError, match="class id -1 is out of range: expected 0 <= id < 4"):
        labels.one_hot([-1], 4)                                               # was [0, 0, 0, 1]
    with pytest.raises(ValueError, match="class id 4 is out of range"):
        labels.one_hot([4], 4)
    with pytest.raises(ValueError, match="word id -1 is out of range: 2 word tags"):
        labels.align_word_labels([None, 0, -1, None], ["B-PER", "O"])       # was the last tag
    with pytest.raises(ValueError, match="word id 2 is out of range"):
        labels.align_word_labels([0, 2], ["B-PER", "O"])
    with pytest.raises(ValueError, match="unknown tag 'B-XXX'"):
        labels.align_word_labels([0], ["B-XXX"])                              # was a bare KeyError
    with pytest.raises(ValueError, match="offset \\(5, 6\\) is outside the 3 tagged characters"):
        labels.align_char_labels([(0, 1), (5, 6)], ["O", "O", "O"])
    with pytest.raises(ValueError, match="unknown label 'weather'"):
        labels.multi_hot([["sports", "weather"]], data.LABELS)
    with pytest.raises(ValueError, match="label id 99"):
        labels.id_row([0, -100, 99])


def test_build_all_does_not_default_to_the_package_data():
    import inspect

    from course_utils import make_datasets
    default = inspect.signature(make_datasets.build_all).parameters["out_dir"].default
    assert os.path.abspath(default) != os.path.abspath(data.DATA_DIR)
