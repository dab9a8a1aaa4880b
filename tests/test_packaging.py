"""Packaging contracts: environment.yml mirrors pyproject, the console script exists, CI runs make test."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_environment_yml_matches_pyproject():
    py = _pyproject()["project"]
    wanted = set(py["dependencies"]) | set(py["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip) == wanted


def test_console_script_and_package_name():
    py = _pyproject()["project"]
    assert py["name"] == "sme-playbook"
    assert py["scripts"]["playbook"] == "analysis.cli:main"
    assert (ROOT / "src" / "analysis" / "__init__.py").exists()


def test_makefile_targets_bootstrap_venv():
    mk = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test", "bench", "lab"):
        assert re.search(rf"^{target}: \$\(STAMP\)", mk, re.M), target


def test_ci_runs_make_test_and_rejects_empty_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci and "passed" in ci
