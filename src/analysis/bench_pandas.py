"""Straightforward pandas implementations of the heavy stages, for `make bench`'s ratio only.

What an analyst would write without DuckDB: load the warehouse tables into pandas frames, then
merge / groupby / rolling. Each function reads its inputs from the warehouse itself (that load is
part of the pandas cost, as the scan is part of DuckDB's) and returns a few facts about its output.

- ``tag_table``: the `customer_month` base (same aggregations as ``tags.build_customer_month``
  from transactions, balances, loans, credit lines, holdings and the external tables) and then a
  tag layer of the catalogue's size: every look-back tag (an ``OVER`` window) is a grouped
  rolling sum / mean / lag over a base column, every other tag a column expression. The tag
  layer matches the catalogue's count and kind of work, not each tag's formula.
- ``value_tiers``: ``value_data.value_inputs`` as a pandas groupby over `customer_month`, then
  the same current value / potential value / tier code as ``score_customers``.
- ``event_triggers``: every catalogue trigger evaluated on the `tag_table` frame, and the
  product starts.
- ``event_backtest``: per event, eligible customer-months, the first target take-up within the
  window by a merge, per-customer counts and monthly counts, then the same lift statistics.

Not used by any stage; never import it from the analysis.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DEMAND = ("基本存款账户", "一般存款账户")
DEPOSIT = ("基本存款账户", "一般存款账户", "定期存款", "协定存款", "保证金账户")


def _df(con, sql: str) -> pd.DataFrame:
    return con.execute(sql).df()


def _has(con, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [table]).fetchone()[0])


def _mi(s: pd.Series) -> pd.Series:
    """Month index (year × 12 + month − 1) of a date column; NaT → NaN."""
    s = pd.to_datetime(s)
    return s.dt.year * 12 + s.dt.month - 1


def _month_end(mi: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.DataFrame({"year": mi // 12, "month": mi % 12 + 1, "day": 1})) + pd.offsets.MonthEnd(0)


def _product_column(p: str) -> str:
    return "holds_" + re.sub(r"[^a-z0-9]+", "_", p.lower()).strip("_")


def customer_month(con, as_of: str, months: int = 24) -> pd.DataFrame:
    """`customer_month` in pandas (same columns as tags.build_customer_month, month as a month index)."""
    last = int(as_of[:4]) * 12 + int(as_of[5:7]) - 1
    first = last - (months - 1)
    cust = _df(con, "SELECT * FROM customers")
    acct = _df(con, "SELECT account_id, customer_id, account_type, product_id, open_date, close_date FROM accounts")
    products = sorted(_df(con, "SELECT product_id FROM products")["product_id"])

    start = _mi(cust["relationship_start_date"]).fillna(1900 * 12)
    grid = pd.DataFrame({"customer_id": np.repeat(cust["customer_id"].to_numpy(), months),
                         "mi": np.tile(np.arange(first, last + 1), len(cust)),
                         "start": np.repeat(start.to_numpy(), months)})
    grid = grid[grid["mi"] >= grid["start"]].drop(columns="start").reset_index(drop=True)
    ends = pd.Series(_month_end(pd.Series(np.arange(first, last + 1))).to_numpy(), index=np.arange(first, last + 1))
    grid["month_end"] = grid["mi"].map(ends)

    # balances
    bal = _df(con, "SELECT * FROM balances_monthly").merge(acct[["account_id", "customer_id", "account_type"]],
                                                           on="account_id")
    bal["mi"] = _mi(bal["month"])
    t = bal["account_type"]
    bal["interest"] = bal["balance_daily_avg"] * bal["rate"].fillna(0)
    parts = {
        "demand_avg": ("balance_daily_avg", t.isin(DEMAND)), "demand_end": ("balance_month_end", t.isin(DEMAND)),
        "demand_inflow": ("credit_amount", t.isin(DEMAND)), "demand_outflow": ("debit_amount", t.isin(DEMAND)),
        "demand_txn_count": ("txn_count", t.isin(DEMAND)),
        "td_avg": ("balance_daily_avg", t == "定期存款"), "agd_avg": ("balance_daily_avg", t == "协定存款"),
        "margin_avg": ("balance_daily_avg", t == "保证金账户"),
        "deposit_avg": ("balance_daily_avg", t.isin(DEPOSIT)), "deposit_end": ("balance_month_end", t.isin(DEPOSIT)),
        "deposit_interest_annual": ("interest", t.isin(DEPOSIT)),
        "loan_avg": ("balance_daily_avg", t == "贷款账户"), "loan_end": ("balance_month_end", t == "贷款账户"),
        "loan_interest_annual": ("interest", t == "贷款账户"),
    }
    bal_cols = pd.DataFrame({name: bal[col].where(mask) for name, (col, mask) in parts.items()})
    bal_cols[["customer_id", "mi"]] = bal[["customer_id", "mi"]]
    bal_agg = bal_cols.groupby(["customer_id", "mi"]).sum(min_count=1).reset_index()
    del bal, bal_cols

    # transactions: the largest table; the straightforward way is one frame and boolean masks
    txn = _df(con, "SELECT account_id, txn_date, amount, direction, channel, purpose, counterparty_bank "
                   "FROM transactions")
    txn = txn.merge(acct[["account_id", "customer_id"]], on="account_id")
    txn["mi"] = _mi(txn["txn_date"])
    a, d, p, c, bank = txn["amount"], txn["direction"], txn["purpose"], txn["channel"], txn["counterparty_bank"]
    cr, dr, other = d == "C", d == "D", bank == "他行"
    one = pd.Series(1, index=txn.index)
    cols = {
        "n_txn": one, "txn_in_amount": a.where(cr), "txn_out_amount": a.where(dr),
        "max_goods_inflow": a.where(cr & (p == "货款")), "n_goods_in": one.where(cr & (p == "货款")),
        "n_to_private": one.where(p == "公转私"), "to_private_amount": a.where(p == "公转私"),
        "n_cash": one.where(p == "取现"), "cash_amount": a.where(p == "取现"),
        "n_fx_in": one.where((p == "外汇") & cr), "n_bill_in": one.where((p == "票据") & cr),
        "n_same_name_out_100k": one.where((p == "同名划转") & dr & other & (a >= 100000)),
        "same_name_out_amount": a.where((p == "同名划转") & dr & other),
        "same_name_in_amount": a.where((p == "同名划转") & cr & other),
        "n_payroll": one.where(p == "工资"), "n_tax_txn": one.where(p == "税费"),
        "n_social_txn": one.where(p == "社保"), "n_margin_txn": one.where(p == "保证金"),
        "n_digital_txn": one.where(c.isin(["手机银行", "网银"])), "n_counter_txn": one.where(c == "柜面"),
        "other_bank_in_amount": a.where(cr & other), "other_bank_out_amount": a.where(dr & other),
    }
    tx = pd.DataFrame(cols)
    tx["customer_id"], tx["mi"] = txn["customer_id"], txn["mi"]
    del txn, a, d, p, c, bank, cr, dr, other, one, cols
    g = tx.groupby(["customer_id", "mi"])
    txn_agg = g.sum(min_count=1).drop(columns="max_goods_inflow")
    txn_agg["max_goods_inflow"] = g["max_goods_inflow"].max()
    txn_agg = txn_agg.reset_index()
    del tx, g

    # loans, credit lines and holdings: each customer's contracts against each of its grid months
    loans = _df(con, "SELECT * FROM loans")
    gl = grid.merge(loans, on="customer_id")
    end = gl["month_end"]
    until = gl["settled_date"].fillna(gl["maturity_date"])
    active = (gl["disbursement_date"] <= end) & (until > end)
    loans_agg = pd.DataFrame({
        "customer_id": gl["customer_id"], "mi": gl["mi"],
        "active_loans": active.astype(int), "active_loan_amount": gl["contract_amount"].where(active),
        "loans_maturing_60d": (active & (gl["maturity_date"] <= end + pd.Timedelta(days=60))).astype(int),
        "new_loans": (_mi(gl["disbursement_date"]) == gl["mi"]).astype(int),
        "early_settlements": ((_mi(gl["settled_date"]) == gl["mi"])
                              & (gl["settled_date"] < gl["maturity_date"])).astype(int),
        "loans_ever": (gl["disbursement_date"] <= end).astype(int),
        "max_loan_rate": gl["executed_rate"].where(active),
    }).groupby(["customer_id", "mi"]).agg(
        active_loans=("active_loans", "sum"), active_loan_amount=("active_loan_amount", "sum"),
        loans_maturing_60d=("loans_maturing_60d", "sum"), new_loans=("new_loans", "sum"),
        early_settlements=("early_settlements", "sum"), loans_ever=("loans_ever", "sum"),
        max_loan_rate=("max_loan_rate", "max")).reset_index()
    del gl

    as_of_ts = pd.Timestamp(f"{as_of}-01")
    open_loans = loans[loans["settled_date"].fillna(loans["maturity_date"]) > as_of_ts]
    five = {"正常": 1, "关注": 2, "次级": 3, "可疑": 4, "损失": 5}
    risk = open_loans.assign(fc=open_loans["five_class"].map(five)).groupby("customer_id").agg(
        overdue_days_now=("overdue_days", "max"), worst_five_class_now=("fc", "max")).reset_index()
    risk["mi"] = last

    lines = _df(con, "SELECT customer_id, limit_amount, start_date, end_date FROM credit_lines")
    gc = grid.merge(lines, on="customer_id")
    gc["credit_limit"] = gc["limit_amount"].where((gc["start_date"] <= gc["month_end"]) & (gc["end_date"] > gc["month_end"]))
    lines_agg = gc.groupby(["customer_id", "mi"])["credit_limit"].sum(min_count=1).reset_index()
    del gc

    spans = pd.concat([
        acct.rename(columns={"open_date": "s", "close_date": "e"})[["customer_id", "product_id", "s", "e"]],
        loans.assign(s=loans["disbursement_date"], e=loans["settled_date"].fillna(loans["maturity_date"]))[
            ["customer_id", "product_id", "s", "e"]]], ignore_index=True)
    gh = grid.merge(spans, on="customer_id")
    gh = gh[(gh["s"] <= gh["month_end"]) & (gh["e"].isna() | (gh["e"] > gh["month_end"]))]
    holds = pd.crosstab([gh["customer_id"], gh["mi"]], gh["product_id"]).clip(upper=1)
    holds = holds.reindex(columns=products, fill_value=0)
    holds.columns = [_product_column(p) for p in products]
    holds = holds.reset_index()
    del gh

    ext = []
    if _has(con, "tax_monthly"):
        tax = _df(con, "SELECT * FROM tax_monthly")
        tax["mi"] = _mi(tax["month"])
        ext.append(tax.groupby(["customer_id", "mi"]).agg(tax_paid=("tax_paid", "sum"),
                                                           tax_grade=("tax_credit_grade", "max")).reset_index())
    if _has(con, "invoices_monthly"):
        inv = _df(con, "SELECT * FROM invoices_monthly")
        inv["mi"] = _mi(inv["month"])
        ext.append(inv.groupby(["customer_id", "mi"])[["invoice_amount", "invoice_count"]].sum().reset_index())
    if _has(con, "registry_changes"):
        reg = _df(con, "SELECT * FROM registry_changes")
        reg["mi"] = _mi(reg["change_date"])
        ct = reg["change_type"]
        ext.append(pd.DataFrame({
            "customer_id": reg["customer_id"], "mi": reg["mi"],
            "n_abnormal_listing": (ct == "经营异常").astype(int), "n_penalty": (ct == "行政处罚").astype(int),
            "n_lawsuit": (ct == "涉诉").astype(int),
            "n_control_change": ct.isin(["法定代表人变更", "股权变更"]).astype(int),
            "n_expansion": ct.isin(["增资", "新设分支机构"]).astype(int)}).groupby(["customer_id", "mi"]).sum().reset_index())
    if _has(con, "marketing_contacts"):
        mc = _df(con, "SELECT * FROM marketing_contacts")
        mc["mi"] = _mi(mc["contact_date"])
        ext.append(mc.assign(won=(mc["outcome"] == "已成交").astype(int), n=1).groupby(["customer_id", "mi"]).agg(
            n_contacts=("n", "sum"), n_contacts_won=("won", "sum")).reset_index())

    keep = ["customer_id", "customer_type", "industry_code", "branch_id", "grid_id", "rm_id", "credit_rating",
            "established_date", "relationship_start_date", "employees", "annual_turnover", "registered_capital"]
    cm = grid.merge(cust[keep], on="customer_id", how="left")
    for part in (bal_agg, txn_agg, loans_agg, risk, lines_agg, holds, *ext):
        cm = cm.merge(part, on=["customer_id", "mi"], how="left")
    cm["months_established"] = cm["mi"] - _mi(cm["established_date"])
    cm["months_with_bank"] = cm["mi"] - _mi(cm["relationship_start_date"])
    fill = [c for c in cm.columns if c.startswith(("n_", "holds_")) or c.endswith(("_avg", "_end", "_amount", "_inflow",
            "_outflow", "_count", "_annual", "_loans", "_60d", "_settlements", "_ever", "_limit", "_paid"))]
    cm[fill] = cm[fill].fillna(0)
    return cm.sort_values(["customer_id", "mi"], ignore_index=True)


def tag_table(con, as_of: str) -> dict:
    """customer_month in pandas, then a tag layer of the catalogue's size and kinds (see module doc)."""
    from .catalog import load_tag_catalog

    catalog = load_tag_catalog()
    cm = customer_month(con, as_of)
    numeric = [c for c in cm.columns if c not in ("customer_id", "mi") and pd.api.types.is_numeric_dtype(cm[c])]
    g = cm.groupby("customer_id", sort=False)
    out = {"customer_id": cm["customer_id"], "mi": cm["mi"]}
    for i, tag in enumerate(catalog.tags):
        col = numeric[i % len(numeric)]
        if "OVER" not in tag.expr.upper():
            out[tag.id] = cm[col] * 1.0
        elif "lag(" in tag.expr.lower():
            out[tag.id] = g[col].shift(1)
        else:
            m = re.search(r"(\d+)\s+PRECEDING", tag.expr, re.I)
            width = int(m.group(1)) + 1 if m else 3
            fn = "mean" if "avg(" in tag.expr.lower() else "sum"
            out[tag.id] = getattr(g[col].rolling(width, min_periods=1), fn)().reset_index(level=0, drop=True)
    tags = pd.DataFrame(out)
    return {"rows": len(tags), "tags": len(catalog.tags), "customer_month_columns": len(cm.columns)}


def value_tiers(con, as_of: str, window_months: int = 12) -> dict:
    """value_data.value_inputs as a pandas groupby over customer_month, then the same scoring."""
    from .catalog import load_yaml
    from .tags import product_column
    from .value import FtpCurve, TierScheme, assign_tiers, current_value, potential_value
    from .value_data import POTENTIAL_DRIVERS, POTENTIAL_LOG_DRIVERS, ValueAssumptions

    assumptions = ValueAssumptions(**load_yaml("pricing.yaml").get("assumptions", {}))
    scheme = TierScheme.from_catalog(load_yaml("tiers.yaml"))
    ftp = FtpCurve(deposit_ftp=0.024, loan_ftp=0.030)
    start = pd.Timestamp(str(pd.Period(as_of, "M") - (window_months - 1)) + "-01")
    cm = _df(con, "SELECT * FROM customer_month")
    cm = cm[(cm["month"] >= start) & (cm["month"] <= pd.Timestamp(f"{as_of}-01"))]
    cm = cm.assign(tax_paid=cm["tax_paid"].fillna(0), invoice_amount=cm["invoice_amount"].fillna(0))
    fee_cols = {product_column(p): f for p, f in assumptions.annual_fee_by_product.items()
                if product_column(p) in cm.columns}
    g = cm.groupby("customer_id")
    f = g.agg(customer_type=("customer_type", "first"), industry_code=("industry_code", "first"),
              branch_id=("branch_id", "first"), rm_id=("rm_id", "first"), credit_rating=("credit_rating", "first"),
              deposit_sum=("deposit_avg", "sum"), deposit_int=("deposit_interest_annual", "sum"),
              loan_sum=("loan_avg", "sum"), loan_int=("loan_interest_annual", "sum"),
              months_established=("months_established", "max"), months_with_bank=("months_with_bank", "max"),
              annual_turnover=("annual_turnover", "first"), employees=("employees", "first"),
              inflow=("demand_inflow", "sum"), other_in=("other_bank_in_amount", "sum"), tax=("tax_paid", "sum"),
              invoices=("invoice_amount", "sum"), max_loan_amount=("active_loan_amount", "max"),
              months_observed=("month", "size"))
    fee = sum((g[c].max() * fee for c, fee in fee_cols.items()), pd.Series(0.0, index=f.index))
    f = f.reset_index()
    rating = f["credit_rating"].fillna("未评级")
    w = window_months
    frame = pd.DataFrame({
        "customer_id": f["customer_id"], "customer_type": f["customer_type"],
        "industry_code": f["industry_code"].fillna("未知"), "branch_id": f["branch_id"], "rm_id": f["rm_id"],
        "credit_rating": rating,
        "deposit_avg_balance": (f["deposit_sum"] / w).round(2),
        "deposit_rate_paid": (f["deposit_int"] / f["deposit_sum"].replace(0, np.nan)).fillna(0).round(8),
        "loan_avg_balance": (f["loan_sum"] / w).round(2),
        "loan_rate": (f["loan_int"] / f["loan_sum"].replace(0, np.nan)).fillna(0).round(8),
        "pd": rating.map(assumptions.pd_by_rating).fillna(assumptions.pd_by_rating.get("未评级", 0.025)),
        "lgd": assumptions.lgd, "fee_income": fee.to_numpy(),
        "years_established": f["months_established"] / 12.0, "years_with_bank": f["months_with_bank"] / 12.0,
        "annual_turnover": f["annual_turnover"], "employees": f["employees"],
        "annual_inflow": (f["inflow"] * 12.0 / w).round(2), "annual_other_bank_inflow": (f["other_in"] * 12.0 / w).round(2),
        "annual_tax": (f["tax"] * 12.0 / w).round(2), "annual_invoices": (f["invoices"] * 12.0 / w).round(2),
        "max_loan_amount": f["max_loan_amount"], "months_observed": f["months_observed"]})
    frame = frame.assign(employees=frame["employees"].fillna(frame["employees"].median()),
                         years_established=frame["years_established"].fillna(frame["years_established"].median()),
                         annual_turnover=frame["annual_turnover"].fillna(0.0))
    frame = current_value(frame, ftp)
    frame, _ = potential_value(frame, POTENTIAL_DRIVERS, log_drivers=POTENTIAL_LOG_DRIVERS, quantile=0.8)
    frame, _ = assign_tiers(frame, scheme=scheme)
    return {"customers": len(frame)}


def _trigger_to_pandas(expr: str) -> str:
    """A catalogue trigger (SQL boolean over tags) as a DataFrame.eval expression."""
    e = re.sub(r"coalesce\((\w+),\s*([-\d.]+)\)", r"\1.fillna(\2)", expr, flags=re.I)
    e = re.sub(r"\bAND\b", "&", e)
    e = re.sub(r"\bOR\b", "|", e)
    e = re.sub(r"\bNOT\b", "~", e)
    e = re.sub(r"(?<![<>=!])=(?!=)", "==", e)
    e = e.replace("<>", "!=")
    # comparisons bind looser than & / | in Python: parenthesise each side of a connective
    return "(" + re.sub(r"\s*([&|])\s*", r") \1 (", e) + ")"


LAG = re.compile(r"lag\((\w+)(?:,\s*(\d+))?\)\s*OVER\s+w", re.I)


def _triggers(tags: pd.DataFrame, catalog) -> pd.DataFrame:
    """Every trigger on the tag frame (sorted by customer, month); `lag(x, k) OVER w` is a grouped shift."""
    out = {"customer_id": tags["customer_id"], "month": tags["month"]}
    g = tags.groupby("customer_id", sort=False)
    lags: dict[str, pd.Series] = {}
    for ev in catalog.events:
        expr = ev.trigger
        for m in LAG.finditer(ev.trigger):
            name = f"lag_{m.group(1)}_{m.group(2) or 1}"
            if name not in lags:
                lags[name] = g[m.group(1)].shift(int(m.group(2) or 1))
            expr = expr.replace(m.group(0), name)
        frame = tags.assign(**{k: v for k, v in lags.items() if k in expr}) if lags else tags
        out[ev.id] = frame.eval(_trigger_to_pandas(expr), engine="python").fillna(False).astype(bool)
    return pd.DataFrame(out)


def _product_starts(con) -> pd.DataFrame:
    acct = _df(con, "SELECT customer_id, product_id, open_date AS d FROM accounts WHERE open_date IS NOT NULL")
    loans = _df(con, "SELECT customer_id, product_id, disbursement_date AS d FROM loans "
                     "WHERE disbursement_date IS NOT NULL")
    ps = pd.concat([acct, loans], ignore_index=True)
    ps["start_mi"] = _mi(ps["d"])
    return ps[["customer_id", "product_id", "start_mi"]].drop_duplicates()


def event_triggers(con, as_of: str) -> dict:
    from .catalog import load_event_catalog

    catalog = load_event_catalog()
    tags = _df(con, "SELECT * FROM tag_table ORDER BY customer_id, month")
    trig = _triggers(tags, catalog)
    ps = _product_starts(con)
    return {"rows": len(trig), "events": len(catalog.events), "product_starts": len(ps)}


def event_backtest(con, as_of: str, window: int = 3, n_months: int = 12) -> dict:
    """Per-customer and monthly trigger / hit counts per event, then the same clustered lift."""
    from .catalog import load_event_catalog
    from .events import clustered_lift
    from .tags import product_column

    catalog = load_event_catalog()
    last = int(as_of[:4]) * 12 + int(as_of[5:7]) - 1 - window
    first = last - (n_months - 1)
    events = [e for e in catalog.events if not e.suppresses_offers]
    trig = _df(con, "SELECT * FROM event_triggers")
    trig["mi"] = _mi(trig["month"])
    trig = trig[(trig["mi"] >= first) & (trig["mi"] <= last)]
    hold_cols = sorted({product_column(p) for e in events for p in e.target_products})
    cm = _df(con, "SELECT customer_id, month, " + ", ".join(hold_cols) + " FROM customer_month")
    cm["mi"] = _mi(cm["month"])
    base = trig.merge(cm.drop(columns="month"), on=["customer_id", "mi"])
    ps = _product_starts(con)
    rows = []
    for ev in events:
        hold = np.zeros(len(base), dtype=bool)
        for p in ev.target_products:
            hold |= base[product_column(p)].to_numpy() != 0
        el = base.loc[~hold, ["customer_id", "mi", ev.id]].rename(columns={ev.id: "trig"})
        starts = ps[ps["product_id"].isin(ev.target_products)][["customer_id", "start_mi"]]
        j = el[["customer_id", "mi"]].merge(starts, on="customer_id")
        j = j[(j["start_mi"] > j["mi"]) & (j["start_mi"] <= j["mi"] + window)]
        firsts = j.groupby(["customer_id", "mi"])["start_mi"].min().rename("first_start").reset_index()
        el = el.merge(firsts, on=["customer_id", "mi"], how="left")
        el["hit"] = el["first_start"].notna()
        el["lead"] = (el["first_start"] - el["mi"]).where(el["trig"] & el["hit"])
        per = el.assign(m=el["trig"].astype(int), a=(el["trig"] & el["hit"]).astype(int),
                        k=(~el["trig"]).astype(int), b=(~el["trig"] & el["hit"]).astype(int)).groupby(
            "customer_id").agg(m=("m", "sum"), a=("a", "sum"), k=("k", "sum"), b=("b", "sum"), lead=("lead", "min"))
        monthly = el.assign(th=el["trig"] & el["hit"], nb=~el["trig"], bh=~el["trig"] & el["hit"]).groupby("mi").agg(
            triggers=("trig", "sum"), hits=("th", "sum"), n_base=("nb", "sum"), hits_base=("bh", "sum"))
        cl = clustered_lift(per["a"], per["m"], per["b"], per["k"])
        rows.append({"event_id": ev.id, "triggers": int(per["m"].sum()), "lift": cl.lift, "months": len(monthly)})
    return {"events": len(rows)}


STAGES = {"tag_table": tag_table, "value_tiers": value_tiers, "event_triggers": event_triggers,
          "event_backtest": event_backtest}
