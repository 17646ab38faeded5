"""The Hugging Face hub path: which revision, when to use it, and classroom mode.

Three rules, one place:

* **Pinned revisions.**  Every hub model and dataset the course loads is pinned to a revision
  (:data:`MODEL_REVISIONS`, :data:`DATASET_REVISIONS`), so a course run next year loads the
  same files.  Where no commit hash could be confirmed offline the constant is ``"main"`` and
  its name says so (``*_REVISION_UNPINNED``); pin it with ``huggingface_hub.model_info(id).sha``.
* **GPU only.**  The real models train for hours on a CPU (three fine-tunes of Qwen2.5-0.5B in
  notebook 08), so the hub branch is taken only when a GPU is present.  A test, or a patient
  learner, forces it on a CPU with the environment variable ``COURSE_HUB_ON_CPU=1``.
* **Classroom mode (课堂模式).**  A model or dataset already in the local Hugging Face cache is
  used even when the hub cannot be reached: the teacher runs ``python -m course_utils.prefetch``
  once, and the class runs offline with the real models.

:func:`decide` applies the rules and returns a :class:`HubRoute` whose ``reason`` the resolvers
print when they fall back.  :func:`load_public_dataset` is the dataset side of the same rules.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

# --- Pinned revisions ----------------------------------------------------------------------

QWEN = "Qwen/Qwen2.5-0.5B"
BERT_CHINESE = "bert-base-chinese"
TNEWS = ("clue/clue", "tnews")
ALPACA_ZH = "shibing624/alpaca-zh"

# A commit of Qwen/Qwen2.5-0.5B whose tokenizer_config.json holds the chat template the course
# relies on (cited as https://huggingface.co/Qwen/Qwen2.5-0.5B/blob/<this>/tokenizer_config.json).
QWEN25_05B_REVISION = "060db6499f32faf8b98477b0a26969ef7d8b9987"
# The head of shibing624/alpaca-zh ("Update README.md", 2023-05-09), after alpaca_gpt4_data_zh.json was uploaded.
ALPACA_ZH_REVISION = "c9bed12ce4d574df6af683a307577c4f0a1369b1"
# No suitable commit hash could be confirmed without internet, so these follow the branch "main":
# bert-base-chinese's known commits (up to 4b1f5fb, 2021) predate its model.safetensors, and
# clue/clue's parquet files replaced a loading script that datasets >= 4 cannot run.
BERT_BASE_CHINESE_REVISION_UNPINNED = "main"
CLUE_REVISION_UNPINNED = "main"

MODEL_REVISIONS = {QWEN: QWEN25_05B_REVISION, BERT_CHINESE: BERT_BASE_CHINESE_REVISION_UNPINNED}
DATASET_REVISIONS = {TNEWS[0]: CLUE_REVISION_UNPINNED, ALPACA_ZH: ALPACA_ZH_REVISION}

# What the course loads, for the prefetch command: (kind, id, config name or None, licence as the
# course records it; prefetch also prints the licence the hub's card declares).
COURSE_ASSETS = [
    ("model", QWEN, None, "Apache-2.0"),
    ("model", BERT_CHINESE, None, "Apache-2.0"),
    ("dataset", TNEWS[0], TNEWS[1], "not stated (the hub card says 'unknown'); CLUE benchmark data, cite Xu et al. 2020"),
    # The card says cc-by-4.0, but the answers come from GPT-4-LLM (Peng et al. 2023), released under CC BY-NC 4.0.
    ("dataset", ALPACA_ZH, None, "CC BY-NC 4.0 (research and non-commercial use only)"),
]

FORCE_ON_CPU_ENV = "COURSE_HUB_ON_CPU"
NOT_REACHABLE = "hub not reachable"
NO_GPU = f"no GPU: the real model would train for hours on a CPU; {FORCE_ON_CPU_ENV}=1 forces it"


def model_revision(repo_id: str) -> str | None:
    """The pinned revision of a course model; None for anything else (a local folder, say)."""
    return MODEL_REVISIONS.get(repo_id)


def dataset_revision(path: str) -> str | None:
    return DATASET_REVISIONS.get(path)


# --- The policy ------------------------------------------------------------------------------

def gpu_present() -> bool:
    import torch
    return torch.cuda.is_available()


def forced_on_cpu() -> bool:
    return os.environ.get(FORCE_ON_CPU_ENV, "0").lower() in ("1", "true", "yes")


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def in_local_cache(repo_id: str, revision: str | None = None, repo_type: str = "model") -> bool:
    """Whether the hub cache holds a snapshot of ``repo_id`` at ``revision`` (no network:
    ``snapshot_download(local_files_only=True)`` only reads the cache folders).  For a model the
    snapshot must hold weights: a cached config.json alone (from ``AutoConfig``) does not count."""
    from huggingface_hub import snapshot_download
    try:
        folder = Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision, local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, or an id that is not a repo name at all
        return False
    return repo_type != "model" or any((folder / name).exists() for name in WEIGHT_FILES)


@dataclass
class HubRoute:
    use: bool            # take the real model/dataset
    cached: bool         # ... from the local cache, without the network (classroom mode)
    revision: str | None
    reason: str          # why not, when ``use`` is False

    @property
    def where(self) -> str:
        return "the local Hugging Face cache" if self.cached else "the Hugging Face hub"


def decide(repo_id: str, repo_type: str = "model", online: bool | None = None) -> HubRoute:
    """Whether to load the real ``repo_id``, and from where.

    ``online=None`` applies the course policy: the cache or the hub must have it, and a GPU must
    be present (or ``COURSE_HUB_ON_CPU=1``).  ``online=True`` skips the policy (the caller knows
    better, e.g. a local checkpoint folder); ``online=False`` falls back."""
    from course_utils.runtime import hub_reachable
    revision = model_revision(repo_id) if repo_type == "model" else dataset_revision(repo_id)
    if online is False:
        return HubRoute(False, False, revision, "online=False")
    if online is True:
        return HubRoute(True, in_local_cache(repo_id, revision, repo_type), revision, "")
    cached = in_local_cache(repo_id, revision, repo_type)
    if not cached and not hub_reachable():
        return HubRoute(False, False, revision, NOT_REACHABLE)
    if not (gpu_present() or forced_on_cpu()):
        return HubRoute(False, cached, revision, NO_GPU)
    return HubRoute(True, cached, revision, "")


@contextlib.contextmanager
def offline_mode():
    """Make huggingface_hub and datasets read only their caches for the duration (both read the
    flag at import time from HF_HUB_OFFLINE; their module constants are what they check later)."""
    import huggingface_hub.constants as hub_constants
    saved = [(hub_constants, "HF_HUB_OFFLINE", hub_constants.HF_HUB_OFFLINE)]
    hub_constants.HF_HUB_OFFLINE = True
    try:
        import datasets.config as ds_config
        saved.append((ds_config, "HF_HUB_OFFLINE", ds_config.HF_HUB_OFFLINE))
        ds_config.HF_HUB_OFFLINE = True
    except ImportError:
        pass
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


# --- Datasets --------------------------------------------------------------------------------

def load_public_dataset(path: str, name: str | None = None, *, split: str, fallback: str):
    """``datasets.load_dataset(path, name, split=split, revision=<pinned>)`` when the course
    policy allows it, else None.  Prints exactly one line either way:

    ``Dataset: <path>[/<name>] <split> from the Hugging Face hub (<n> rows)`` (or "from the local
    Hugging Face cache" in classroom mode), or ``Dataset: offline fallback <fallback> (<reason>)``.
    """
    import datasets
    from course_utils.runtime import hub_reachable
    revision = dataset_revision(path)
    label = f"{path}/{name}" if name else path
    reachable = hub_reachable()
    reason = None
    if not (gpu_present() or forced_on_cpu()):
        reason = NO_GPU
    ds = None
    if reason is None:
        try:
            context = contextlib.nullcontext() if reachable else offline_mode()
            with context:
                ds = datasets.load_dataset(path, name, split=split, revision=revision)
        except Exception as error:  # offline and not cached, or the hub refused
            reason = NOT_REACHABLE if not reachable else f"could not load {label}: {type(error).__name__}"
    if ds is None:
        # Report the missing network first: that is what a learner can fix.
        if not reachable and reason == NO_GPU:
            reason = NOT_REACHABLE if not _dataset_cached(path, revision) else NO_GPU
        print(f"Dataset: offline fallback {fallback} ({reason})")
        return None
    where = "the Hugging Face hub" if reachable else "the local Hugging Face cache"
    print(f"Dataset: {label} {split} from {where} ({len(ds)} rows)")
    return ds


def _dataset_cached(path: str, revision: str | None) -> bool:
    return in_local_cache(path, revision, repo_type="dataset")
