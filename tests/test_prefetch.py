"""``python -m course_utils.prefetch`` with the hub replaced by stubs (no network)."""

from types import SimpleNamespace

import huggingface_hub

import hub_standins as standins
from course_utils import hub, prefetch


def test_prefetch_fetches_every_asset_at_its_pinned_revision(tmp_path, monkeypatch, capsys):
    import datasets
    calls = []

    def snapshot_download(repo_id, revision=None, allow_patterns=None, **kwargs):
        calls.append(("model", repo_id, revision))
        assert "*.safetensors" in allow_patterns and "*.h5" not in allow_patterns
        folder = tmp_path / repo_id.replace("/", "--")
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"\0" * 2_500_000)
        (folder / "config.json").write_text("{}")
        return str(folder)

    def load_dataset(path, name=None, revision=None, **kwargs):
        calls.append(("dataset", path, revision))
        return standins.stub_load_dataset(path, name)

    def info(repo_id, revision=None):
        return SimpleNamespace(card_data={"license": {"Qwen/Qwen2.5-0.5B": "apache-2.0"}.get(repo_id)})

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "model_info", info)
    monkeypatch.setattr(huggingface_hub, "dataset_info", info)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert prefetch.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert calls == [("model", "Qwen/Qwen2.5-0.5B", hub.QWEN25_05B_REVISION), ("model", "bert-base-chinese", "main"),
                     ("dataset", "clue/clue", "main"), ("dataset", "shibing624/alpaca-zh", hub.ALPACA_ZH_REVISION)]
    assert out[0] == (f"model   Qwen/Qwen2.5-0.5B @ {hub.QWEN25_05B_REVISION}: 2.5 MB; licence on the hub card: "
                      "apache-2.0; course record: Apache-2.0")
    assert out[1].startswith("model   bert-base-chinese @ main (not pinned to a commit): 2.5 MB; "
                             "licence on the hub card: not declared on the card")
    assert out[2].startswith("dataset clue/clue/tnews @ main (not pinned to a commit): ")
    assert out[-1].startswith("total ") and out[-1].endswith("; 0 failed")


def test_prefetch_reports_a_failure_and_exits_nonzero(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise ConnectionError("no network")

    import datasets
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    monkeypatch.setattr(datasets, "load_dataset", refuse)
    assert prefetch.main([]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("FAILED (ConnectionError: no network)") == 4
    assert captured.out.strip().endswith("; 4 failed")


def test_prefetch_list_needs_no_network(capsys):
    assert prefetch.main(["--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(hub.COURSE_ASSETS)
