"""The pinned environment agrees with itself: pyproject, constraints, environment.yml, README and CI."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins(text: str) -> dict[str, str]:
    return {m[0].lower(): m[1] for m in re.findall(r"^\s*(?:- )?([A-Za-z0-9_.\-]+)==(\S+)\s*$", text, re.M)}


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_environment_yml_pins_equal_the_constraints():
    constraints = pins((ROOT / ".ci/constraints.txt").read_text())
    env = pins((ROOT / "environment.yml").read_text())
    assert env, "environment.yml has no pins"
    assert {name: constraints.get(name) for name in env} == env


def test_every_declared_dependency_is_pinned_in_both():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = requirement_names(project["dependencies"] + extras["course"] + extras["colab"] + extras["test"])
    assert declared <= set(pins((ROOT / "environment.yml").read_text()))
    assert declared | requirement_names(extras["pretrained"]) <= set(pins((ROOT / ".ci/constraints.txt").read_text()))


def test_torch_is_pinned_to_the_local_cpu_build_version():
    assert pins((ROOT / ".ci/constraints.txt").read_text())["torch"] == "2.13.0"


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(python3\.11 -m venv .venv && [^\n]+)\n```", readme)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2
    open_cmd, test_cmd = commands
    assert open_cmd.endswith("jupyter lab --allow-root notebooks/")
    assert test_cmd.endswith("python -m pytest")
    ci = (ROOT / ".ci/run").read_text()
    assert test_cmd + " || status=$?" in ci


def test_ci_builds_the_colab_wheelhouse_before_the_tests():
    ci = (ROOT / ".ci/run").read_text()
    assert "bash .ci/colab_wheelhouse\n" in ci
    assert ci.index("bash .ci/colab_wheelhouse\n") < ci.index("python -m pytest")


def test_the_colab_like_stack_is_older_than_the_pins_and_sets_the_lower_bounds():
    colab = pins((ROOT / ".ci/colab_like.txt").read_text())
    constraints = pins((ROOT / ".ci/constraints.txt").read_text())
    # It is the stack issue 12 found breaking the course, so it must stay that old.
    assert colab["matplotlib"].startswith("3.10.") and colab["transformers"].startswith("4.")
    assert colab["peft"] == "0.17.1" and colab["ipywidgets"].startswith("7.")
    assert colab["torch"] == constraints["torch"]  # the same local CPU wheel, no second download
    # matplotlib's lower bound is the version the Colab-like test runs, no lower.
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bound = next(re.fullmatch(r"matplotlib>=([\d.]+)", d.split("#")[0].strip()) for d in dependencies
                 if d.startswith("matplotlib"))
    assert colab["matplotlib"].split(".")[:2] == bound[1].split(".")[:2]
