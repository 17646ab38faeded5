"""Static checks on the committed notebooks: run once in order, clean outputs, the shared anatomy."""

import json
import re
from pathlib import Path

import pytest

from course_utils.notebooks import NOTEBOOKS, SETUP_CELL, colab_badge

PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
MARKER = re.compile(r"#\s*NBVAL_\w+")
EXACT_MARKERS = {"# NBVAL_IGNORE_OUTPUT", "# NBVAL_SKIP", "# NBVAL_CHECK_OUTPUT", "# NBVAL_RAISES_EXCEPTION"}
MACHINE_PATH = re.compile(r"(/work/|/root/|/home/[a-z]|/tmp/ipykernel_|site-packages|\\Users\\)")


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def output_text(output) -> str:
    parts = [output.get("text", ""), output.get("data", {}).get("text/plain", ""),
             output.get("data", {}).get("text/html", ""), output.get("traceback", "")]
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


@pytest.fixture(params=PATHS, ids=[p.name for p in PATHS])
def notebook(request):
    return request.param, json.loads(request.param.read_text(encoding="utf-8"))


def test_there_are_notebooks():
    assert PATHS and PATHS[0].name.startswith("00_")


def test_executed_once_top_to_bottom(notebook):
    _, nb = notebook
    counts = [c["execution_count"] for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1))


def test_no_errors_and_no_machine_paths(notebook):
    _, nb = notebook
    for i, cell in enumerate(code_cells(nb)):
        source = "".join(cell["source"])
        for output in cell["outputs"]:
            if output["output_type"] == "error":
                assert "# NBVAL_RAISES_EXCEPTION" in source, f"code cell {i}: stored {output['ename']}"
            assert not MACHINE_PATH.search(output_text(output)), f"code cell {i}: machine path in output"


def test_nbval_markers_are_exact(notebook):
    _, nb = notebook
    for i, cell in enumerate(code_cells(nb)):
        for line in "".join(cell["source"]).splitlines():
            if MARKER.search(line):
                assert line.strip() in EXACT_MARKERS, f"code cell {i}: {line!r} would be silently ignored"


def test_setup_cell_is_the_shared_one(notebook):
    _, nb = notebook
    assert "".join(code_cells(nb)[0]["source"]) == SETUP_CELL


def test_title_cell_has_badge_goals_and_run_time(notebook):
    path, nb = notebook
    title = "".join(nb["cells"][0]["source"])
    assert colab_badge(path.name) in title
    for needle in ("Learning goals", "Prerequisites", "run time"):
        assert needle in title, needle


def test_every_notebook_has_solutions(notebook):
    path, _ = notebook
    assert (NOTEBOOKS / "solutions" / f"{path.stem}.md").exists()
