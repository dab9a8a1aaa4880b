"""The command line: exit codes and messages a consultant can act on (DESIGN.md §7)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.synth.bank import generate_bank
from analysis.workspace import init_workspace


def playbook(*args):
    return subprocess.run([sys.executable, "-m", "analysis.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def small_inbox(tmp_path_factory):
    """A synthetic extract generated once; tests copy it into their own workspace."""
    root = tmp_path_factory.mktemp("bank")
    ws = init_workspace(root / "ws", bank_zh="测试银行")
    generate_bank(ws.inbox, customers=300, seed=11, txn_per_active_month=3)
    return ws.inbox


def _workspace(tmp_path, inbox):
    ws = init_workspace(tmp_path / "ws", bank_zh="测试银行")
    shutil.rmtree(ws.inbox)
    shutil.copytree(inbox, ws.inbox)
    return ws


def test_help_lists_every_contract_command():
    out = playbook("--help").stdout
    for cmd in ("init", "demo", "ingest", "run", "render", "evaluate-pilot"):
        assert cmd in out


def test_init_then_reinit_is_a_clear_error(tmp_path):
    assert playbook("init", tmp_path / "w", "--bank", "测试银行").returncode == 0
    proc = playbook("init", tmp_path / "w", "--bank", "测试银行")
    assert proc.returncode == 2 and "already exists" in proc.stderr and "Traceback" not in proc.stderr


def test_not_a_workspace_exits_2(tmp_path):
    proc = playbook("ingest", tmp_path)
    assert proc.returncode == 2 and "engagement.yaml" in proc.stderr


def test_good_extract_ingests(tmp_path, small_inbox):
    ws = _workspace(tmp_path, small_inbox)
    proc = playbook("ingest", ws.root)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((ws.runs / "latest" / "ingest.json").read_text(encoding="utf-8"))
    for name, t in rep["tables"].items():
        assert t["rows_in"] == t["rows_loaded"] + t["rows_quarantined"], name
    assert rep["tables"]["customers"]["rows_quarantined"] >= 1  # the planted duplicate rows


def _broken(tmp_path, small_inbox, breaker):
    ws = _workspace(tmp_path, small_inbox)
    breaker(ws)
    proc = playbook("ingest", ws.root)
    rep_path = ws.runs / "latest" / "ingest.json"
    return ws, proc, json.loads(rep_path.read_text(encoding="utf-8")) if rep_path.exists() else None


def test_wrong_encoding_declared(tmp_path, small_inbox):
    def breaker(ws):
        text = ws.config_path.read_text(encoding="utf-8")
        ws.config_path.write_text(text.replace("  encodings: {}", "  encodings: {customers.csv: utf-8}"), encoding="utf-8")
    ws, proc, _ = _broken(tmp_path, small_inbox, breaker)
    assert proc.returncode == 2, proc.stderr
    assert "customers.csv" in proc.stderr and "row" in proc.stderr and "Fix:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_required_column_missing(tmp_path, small_inbox):
    def breaker(ws):
        p = ws.inbox / "products.csv"
        lines = p.read_text(encoding="utf-8").splitlines()
        cols = lines[0].split(",")
        i = cols.index("product_type")
        p.write_text("\n".join(",".join(v for j, v in enumerate(l.split(",")) if j != i) for l in lines) + "\n",
                     encoding="utf-8")
    ws, proc, _ = _broken(tmp_path, small_inbox, breaker)
    assert proc.returncode == 2
    assert "products.csv" in proc.stderr and "product_type" in proc.stderr and "Fix:" in proc.stderr


def test_non_numeric_amount_names_file_row_column_and_accounts_rows(tmp_path, small_inbox):
    def breaker(ws):
        p = ws.inbox / "loan_offers.csv"
        lines = p.read_text(encoding="utf-8").splitlines()
        cols = lines[0].split(",")
        i = cols.index("amount")
        row = lines[3].split(",")
        row[i] = "三十万"
        lines[3] = ",".join(row)
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ws, proc, rep = _broken(tmp_path, small_inbox, breaker)
    assert proc.returncode == 2
    msg = proc.stderr
    assert "loan_offers.csv" in msg and "row 4" in msg and "amount" in msg and "Fix:" in msg
    assert rep is not None
    for name, t in rep["tables"].items():
        assert t["rows_in"] == t["rows_loaded"] + t["rows_quarantined"], name
    assert rep["tables"]["loan_offers"]["rows_quarantined"] == 1


def test_unknown_stage_is_a_clear_error(tmp_path, small_inbox):
    ws = _workspace(tmp_path, small_inbox)
    assert playbook("ingest", ws.root).returncode == 0
    proc = playbook("run", ws.root, "--stage", "99_nothing")
    assert proc.returncode == 2 and "unknown stage" in proc.stderr
