"""The shipped datasets load, validate and report bad input with file, line, field and reason."""

import json
import re
from collections import Counter

import pytest

from course_utils import data, tasks
from course_utils.make_datasets import build_all


def write_lines(path, lines):
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n" for line in lines))
    return path


GOOD = {"id": "x", "text": "球队夺冠", "label": "sports", "lang": "zh", "template_id": "zh-sports-01", "flags": []}


@pytest.mark.parametrize("name", data.list_datasets())
def test_every_shipped_dataset_loads_without_drops(name, capsys):
    ds = data.load(name)
    assert len(ds) == len(data.load_records(name)) > 0
    assert capsys.readouterr().out.startswith(f"{name}.jsonl: kept {len(ds)}, dropped 0")


def test_dataset_sizes_meet_the_course_minimums():
    news = data.load_records("news_cls")
    assert len(news) >= 1200 and len({r["label"] for r in news}) >= 4
    assert {r["lang"] for r in news} == {"zh", "en"}
    ner = data.load_records("ner_bio")
    assert len(ner) >= 300 and len({t[2:] for r in ner for t in r["tags"] if t != "O"}) >= 3
    assert len(data.load_records("sft_alpaca")) + len(data.load_records("sft_chat")) >= 1000


def test_datasheet_flag_table_matches_the_data():
    counts = Counter(f for r in data.load_records("news_cls") for f in r["flags"])
    table = dict(re.findall(r"\| `(\w+)` \| (\d+) \|", data.datasheet("news_cls")))
    assert {k: int(v) for k, v in table.items()} == dict(counts)


def test_every_instruction_answer_is_verified():
    for row in data.load_records("sft_alpaca"):
        assert tasks.is_correct(row, row["output"]), row["id"]
    for row in data.load_records("sft_chat"):
        answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        for task, params, answer in zip(row["tasks"], row["params"], answers):
            assert tasks.solve(task, row["lang"], params) == answer


def test_wrong_answers_are_rejected():
    row = data.load_records("sft_alpaca")[0]
    assert not tasks.is_correct(row, row["output"] + "0")


def test_ner_tags_are_valid_bio():
    for row in data.load_records("ner_bio"):
        for prev, tag in zip(["O"] + row["tags"], row["tags"]):
            if tag.startswith("I-"):
                assert prev[2:] == tag[2:], (row["id"], row["tags"])


def test_regenerating_the_datasets_is_byte_identical(tmp_path):
    build_all(tmp_path)
    for name in data.list_datasets():
        assert (tmp_path / f"{name}.jsonl").read_bytes() == data.dataset_path(name).read_bytes(), name
    shipped = data.DATA_DIR / "course_tokenizer" / "tokenizer.json"
    assert (tmp_path / "course_tokenizer" / "tokenizer.json").read_bytes() == shipped.read_bytes()


@pytest.mark.parametrize("line, field, reason", [
    ('{"id": "x", "text": "oops"', "<json>", "not valid JSON"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "text"}), "text", "missing required field"),
    (json.dumps({**GOOD, "text": 3}), "text", "expected a string, got int"),
    (json.dumps({**GOOD, "label": "weather"}), "label", "unknown value 'weather'"),
    (json.dumps({**GOOD, "extra": 1}), "extra", "unknown field"),
    (json.dumps({**GOOD, "flags": "html"}), "flags", "expected a list"),
    ("[1, 2]", "<record>", "expected a JSON object"),
])
def test_malformed_record_names_file_line_field_and_reason(tmp_path, line, field, reason):
    path = write_lines(tmp_path / "bad.jsonl", [json.dumps(GOOD), line])
    with pytest.raises(data.RecordError) as info:
        data.read_records(path, data.SCHEMAS["news_cls"])
    err = info.value
    assert (err.file, err.line, err.field) == ("bad.jsonl", 2, field)
    assert reason in err.reason
    assert str(err).startswith(f"bad.jsonl, line 2, field '{field}'")


def test_lenient_mode_keeps_good_records_and_reports_every_drop(tmp_path):
    path = write_lines(tmp_path / "mixed.jsonl", [
        json.dumps(GOOD), b"\xff\xfe not utf-8", "", json.dumps({**GOOD, "id": "y"}), "{broken"])
    records, report = data.read_records(path, data.SCHEMAS["news_cls"], strict=False)
    assert [r["id"] for r in records] == ["x", "y"]
    assert report.kept == 2
    assert [(e.line, e.field) for e in report.dropped] == [(2, "<line>"), (5, "<json>")]
    assert "invalid UTF-8" in report.dropped[0].reason
    assert report.summary().startswith("mixed.jsonl: kept 2, dropped 2")


def test_ner_rule_catches_length_mismatch(tmp_path):
    bad = {"id": "n", "lang": "en", "tokens": ["Alice", "runs"], "tags": ["B-PER"]}
    path = write_lines(tmp_path / "ner.jsonl", [json.dumps(bad)])
    with pytest.raises(data.RecordError, match="1 tags for 2 tokens") as info:
        data.read_records(path, data.SCHEMAS["ner_bio"], rules=data.RECORD_RULES["ner_bio"])
    assert info.value.field == "tags"


def test_csv_files_are_read_and_validated(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("id,text\na,hello\nb,\n", encoding="utf-8")
    schema = {"id": data.text, "text": data.text}
    records, report = data.read_records(path, schema)
    assert records == [{"id": "a", "text": "hello"}, {"id": "b", "text": ""}]
    path.write_text("id,text,extra\na,hello,1\n", encoding="utf-8")
    with pytest.raises(data.RecordError, match="unknown field") as info:
        data.read_records(path, schema)
    assert (info.value.line, info.value.field) == (2, "extra")


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(data.UnknownDatasetError) as info:
        data.load("news")
    for name in data.list_datasets():
        assert name in str(info.value)


def test_task_params_survive_the_arrow_round_trip():
    ds = data.load("sft_alpaca", verbose=False)
    row = ds[0]
    assert isinstance(row["params"], str)
    assert tasks.is_correct(row, row["output"])
