"""Data-parallel training with torchrun + accelerate on CPU (gloo): two ranks finish, and their
run equals one process that accumulates the same two micro-batches per step."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.notebooks import TEST_ENV

REPO = Path(__file__).resolve().parent.parent
TINY = ["--tiny", "--cpu", "--train-rows", "128", "--batch-size", "16", "--epochs", "1", "--lr", "1e-3"]


def start(command, out):
    env = {**os.environ, **TEST_ENV, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*command, "--out", str(out)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process, out, timeout=120):
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(out.read_text()), stdout


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None
                    and shutil.which("torchrun") is None, reason="torchrun not installed")
def test_two_ranks_match_one_process_with_accumulation(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    # Both runs at once: most of their time is importing torch and transformers.
    ranks = start([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "course_utils.train_classifier",
                   *TINY, "--grad-accum", "1"], tmp_path / "two.json")
    single = start([sys.executable, "-m", "course_utils.train_classifier", *TINY, "--grad-accum", "2"], tmp_path / "one.json")
    try:
        two, stdout = finish(ranks, tmp_path / "two.json")
        one, _ = finish(single, tmp_path / "one.json")
    finally:
        for process in (ranks, single):
            if process.poll() is None:
                process.kill()

    assert two["world_size"] == 2 and one["world_size"] == 1
    # The ranks share one stdout pipe, so match the markers, not whole lines.
    assert sorted(re.findall(r"rank \d+ of \d+ finished", stdout)) == ["rank 0 of 2 finished", "rank 1 of 2 finished"]
    # 128 rows / 16 per batch = 8 batches; 2 per step either way.
    assert two["steps"] == one["steps"] == 4
    assert two["real_tokens"] == one["real_tokens"]
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-4)
    for key in ("loss", "accuracy", "macro_f1"):
        assert two["evals"][-1][key] == pytest.approx(one["evals"][-1][key], rel=1e-4, abs=1e-6)
