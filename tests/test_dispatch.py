"""RM task lists on a tiny hand-built warehouse: contact policy, de-duplication, peers' products, workbooks.

Eight customers, two RMs, three events (A → time deposit, B → payroll, a risk event) at 2022-12;
every expected row below is worked out by hand from the tables in `_warehouse`.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess

import duckdb
import openpyxl
import pandas as pd
import pytest

from analysis import dispatch
from analysis.catalog import EventCatalog, EventDef
from analysis.privacy import pdf_text_pages, scan_paths
from analysis.style import cjk_font_path

AS_OF = "2022-12"
NAMES = {f"C{i}": n for i, n in enumerate(
    ["江城顺达商贸有限公司", "江城福源五金店", "江城宏图建材有限公司", "江城百味餐饮店",
     "江城金桥物流有限公司", "江城明辉电子厂", "江城瑞丰农资店", "江城嘉禾服饰店"], start=1)}
MOBILES = {f"C{i}": f"1381234{5670 + i:04d}" for i in range(1, 9)}
RM_NAMES = {"R1": "张伟明", "R2": "李娜娜"}


def _ev(id_, targets, *, risk=False, cooling=60, priority=3):
    return EventDef(id=id_, label_zh={"EV_A": "大额货款入账", "EV_B": "频繁公转私", "EV_C": "结算流水激增",
                                      "EV_RISK": "贷款逾期"}[id_],
                    label_en={"EV_A": "Large sales receipt", "EV_B": "Frequent transfers to individuals",
                              "EV_C": "Inflow surge", "EV_RISK": "Loan past due"}[id_],
                    category="risk" if risk else "cross_sell", trigger="true", target_products=targets,
                    script_zh="{name}您好, 我是{rm}, 为您推荐{product}。", script_en="Hello {name}, {rm} here about {product}.",
                    priority=priority, cooling_off_days=cooling, suppresses_offers=risk)


CATALOG = EventCatalog(version=1, events=[_ev("EV_A", ["TD"]), _ev("EV_B", ["PAYROLL"]), _ev("EV_C", ["TD"]),
                                          _ev("EV_RISK", [], risk=True, cooling=0, priority=1)])
SCORECARD = pd.DataFrame({"event_id": ["EV_A", "EV_B", "EV_C"], "selected": [True, True, False],
                          "hit_rate": [0.10, 0.05, 0.20], "lift": [3.0, 2.0, 4.0]})

# customer: (rm, holds TD, holds PAYROLL, holds EBANK, fires A, B, C, risk, last contact)
ROWS = {
    "C1": ("R1", 0, 0, 0, 1, 1, 0, 0, None),          # A and B fire: one task (A), B noted
    "C2": ("R1", 0, 0, 1, 0, 1, 0, 0, None),          # B only
    "C3": ("R1", 0, 0, 0, 1, 0, 0, 0, "2022-12-10"),  # contacted 21 days ago: cooling-off (60 d)
    "C4": ("R1", 0, 0, 1, 1, 0, 0, 0, "2022-09-01"),  # contacted 121 days ago: due again
    "C5": ("R1", 1, 1, 1, 1, 0, 1, 0, None),          # holds TD already; C is not selected
    "C6": ("R2", 0, 1, 1, 1, 0, 0, 1, None),          # risk event suppresses every offer
    "C7": ("R2", 0, 0, 1, 0, 1, 0, 0, None),
    "C8": ("R2", 0, 1, 0, 1, 0, 0, 0, None),
}


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("""
CREATE TABLE products (product_id VARCHAR, product_name_zh VARCHAR, product_name_en VARCHAR);
INSERT INTO products VALUES ('TD', '单位定期存款', 'Corporate time deposit'), ('PAYROLL', '代发工资', 'Payroll service'),
  ('EBANK', '企业网银', 'Corporate e-banking');
CREATE TABLE branches (branch_id VARCHAR, branch_name VARCHAR);
INSERT INTO branches VALUES ('B1', '城东支行');
CREATE TABLE grids (grid_id VARCHAR, grid_name VARCHAR, branch_id VARCHAR);
INSERT INTO grids VALUES ('G1', '城东一网格', 'B1'), ('G2', '城东二网格', 'B1');
CREATE TABLE relationship_managers (rm_id VARCHAR, rm_name VARCHAR, branch_id VARCHAR, grid_id VARCHAR);
CREATE TABLE customers (customer_id VARCHAR, customer_name VARCHAR, mobile VARCHAR, customer_type VARCHAR,
  industry_code VARCHAR, rm_id VARCHAR, branch_id VARCHAR, grid_id VARCHAR);
CREATE TABLE customer_month (customer_id VARCHAR, month DATE, customer_type VARCHAR, industry_code VARCHAR,
  deposit_avg DOUBLE, holds_td INT, holds_payroll INT, holds_ebank INT);
CREATE TABLE event_triggers (customer_id VARCHAR, month DATE, EV_A BOOLEAN, EV_B BOOLEAN, EV_C BOOLEAN, EV_RISK BOOLEAN);
CREATE TABLE marketing_contacts (customer_id VARCHAR, contact_date DATE);
""")
    for rm, name in RM_NAMES.items():
        c.execute("INSERT INTO relationship_managers VALUES (?, ?, 'B1', ?)", [rm, name, "G1" if rm == "R1" else "G2"])
    for cid, (rm, td, pay, eb, a, b, cc, risk, last) in ROWS.items():
        grid = "G1" if rm == "R1" else "G2"
        c.execute("INSERT INTO customers VALUES (?, ?, ?, '个体工商户', 'F52', ?, 'B1', ?)",
                  [cid, NAMES[cid], MOBILES[cid], rm, grid])
        c.execute("INSERT INTO customer_month VALUES (?, DATE '2022-12-01', '个体工商户', 'F52', 50000, ?, ?, ?)",
                  [cid, td, pay, eb])
        c.execute("INSERT INTO event_triggers VALUES (?, DATE '2022-12-01', ?, ?, ?, ?)",
                  [cid, bool(a), bool(b), bool(cc), bool(risk)])
        if last:
            c.execute("INSERT INTO marketing_contacts VALUES (?, ?)", [cid, last])
    yield c
    c.close()


def test_policy_gives_exactly_the_hand_worked_list(con):
    t = dispatch.build_task_list(con, CATALOG, SCORECARD, AS_OF, rm_capacity=2, contacts_per_customer=1)
    got = list(zip(t["rm_id"], t["customer_id"], t["event_id"], t["product_id"]))
    # R1 candidates C1 (A, 0.10), C4 (A, 0.10), C2 (B, 0.05): capacity 2 keeps the two best.
    # R2: C8 (A), C7 (B); C6 suppressed by the risk event. C3 cooling off, C5 holds TD.
    assert got == [("R1", "C1", "EV_A", "TD"), ("R1", "C4", "EV_A", "TD"),
                   ("R2", "C8", "EV_A", "TD"), ("R2", "C7", "EV_B", "PAYROLL")]
    assert list(t["other_events"]) == ["EV_B", "", "", ""]
    assert list(t["rank_in_rm"]) == [1, 2, 1, 2]
    assert set(t["due_date"]) == {"2023-01-31"}
    assert list(t["product_name"]) == ["单位定期存款"] * 3 + ["代发工资"]


def test_capacity_counts_customers_not_calls(con):
    t = dispatch.build_task_list(con, CATALOG, SCORECARD, AS_OF, rm_capacity=2, contacts_per_customer=2,
                                 language="en")
    got = list(zip(t["rm_id"], t["customer_id"], t["event_id"]))
    assert got == [("R1", "C1", "EV_A"), ("R1", "C1", "EV_B"), ("R1", "C4", "EV_A"),
                   ("R2", "C8", "EV_A"), ("R2", "C7", "EV_B")]
    assert t.loc[t["customer_id"] == "C7", "product_name"].item() == "Payroll service"


def test_cooling_off_is_per_event(con):
    # a 10-day cooling-off for A lets C3 (contacted 21 days before the month end) back on the list
    short = EventCatalog(version=1, events=[_ev("EV_A", ["TD"], cooling=10), *CATALOG.events[1:]])
    t = dispatch.build_task_list(con, short, SCORECARD, AS_OF, rm_capacity=10)
    assert sorted(t["customer_id"]) == ["C1", "C2", "C3", "C4", "C7", "C8"]


def test_nothing_selected_gives_an_empty_list(con):
    t = dispatch.build_task_list(con, CATALOG, SCORECARD.assign(selected=False), AS_OF)
    assert t.empty


def test_peer_products_are_what_the_segment_holds_and_the_customer_lacks(con):
    recs = dispatch.recommend_products(con, AS_OF, min_peer_share=0.30, min_peers=3)
    # one segment of 8: EBANK held by 5 (62.5%), PAYROLL by 3 (37.5%), TD by 1 (12.5%, below 30%)
    got = {(r.customer_id, r.product_id): round(r.peer_share, 4) for r in recs.itertuples()}
    assert got == {("C1", "EBANK"): 0.625, ("C1", "PAYROLL"): 0.375, ("C2", "PAYROLL"): 0.375,
                   ("C3", "EBANK"): 0.625, ("C3", "PAYROLL"): 0.375, ("C4", "PAYROLL"): 0.375,
                   ("C7", "PAYROLL"): 0.375, ("C8", "EBANK"): 0.625}
    assert dispatch.recommend_products(con, AS_OF, min_peers=9).empty  # segment too small to compare
    one = dispatch.recommend_products(con, AS_OF, min_peer_share=0.30, min_peers=3, max_per_customer=1)
    assert one.loc[one["customer_id"] == "C1", "product_id"].tolist() == ["EBANK"]

    t = dispatch.build_task_list(con, CATALOG, SCORECARD, AS_OF, rm_capacity=2)
    names = dict(con.execute("SELECT product_id, product_name_zh FROM products").fetchall())
    t = dispatch.attach_recommendations(t, recs, names)
    assert dict(zip(t["customer_id"], t["peer_products"])) == {
        "C1": "企业网银 (62%); 代发工资 (38%)", "C4": "代发工资 (38%)", "C8": "企业网银 (62%)",
        "C7": ""}  # C7's own task is payroll, so it is not repeated


def test_expected_balance_and_branch_summary(con):
    t = dispatch.build_task_list(con, CATALOG, SCORECARD, AS_OF, rm_capacity=2)
    bal = pd.DataFrame({"product_id": ["TD", "PAYROLL"], "avg_new_balance": [300_000.0, float("nan")]})
    t = dispatch.add_expected_balance(t, bal)
    assert list(t["expected_balance"]) == pytest.approx([30_000.0, 30_000.0, 30_000.0, 0.0])
    s = dispatch.branch_summary(t, language="zh")
    assert list(s.columns) == ["支行", "网格", "名单客户数", "客户经理数", "预计成交户数", "预计新增余额(元)"]
    assert s.values.tolist() == [["城东支行", "城东一网格", 2, 1, pytest.approx(0.2), pytest.approx(60_000.0)],
                                 ["城东支行", "城东二网格", 2, 1, pytest.approx(0.15), pytest.approx(30_000.0)]]
    en = dispatch.branch_summary(t, language="en")
    assert list(en.columns)[-1] == "Expected new balance (CNY)"
    assert en.iloc[:, :2].values.tolist() == [["B1", "G1"], ["B1", "G2"]]  # ids, not Chinese names


def _workbooks(con, tmp_path):
    t = dispatch.build_task_list(con, CATALOG, SCORECARD, AS_OF, rm_capacity=2)
    names = dict(con.execute("SELECT product_id, product_name_zh FROM products").fetchall())
    t = dispatch.attach_recommendations(t, dispatch.recommend_products(con, AS_OF, min_peers=3), names)
    kw = dict(language="zh", bank_name="江澄银行", as_of=AS_OF)
    masked = dispatch.write_dispatch_workbook(t, CATALOG, tmp_path / "rm_task_lists.xlsx", masked=True, **kw)
    internal = dispatch.write_dispatch_workbook(t, CATALOG, tmp_path / "rm_task_lists_internal.xlsx", masked=False, **kw)
    return masked, internal


KNOWN = dict(known_names=[*NAMES.values(), *RM_NAMES.values()], known_values={"mobile": list(MOBILES.values())})


def test_masked_workbook_one_sheet_per_rm_chinese_headers_no_personal_data(con, tmp_path):
    masked, internal = _workbooks(con, tmp_path)
    wb = openpyxl.load_workbook(masked)
    assert wb.sheetnames == ["说明", "汇总", "R1", "R2"]  # cover + summary + one per RM
    header = [c.value for c in wb["R1"][1]]
    assert header[:9] == ["客户号", "客户名称", "联系电话", "商机事件", "推荐产品", "预计转化率", "同类客户常用产品",
                          "营销话术", "完成期限"]
    assert header[-6:] == dispatch.FEEDBACK_COLUMNS_ZH
    row = [c.value for c in wb["R1"][2]]
    assert row[0] == "C1" and row[3] == "大额货款入账" and row[4] == "单位定期存款"
    assert row[1] != NAMES["C1"] and row[2] != MOBILES["C1"]
    assert "您好" in row[7] and "张伟明" not in row[7]
    assert wb["R2"].max_row == 3  # header + two customers
    assert scan_paths([masked], **KNOWN) == []
    # the internal variant carries the names and mobiles: the scan must see them (so it can fail)
    kinds = {f.kind for f in scan_paths([internal], **KNOWN)}
    assert {"person_name", "mobile"} <= kinds


def _soffice():
    return shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(_soffice() is None, reason="LibreOffice (soffice) not installed")
def test_workbook_opens_in_libreoffice_with_readable_chinese(con, tmp_path):
    masked, _ = _workbooks(con, tmp_path)
    out = tmp_path / "lo"
    # A machine without a system CJK font renders Chinese as boxes in the pdf; give LibreOffice the
    # Noto Sans CJK the package already ships (fontconfig reads ~/.fonts).
    fonts = tmp_path / ".fonts"
    fonts.mkdir()
    shutil.copy(cjk_font_path(), fonts)
    env = {**os.environ, "HOME": str(tmp_path)}
    profile = f"-env:UserInstallation=file://{tmp_path / 'lo_profile'}"
    # csv of every sheet (filter option 12 = -1: one file per sheet), utf-8 (76)
    proc = subprocess.run([_soffice(), profile, "--headless", "--convert-to",
                           "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
                           "--outdir", str(out), str(masked)], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in out.glob("*.csv"))
    assert files == [f"rm_task_lists-{s}.csv" for s in ("R1", "R2", "汇总", "说明")]
    with open(out / "rm_task_lists-R1.csv", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:5] == ["客户号", "客户名称", "联系电话", "商机事件", "推荐产品"]
    assert rows[1][3] == "大额货款入账"
    proc = subprocess.run([_soffice(), profile, "--headless", "--convert-to", "pdf", "--outdir", str(out),
                           str(masked)], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    text = "\n".join(pdf_text_pages(out / "rm_task_lists.pdf"))
    assert "营销任务清单" in text and "江澄银行" in text
