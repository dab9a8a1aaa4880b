"""The spine end to end: a small demo bank through ingest, every stage notebook and rendering.

One module-scoped demo (2,000 customers) serves every test here; a second run with the same seed
checks reproducibility. Runs in one xdist group so the workspace is built once.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.privacy import pdf_text_pages
from analysis.workspace import STAGES

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]

CUSTOMERS, SEED = 2000, 7


def _playbook(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "analysis.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=1200)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e") / "demo"
    proc = _playbook("demo", root, "--customers", CUSTOMERS, "--seed", SEED)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc


def _results(run_dir: Path) -> dict:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((run_dir / "results").glob("*.json"))}


def test_demo_prints_summary_pdf_last(demo):
    root, proc = demo
    last = proc.stdout.strip().splitlines()[-1]
    assert Path(last).is_absolute() and last == str(root / "reports" / "executive_summary.pdf")
    assert Path(last).exists()


def test_every_stage_rendered(demo):
    root, _ = demo
    for stage in STAGES:
        assert (root / "reports" / f"{stage}.html").stat().st_size > 2000, stage
        assert (root / "reports" / f"{stage}.pdf").stat().st_size > 2000, stage


def test_pdf_has_bank_name_and_no_missing_glyphs(demo):
    root, _ = demo
    bank = json.loads((root / "truth.json").read_text(encoding="utf-8"))["bank"]["name_zh"]
    for stage in STAGES:
        text = "\n".join(pdf_text_pages(root / "reports" / f"{stage}.pdf"))
        assert bank in text, stage
        assert "\ufffd" not in text and "□" not in text, stage


def test_results_have_contract_keys(demo):
    root, _ = demo
    res = _results(root / "runs" / "latest")
    assert set(STAGES) <= set(res)
    t = res["03_value_tiers"]
    assert {"tier", "customers", "share", "value_share"} <= set(t["tiers"][0]) and "gini" in t
    assert abs(sum(x["share"] for x in t["tiers"]) - 1) < 1e-9
    e = res["04_opportunities"]["events"][0]
    assert {"event_id", "triggers", "hit_rate", "base_rate", "lift", "lift_ci_low", "lift_ci_high", "q_value", "selected"} <= set(e)
    pl = res["05_pilot"]
    assert "srm_p_value" in pl and {"outcome", "effect", "ci_low", "ci_high", "p_value"} <= set(pl["outcomes"][0])


def test_manifest_records_the_run(demo):
    root, _ = demo
    m = json.loads((root / "runs" / "latest" / "manifest.json").read_text(encoding="utf-8"))
    assert m["seed"] == SEED and m["ok"] and m["package_version"]
    assert {s["stage"] for s in m["stages"]} == set(STAGES)
    assert "customers.csv" in m["inputs"] and len(m["inputs"]["customers.csv"]) == 64


def test_ingest_accounts_for_every_row(demo):
    root, _ = demo
    ing = json.loads((root / "runs" / "latest" / "ingest.json").read_text(encoding="utf-8"))
    for name, t in ing["tables"].items():
        assert t["rows_in"] == t["rows_loaded"] + t["rows_quarantined"], name


def test_html_has_no_code_or_tracebacks(demo):
    root, _ = demo
    for stage in STAGES:
        html = (root / "reports" / f"{stage}.html").read_text(encoding="utf-8")
        for needle in ("Traceback", "import analysis", "StageContext", "Warning:", "ctx.save_results"):
            assert needle not in html, (stage, needle)


def test_same_seed_gives_identical_results(demo, tmp_path):
    root, _ = demo
    again = tmp_path / "again"
    proc = _playbook("demo", again, "--customers", CUSTOMERS, "--seed", SEED)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _results(root / "runs" / "latest"), _results(again / "runs" / "latest")
    assert _differences(a, b) == []


def _differences(x, y, path=""):
    """Paths where two result trees differ (empty when identical), for a readable failure."""
    if isinstance(x, dict) and isinstance(y, dict):
        return [d for k in sorted(set(x) | set(y)) for d in _differences(x.get(k), y.get(k), f"{path}.{k}")]
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        return [d for i, (p, q) in enumerate(zip(x, y)) for d in _differences(p, q, f"{path}[{i}]")]
    return [] if x == y else [(path, x, y)]
