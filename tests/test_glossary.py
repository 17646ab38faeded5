"""The glossary (术语表): GLOSSARY.md is generated from course_utils.glossary, each term appears where it says it
is introduced, and the retired colliding names stay out of the notebooks."""

import json
import re

import pytest

from course_utils.glossary import RETIRED, TERMS, markdown
from course_utils.notebooks import NOTEBOOKS, REPO, repo_url


def notebook_markdown(name: str) -> str:
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_glossary_file_is_generated_from_the_module():
    assert (REPO / "GLOSSARY.md").read_text(encoding="utf-8") == markdown(repo_url)


def test_one_entry_per_term():
    names = [t.english.lower() for t in TERMS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("term", TERMS, ids=[t.english for t in TERMS])
def test_term_appears_in_its_notebook(term):
    text = notebook_markdown(term.notebook).lower()
    core = re.sub(r"\s*\(.*\)$", "", term.english).lower()  # "byte-pair encoding (BPE)" -> "byte-pair encoding"
    assert core in text, f"{term.english!r} is not mentioned in {term.notebook}'s markdown"


def test_retired_names_are_gone_from_the_notebooks():
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")):
        text = notebook_markdown(path.name)
        for pattern, why in RETIRED.items():
            found = re.search(pattern, text)
            assert not found, f"{path.name} says {found and found.group(0)!r}: {why}"
