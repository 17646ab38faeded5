"""Classroom mode, step 1: fetch every model and dataset the course uses into the local HF cache.

    python -m course_utils.prefetch            # downloads (about 1.5 GB), prints sizes and licences
    python -m course_utils.prefetch --list     # what would be fetched, without the network

A teacher runs it once on a machine with internet (or on each classroom machine, or shares the
cache folder, ``HF_HOME``); afterwards the notebooks find the real models in the cache and run
with no network (``course_utils.hub``: classroom mode).  Everything is fetched at the course's
pinned revisions, so the cache holds exactly what the resolvers ask for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_utils import hub

# Weights in safetensors plus the config, tokenizer and licence files; not the TF/Flax/ONNX copies.
MODEL_FILES = ["*.json", "*.txt", "*.safetensors", "*.jinja", "*.model", "LICENSE*", "README.md"]


def _size(path: Path) -> int:
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)  # stat follows the cache's symlinks to the blobs


def human(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000


def hub_licence(kind: str, repo_id: str, revision: str | None) -> str:
    """The licence the repository's card declares, or a note saying it could not be read."""
    import huggingface_hub
    try:
        info = (huggingface_hub.model_info if kind == "model" else huggingface_hub.dataset_info)(repo_id, revision=revision)
        card = getattr(info, "card_data", None) or {}
        licence = card.get("license") if hasattr(card, "get") else getattr(card, "license", None)
        return str(licence) if licence else "not declared on the card"
    except Exception as error:
        return f"card not readable ({type(error).__name__})"


def fetch_model(repo_id: str, revision: str | None) -> int:
    import huggingface_hub
    folder = huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=MODEL_FILES)
    return _size(Path(folder))


def fetch_dataset(path: str, name: str | None, revision: str | None) -> int:
    import datasets
    splits = datasets.load_dataset(path, name, revision=revision)
    return sum(split.data.nbytes for split in splits.values())  # the Arrow tables now in the cache


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.prefetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print what would be fetched and exit (no network)")
    args = parser.parse_args(argv)
    failures = 0
    total = 0
    for kind, repo_id, name, licence in hub.COURSE_ASSETS:
        revision = hub.model_revision(repo_id) if kind == "model" else hub.dataset_revision(repo_id)
        label = f"{repo_id}/{name}" if name else repo_id
        pinned = revision if revision and revision != "main" else "main (not pinned to a commit)"
        if args.list:
            print(f"{kind:7} {label} @ {pinned}; licence (course record): {licence}")
            continue
        try:
            size = fetch_model(repo_id, revision) if kind == "model" else fetch_dataset(repo_id, name, revision)
        except Exception as error:
            failures += 1
            print(f"{kind:7} {label} @ {pinned}: FAILED ({type(error).__name__}: {error})", file=sys.stderr)
            continue
        total += size
        print(f"{kind:7} {label} @ {pinned}: {human(size)}; licence on the hub card: "
              f"{hub_licence(kind, repo_id, revision)}; course record: {licence}")
    if not args.list:
        import huggingface_hub.constants
        print(f"total {human(total)} in {huggingface_hub.constants.HF_HUB_CACHE} "
              f"(datasets also in {Path(huggingface_hub.constants.HF_HOME) / 'datasets'}); "
              f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
