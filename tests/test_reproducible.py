"""Reproducibility: identical inputs and parameters give identical results and deliverables.

Two demos with the same size and seed are built in different folders (one pair for the module,
shared with test_interrupt through ``demo_pair``); every results/*.json must be equal, every cell
of every sheet of every deliverable workbook must be equal, and each run's manifest must record
what is needed to reproduce it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import __version__

try:
    import fcntl
except ImportError:  # Windows: no lock; run the slow tests without xdist there
    fcntl = None
from analysis.workspace import STAGES

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("repro_pair")]

CUSTOMERS, SEED = 800, 5


def playbook(*args, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def shared_demo(tmp_path_factory, name: str, customers: int, seed: int) -> Path:
    """A demo workspace built once per test session, shared by every xdist worker.

    Built under the session's common temp folder behind a file lock: the xdist_group marks keep
    a module on one worker only where pytest-xdist's loadgroup works (with pytest 9 it does not
    group), and a demo is minutes of work. Tests must only read it (copy it to change it).
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # pytest-N/, common to the workers' popen-gwK/ folders
    root = base / f"shared-{name}"
    with open(base / f"shared-{name}.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".built").exists():
            shutil.rmtree(root, ignore_errors=True)
            proc = playbook("demo", root, "--customers", customers, "--seed", seed)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            (root / ".built").write_text("ok", encoding="utf-8")
    return root


def demo_pair(tmp_path_factory) -> tuple[Path, Path]:
    """Two demo workspaces built from the same size and seed in different folders."""
    return (shared_demo(tmp_path_factory, "repro-first", CUSTOMERS, SEED),
            shared_demo(tmp_path_factory, "repro-second", CUSTOMERS, SEED))


def results(run_dir: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((run_dir / "results").glob("*.json"))}


def workbook_cells(path: Path) -> dict[str, list[tuple]]:
    """Every sheet's cell values, row by row."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=False)
    try:
        return {ws.title: [tuple(row) for row in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
    finally:
        wb.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return demo_pair(tmp_path_factory)


def test_results_json_identical_across_two_demo_runs(pair):
    first, second = pair
    a, b = results(first / "runs" / "latest"), results(second / "runs" / "latest")
    assert sorted(a) == sorted(STAGES)
    for stage in STAGES:
        assert a[stage] == b[stage], stage
    # byte-identical too: key order and number formatting are part of "the same result"
    for stage in STAGES:
        assert ((first / "runs" / "latest" / "results" / f"{stage}.json").read_bytes()
                == (second / "runs" / "latest" / "results" / f"{stage}.json").read_bytes()), stage


def test_deliverable_xlsx_cells_identical_across_two_demo_runs(pair):
    first, second = pair
    names = sorted(p.name for p in (first / "deliverables").glob("*.xlsx"))
    assert names == sorted(p.name for p in (second / "deliverables").glob("*.xlsx"))
    assert first != second
    assert len(names) >= 4, names
    for name in names:
        a, b = workbook_cells(first / "deliverables" / name), workbook_cells(second / "deliverables" / name)
        assert list(a) == list(b), name
        for sheet in a:
            assert len(a[sheet]) == len(b[sheet]), (name, sheet)
            for r, (row_a, row_b) in enumerate(zip(a[sheet], b[sheet]), start=1):
                assert row_a == row_b, (name, sheet, r)
        assert sum(len(rows) for rows in a.values()) > 10, name  # not vacuously equal


def test_identical_inputs_have_identical_hashes(pair):
    first, second = pair
    for path in sorted((first / "inbox").iterdir()):
        assert (hashlib.sha256(path.read_bytes()).hexdigest()
                == hashlib.sha256((second / "inbox" / path.name).read_bytes()).hexdigest()), path.name


def test_manifest_records_what_reproduces_the_run(pair):
    first, second = pair
    run_dir = first / "runs" / "latest"
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    inbox = sorted(p for p in (first / "inbox").iterdir() if p.is_file())
    assert manifest["inputs"] == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inbox}
    catalog = sorted((first / "catalog").glob("*.yaml"))
    assert catalog and manifest["catalog"] == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in catalog}
    assert manifest["seed"] == SEED
    assert manifest["parameters"]["seed"] == SEED
    synthetic = manifest["parameters"]["synthetic"]
    assert (synthetic["customers"], synthetic["seed"]) == (CUSTOMERS, SEED)
    assert manifest["parameters"]["as_of"] == "2022-12"
    assert "stages" in manifest["parameters"] and "ingest" in manifest["parameters"]
    assert manifest["package_version"] == __version__
    assert "git_commit" in manifest  # None outside a git checkout
    if (Path(__file__).resolve().parents[1] / ".git").exists():
        assert isinstance(manifest["git_commit"], str) and len(manifest["git_commit"]) == 40
    assert manifest["python"] and manifest["ok"] is True
    assert [s["stage"] for s in manifest["stages"]] == list(STAGES)
    assert all(s["status"] == "ok" for s in manifest["stages"])
    # the ingest that fed the run is recorded beside it
    ingest = json.loads((run_dir / "ingest.json").read_text(encoding="utf-8"))
    assert {t["sha256"] for t in ingest["tables"].values()} <= set(manifest["inputs"].values())
    # the second demo's manifest differs only in what identifies the run, never in inputs or parameters
    other = json.loads((second / "runs" / "latest" / "manifest.json").read_text(encoding="utf-8"))
    for key in ("inputs", "catalog", "parameters", "seed", "package_version", "git_commit"):
        assert manifest[key] == other[key], key
