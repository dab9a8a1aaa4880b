"""Notebooks in git carry no outputs, have exactly one `parameters` cell, and match their sources."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import py2nb  # noqa: E402

from analysis.workspace import STAGES  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_one_notebook_per_stage():
    assert [p.stem for p in NOTEBOOKS] == sorted(STAGES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outputs_and_one_parameters_cell(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assert {"workspace", "run_dir", "language"} <= {l.split("=")[0].strip() for l in "".join(tagged[0]["source"]).splitlines() if "=" in l}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_matches_source(path):
    src = ROOT / "notebooks" / "src" / f"{path.stem}.py"
    assert path.read_text(encoding="utf-8") == py2nb.render(src), "run `python tools/py2nb.py`"
