"""The misconceptions index (MISCONCEPTIONS.md, 常见误区索引): every row resolves to one stored, computed cell.

Each row links to a notebook at the pinned ref and names a tag ``misconception:Mxx``; the notebook must hold
exactly one code cell with that tag, and the cell must have a stored output (the computed truth).  The index
and the notebooks are written by tools/apply_misconceptions.py; these tests read the files, not the script's
rows, except where they check that the committed index is the one the script would write.
"""

import importlib.util
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils.notebooks import COURSE_REF, COURSE_REPO

REPO = Path(__file__).resolve().parent.parent
INDEX = REPO / "MISCONCEPTIONS.md"
NOTEBOOKS = REPO / "notebooks"
ROW = re.compile(r"^\| (M\d{2}) \|")
LINK = re.compile(
    r"\[(?P<number>\d{2}[a-z]?) · [^\]]+\]"
    r"\(https://github\.com/(?P<repo>[^/]+/[^/]+)/blob/(?P<ref>[^/]+)/notebooks/(?P<file>[\w.-]+\.ipynb)\)"
    r" `misconception:(?P<tag>M\d{2})`"
)


def index_rows():
    return [(ROW.match(line).group(1), line) for line in INDEX.read_text(encoding="utf-8").splitlines()
            if ROW.match(line)]


def tagged_code_cells(path, tag):
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code" and tag in c.get("metadata", {}).get("tags", [])]


def load_script():
    spec = importlib.util.spec_from_file_location("apply_misconceptions", REPO / "tools" / "apply_misconceptions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ids_are_unique_and_consecutive():
    ids = [row_id for row_id, _ in index_rows()]
    assert len(ids) >= 20, "the seeds hold far more errors than this"
    assert ids == [f"M{k:02d}" for k in range(1, len(ids) + 1)], ids


@pytest.mark.parametrize("row_id,line", index_rows(), ids=[r for r, _ in index_rows()])
def test_row_links_to_one_tagged_cell_with_output(row_id, line):
    cells = line.strip().strip("|").split(" | ")
    assert len(cells) == 6, f"{row_id}: expected 6 columns, got {len(cells)}"
    belief, truth, seed = cells[1], cells[2], cells[4]
    assert belief and truth and belief != truth
    assert re.fullmatch(r"\d{3}_[0-9a-f]{16}\.txt(, \d{3}_[0-9a-f]{16}\.txt)*", seed), f"{row_id}: seed {seed!r}"

    link = LINK.search(cells[5])
    assert link, f"{row_id}: no notebook link in the form [NN · title](https://github.com/...) `misconception:Mxx`"
    assert (link["repo"], link["ref"]) == (COURSE_REPO, COURSE_REF), f"{row_id}: link not at the pinned ref"
    assert link["tag"] == row_id, f"{row_id}: the link names tag {link['tag']}"
    assert link["file"].startswith(link["number"] + "_"), f"{row_id}: link text {link['number']} vs {link['file']}"
    path = NOTEBOOKS / link["file"]
    assert path.exists(), f"{row_id}: {link['file']} does not exist"

    tagged = tagged_code_cells(path, f"misconception:{row_id}")
    assert len(tagged) == 1, f"{row_id}: {len(tagged)} code cells tagged misconception:{row_id} in {path.name}"
    outputs = tagged[0].get("outputs", [])
    shown = "".join(o.get("text", "") if o.get("output_type") == "stream"
                    else str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert shown.strip(), f"{row_id}: the tagged cell in {path.name} has no stored output; regenerate the notebook"
    assert not any(o.get("output_type") == "error" for o in outputs), f"{row_id}: the stored output is an error"


def test_no_tag_in_the_notebooks_is_missing_from_the_index():
    listed = {row_id for row_id, _ in index_rows()}
    found = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for tag in cell.get("metadata", {}).get("tags", []):
                if tag.startswith("misconception:"):
                    found.setdefault(tag.split(":", 1)[1], []).append(path.name)
    assert set(found) <= listed, f"tags with no index row: {sorted(set(found) - listed)}"


def test_committed_index_is_what_the_script_writes():
    """Edits go into the script's rows; the index is regenerated from them, never edited by hand."""
    script = load_script()
    where = {}
    for row_id, line in index_rows():
        link = LINK.search(line)
        nb = nbformat.read(NOTEBOOKS / link["file"], as_version=4)
        where[row_id] = (link["file"], script.notebook_title(nb))
    assert INDEX.read_text(encoding="utf-8") == script.render_index(where)


def test_script_is_idempotent(tmp_path):
    """Applying twice changes nothing the second time (a copy of the notebooks; nothing is executed)."""
    copy = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, copy, ignore=shutil.ignore_patterns("outputs", "solutions"))
    script = load_script()
    script.apply(copy)
    before = {p.name: p.read_bytes() for p in copy.glob("*.ipynb")}
    where, problems, changed = script.apply(copy)
    assert (problems, changed) == ([], [])
    assert {p.name: p.read_bytes() for p in copy.glob("*.ipynb")} == before
    assert sorted(where) == [f"M{k:02d}" for k in range(1, len(script.ROWS) + 1)]
