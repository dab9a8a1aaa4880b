"""Client deliverables: executive conclusions, the pptx deck, the pilot dashboard, customer one-pagers,
Excel cover sheets and the zh ↔ en glossary. Fast: fabricated results and a tiny warehouse."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis import customer360, dashboard, deck, executive, i18n  # noqa: E402
from analysis.xlsx import write_sheets  # noqa: E402

RESULTS = {
    "01_data_assessment": {
        "rows_in": 1_000_000, "rows_quarantined": 3, "findings_total": 12,
        "counts_by_severity": {"blocker": 1, "major": 8, "minor": 3},
        "readiness": [
            {"stage": "tags", "label_zh": "客户标签", "label_en": "Customer tags", "score": 91, "decision": "no-go", "go": False},
            {"stage": "value", "label_zh": "价值分层", "label_en": "Value tiers", "score": 100, "decision": "go", "go": True},
        ],
        "top_findings": [],
    },
    "02_tag_design": {"tags": 56, "customers": 2001, "recommendations": {"keep": 53, "drop": 1, "review": 2},
                      "predictive_tags": [{"tag_id": "credit_limit", "iv": 0.70}, {"tag_id": "has_loan", "iv": 0.12}],
                      "target_rate": 0.041},
    "03_value_tiers": {
        "top20_value_share": 0.7671, "gini": 0.736, "total_current_value": 18_809_602.2,
        "tiers": [
            {"tier": "strategic", "label_zh": "战略客户", "label_en": "Strategic", "customers": 139, "share": 0.0695,
             "value_share": 0.3372, "avg_current": 45_633.1, "avg_headroom": 43_602.7},
            {"tier": "general", "label_zh": "一般客户", "label_en": "General", "customers": 1862, "share": 0.9305,
             "value_share": 0.6628, "avg_current": 6_700.0, "avg_headroom": 1_000.0},
        ],
        "pricing": {"elasticity": {"marginal_effect_per_bp": -0.0061},
                    "simulation": {"avg_discount_bp": 12.6, "nii_cost": 982_000.0, "extra_customers": 86.2,
                                   "extra_volume": 61_967_000.0, "extra_nii": 1_174_000.0, "net_nii_effect": 192_000.0}},
    },
    "04_opportunities": {
        "backtest_first_month": "2021-10", "backtest_last_month": "2022-09", "fdr_q": 0.1,
        "events": [{"event_id": "EV_BILL_RECEIVED", "lift": 4.99, "selected": True},
                   {"event_id": "EV_CASH_HEAVY", "lift": 1.1, "selected": False}],
        "task_list": {"customers": 268, "expected_conversions": 6.75, "rms": 15},
    },
    "05_pilot": {
        "pilot_id": "P2022Q4", "customers": 412, "contact_rate": 0.602, "never_worked_rms": 0,
        "minimum_detectable_effect": 0.07,
        "outcomes": [{"outcome": "loan_conversion", "effect": 0.0534, "ci_low": 0.0059, "ci_high": 0.1009,
                      "mean_control": 0.0388, "mean_treatment": 0.0922, "p_value": 0.0276}],
        "extra_loans": {"estimate": 11.0, "ci_low": 1.2, "ci_high": 20.8},
        "extra_deposits": {"estimate": 10_545_663.8, "ci_low": 4_498_763.2, "ci_high": 16_592_564.5},
        "contacted_effect": {"effect": 0.0887},
        "by_tier": [{"segment": "strategic", "effect": 0.087, "ci_low": -0.096, "ci_high": 0.27}],
    },
}


# ---------------------------------------------------------------- executive conclusions

def test_conclusions_insert_the_numbers_in_both_languages():
    zh = {c.topic: c for c in executive.conclusions(RESULTS, "zh")}
    en = {c.topic: c for c in executive.conclusions(RESULTS, "en")}
    assert list(zh) == ["concentration", "strategic", "events", "pilot", "pricing", "readiness"] == list(en)
    assert en["concentration"].sentence == "The top 20% of customers earn 76.7% of value (Gini 0.74)."
    assert zh["concentration"].sentence == "前 20% 客户贡献 76.7% 的价值 (基尼系数 0.74)。"
    assert en["pilot"].sentence.startswith("The pilot lifted loan conversion by 5.3 points (95% CI 0.6 to 10.1): "
                                           "about 11 extra customers (CI 1 to 21).")
    assert "CNY 10.55M" in en["pilot"].sentence and "1,054.6万元" in zh["pilot"].sentence
    assert en["readiness"].figure == "1/2" and "on hold: Customer tags" in en["readiness"].sentence
    assert en["pricing"].sentence.startswith("An average 13 bp discount costs CNY 982.0K a year")
    for c in en.values():
        assert not i18n.has_cjk(c.sentence + c.label + c.figure_label), c


def test_pricing_premium_reads_as_a_premium():
    res = {"03_value_tiers": {**RESULTS["03_value_tiers"], "pricing": {"simulation": {
        "avg_discount_bp": -30.9, "nii_cost": -1_855_406.7, "extra_customers": -299.8,
        "extra_volume": -131_043_704.6, "extra_nii": -5_023_381.8, "net_nii_effect": -3_167_975.1}}}}
    (p,) = [c for c in executive.conclusions(res, "en") if c.topic == "pricing"]
    assert p.sentence.startswith("An average 31 bp premium earns CNY 1.86M a year but loses an expected 300 loans")


# ---------------------------------------------------------------- glossary

def test_glossary_translates_data_values_and_never_leaks_chinese():
    assert i18n.translate("个体工商户", "en") == "Sole proprietor"
    assert i18n.translate("个体工商户", "zh") == "个体工商户"
    assert i18n.translate("某个未知值", "en") == "—"
    assert i18n.translate("B103", "en") == "B103"
    assert i18n.term("per_customer_pricing", "zh") == "一户一价"
    for term_id, (zh, en) in i18n.glossary().items():
        assert i18n.has_cjk(zh) and not i18n.has_cjk(en), term_id


# ---------------------------------------------------------------- deck

@pytest.mark.parametrize("lang", ["zh", "en"])
def test_deck_has_one_message_per_slide(tmp_path, lang):
    from pptx import Presentation

    labels = {"EV_BILL_RECEIVED": ("收到承兑汇票", "Bank acceptance bill received")}
    slides = deck.deck_slides(RESULTS, lang, "2022-12", labels, funnel={"listed": 206, "contacted": 124,
                                                                        "interested": 44, "applied": 30, "converted": 19})
    path = deck.build_deck(slides, tmp_path / "deck.pptx", title=i18n.stage_title("executive_deck", lang),
                           bank_name="江澄银行" if lang == "zh" else "Jiangcheng Bank", as_of="2022-12", language=lang)
    prs = Presentation(str(path))
    assert 10 <= len(prs.slides) <= 15
    texts = ["\n".join(sh.text_frame.text for sh in s.shapes if sh.has_text_frame) for s in prs.slides]
    n_pictures = sum(1 for s in prs.slides for sh in s.shapes if sh.shape_type == 13)
    assert n_pictures >= 8  # a chart on nearly every slide
    assert all(f"{i}/{len(texts)}" in t for i, t in enumerate(texts[1:], start=2))  # page numbers
    if lang == "en":
        assert not any(i18n.has_cjk(t) for t in texts), [t for t in texts if i18n.has_cjk(t)][:1]
        assert "The top 20% of customers earn 76.7% of value (Gini 0.74)." in "\n".join(texts)
    else:
        assert "前 20% 客户贡献 76.7% 的价值 (基尼系数 0.74)。" in "\n".join(texts)


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_deck_reads_in_libreoffice(tmp_path):
    from analysis.privacy import pdf_text_pages

    slides = deck.deck_slides(RESULTS, "zh", "2022-12")
    path = deck.build_deck(slides, tmp_path / "deck.pptx", title="小微客户数字化经营 管理层汇报",
                           bank_name="江澄银行", as_of="2022-12", language="zh")
    pdf = deck.pptx_to_pdf(path, tmp_path)
    pages = pdf_text_pages(pdf)
    assert len(pages) == len(slides) + 1
    text = re.sub(r"\s+", "", "\n".join(pages))
    assert "江澄银行" in text and "前20%客户贡献76.7%的价值" in text
    assert "\ufffd" not in text and "□" not in text


# ---------------------------------------------------------------- warehouse-backed pages

@pytest.fixture(scope="module")
def warehouse():
    """A tiny warehouse with what pilot_data, the dashboard and the one-pagers read."""
    con = duckdb.connect()
    con.execute("""
CREATE TABLE customers AS SELECT * FROM (VALUES
  ('C1', '江澄宏达五金有限公司', '小型企业', 'F', 'B101', 'G1', 'RM01', DATE '2015-03-01'),
  ('C2', '江澄顺风物流有限公司', '个体工商户', 'G', 'B101', 'G1', 'RM02', DATE '2019-07-01'),
  ('C3', '江澄青禾餐饮店', '个体工商户', 'H', 'B102', 'G2', 'RM02', DATE '2020-01-01'),
  ('C4', '江澄明远科技有限公司', '微型企业', 'I', 'B102', 'G2', 'RM01', DATE '2018-05-01'))
  t(customer_id, customer_name, customer_type, industry_code, branch_id, grid_id, rm_id, relationship_start_date);
CREATE TABLE accounts AS SELECT * FROM (VALUES ('A1', 'C1', '基本存款账户'), ('A2', 'C2', '基本存款账户'))
  t(account_id, customer_id, account_type);
CREATE TABLE balances_monthly AS SELECT * FROM (VALUES ('A1', DATE '2022-08-01', 100.0), ('A1', DATE '2022-11-01', 300.0))
  t(account_id, month, balance_daily_avg);
CREATE TABLE loans AS SELECT * FROM (VALUES ('L1', 'C1', 'LOAN_OP', 500000.0, DATE '2022-11-10'))
  t(loan_id, customer_id, product_id, contract_amount, disbursement_date);
CREATE TABLE pilot_assignments AS SELECT * FROM (VALUES
  ('P1', 'C1', 'treatment', 's1', 'RM01', 'EV_LARGE_INFLOW'), ('P1', 'C2', 'treatment', 's1', 'RM02', 'EV_LARGE_INFLOW'),
  ('P1', 'C3', 'control', 's1', 'RM02', 'EV_LARGE_INFLOW'), ('P1', 'C4', 'treatment', 's1', 'RM01', 'EV_CASH_HEAVY'))
  t(pilot_id, customer_id, arm, stratum, rm_id, event_id);
CREATE TABLE pilot_feedback AS SELECT * FROM (VALUES
  ('P1', 'C1', 'RM01', true, DATE '2022-10-12', true, true, true, DATE '2022-11-14'),
  ('P1', 'C2', 'RM02', true, DATE '2022-10-20', false, false, false, DATE '2022-10-21'))
  t(pilot_id, customer_id, rm_id, contacted, contact_date, interested, applied, converted, feedback_date);
CREATE TABLE customer_value AS SELECT * FROM (VALUES
  ('C1', 'strategic', 90000.0, 150000.0, 60000.0, 2000000.0, 500000.0),
  ('C4', 'strategic', 50000.0, 50000.0, 0.0, 800000.0, 0.0),
  ('C2', 'general', 900.0, 1000.0, 100.0, 5000.0, 0.0))
  t(customer_id, tier, current_value, potential_value, headroom, deposit_avg_balance, loan_avg_balance);
CREATE TABLE customer_month AS SELECT * FROM (VALUES
  ('C1', DATE '2022-11-01', 800000.0, 700000.0, 2000000.0, 0.0),
  ('C1', DATE '2022-12-01', 900000.0, 650000.0, 2100000.0, 500000.0))
  t(customer_id, month, demand_inflow, demand_outflow, deposit_avg, loan_avg);
CREATE TABLE tag_table AS SELECT * FROM (VALUES ('C1', DATE '2022-12-01', 1, 0, 1)) t(customer_id, month, has_loan, holds_td, holds_payroll);
CREATE TABLE event_triggers AS SELECT * FROM (VALUES ('C1', DATE '2022-12-01', true, false)) t(customer_id, month, EV_LARGE_INFLOW, EV_CASH_HEAVY);
""")
    yield con
    con.close()


def _text(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", re.sub(r"<style>.*?</style>", "", page, flags=re.S)))


def test_dashboard_counts_and_language(warehouse):
    data = dashboard.dashboard_data(warehouse, pilot_id="P1", window_start="2022-10", window_end="2022-12",
                                    pre_start="2022-07", pre_end="2022-09")
    tot = data.total.iloc[0]
    assert (tot["listed"], tot["contacted"], tot["interested"], tot["applied"], tot["converted"]) == (3, 2, 1, 1, 1)
    assert data.as_of_feedback == "2022-11-14"
    assert data.league["rm_id"].tolist() == ["RM01", "RM02"]  # RM01 converted 1 of 2
    assert data.weekly["cumulative"].tolist() == [1, 2]
    labels = {"EV_LARGE_INFLOW": ("大额货款入账", "Large sales receipt"), "EV_CASH_HEAVY": ("频繁取现", "Frequent cash withdrawals")}
    en = dashboard.render_dashboard(data, language="en", bank_name="Jiangcheng Bank", as_of="2022-12", event_labels=labels)
    assert en.count("<html") == 1 and "http" not in en.replace("http-equiv", "")  # self-contained
    assert "Large sales receipt" in en and "As of the latest feedback 2022-11-14" in en
    assert not i18n.has_cjk(_text(en))
    zh = dashboard.render_dashboard(data, language="zh", bank_name="江澄银行", as_of="2022-12", event_labels=labels)
    assert "大额货款入账" in zh and "截至最新反馈 2022-11-14" in zh


def test_no_pilot_means_no_dashboard():
    con = duckdb.connect()
    assert dashboard.dashboard_data(con, pilot_id="P1", window_start="2022-10", window_end="2022-12",
                                    pre_start="2022-07", pre_end="2022-09") is None


def test_customer360_masks_identity_and_keeps_one_language(warehouse):
    assert customer360.top_customers(warehouse, 5) == ["C1", "C4"]
    p = customer360.profile(warehouse, "C1")
    assert p["name_masked"] != "江澄宏达五金有限公司" and p["name_masked"].endswith("公司")
    assert p["holdings"] == ["has_loan", "holds_payroll"] and p["open_events"] == ["EV_LARGE_INFLOW"]
    tiers = {"strategic": ("战略客户", "Strategic")}
    en = customer360.render_profile(p, language="en", bank_name="Jiangcheng Bank", as_of="2022-12", tier_labels=tiers,
                                    tag_labels={"has_loan": ("有贷户", "Has an active loan")},
                                    event_labels={"EV_LARGE_INFLOW": ("大额货款入账", "Large sales receipt")})
    assert "宏达" not in en and not i18n.has_cjk(_text(en))
    assert "Small enterprise" in en and "Has an active loan" in en and "CNY 2.00M" in en
    zh = customer360.render_profile(p, language="zh", bank_name="江澄银行", as_of="2022-12", tier_labels=tiers)
    assert "宏达五金" not in zh and p["name_masked"] in zh and "战略客户" in zh and "200.0万元" in zh


# ---------------------------------------------------------------- Excel cover sheet

def test_xlsx_cover_sheet_says_what_when_how(tmp_path):
    from openpyxl import load_workbook

    path = write_sheets(tmp_path / "x.xlsx", {"Data": pd.DataFrame({"a": [1, 2]})}, cover_title="Price table",
                        cover_lines=["What: the price table", "As of 2022-12", "How to use: filter by tier"])
    wb = load_workbook(path)
    assert wb.sheetnames == ["About", "Data"]
    cells = [c.value for c in wb["About"]["A"] if c.value]
    assert cells == ["Price table", "What: the price table", "As of 2022-12", "How to use: filter by tier"]


def test_quarto_project_is_shipped():
    from analysis.render import quarto_project_dir

    project = quarto_project_dir()
    assert project is not None
    text = (project / "_quarto.yml").read_text(encoding="utf-8")
    assert "embed-resources: true" in text and "enabled: false" in text
    assert (project / "templates" / "house.css").is_file()


def test_xlsx_cover_labels_what_as_of_and_how(tmp_path):
    from openpyxl import load_workbook

    path = write_sheets(tmp_path / "x.xlsx", {"数据": pd.DataFrame({"a": [1]})}, cover_title="一户一价定价表",
                        cover_lines=["附注"], what="每户客户的建议执行利率", as_of="2022-12", how_to_use="按层级筛选后报批")
    cells = [c.value for c in load_workbook(path)["说明"]["A"] if c.value]
    assert cells == ["一户一价定价表", "这是什么：每户客户的建议执行利率", "数据截至：2022-12", "如何使用：按层级筛选后报批", "附注"]
