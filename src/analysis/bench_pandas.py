"""Straightforward pandas implementations of the heavy stages, for `make bench`'s ratio only.

What an analyst would write without DuckDB: load the warehouse tables into pandas frames, then
merge / groupby / rolling. Each function reads its inputs from the warehouse itself (that load is
part of the pandas cost, as the scan is part of DuckDB's) and returns a few facts about its output.

- ``tag_table``: the `customer_month` base (same aggregations as ``tags.build_customer_month``
  from transactions, balances, loans, credit lines, holdings and the external tables; the
  transactions one month at a time, as they do not fit in memory at 100,000 customers) and then
  every catalogue tag's own SQL expression, parsed with sqlglot and evaluated vectorised on that
  frame with SQL's NULL semantics (``TagEvaluator``; the look-back window `w` is a grouped
  rolling / shift per customer). ``tag_frame`` returns the table, equal to DuckDB's `tag_table`;
  a construct the evaluator does not handle raises NotImplementedError rather than approximate.
- ``value_tiers``: ``value_data.value_inputs`` as a pandas groupby over `customer_month`, then
  the same current value / potential value / tier code as ``score_customers``.
- ``event_triggers``: every catalogue trigger evaluated on the `tag_table` frame, and the
  product starts.
- ``event_backtest``: per event, eligible customer-months, the first target take-up within the
  window by a merge, per-customer counts and monthly counts, then the same lift statistics.

Not used by any stage; never import it from the analysis.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from functools import reduce

import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp

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


def _txn_month(con, acct: pd.DataFrame, mi: int) -> pd.DataFrame:
    """One month's transactions aggregated per customer (the _txn columns of customer_month)."""
    y, m = divmod(mi, 12)
    ny, nm = divmod(mi + 1, 12)
    txn = _df(con, "SELECT account_id, amount, direction, channel, purpose, counterparty_bank FROM transactions "
                   f"WHERE txn_date >= DATE '{y}-{m + 1:02d}-01' AND txn_date < DATE '{ny}-{nm + 1:02d}-01'")
    txn = txn.merge(acct[["account_id", "customer_id"]], on="account_id")
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
    tx["customer_id"] = txn["customer_id"]
    del txn, a, d, p, c, bank, cr, dr, other, one, cols
    g = tx.groupby("customer_id")
    agg = g.sum(min_count=1).drop(columns="max_goods_inflow")
    agg["max_goods_inflow"] = g["max_goods_inflow"].max()
    agg = agg.reset_index()
    agg["mi"] = mi
    return agg


def customer_month(con, as_of: str, months: int = 24) -> pd.DataFrame:
    """`customer_month` in pandas (same columns as tags.build_customer_month, month as a month index)."""
    from .tags import EXT_COLS

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

    # transactions: the largest table (190 million rows at 100,000 customers, more than a 24 GiB
    # machine holds as pandas frames), so one month at a time, the way an analyst reads a table of
    # that size; each month's sums, counts and maxima per customer are final, months do not overlap
    txn_agg = pd.concat([_txn_month(con, acct, mi) for mi in range(first, last + 1)], ignore_index=True)

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
    fill.remove("max_goods_inflow")     # a max: NULL in a month without goods inflow, as in DuckDB
    cm[fill] = cm[fill].fillna(0)
    # an optional table not delivered: its columns are NULL, as DuckDB's typed NULLs
    for cols in EXT_COLS.values():
        for c, sql_type in cols.items():
            if c not in cm.columns:
                cm[c] = pd.Series(None, index=cm.index, dtype=object if sql_type == "VARCHAR" else float)
    return cm.sort_values(["customer_id", "mi"], ignore_index=True)


# ---------------------------------------------------------------- tag expressions (SQL) on pandas
#
# Values are numpy arrays over the customer_month rows (or Python scalars for literals), by kind:
# numbers and booleans float64 (booleans 1.0 / 0.0, so NULL is NaN and three-valued logic is
# arithmetic on NaN), strings object arrays (NULL is None / NaN), dates datetime64[D] (NULL NaT).

def _kind(v) -> str:
    k = np.asarray(v).dtype.kind
    return "str" if k in "OUS" else "date" if k == "M" else "num"


def _null(v):
    k = _kind(v)
    return np.isnat(v) if k == "date" else pd.isna(v) if k == "str" else np.isnan(v)


_NULL_OF = {"str": None, "date": np.datetime64("NaT", "D")}


def _where(cond, a, b):
    """One CASE branch: a where cond is true (1.0, not NULL), else b."""
    ka, kb = _kind(a), _kind(b)
    if ka != kb:    # only a NULL literal (a NaN scalar) meets another kind: it takes that kind
        if ka == "num" and np.ndim(a) == 0 and np.isnan(a):
            a, ka = _NULL_OF[kb], kb
        elif kb == "num" and np.ndim(b) == 0 and np.isnan(b):
            b, kb = _NULL_OF[ka], ka
        else:
            raise TypeError(f"branches of kinds {ka} and {kb}")
    if ka == "str":
        a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return np.where(np.asarray(cond) == 1, a, b)


def _months(d):
    """Months since 1970-01 of a date array (NaN for NULL): month arithmetic without day clamping."""
    return np.where(np.isnat(d), np.nan, d.astype("datetime64[M]").astype(np.int64))


def _add_months(d, n: int):
    """date + INTERVAL n MONTH as DuckDB: the day of month clamped to the target month's last day."""
    m = d.astype("datetime64[M]")
    day = (d - m.astype("datetime64[D]")).astype(np.int64)
    t = m + n
    last = (t + 1).astype("datetime64[D]") - t.astype("datetime64[D]") - 1
    return t.astype("datetime64[D]") + np.minimum(day, last.astype(np.int64))   # NaT stays NaT


_COMPARE = {exp.EQ: operator.eq, exp.NEQ: operator.ne, exp.GT: operator.gt, exp.GTE: operator.ge,
            exp.LT: operator.lt, exp.LTE: operator.le}
_ARITH = {exp.Add: operator.add, exp.Sub: operator.sub, exp.Mul: operator.mul}
_ROLLING = {exp.Sum: "sum", exp.Avg: "mean", exp.StddevSamp: "std", exp.Stddev: "std", exp.Max: "max",
            exp.Min: "min"}


class TagEvaluator:
    """Evaluates catalogue tag expressions (DuckDB SQL, parsed by sqlglot) over a pandas customer_month.

    cm must be sorted by customer_id, month with a `month` date column; `w` is the catalogue's window
    (PARTITION BY customer_id ORDER BY month), done as a groupby on customer_id. Anything not handled
    raises NotImplementedError naming the tag and the node: nothing is approximated.
    """

    def __init__(self, cm: pd.DataFrame):
        assert cm["customer_id"].is_monotonic_increasing, "customer_month must be sorted by customer, month"
        self.cm = cm
        # integer customer codes, factorized once: every grouped window groups by them
        self.cust = pd.Series(pd.factorize(cm["customer_id"])[0], index=cm.index)
        self.pos = self.cust.groupby(self.cust).cumcount().to_numpy()   # row number in the customer
        # a window used several times (by one tag or several) is computed once, and dropped after
        # its last use so the cache does not hold a copy of every window
        self.windows: dict[str, np.ndarray] = {}
        self.uses: Counter[str] = Counter()
        self.tag_id = ""

    def parse(self, expr: str) -> exp.Expression:
        """Parse a tag expression and count its windows' uses (call for every tag before evaluating)."""
        tree = sqlglot.parse_one(expr, read="duckdb")
        self.uses.update(w.sql(dialect="duckdb") for w in tree.find_all(exp.Window))
        return tree

    def evaluate(self, tag_id: str, tree: exp.Expression) -> np.ndarray:
        self.tag_id = tag_id
        try:
            v = self.eval(tree)
        except TypeError as err:    # from _where: a CASE / coalesce mixing kinds SQL would cast
            raise NotImplementedError(f"tag {tag_id}: {err}: {tree.sql(dialect='duckdb')}") from err
        return np.broadcast_to(v, len(self.cm)) if np.ndim(v) == 0 else v

    def unsupported(self, node, why: str = "") -> NotImplementedError:
        return NotImplementedError(f"tag {self.tag_id}: {type(node).__name__} not handled"
                                   f"{' (' + why + ')' if why else ''}: {node.sql(dialect='duckdb')}")

    def eval(self, e):
        t = type(e)
        if t is exp.Paren:
            return self.eval(e.this)
        if t is exp.Column:
            return self.column(e)
        if t is exp.Literal:
            return e.this if e.is_string else float(e.this)
        if t is exp.Null:
            return np.nan
        if t in _ARITH:
            return self.arith(e, _ARITH[t])
        if t is exp.Div:
            a, b = self.numbers(e, e.this, e.expression)
            if e.args.get("typed") or e.args.get("safe"):
                raise self.unsupported(e)
            # DuckDB's / is float division, x / 0 is ±inf; 0 / 0 is its NaN, a value and not NULL,
            # which a NaN-as-NULL frame cannot hold
            if np.any((a == 0) & (b == 0)):
                raise self.unsupported(e, "0 / 0 gives NaN, not NULL, in DuckDB")
            with np.errstate(divide="ignore"):
                return np.divide(a, b)
        if t is exp.Neg:
            return -self.numbers(e, e.this)[0]
        if t in _COMPARE:
            return self.compare(e, self.eval(e.this), self.eval(e.expression), _COMPARE[t])
        if t is exp.And:    # false wins over NULL, NULL over true
            a, b = self.numbers(e, e.this, e.expression)
            return np.where((a == 0) | (b == 0), 0.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 1.0))
        if t is exp.Or:     # true wins over NULL, NULL over false
            a, b = self.numbers(e, e.this, e.expression)
            return np.where((a == 1) | (b == 1), 1.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 0.0))
        if t is exp.Not:
            return 1.0 - self.numbers(e, e.this)[0]
        if t is exp.Is:
            if not isinstance(e.expression, exp.Null):
                raise self.unsupported(e)
            return _null(self.eval(e.this)).astype(float)
        if t is exp.In:
            return self.isin(e)
        if t is exp.Case:
            return self.case(e)
        if t is exp.Coalesce:
            out = self.eval(e.this)
            for x in e.expressions:
                out = _where(_null(out), self.eval(x), out)
            return out
        if t is exp.Nullif:
            a, b = self.eval(e.this), self.eval(e.expression)
            return _where(self.compare(e, a, b, operator.eq), np.nan, a)
        if t is exp.Greatest:   # DuckDB's greatest skips NULLs: NULL only when every argument is
            return reduce(np.fmax, self.numbers(e, e.this, *e.expressions))
        if t is exp.Ln:
            x = self.numbers(e, e.this)[0]
            if np.any(x < 0):   # DuckDB's NaN, not NULL (ln(0) is -inf in both)
                raise self.unsupported(e, "ln of a negative number gives NaN, not NULL, in DuckDB")
            with np.errstate(divide="ignore"):
                return np.log(x)
        if t is exp.Month:
            return _months(self.date(e, e.this)) % 12 + 1
        if t in (exp.TimestampTrunc, exp.DateTrunc):
            if e.unit.name.upper() != "MONTH":
                raise self.unsupported(e, "unit")
            return self.date(e, e.this).astype("datetime64[M]").astype("datetime64[D]")
        if t is exp.DateDiff:   # datediff('month', a, b): month boundaries crossed, b − a
            if e.unit.name.upper() != "MONTH":
                raise self.unsupported(e, "unit")
            return _months(self.date(e, e.this)) - _months(self.date(e, e.expression))
        if t is exp.Window:
            key = e.sql(dialect="duckdb")
            v = self.windows[key] if key in self.windows else self.window(e)
            self.uses[key] -= 1
            if self.uses[key] > 0:
                self.windows[key] = v
            else:
                self.windows.pop(key, None)
            return v
        raise self.unsupported(e)

    # -- operands

    def column(self, e):
        if e.table or e.name not in self.cm.columns:
            raise self.unsupported(e, "not a column of the pandas customer_month")
        s = self.cm[e.name]
        if pd.api.types.is_datetime64_any_dtype(s):
            return s.to_numpy(dtype="datetime64[D]")
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            return s.to_numpy(dtype=float, na_value=np.nan)
        return s.to_numpy(dtype=object)

    def numbers(self, e, *nodes):
        vals = [self.eval(n) for n in nodes]
        if any(_kind(v) != "num" for v in vals):
            raise self.unsupported(e, "operand not a number")
        return vals

    def date(self, e, node):
        v = self.eval(node)
        if _kind(v) != "date" or np.ndim(v) == 0:
            raise self.unsupported(e, "operand not a date column")
        return v

    def arith(self, e, op):
        if isinstance(e.expression, exp.Interval) and type(e) in (exp.Add, exp.Sub):
            iv = e.expression
            # sqlglot keeps INTERVAL 6 MONTH's count as the string '6'
            if (iv.unit is None or iv.unit.name.upper() != "MONTH"
                    or not re.fullmatch(r"-?\d+", iv.this.name)):
                raise self.unsupported(e, "only + / - INTERVAL n MONTH")
            n = int(iv.this.name)
            return _add_months(self.date(e, e.this), n if isinstance(e, exp.Add) else -n)
        a, b = self.numbers(e, e.this, e.expression)
        return op(a, b)

    def compare(self, e, a, b, op):
        ka, kb = _kind(a), _kind(b)
        if ka != kb:
            raise self.unsupported(e, f"compares {ka} with {kb}")
        null = _null(a) | _null(b)
        if ka == "str":     # object arrays: blank out NULLs so < and > never see NaN
            a, b = np.where(_null(a), "", a), np.where(_null(b), "", b)
        with np.errstate(invalid="ignore"):
            return np.where(null, np.nan, op(a, b).astype(float))

    def isin(self, e):
        if e.args.get("query") or e.args.get("unnest") or e.args.get("field"):
            raise self.unsupported(e)
        x = self.eval(e.this)
        vals = [self.eval(v) for v in e.expressions]
        if any(np.ndim(v) for v in vals):
            raise self.unsupported(e, "IN list of non-literals")
        listed = [v for v in vals if not _null(v)]
        hit = reduce(np.logical_or, (self.compare(e, x, v, operator.eq) == 1 for v in listed),
                     np.zeros(np.shape(x), dtype=bool))
        # no match: NULL if x is NULL or the list holds a NULL, else false
        miss = np.nan if len(listed) < len(vals) else 0.0
        return np.where(hit, 1.0, np.where(_null(x), np.nan, miss))

    def case(self, e):
        subject = self.eval(e.this) if e.this is not None else None
        out = self.eval(e.args["default"]) if e.args.get("default") is not None else np.nan
        # the first true branch wins: apply the branches last to first
        for branch in reversed(e.args["ifs"]):
            cond = self.eval(branch.this)
            if subject is not None:     # CASE x WHEN v: x = v
                cond = self.compare(e, subject, cond, operator.eq)
            out = _where(cond, self.eval(branch.args["true"]), out)
        return out

    # -- windows

    def window(self, e):
        fn = e.this
        if isinstance(fn, exp.PercentRank):
            return self.percent_rank(e)
        alias = e.args.get("alias")
        if alias is None or alias.name != "w" or e.args.get("partition_by") or e.args.get("order"):
            raise self.unsupported(e, "only the catalogue window w")
        spec = e.args.get("spec")
        if isinstance(fn, exp.Lag):     # lag over the customer's own rows
            if spec is not None or fn.args.get("default") is not None:
                raise self.unsupported(e)
            off = fn.args.get("offset")
            if off is not None and not (isinstance(off, exp.Literal) and off.is_int):
                raise self.unsupported(e, "lag offset")
            s = pd.Series(self.eval(fn.this), index=self.cm.index)
            return s.groupby(self.cust).shift(int(off.name) if off else 1).to_numpy()
        a, b = self.frame(e, spec)
        if isinstance(fn, exp.Count):
            if fn.expressions or not isinstance(fn.this, exp.Star):
                raise self.unsupported(e, "only count(*)")
            # rows in the frame [i−a, i−b] of the customer's history: fewer at its start
            return np.clip(np.minimum(self.pos, a) - b + 1, 0, None).astype(float)
        how = _ROLLING.get(type(fn))
        if how is None or fn.expressions:
            raise self.unsupported(e)
        x = self.eval(fn.this)
        dates = _kind(x) == "date"
        if _kind(x) == "str" or (dates and how not in ("max", "min")):
            raise self.unsupported(e, f"{how} of a {_kind(x)}")
        if dates:
            x = np.where(np.isnat(x), np.nan, x.astype(np.int64))     # days since 1970 for max / min
        if how == "mean":   # SQL's avg: sum / count of the non-NULL values (pandas' mean rounds otherwise)
            n = self.rolling((~np.isnan(x)).astype(float), a, b, "sum")
            with np.errstate(divide="ignore", invalid="ignore"):
                return self.rolling(x, a, b, "sum") / n
        out = self.rolling(x, a, b, how)
        if dates:
            days = np.where(np.isnan(out), 0, out).astype(np.int64).astype("datetime64[D]")
            out = np.where(np.isnan(out), np.datetime64("NaT", "D"), days)
        return out

    def rolling(self, x, a: int, b: int, how: str) -> np.ndarray:
        """`how` of x over the frame [i−a, i−b] of each row's customer.

        A grouped rolling over the frame's width (NaN skipped; no non-NULL value gives NaN, as SQL's
        sum / max / stddev_samp of only NULLs), shifted by the frame's end. The data is sorted by
        customer, so the grouped result comes back in row order.
        """
        s = pd.Series(np.broadcast_to(x, len(self.cm)), index=self.cm.index, dtype=float)
        r = getattr(s.groupby(self.cust, sort=False).rolling(a - b + 1, min_periods=1), how)()
        r = pd.Series(r.to_numpy(), index=self.cm.index)
        if b:
            r = r.groupby(self.cust).shift(b)
        return r.to_numpy()

    def frame(self, e, spec) -> tuple[int, int]:
        """ROWS BETWEEN a PRECEDING AND b PRECEDING | CURRENT ROW as (a, b)."""
        if spec is None or spec.args.get("kind") != "ROWS" or spec.args.get("exclude"):
            raise self.unsupported(e, "only ROWS BETWEEN n PRECEDING AND m PRECEDING | CURRENT ROW")

        def offset(v, side):
            if v == "CURRENT ROW":
                return 0
            if isinstance(v, exp.Literal) and v.is_int and side == "PRECEDING":
                return int(v.name)
            raise self.unsupported(e, "frame bound")

        a = offset(spec.args.get("start"), spec.args.get("start_side"))
        b = offset(spec.args.get("end"), spec.args.get("end_side"))
        if a < b:
            raise self.unsupported(e, "empty frame")
        return a, b

    def percent_rank(self, e):
        """percent_rank() OVER (PARTITION BY … ORDER BY x): (rank − 1) / (rows − 1), ties at the lowest rank."""
        order = e.args.get("order")
        if (e.args.get("alias") or e.args.get("spec") or not e.args.get("partition_by") or order is None
                or len(order.expressions) != 1):
            raise self.unsupported(e)
        o = order.expressions[0]
        if o.args.get("desc") or o.args.get("nulls_first"):     # DuckDB default: ASC NULLS LAST
            raise self.unsupported(e, "only ORDER BY x ASC NULLS LAST")
        keys = {f"k{i}": self.eval(p) for i, p in enumerate(e.args["partition_by"])}
        x = self.numbers(e, o.this)[0]
        df = pd.DataFrame({**{k: np.broadcast_to(v, len(self.cm)) for k, v in keys.items()}, "x": x})
        g = df.groupby(list(keys), dropna=False)["x"]     # NULL keys form one partition, as in SQL
        rank = g.rank(method="min", na_option="bottom").to_numpy()
        n = g.transform("size").to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 1, (rank - 1) / (n - 1), 0.0)


def tag_frame(con, as_of: str) -> pd.DataFrame:
    """The tag table in pandas: customer_id, month and every catalogue tag, sorted by customer, month."""
    from .catalog import load_tag_catalog

    cm = customer_month(con, as_of)
    cm["month"] = (cm["mi"] - 1970 * 12).to_numpy().astype("datetime64[M]").astype("datetime64[s]")
    ev = TagEvaluator(cm)
    trees = {tag.id: ev.parse(tag.expr) for tag in load_tag_catalog().tags}
    out = {"customer_id": cm["customer_id"].to_numpy(), "month": cm["month"].to_numpy()}
    for tag_id, tree in trees.items():
        out[tag_id] = ev.evaluate(tag_id, tree)
    tags = pd.DataFrame(out, copy=False)    # one block per tag: no second copy of the whole table
    tags.attrs["customer_month_columns"] = len(cm.columns) - 1     # without the month index
    return tags


def tag_table(con, as_of: str) -> dict:
    """customer_month in pandas, then every catalogue tag's own expression on it (see module doc)."""
    tags = tag_frame(con, as_of)
    return {"rows": len(tags), "tags": len(tags.columns) - 2,
            "customer_month_columns": tags.attrs["customer_month_columns"]}


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
