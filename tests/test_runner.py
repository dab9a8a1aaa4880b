"""`playbook run`: stops at a failing stage naming the cell and error, keeps earlier stages, resumes with --from."""

import json
import shutil
import subprocess
import sys

import pytest

from analysis.synth.bank import generate_bank
from analysis.workspace import init_workspace

pytestmark = pytest.mark.xdist_group("runner")


def playbook(*args):
    return subprocess.run([sys.executable, "-m", "analysis.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=900)


def test_failing_stage_stops_and_from_resumes(tmp_path):
    ws = init_workspace(tmp_path / "ws", bank_zh="测试银行")
    generate_bank(ws.inbox, customers=400, seed=5, txn_per_active_month=4)
    assert playbook("ingest", ws.root).returncode == 0
    tags = ws.catalog / "tags.yaml"
    good = tags.read_text(encoding="utf-8")
    # a catalogue entry that tries to read a file: stage 02 must refuse it, naming the tag
    tags.write_text(good.replace('expr: "demand_avg"}', "expr: \"read_csv('/etc/passwd')\"}", 1), encoding="utf-8")
    proc = playbook("run", ws.root, "--stage", "01_data_assessment", "--stage", "02_tag_design")
    assert proc.returncode == 1
    assert "02_tag_design failed" in proc.stderr and "demand_avg" in proc.stderr and "cell" in proc.stderr
    assert "--from 02_tag_design" in proc.stderr
    failed_run = (ws.runs / "latest").resolve()
    assert (failed_run / "results" / "01_data_assessment.json").exists()
    manifest = json.loads((failed_run / "manifest.json").read_text(encoding="utf-8"))
    assert [s["status"] for s in manifest["stages"]] == ["ok", "failed"]

    tags.write_text(good, encoding="utf-8")
    proc = playbook("run", ws.root, "--from", "02_tag_design")
    assert proc.returncode == 0, proc.stderr
    run = (ws.runs / "latest").resolve()
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    status = {s["stage"]: s["status"] for s in manifest["stages"]}
    assert status["01_data_assessment"] == "carried" and status["02_tag_design"] == "ok"
    assert status["executive_summary"] == "ok"
    assert (run / "results" / "01_data_assessment.json").read_bytes() == \
        (failed_run / "results" / "01_data_assessment.json").read_bytes()
