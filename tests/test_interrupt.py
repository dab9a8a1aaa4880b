"""Interruption: a run or an ingest killed half-way leaves the warehouse consistent, and the next
run ends with the same results as an uninterrupted one.

Uses test_reproducible's demo pair (same xdist group, built once per process): the first demo is
the uninterrupted reference; a copy of its workspace is interrupted and run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from analysis.workspace import STAGES
from test_reproducible import demo_pair, playbook, results

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("repro_pair")]

KILLED_STAGE = "02_tag_design"  # writes its tables into the warehouse


def _start(*args) -> subprocess.Popen:
    # own session: the kill takes the notebook kernel down with the CLI, as a crash would
    return subprocess.Popen([sys.executable, "-m", "analysis.cli", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the process ended before it could be interrupted"
        assert time.monotonic() < deadline, "timed out waiting for the moment to interrupt"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def _table_counts(warehouse: Path) -> dict[str, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1").fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def _copy_workspace(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("reports", "deliverables"))
    return dst


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return demo_pair(tmp_path_factory)[0]


def test_run_killed_mid_stage_then_rerun_gives_the_uninterrupted_results(reference, tmp_path):
    ws = _copy_workspace(reference, tmp_path / "ws")
    runs_before = {p.name for p in (ws / "runs").iterdir()}
    latest_before = (ws / "runs" / "latest").resolve()
    ingest_tables = {t: n["rows_loaded"] for t, n in
                     json.loads((reference / "runs" / "latest" / "ingest.json").read_text())["tables"].items()}

    def stage_executing() -> bool:
        # papermill writes the output notebook before its first cell; wait until it has run a cell
        for nb in (ws / "runs").glob(f"run-*/notebooks/{KILLED_STAGE}.ipynb"):
            if nb.parent.parent.name not in runs_before and nb.stat().st_size > 0:
                try:
                    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
                except (json.JSONDecodeError, KeyError):
                    return False  # being written
                return any(c.get("execution_count") for c in cells)
        return False

    _kill_when(_start("run", ws), stage_executing)
    killed = [p for p in (ws / "runs").iterdir() if p.name not in runs_before]
    assert len(killed) == 1 and not (killed[0] / "manifest.json").exists()
    # the interrupted run never became 'latest', and the warehouse opens with its data intact
    assert (ws / "runs" / "latest").resolve() == latest_before
    counts = _table_counts(ws / "warehouse.duckdb")
    for table, loaded in ingest_tables.items():
        assert counts[table] == loaded, table

    proc = playbook("run", ws)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rerun = (ws / "runs" / "latest").resolve()
    assert rerun != latest_before and rerun != killed[0]
    manifest = json.loads((rerun / "manifest.json").read_text(encoding="utf-8"))
    assert [(s["stage"], s["status"]) for s in manifest["stages"]] == [(s, "ok") for s in STAGES]
    assert results(rerun) == results(reference / "runs" / "latest")
    # the warehouse ends exactly as the uninterrupted workspace's: same tables, same row counts
    assert _table_counts(ws / "warehouse.duckdb") == _table_counts(reference / "warehouse.duckdb")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ingest_killed_mid_way_keeps_the_previous_warehouse_and_a_rerun_succeeds(reference, tmp_path):
    ws = _copy_workspace(reference, tmp_path / "ws")
    warehouse = ws / "warehouse.duckdb"
    before_hash, before_counts = _sha256(warehouse), _table_counts(warehouse)
    building = ws / "warehouse.duckdb.tmp"

    # kill once the new warehouse is being written beside the old one
    _kill_when(_start("ingest", ws), lambda: building.is_file() and building.stat().st_size > 0)
    assert _sha256(warehouse) == before_hash
    assert _table_counts(warehouse) == before_counts

    proc = playbook("ingest", ws)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not building.exists()
    assert not list(ws.glob(".ingest-*")), "the killed ingest's work folder (bank data) was left behind"
    # the new warehouse holds the extract's tables as before (stage tables come with the next run)
    after = _table_counts(warehouse)
    ingested = json.loads((ws / "runs" / "latest" / "ingest.json").read_text(encoding="utf-8"))["tables"]
    assert {t: after[t] for t in ingested} == {t: before_counts[t] for t in ingested}
    assert all(after[t] == n["rows_loaded"] for t, n in ingested.items())
