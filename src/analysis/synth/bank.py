"""The seeded synthetic demo bank: writes a bank's extract into a workspace inbox plus its planted truth.

`generate_bank(inbox)` writes one file per table of data_templates/schema.yaml (csv, one GBK
csv, parquet and xlsx, with planted data problems) and `truth.json`, `truth_events.parquet`
and `truth_customers.parquet` into the inbox's parent (the workspace root), never into the
inbox. Customers are streamed in chunks of whole RM books, so a million customers fit in a
few GB. Same arguments → byte-identical files (the chunk size is one of the arguments).

Nothing in the analysis package outside `analysis.synth` may import this module.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.errors import InputError
from analysis.schema import load_schema

from .catalog import EVENT_DEFINITIONS, EVENT_IDS, EVENT_TARGET, PANEL
from .config import BankConfig
from .dates import make_calendar
from .outputs import Quotas, build_tables
from .simulate import ChunkSim
from .structure import build_structure

__all__ = ["BankConfig", "BankSummary", "generate_bank", "TABLE_FILES"]

TABLE_FILES = {
    "branches": "branches.csv", "grids": "grids.csv", "relationship_managers": "relationship_managers.csv",
    "products": "products.csv", "customers": "customers.csv", "accounts": "accounts.csv",
    "balances_monthly": "balances_monthly.parquet", "transactions": "transactions.parquet",
    "loans": "loans.csv", "credit_lines": "credit_lines.csv", "marketing_contacts": "marketing_contacts.csv",
    "loan_offers": "loan_offers.csv", "tax_monthly": "tax_monthly.csv", "invoices_monthly": "invoices_monthly.csv",
    "registry_changes": "registry_changes.csv", "pilot_assignments": "pilot_assignments.csv",
    "pilot_feedback": "pilot_feedback.xlsx",
}
ENCODING = {"customers": "gbk"}          # the planted encoding problem; everything else UTF-8
TRUTH_FILE, TRUTH_EVENTS_FILE, TRUTH_CUSTOMERS_FILE = "truth.json", "truth_events.parquet", "truth_customers.parquet"
PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True, write_statistics=True,
                       version="2.6", data_page_version="1.0")

BALANCES_SCHEMA = pa.schema([("account_id", pa.string()), ("month", pa.string()),
                             ("balance_month_end", pa.float64()), ("balance_daily_avg", pa.float64()),
                             ("rate", pa.float64()), ("credit_amount", pa.float64()),
                             ("debit_amount", pa.float64()), ("txn_count", pa.int64())])
TRANSACTIONS_SCHEMA = pa.schema([("txn_id", pa.string()), ("account_id", pa.string()), ("txn_date", pa.date32()),
                                 ("amount", pa.float64()), ("direction", pa.string()), ("channel", pa.string()),
                                 ("purpose", pa.string()), ("counterparty_bank", pa.string()),
                                 ("counterparty_same_name", pa.bool_()), ("currency", pa.string())])
TRUTH_EVENTS_SCHEMA = pa.schema([("customer_id", pa.string()), ("month", pa.string()), ("event_id", pa.string())])


@dataclass
class BankSummary:
    """What `generate_bank` wrote."""

    inbox: Path
    truth_path: Path
    paths: dict[str, Path]
    rows: dict[str, int]
    bank_name_zh: str
    bank_name_en: str
    seed: int
    customers: int
    seconds: float
    truth_files: dict[str, Path] = field(default_factory=dict)


class _CsvSink:
    def __init__(self, path: Path, columns: list[str], encoding: str):
        self.path, self.columns = path, columns
        self.fh = open(path, "w", encoding=encoding, newline="")
        self.rows = 0
        self.started = False

    def write(self, frame: pd.DataFrame) -> None:
        if frame is None or (self.started and frame.empty):
            return
        frame = frame.reindex(columns=self.columns)
        frame.to_csv(self.fh, header=not self.started, index=False, lineterminator="\n")
        self.started = True
        self.rows += len(frame)

    def close(self) -> None:
        if not self.started:
            pd.DataFrame(columns=self.columns).to_csv(self.fh, index=False, lineterminator="\n")
        self.fh.close()


class _ParquetSink:
    def __init__(self, path: Path, schema: pa.Schema | None):
        self.path, self.schema = path, schema
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table | None) -> None:
        if table is None:
            return
        if self.schema is None:
            self.schema = table.schema
        table = table.cast(self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, **PARQUET_OPTIONS)
        if table.num_rows:
            self.writer.write_table(table, row_group_size=1_000_000)
            self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is None:
            if self.schema is None:   # failed before the first chunk: nothing to write
                return
            self.writer = pq.ParquetWriter(self.path, self.schema, **PARQUET_OPTIONS)
        self.writer.close()


def _allocate(total: int, sizes: list[int]) -> list[int]:
    """Split `total` over chunks in proportion to their sizes (exact, deterministic)."""
    cum = np.cumsum([0, *sizes])
    edges = np.floor(total * cum / max(cum[-1], 1)).astype(int)
    return list(np.diff(edges))


def _planted(rate: float, customers: int) -> int:
    return max(1, int(round(rate * customers)))


def generate_bank(out_dir: Path, *, customers: int = 10_000, seed: int = 20221231, months: int = 24,
                  end_month: str = "2022-12", txn_per_active_month: float = 15, chunk_size: int = 20_000,
                  config: BankConfig | None = None) -> BankSummary:
    """Write the synthetic bank's extract into `out_dir` (an inbox) and its truth into `out_dir.parent`.

    txn_per_active_month: mean ordinary transactions per active 基本户-month (event-relevant ones,
    about 3–4 a month, come on top); 0 writes no transactions (an empty transactions.parquet).
    """
    t0 = time.perf_counter()
    cfg = config or BankConfig()
    if int(customers) < 50:
        raise InputError(f"customers={customers} is too few for a bank", column="customers",
                         fix="generate at least 50 customers")
    if chunk_size < 1 or txn_per_active_month < 0:
        raise InputError("chunk_size must be ≥ 1 and txn_per_active_month ≥ 0", column="chunk_size")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.parent
    cal = make_calendar(end_month, months)
    st = build_structure(np.random.default_rng([seed, 0]), cfg, int(customers), int(chunk_size))
    schema = load_schema()
    sizes = [c.cust_end - c.cust_start for c in st.chunks]

    quota = {name: _allocate(_planted(rate, customers), sizes) for name, rate in (
        ("duplicates", cfg.duplicate_customer_rate), ("extra_ids", cfg.same_uscc_extra_id_rate),
        ("missing_industry", cfg.missing_industry_rate), ("invalid_uscc", cfg.invalid_uscc_rate),
        ("orphans", cfg.orphan_account_rate), ("negative_balances", cfg.negative_balance_rate))}
    extra_total = sum(quota["extra_ids"])

    paths = {t: out_dir / f for t, f in TABLE_FILES.items()}
    csv = {t: _CsvSink(paths[t], schema.table(t).column_names, ENCODING.get(t, "utf-8"))
           for t, f in TABLE_FILES.items() if f.endswith(".csv")}
    balances = _ParquetSink(paths["balances_monthly"], BALANCES_SCHEMA)
    transactions = _ParquetSink(paths["transactions"], TRANSACTIONS_SCHEMA)
    truth_events = _ParquetSink(root / TRUTH_EVENTS_FILE, TRUTH_EVENTS_SCHEMA)
    truth_customers = _ParquetSink(root / TRUTH_CUSTOMERS_FILE, None)
    csv["branches"].write(st.branches)
    csv["grids"].write(st.grids)
    csv["relationship_managers"].write(st.rms)
    csv["products"].write(st.products)

    counters = dict(txn=1, loan=1, line=1, offer=1, contact=1)
    problems: dict[str, int] = {}
    event_counts: dict[str, np.ndarray] = {}
    pilot_sums: list[dict] = []
    feedback: list[pd.DataFrame] = []
    panel_months = 0
    offers = {"offers": 0, "accepted": 0}
    extra_start, orphan_start = int(customers), int(customers) + extra_total
    try:
        for c, chunk in enumerate(st.chunks):
            sim = ChunkSim(cfg, cal, st, chunk, seed, txn_per_active_month)
            sim.run()
            q = Quotas(duplicates=quota["duplicates"][c], extra_ids=quota["extra_ids"][c],
                       extra_id_start=extra_start, missing_industry=quota["missing_industry"][c],
                       invalid_uscc=quota["invalid_uscc"][c], orphans=quota["orphans"][c],
                       orphan_start=orphan_start, negative_balances=quota["negative_balances"][c],
                       future_txns=cfg.future_dated_transactions if c == len(st.chunks) - 1 else 0)
            extra_start += q.extra_ids
            orphan_start += q.orphans
            out = build_tables(sim, q, txn_id_start=counters["txn"], loan_id_start=counters["loan"],
                               line_id_start=counters["line"], offer_id_start=counters["offer"],
                               contact_id_start=counters["contact"])
            for table, frame in out.frames.items():
                if table == "pilot_feedback":
                    feedback.append(frame)
                elif table in csv:
                    csv[table].write(frame)
            balances.write(out.arrow["balances_monthly"])
            if "transactions" in out.arrow:
                transactions.write(out.arrow["transactions"])
                counters["txn"] += out.arrow["transactions"].num_rows
            counters["loan"] += len(out.frames["loans"])
            counters["line"] += len(out.frames["credit_lines"])
            counters["offer"] += len(out.frames["loan_offers"])
            offers["offers"] += len(out.frames["loan_offers"])
            offers["accepted"] += int(out.frames["loan_offers"]["accepted"].sum())
            counters["contact"] += len(out.frames["marketing_contacts"])
            truth_events.write(out.truth_events)
            truth_customers.write(out.truth_customers)
            for k, v in out.problems.items():
                problems[k] = problems.get(k, 0) + int(v)
            for k, v in out.event_counts.items():
                event_counts[k] = event_counts.get(k, 0) + v
            panel_months += int(sim.ob.panel.sum())
            if out.pilot:
                pilot_sums.append(out.pilot)
            del sim, out
    finally:
        for sink in (*csv.values(), balances, transactions, truth_events, truth_customers):
            sink.close()
    fb = pd.concat(feedback, ignore_index=True) if feedback else pd.DataFrame()
    _write_xlsx(paths["pilot_feedback"], fb, schema.table("pilot_feedback").column_names)

    rows = {t: s.rows for t, s in csv.items()}
    rows.update(balances_monthly=balances.rows, transactions=transactions.rows, pilot_feedback=len(fb))
    truth = _truth(cfg, seed=seed, customers=int(customers), months=months, end_month=end_month,
                   txn_per_active_month=txn_per_active_month, chunk_size=chunk_size, rows=rows,
                   problems=problems, event_counts=event_counts, panel_months=panel_months,
                   pilot_sums=pilot_sums,
                   offers={"offers": offers["offers"],
                           "acceptance_rate": offers["accepted"] / offers["offers"] if offers["offers"] else None})
    truth_path = root / TRUTH_FILE
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=2, sort_keys=False) + "\n",
                          encoding="utf-8")
    return BankSummary(inbox=out_dir, truth_path=truth_path, paths=paths, rows=rows,
                       bank_name_zh=cfg.bank_name_zh, bank_name_en=cfg.bank_name_en, seed=seed,
                       customers=int(customers), seconds=time.perf_counter() - t0,
                       truth_files={"events": root / TRUTH_EVENTS_FILE,
                                    "customers": root / TRUTH_CUSTOMERS_FILE})


def _write_xlsx(path: Path, frame: pd.DataFrame, columns: list[str]) -> None:
    """One sheet, header in row 1; -1 in a yes/no column and '' are empty cells. Fixed metadata."""
    import datetime

    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    wb.set_properties({"created": datetime.datetime(2023, 1, 1), "author": "synthetic bank"})
    ws = wb.add_worksheet("pilot_feedback")
    ws.write_row(0, 0, columns)
    if len(frame):
        data = frame.reindex(columns=columns)
        cols = [data[c].to_numpy(dtype=object) for c in columns]
        for r in range(len(data)):       # xlsxwriter writes cell by cell; rows are RM feedback, not txns
            for j, col in enumerate(cols):
                v = col[r]
                if v == "" or (isinstance(v, (int, np.integer)) and v < 0):
                    continue
                ws.write(r + 1, j, int(v) if isinstance(v, np.integer) else v)
    wb.close()


def _truth(cfg: BankConfig, *, seed, customers, months, end_month, txn_per_active_month, chunk_size, rows,
           problems, event_counts, panel_months, pilot_sums, offers) -> dict:
    stats = {}
    for name in EVENT_IDS:
        c = event_counts.get(name, np.zeros((2, 6), np.int64))
        entry = {}
        for label, r in (("all_complete_months", c[0]), ("last_12_complete_months", c[1])):
            trig, el_t, hit_t, el_n, hit_n, cust = (int(x) for x in r)
            rate_t = hit_t / el_t if el_t else None
            rate_n = hit_n / el_n if el_n else None
            entry[label] = {"triggered_customer_months": trig, "customers_triggered": cust,
                            "eligible_triggered": el_t, "hits": hit_t, "hit_rate": rate_t,
                            "eligible_not_triggered": el_n, "hits_not_triggered": hit_n, "base_rate": rate_n,
                            "backtest_lift": (rate_t / rate_n) if rate_t is not None and rate_n else None}
        entry["prevalence"] = entry["all_complete_months"]["triggered_customer_months"] / max(panel_months, 1)
        stats[name] = entry

    def tot(key):
        return sum(p[key] for p in pilot_sums)

    pilot, contacted, by_tier, measured = {}, {}, {}, {}
    if pilot_sums:
        n = tot("n")
        pilot = {"loan_conversion": tot("sum_rate_delta") / n, "deposit_change": tot("sum_rate_dep") / n}
        contacted = {"loan_conversion": tot("sum_rate_delta") / tot("sum_rate"),
                     "deposit_change": tot("sum_rate_dep") / tot("sum_rate")}
        for tier in cfg.pilot_tiers:
            tn = sum(p["tiers"][tier]["n"] for p in pilot_sums)
            sr = sum(p["tiers"][tier]["sum_rate"] for p in pilot_sums)
            by_tier[tier] = {
                "customers": tn,
                "loan_conversion_itt": sum(p["tiers"][tier]["sum_rate_delta"] for p in pilot_sums) / tn if tn else None,
                "deposit_change_itt": sum(p["tiers"][tier]["sum_rate_dep"] for p in pilot_sums) / tn if tn else None,
                "loan_conversion_contacted": cfg.pilot_conversion_uplift[tier],
                "deposit_change_contacted": cfg.pilot_deposit_uplift[tier],
                "follow_up_rate_mean": sr / tn if tn else None}
        nt, nc = tot("n_treat"), n - tot("n_treat")
        measured = {"customers": n, "treatment": nt, "control": nc, "contacted": tot("n_contacted"),
                    "contact_rate_treatment": tot("n_contacted") / nt if nt else None,
                    "conversion_treatment": tot("conv_treat") / nt if nt else None,
                    "conversion_control": tot("conv_control") / nc if nc else None,
                    "deposit_change_treatment": tot("dep_treat") / nt if nt else None,
                    "deposit_change_control": tot("dep_control") / nc if nc else None,
                    "expected_control_conversion": tot("sum_p0") / n}
    problem_list = [
        {"problem": "duplicate_rows", "table": "customers", "column": "customer_id",
         "rows": problems.get("duplicate_rows", 0)},
        {"problem": "same_uscc_multiple_ids", "table": "customers", "column": "uscc",
         "rows": problems.get("same_uscc_multiple_ids", 0)},
        {"problem": "missing_industry", "table": "customers", "column": "industry_code",
         "rows": problems.get("missing_industry", 0)},
        {"problem": "invalid_uscc_check_digit", "table": "customers", "column": "uscc",
         "rows": problems.get("invalid_uscc_check_digit", 0)},
        {"problem": "encoding_gbk", "table": "customers", "column": None, "rows": rows["customers"]},
        {"problem": "yyyymmdd_dates", "table": "accounts", "column": "open_date",
         "rows": problems.get("yyyymmdd_dates_open", 0)},
        {"problem": "yyyymmdd_dates", "table": "accounts", "column": "close_date",
         "rows": problems.get("yyyymmdd_dates_close", 0)},
        {"problem": "orphan_accounts", "table": "accounts", "column": "customer_id",
         "rows": problems.get("orphan_accounts", 0)},
        {"problem": "future_date", "table": "transactions", "column": "txn_date",
         "rows": problems.get("future_date", 0)},
        {"problem": "negative_balance", "table": "balances_monthly", "column": "balance_month_end",
         "rows": problems.get("negative_balance", 0)},
        {"problem": "unit_wan_as_yuan", "table": "credit_lines", "column": "limit_amount",
         "rows": rows["credit_lines"]},
    ]
    problem_list = [p for p in problem_list if p["rows"] > 0]
    c = cfg.wallet_coef
    return {
        "generator": "analysis.synth.bank",
        "seed": seed, "customers": customers, "months": months, "end_month": end_month,
        "txn_per_active_month": txn_per_active_month, "chunk_size": chunk_size,
        "transactions_written": txn_per_active_month > 0,
        "bank": {"name_zh": cfg.bank_name_zh, "name_en": cfg.bank_name_en},
        "rows": rows,
        "events": {e: cfg.event_lift[e] for e in EVENT_IDS},
        "event_targets": dict(EVENT_TARGET),
        "event_outcome_window_months": cfg.event_window_months,
        "event_definitions": dict(EVENT_DEFINITIONS),
        "panel_definition": PANEL,
        "takeup_model": {
            "hazard": "monthly hazard of taking up P in month k = base_P × Π over events E targeting P of "
                      "(lift_E if E fired in any of months k−3..k−1 else 1); lifts in 'events' are these "
                      "hazard multipliers",
            "eligibility": "customer's relationship started before month k and the customer does not hold "
                           "P at the end of k−1 (an open account of P, or for loan products an active "
                           "loan of P: disbursement_date <= month end AND COALESCE(settled_date, "
                           "maturity_date) > month end)",
            "take_up": "an account of P opened in month k (open_date) or a loan of P disbursed in month k",
            "base_hazard": dict(cfg.base_hazard),
            "renewals": "a maturing LOAN_* loan is offered renewal (loan_offers.csv); an accepted renewal "
                        "is a new loan disbursed the day the old one settles, so the customer holds the "
                        "product throughout: renewals are not take-ups",
            "onboarding": "products opened in a new customer's first month are onboarding, not take-ups "
                          "(no panel month precedes them)",
            "exceptions": [
                f"pilot customers get an extra LOAN_OP hazard of {cfg.pilot_window_loan_hazard} per "
                "month in the three pilot months (both arms)",
                "contacted treatment customers convert additionally (pilot-induced LOAN_OP loans)",
                "the second customer ids of same_uscc_multiple_ids are stale records without accounts; "
                "they never take anything up (EV_DORMANT_3M fires for them every month, and "
                "EV_ANNIVERSARY in their firm's anniversary months)"],
            "backtest_note": "event_stats.*.backtest_lift is P(take-up in m+1..m+3 | fired at m, not "
                             "holding at m) / P(same | not fired at m): it is diluted below the hazard "
                             "multiplier when events persist from month to month",
        },
        "event_stats": stats,
        "value": {
            "wallet_definition": "potential annual contribution (元/yr) the customer could bring a bank",
            "model": "log(wallet) = intercept + Σ coefficient × driver + industry effect + N(0, noise_sd)",
            "drivers": {"intercept": cfg.wallet_intercept, **c,
                        "industry_code": dict(cfg.wallet_industry_effect)},
            "driver_definitions": {
                "log_annual_turnover": "log of customers.annual_turnover (元)",
                "log1p_employees": "log(1 + customers.employees)",
                "years_established": "years from established_date to the end of the end month",
                "log1p_annual_tax": "log(1 + latent annual tax, 元); tax_monthly shows it (with noise) for "
                                    "authorised customers only",
                "industry_code": "GB/T 4754 section effect relative to F"},
            "noise_sd": cfg.wallet_noise_sd,
            "non_drivers": ["registered_capital", "region_code", "customer_type", "credit_rating",
                            "grid_id", "mobile"],
            "share_of_wallet": {
                "model": "share = lo + (hi − lo) × logistic(intercept + per_extra_product × (products − 1) "
                         "+ per_year_with_bank × years_with_bank)",
                "range": list(cfg.share_range), **cfg.share_logit,
                "products": "products held at the window start (basic account, other accounts, any loan); "
                            "drawn from an engagement score independent of the wallet drivers",
                "dormant_share": cfg.dormant_share_of_wallet},
            "realisation": "demand 日均 at the window start = share × wallet / (deposit FTP − paid demand "
                           "rate); loans ≈ loan_to_wallet × wallet × log-normal noise; TD/AGD balances "
                           "proportional to the demand level",
            "ftp_assumption": {"deposit": cfg.deposit_ftp, "loan": cfg.loan_ftp},
            "headroom_growth": {
                "definition": "monthly log-growth of demand 日均 = base + coef × (1 − share_of_wallet); "
                              "headroom = wallet × (1 − share)",
                "base": cfg.deposit_growth_base, "coef": cfg.headroom_growth_coef},
            "truth_file": TRUTH_CUSTOMERS_FILE,
        },
        "pricing": {"takeup_slope_per_bp": cfg.pricing_slope_per_bp, "intercept": cfg.pricing_intercept,
                    "model": "logit P(accepted) = intercept + takeup_slope_per_bp × gap_bp, gap_bp = "
                             "(offered_rate − guide_rate) × 10000 (whole bp); offers are renewal offers "
                             "of maturing LOAN_* loans", **offers},
        "pilot": pilot,
        "pilot_contacted_effect": contacted,
        "pilot_by_tier": by_tier,
        "pilot_design": {
            "pilot_id": cfg.pilot_id, "assigned_date": cfg.pilot_assigned_date,
            "population": f"customers of {cfg.pilot_sub_branches} pilot 支行 whose relationship started "
                          f"by {cfg.pilot_assigned_date} and with no active loan on that day",
            "randomisation": "50/50 within rm_id × tier strata (odd strata: the extra customer by coin)",
            "tier_proxy": f"mean demand 日均 of the 3 months before assignment: "
                          f"{cfg.pilot_tiers[0]} >= {cfg.pilot_tier_thresholds[0]:.0f}, "
                          f"{cfg.pilot_tiers[1]} >= {cfg.pilot_tier_thresholds[1]:.0f}, else {cfg.pilot_tiers[2]}",
            "loan_conversion": "any LOAN_* loan disbursed in the three months after assignment",
            "deposit_change": "mean demand 日均 over the 3 months after minus the 3 months before",
            "itt": "mean over pilot customers of RM follow-up rate × effect of a contact (exact from the "
                   "parameters)",
            "follow_up_range": list(cfg.pilot_follow_up_range)},
        "pilot_measured": measured,
        "data_problems": problem_list,
        "truth_files": {"events": TRUTH_EVENTS_FILE, "customers": TRUTH_CUSTOMERS_FILE},
        "config": cfg.summary(),
    }
