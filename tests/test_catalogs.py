"""The shipped catalogues: customer tags, business metrics, products and events validate, are safe
SQL and compute on a small synthetic bank."""

from __future__ import annotations

import re
import string

import duckdb
import pandas as pd
import pytest
import yaml

from analysis import events as evmod
from analysis import tags as tagmod
from analysis.catalog import (TAG_CATEGORY_EN, ProductCatalog, load_event_catalog, load_product_catalog,
                              load_tag_catalog)
from analysis.errors import InputError
from analysis.resources import catalog_dir
from analysis.sqlsafety import check_expression

pytestmark = pytest.mark.xdist_group("catalogs")

AS_OF = "2022-12"
CATEGORIES = {"基础属性", "经营行为", "资金流", "价值", "风险", "产品持有", "生命周期", "外部数据"}
EVENT_CATEGORIES = {"acquisition", "activation", "cross_sell", "up_sell", "retention", "risk"}
# The 15 events the synthetic bank plants truths on: their ids and triggers must not move.
PLANTED_EVENTS = {
    "EV_LARGE_INFLOW": "max_goods_inflow >= 500000",
    "EV_PAYROLL_PATTERN": "n_to_private >= 6",
    "EV_CASH_HEAVY": "n_cash >= 8",
    "EV_FX_RECEIPT": "n_fx_in >= 1",
    "EV_BILL_RECEIVED": "n_bill_in >= 1",
    "EV_INFLOW_SURGE": "demand_inflow >= 1.5 * demand_inflow_prev3_avg AND demand_inflow_prev3_avg >= 50000",
    "EV_TAX_STABLE_NO_LOAN": "tax_months_paid_6m = 6 AND has_loan = 0",
    "EV_HIGH_DEMAND_BALANCE": "demand_avg_min_3m >= 800000",
    "EV_ANNIVERSARY": "is_anniversary_month = 1",
    "EV_SAME_NAME_OUT": "n_same_name_out_100k >= 1",
    "EV_NEW_RELATIONSHIP": "is_new_relationship_6m = 1",
    "EV_DEPOSIT_DROP": "demand_avg <= 0.7 * demand_avg_prev AND demand_avg_prev >= 100000",
    "EV_DORMANT_3M": "is_dormant_3m = 1",
    "EV_RISK_OVERDUE": "coalesce(overdue_days_now, 0) > 0",
    "EV_RISK_REGISTRY": "has_abnormal_listing = 1 OR has_penalty_or_lawsuit = 1",
}
DEMO_PRODUCTS = ["DEP_BASIC", "DEP_GENERAL", "TD", "AGD", "MARGIN", "LOAN_OP", "LOAN_TAX", "LOAN_MORT", "DISC",
                 "BA", "PAYROLL", "ACQ", "FXS", "CASHMGT", "EBANK"]
CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture(scope="module")
def tag_catalog():
    return load_tag_catalog()


@pytest.fixture(scope="module")
def event_catalog():
    return load_event_catalog()


@pytest.fixture(scope="module")
def product_catalog():
    return load_product_catalog()


@pytest.fixture(scope="module")
def bank(tmp_path_factory, tag_catalog, event_catalog):
    """A 600-customer synthetic bank with the tag table and event triggers built."""
    from analysis.ingest import IngestOptions, ingest_inbox
    from analysis.synth.bank import generate_bank

    root = tmp_path_factory.mktemp("catbank")
    generate_bank(root / "inbox", customers=600, seed=3, txn_per_active_month=3)
    ingest_inbox(root / "inbox", root / "warehouse.duckdb", root / "quarantine",
                 options=IngestOptions(on_bad_rows="quarantine"))
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    n_rows = tagmod.build_tag_table(con, tag_catalog, AS_OF)
    evmod.build_event_triggers(con, event_catalog)
    yield con, n_rows
    con.close()


# ---- customer tag library -------------------------------------------------------------------

def test_tag_library_size_and_categories(tag_catalog):
    assert len(tag_catalog.tags) >= 150
    by_cat = {}
    for t in tag_catalog.tags:
        by_cat.setdefault(t.category, []).append(t.id)
    assert set(by_cat) == CATEGORIES
    assert min(len(v) for v in by_cat.values()) >= 10, {k: len(v) for k, v in by_cat.items()}
    assert set(TAG_CATEGORY_EN) == CATEGORIES


def test_every_tag_is_documented(tag_catalog):
    for t in tag_catalog.tags:
        assert t.label_zh and t.definition and t.owner and t.refresh, t.id
        assert t.label_en and not CJK.search(t.label_en), t.id
    en = [t.label_en for t in tag_catalog.tags]
    assert len(set(en)) == len(en), "English labels must be unique"


def test_existing_tags_kept(tag_catalog):
    by_id = {t.id: t for t in tag_catalog.tags}
    assert by_id["demand_avg_prev"].expr == "lag(demand_avg) OVER w"
    assert by_id["tax_months_paid_6m"].expr.startswith("CASE WHEN count(*) OVER (w ROWS BETWEEN 5 PRECEDING")
    assert by_id["has_loan"].expr == "CASE WHEN active_loans > 0 THEN 1 ELSE 0 END"
    # every product of the demo catalogue has a holding tag
    for p in DEMO_PRODUCTS:
        assert tagmod.product_column(p) in by_id, p


def test_every_tag_expression_is_safe(tag_catalog):
    for t in tag_catalog.tags:
        check_expression(t.expr, owner=t.id)


def test_metric_library(tag_catalog):
    ids = {m.id for m in tag_catalog.metrics}
    assert {"deposit_daily_avg", "loan_balance", "new_customers", "effective_customers", "conversion_rate",
            "list_reach_rate", "feedback_rate", "contribution_per_customer", "npl_ratio"} <= ids
    assert len(ids) == len(tag_catalog.metrics) >= 25
    for m in tag_catalog.metrics:
        assert m.formula and m.grain and m.unit and not CJK.search(m.label_en), m.id


def test_tags_compute_and_none_is_constant_null(bank, tag_catalog):
    con, n_rows = bank
    assert n_rows == con.execute("SELECT count(*) FROM customer_month").fetchone()[0] > 0
    counts = con.execute("SELECT " + ", ".join(f"count({t.id})" for t in tag_catalog.tags)
                         + " FROM tag_table").fetchone()
    null_tags = [t for t, n in zip(tag_catalog.tags, counts) if n == 0]
    # only snapshot fields (valid at the extract date alone) may be empty, and they say so
    assert all("快照" in t.definition for t in null_tags), [t.id for t in null_tags]
    as_of_counts = con.execute("SELECT " + ", ".join(f"count({t.id})" for t in tag_catalog.tags)
                               + f" FROM tag_table WHERE month = DATE '{AS_OF}-01'").fetchone()
    assert min(as_of_counts) > 0, [t.id for t, n in zip(tag_catalog.tags, as_of_counts) if n == 0]


def test_tag_values_worked_examples(bank):
    con, _ = bank
    # hand-checkable identities between tags on the same rows
    bad = con.execute("""
SELECT count(*) FROM tag_table t JOIN customer_month c USING (customer_id, month)
WHERE abs(t.net_inflow - (c.demand_inflow - c.demand_outflow)) > 1e-6
   OR t.n_deposit_products + t.n_loan_products + t.n_service_products + t.n_bill_products <> t.n_products_held
   OR t.is_settlement_no_loan = 1 AND t.has_loan = 1
   OR t.is_dormant_12m = 1 AND t.is_dormant_3m = 0
   OR t.months_active_6m > 6 OR t.months_active_12m < t.months_active_6m
   OR abs(t.total_contribution_est - t.deposit_contribution_est - t.loan_contribution_est) > 1e-6""").fetchone()[0]
    assert bad == 0
    # one customer's 3-month inflow equals the sum of its last three months
    cid = con.execute(f"SELECT customer_id FROM customer_month WHERE month = DATE '{AS_OF}-01' "
                      "AND demand_inflow > 0 ORDER BY customer_id LIMIT 1").fetchone()[0]
    months = con.execute("SELECT demand_inflow FROM customer_month WHERE customer_id = ? "
                         f"AND month > DATE '{AS_OF}-01' - INTERVAL 3 MONTH ORDER BY month", [cid]).fetchall()
    tag = con.execute(f"SELECT demand_inflow_3m FROM tag_table WHERE customer_id = ? AND month = DATE '{AS_OF}-01'",
                      [cid]).fetchone()[0]
    assert len(months) == 3 and tag == pytest.approx(sum(m[0] for m in months))


# ---- event library --------------------------------------------------------------------------

def test_event_library_size_and_categories(event_catalog):
    assert len(event_catalog.events) >= 95
    cats = {e.category for e in event_catalog.events}
    assert cats == EVENT_CATEGORIES
    for c in EVENT_CATEGORIES:
        assert sum(e.category == c for e in event_catalog.events) >= 10, c


def test_planted_events_unchanged(event_catalog):
    by_id = {e.id: e for e in event_catalog.events}
    for eid, trigger in PLANTED_EVENTS.items():
        assert by_id[eid].trigger == trigger, eid


def test_risk_events_suppress_and_others_target(event_catalog):
    for e in event_catalog.events:
        if e.category == "risk":
            assert e.suppresses_offers and e.target_products == [], e.id
        else:
            assert not e.suppresses_offers and e.target_products, e.id


def test_scripts_use_only_allowed_fields(event_catalog):
    allowed = {"name", "product", "rm"}
    for e in event_catalog.events:
        for script in (e.script_zh, e.script_en):
            fields = {f for _, f, _, _ in string.Formatter().parse(script) if f is not None}
            assert fields <= allowed and "name" in fields, (e.id, fields)
            script.format(name="x", product="y", rm="z")
        assert not CJK.search(e.script_en) and not CJK.search(e.label_en), e.id


def test_event_triggers_safe_and_compute(bank, tag_catalog, event_catalog, product_catalog):
    con, _ = bank
    for e in event_catalog.events:
        check_expression(e.trigger, owner=e.id)
    evmod.validate_events(event_catalog, [t.id for t in tag_catalog.tags],
                          [p.id for p in product_catalog.products])
    cols = {r[0] for r in con.execute("DESCRIBE event_triggers").fetchall()}
    assert {e.id for e in event_catalog.events} <= cols
    n_fired = con.execute("SELECT " + ", ".join(f"sum(CAST({e.id} AS INTEGER))" for e in event_catalog.events)
                          + " FROM event_triggers").fetchone()
    fired = sum(1 for n in n_fired if n)
    # most events fire at least once even on a tiny bank (some need data the demo rarely has)
    assert fired >= 0.8 * len(event_catalog.events)


def test_unsafe_trigger_is_rejected_with_its_id(event_catalog, tag_catalog):
    bad = event_catalog.model_copy(update={"events": [event_catalog.events[0].model_copy(
        update={"trigger": "n_cash >= (SELECT count(*) FROM read_csv('/etc/passwd'))"})]})
    with pytest.raises(InputError, match="EV_LARGE_INFLOW"):
        evmod.validate_events(bad, [t.id for t in tag_catalog.tags], DEMO_PRODUCTS)


# ---- product tag library --------------------------------------------------------------------

def test_every_demo_product_has_product_tags(product_catalog):
    by_id = product_catalog.by_id()
    assert sorted(by_id) == sorted(DEMO_PRODUCTS)
    dims_required = {"type", "need", "channel", "segment"}
    dim_of = {t.id: t.dimension for t in product_catalog.product_tags}
    for p in product_catalog.products:
        assert dims_required <= {dim_of[t] for t in p.tags}, p.id
        assert not CJK.search(p.name_en + p.segment_en + p.pricing_basis_en + p.term_en), p.id


def test_product_events_match_event_catalogue(product_catalog, event_catalog):
    by_id = product_catalog.by_id()
    for e in event_catalog.events:
        for p in e.target_products:
            assert p in by_id, (e.id, p)
    for p in product_catalog.products:
        expected = [e.id for e in event_catalog.events if p.id in e.target_products]
        assert p.event_ids == expected, p.id


def test_products_match_demo_products_table(bank, product_catalog):
    con, _ = bank
    table = {r[0] for r in con.execute("SELECT product_id FROM products").fetchall()}
    assert {p.id for p in product_catalog.products} == table


def test_product_catalogue_rejects_unknown_tag():
    raw = yaml.safe_load((catalog_dir() / "products.yaml").read_text(encoding="utf-8"))
    raw["products"][0]["tags"] = ["no_such_tag"]
    with pytest.raises(ValueError, match="DEP_BASIC: unknown product tag"):
        ProductCatalog.model_validate(raw)


def test_tag_table_in_customer_batches_equals_one_pass(bank, tag_catalog, monkeypatch):
    """A large bank builds its tag table in batches of customers (memory); every value must be
    the same as in one pass."""
    con, n_rows = bank
    keys = "ORDER BY customer_id, month"
    whole_cm = con.execute(f"SELECT * FROM customer_month {keys}").df()
    whole = con.execute(f"SELECT * FROM tag_table {keys}").df()
    customers = con.execute("SELECT count(*) FROM customers").fetchone()[0]
    monkeypatch.setattr(tagmod, "BATCH_CUSTOMERS", customers // 4 + 1)     # → 4 batches
    engine = tagmod.as_engine(con)
    batches = tagmod.customer_batches(engine)
    assert len(batches) == 4
    statements = tagmod._tag_table_batches(engine, tag_catalog)
    assert tagmod.cross_customer_tags(tag_catalog) == ["deposit_pct_rank_branch"]   # ranks within a branch
    assert [s.split()[0] for s in statements] == ["CREATE"] * 2 + ["INSERT"] * 3 + ["DROP"]
    con.execute("CREATE SCHEMA IF NOT EXISTS batch_check")
    con.execute("SET search_path = 'batch_check,main'")
    try:
        assert tagmod.build_tag_table(con, tag_catalog, AS_OF) == n_rows
        batched_cm = con.execute(f"SELECT * FROM batch_check.customer_month {keys}").df()
        batched = con.execute(f"SELECT * FROM batch_check.tag_table {keys}").df()
        # batches are appended in customer order (a batch's range filter then reads only its own
        # row groups); rows within a batch are not sorted
        which = " ".join(f"WHEN {b} THEN {i}" for i, b in enumerate(batches))
        stored = con.execute(f"SELECT CASE {which} END AS b FROM batch_check.tag_table").df()["b"]
    finally:
        con.execute("RESET search_path")
        con.execute("DROP SCHEMA batch_check CASCADE")
    pd.testing.assert_frame_equal(whole_cm, batched_cm)
    pd.testing.assert_frame_equal(whole, batched)
    assert stored.is_monotonic_increasing and sorted(stored.unique()) == [0, 1, 2, 3]


def test_lagged_tags_equal_the_lag_of_their_tag(bank):
    """Triggers read look-back tags instead of calling lag() themselves (a window in a trigger made
    the trigger pass sort every tag column: 3× slower at 100,000 customers). Each such tag must be
    exactly the lag of the tag it stands for."""
    con, _ = bank
    pairs = {"td_avg_prev": "lag(td_avg) OVER w",
             "deposit_avg_12m_ago": "lag(deposit_avg, 12) OVER w",
             "n_payroll_3m_before": "lag(n_payroll_3m, 3) OVER w",
             "digital_share_3m_before": "lag(digital_share_3m, 3) OVER w"}
    for tag, lagged in pairs.items():
        differ, present = con.execute(
            f"SELECT count_if({tag} IS DISTINCT FROM x), count_if({tag} IS NOT NULL) FROM "
            f"(SELECT {tag}, {lagged} AS x FROM tag_table WINDOW w AS (PARTITION BY customer_id ORDER BY month))"
        ).fetchone()
        assert differ == 0 and present > 0, tag


def test_no_trigger_needs_a_window(event_catalog):
    assert [e.id for e in event_catalog.events if " OVER " in e.trigger.upper()] == []
