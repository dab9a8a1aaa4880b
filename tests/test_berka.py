"""Real extracts through `playbook assess` and, with a mapping file, through stage 01.

Uses ../shared/data (beside the repository); every test skips when it is absent.
"""

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from analysis import assessment as A
from analysis import assess_files as AF

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
BERKA = DATA / "berka"
BANK_FULL = DATA / "bank_marketing" / "bank-full.csv"
MAPPING = REPO / "examples" / "berka" / "mapping.yaml"

needs_berka = pytest.mark.skipif(not (BERKA / "loan.asc").exists(), reason="no ../shared/data/berka")
needs_bank = pytest.mark.skipif(not BANK_FULL.exists(), reason="no ../shared/data/bank_marketing")

BERKA_ROWS = {"loan": 682, "account": 4500, "client": 5369, "disp": 5369, "district": 77,
              "card": 892, "order": 6471}
CATEGORICAL = ["job", "marital", "education", "default", "housing", "loan", "contact", "month",
               "poutcome"]


def playbook(*args):
    return subprocess.run([sys.executable, "-m", "analysis.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def berka_assessment():
    return AF.assess(BERKA)


@needs_berka
def test_each_berka_table_row_counts_and_format(berka_assessment):
    got = {t.name: t for t in berka_assessment.tables}
    assert {n: t.rows for n, t in got.items()} == BERKA_ROWS
    for t in got.values():
        assert (t.delimiter, t.quote, t.line_ending, t.header_rows, t.rows_rejected) == \
            (";", '"', "CRLF", 1, 0), t.name


@needs_berka
@pytest.mark.parametrize("table", ["loan", "account", "client"])
def test_playbook_assess_on_a_berka_table_exits_0(tmp_path, table):
    from typer.testing import CliRunner

    from analysis.cli import app

    result = CliRunner().invoke(app, ["assess", str(BERKA / f"{table}.asc"), "--out", str(tmp_path)])
    assert result.exit_code == 0 and result.exception is None, result.output
    doc = json.loads((tmp_path / "assessment.json").read_text(encoding="utf-8"))
    assert [(t["name"], t["rows"]) for t in doc["tables"]] == [(table, BERKA_ROWS[table])]
    assert (tmp_path / "findings.xlsx").exists() and (tmp_path / "assessment.html").exists()


@needs_berka
def test_berka_quirks_are_findings(berka_assessment):
    f = berka_assessment.findings
    dates = set(map(tuple, f.query("check == 'date_text_format'")[["table", "column"]].values))
    assert {("account", "date"), ("loan", "date"), ("card", "issued"), ("client", "birth_number")} <= dates
    sex = f.query("check == 'encoded_sex_in_date'")
    assert sex[["table", "column", "rows_affected", "rows_total"]].values.tolist() == \
        [["client", "birth_number", 2645, 5369]]
    assert "month above 50 marks a woman" in sex.iloc[0]["fix_en"]
    ph = f.query("check == 'placeholder_value' and table == 'district'")
    assert ph[["column", "rows_affected", "example"]].values.tolist() == [["A12", 1, "'?'"],
                                                                          ["A15", 1, "'?'"]]
    html = AF.render_html(berka_assessment)
    assert "YYMMDD" in html and "+50" in html and "&#x27;?&#x27;" in html


@needs_bank
def test_bank_full_information_value_matches_hand_computation(tmp_path):
    proc = playbook("assess", BANK_FULL, "--out", tmp_path, "--target", "y", "--positive", "yes")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "assessment.json").read_text(encoding="utf-8"))
    assert [(t["name"], t["rows"], t["columns"]) for t in doc["tables"]] == [("bank_full", 45211, 17)]
    frame = pd.read_csv(BANK_FULL, sep=";")
    y = frame["y"] == "yes"
    assert round(y.mean(), 3) == 0.117
    for col in CATEGORICAL:
        counts = pd.crosstab(frame[col], y).astype(float)   # columns False (non-event), True
        ne, ev = counts[False], counts[True]
        ne, ev = ne.where(ne > 0, 0.5), ev.where(ev > 0, 0.5)
        pct_ne, pct_ev = ne / counts[False].sum(), ev / counts[True].sum()
        hand = float(((pct_ne - pct_ev) * np.log(pct_ne / pct_ev)).sum())
        assert doc["iv"][col] == pytest.approx(hand, rel=1e-9), col
    # a few values to make the test able to fail on the data itself
    assert doc["iv"]["poutcome"] == pytest.approx(0.5146, abs=1e-4)
    assert doc["iv"]["month"] == pytest.approx(0.4361, abs=1e-4)
    assert doc["iv"]["default"] == pytest.approx(0.0063, abs=1e-4)
    assert set(doc["iv"]) == set(frame.columns) - {"y"}


@needs_berka
def test_mapping_turns_berka_into_template_tables_that_stage_01_assesses(tmp_path):
    from analysis.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", bank_zh="Berka", bank_en="Berka", as_of="1998-12")
    notes = AF.apply_mapping(MAPPING, BERKA, ws.inbox)
    assert sorted(p.name for p in ws.inbox.iterdir()) == \
        ["accounts.csv", "branches.csv", "customers.csv", "loans.csv"]
    report = json.loads(AF.ingest_mapped(ws.root, notes).read_text(encoding="utf-8"))
    loaded = {t: v["rows_loaded"] for t, v in report["tables"].items()}
    assert loaded == {"branches": 77, "customers": 5369, "accounts": 4500, "loans": 682}

    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == 5369
        # the decoded extra columns stay in the inbox file (the template has no sex column)
        mapped = pd.read_csv(ws.inbox / "customers.csv")
        assert (mapped["sex"] == "F").sum() == 2645
        assert mapped.loc[mapped["customer_id"] == "C1", ["birth_date", "sex"]].values.tolist() \
            == [["1970-12-13", "F"]]
        five = dict(con.execute("SELECT five_class, count(*) FROM loans GROUP BY 1").fetchall())
        assert five == {"正常": 203 + 403, "损失": 31, "关注": 45}
        first = con.execute("SELECT disbursement_date, maturity_date FROM loans "
                            "WHERE loan_id = 'L5314'").fetchone()
        assert [d.isoformat() for d in first] == ["1993-07-05", "1994-07-05"]
        findings = A.run_checks(con, as_of="1998-12", ingest_report=report,
                                quarantine_dir=ws.quarantine)
    finally:
        con.close()
    f = findings
    dates = set(map(tuple, f.query("check == 'date_text_format'")[["table", "column"]].values))
    assert dates == {("customers", "relationship_start_date"), ("accounts", "open_date"),
                     ("loans", "disbursement_date"), ("loans", "maturity_date")}
    assert "YYMMDD" in f.query("check == 'date_text_format'").iloc[0]["fix_en"]
    quirks = f.query("check == 'source_quirk'")
    assert quirks[["table", "rows_affected"]].values.tolist() == [["branches", 1], ["branches", 1],
                                                                   ["customers", 2645]]
    assert any("+50 for women" in t for t in quirks["fix_en"])
    assert sum("'?'" in t for t in quirks["fix_en"]) == 2
    # what the extract lacks is what the bank's IT must deliver
    assert {"transactions", "balances_monthly", "credit_lines"} <= \
        set(f.query("check == 'missing_table' and severity == 'blocker'")["table"])
    rate = f.query("check == 'rate_implausible'").iloc[0]
    assert (rate["table"], rate["rows_affected"]) == ("loans", 682)
