"""Issue 13: a run killed with SIGKILL at any moment, including inside a checkpoint save, resumes to
exactly the weights of an uninterrupted run.

Each attempt is a real child process (forked from a multiprocessing forkserver that imported torch
and transformers once) that trains a tiny BERT for 24 steps with a checkpoint after every step and
``resume="auto"``.  Two kinds of kill:

* at a named point inside the save (``COURSE_CHECKPOINT_FAULT=<point>:<step>``, the child SIGKILLs
  itself there): after the weights, after the optimiser state, half-way through the JSON state,
  with the new folder complete but not in place, with the old one moved aside, right after the rename;
* from the parent after a random delay (seeded), wherever the child happens to be.

Every chain of attempts must end with final weights bit-identical to the uninterrupted run's.  The
figures (kills, time) are printed; run with ``-s`` to see them.
"""

import multiprocessing
import random
import signal
import time

import pytest
import torch
from safetensors import safe_open

from course_utils import training

ctx = multiprocessing.get_context("forkserver")
# Installed modules only: Python 3.11's forkserver ignores the parent's sys.path, so it could not
# import tests/kill_resume_worker.py itself (the child does, cheaply, once these are loaded).
ctx.set_forkserver_preload(["torch", "safetensors.torch", "transformers", "transformers.optimization",
                            "transformers.models.bert.modeling_bert", "course_utils.training",
                            "course_utils.models"])

# (point, step) in an order where each kill is reached: after a kill that completed the new folder
# ("tmp-complete", "old-moved", "renamed") the run resumes AT that step, so the next kill is later.
SAVE_KILLS = [("after-model", 1), ("after-optimizer", 1), ("inside-state", 1), ("tmp-complete", 1),
              ("old-moved", 2), ("renamed", 3), ("after-model", 4), ("inside-state", 4), ("tmp-complete", 5),
              ("after-optimizer", 6), ("old-moved", 6), ("inside-state", 7), ("renamed", 9),
              ("tmp-complete", 11), ("old-moved", 12)]   # 6 steps per epoch, 12 in all


def attempt(folder, fault=None, kill_after=None, timeout=60.0):
    """Run one child; return its exit code (-9 when SIGKILLed)."""
    import kill_resume_worker
    process = ctx.Process(target=kill_resume_worker.child, args=(str(folder), fault))
    process.start()
    process.join(kill_after if kill_after is not None else timeout)
    if process.is_alive() and kill_after is not None:
        process.kill()
        process.join(timeout)
    if process.is_alive():
        process.kill()
        raise AssertionError(f"child hung in {folder}")
    return process.exitcode


def final_weights(folder):
    with safe_open(str(folder / "final.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()["losses"]


def child_seconds(folder) -> float:
    with safe_open(str(folder / "final.safetensors"), "pt") as f:
        return float(f.metadata()["seconds"])


def assert_same(folder, reference):
    weights, losses = final_weights(folder)
    ref_weights, ref_losses = reference
    assert weights.keys() == ref_weights.keys()
    for name in weights:
        assert torch.equal(weights[name], ref_weights[name]), (folder, name)
    assert losses == ref_losses


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unbroken")
    assert attempt(folder) == 0
    return final_weights(folder), child_seconds(folder)


def test_kills_inside_the_save_resume_to_identical_weights(tmp_path, reference):
    ref, _ = reference
    start = time.perf_counter()
    for fault in (f"{point}:{step}" for point, step in SAVE_KILLS):
        assert attempt(tmp_path, fault=fault) == -signal.SIGKILL, fault   # the kill point was reached
        assert not (tmp_path / "final.safetensors").exists()
    assert attempt(tmp_path) == 0
    assert_same(tmp_path, ref)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == list(training.CHECKPOINT_FILES)
    print(f"\nkill test, inside the save: {len(SAVE_KILLS)} SIGKILLs, {time.perf_counter() - start:.1f} s")


def test_kills_at_random_moments_resume_to_identical_weights(tmp_path, reference):
    ref, ref_seconds = reference
    rng = random.Random(13)
    start, kills, chains = time.perf_counter(), 0, 0
    for chain in range(3):
        folder = tmp_path / f"chain{chain}"
        folder.mkdir()
        for _ in range(4):
            # somewhere inside a run of about ref_seconds (the child has no imports to do)
            code = attempt(folder, kill_after=rng.uniform(0.02, ref_seconds))
            if code == 0:
                break
            assert code == -signal.SIGKILL
            kills += 1
        if not (folder / "final.safetensors").exists():
            assert attempt(folder) == 0
        assert_same(folder, ref)
        chains += 1
    print(f"\nkill test, random moments: {kills} SIGKILLs over {chains} runs, {time.perf_counter() - start:.1f} s")
    assert kills >= 6


def test_interrupted_first_save_then_plain_resume_is_a_clear_error(tmp_path):
    assert attempt(tmp_path, fault="inside-state:1") == -signal.SIGKILL
    import kill_resume_worker
    model, loader, config = kill_resume_worker.make_run()
    with pytest.raises(training.CheckpointError, match="no complete checkpoint"):
        training.train(model, loader, config, checkpoint_dir=tmp_path / "ckpt", resume=True, device="cpu")


@pytest.mark.parametrize("change, words", [
    ({"rows": 8}, "other data"),
    ({"learning_rate": 1e-3}, "learning_rate: saved 0.003, now 0.001"),
])
def test_resume_refuses_other_data_or_config(tmp_path, change, words):
    import kill_resume_worker
    assert attempt(tmp_path, fault="after-model:5") == -signal.SIGKILL   # leaves the step-4 checkpoint
    model, loader, config = kill_resume_worker.make_run(**change)
    with pytest.raises(training.CheckpointError, match=words):
        training.train(model, loader, config, checkpoint_dir=tmp_path / "ckpt", resume=True, device="cpu")


def test_resume_refuses_the_same_rows_in_another_order(tmp_path):
    import kill_resume_worker
    assert attempt(tmp_path, fault="after-model:5") == -signal.SIGKILL
    model, loader, config = kill_resume_worker.make_run()
    loader.sampler.generator.manual_seed(99)            # seed_data_order reseeds from config.seed ...
    config.seed = 7
    shuffled = torch.utils.data.DataLoader(list(reversed(loader.dataset)), batch_size=loader.batch_size,
                                           collate_fn=loader.collate_fn, sampler=None)
    with pytest.raises(training.CheckpointError, match="other batches"):
        training.train(model, shuffled, config, checkpoint_dir=tmp_path / "ckpt", resume=True, device="cpu")
