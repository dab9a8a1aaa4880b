"""Turn a simulated chunk into the extract's tables (exact schema columns) and its slice of the truth.

Planted data problems are applied here, on the rows written, and counted from those rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import names
from .catalog import (ACCOUNT_TYPE, CHANNELS, CONTACT_CHANNELS, CP_BANKS, CREDIT_LOANS, CUSTOMER_TYPES,
                      DIRECTIONS, EVENT_IDS, EVENT_TARGET, FIVE_CLASS, GUARANTEE, PRODUCT_IDS,
                      PRODUCT_INDEX, PURPOSES, RATINGS, REGISTRY_TYPES, TAKEUP_PRODUCTS)
from .dates import iso, month_index, yyyymmdd
from .simulate import ChunkSim
from .structure import BANK_ACCOUNT_PREFIX

ID_MULT, ID_ADD, ID_MOD = 387_420_489, 104_729_003, 10**9   # a bijection on 0 … 10⁹−1


def customer_ids(g: np.ndarray) -> np.ndarray:
    """'C' + 9 digits: an affine permutation of the global index (unique, not sequential)."""
    v = (np.asarray(g, dtype=np.int64) * ID_MULT + ID_ADD) % ID_MOD
    if not len(v):
        return np.zeros(0, dtype="<U10")
    return np.strings.add("C", np.strings.zfill(v.astype(np.str_), 9))


def _ids(prefix: str, start: int, n: int, width: int = 10) -> np.ndarray:
    if not n:
        return np.zeros(0, dtype=f"<U{len(prefix) + width}")
    return np.strings.add(prefix, np.strings.zfill(np.arange(start, start + n).astype(np.str_), width))


def _arrow_ids(prefix: str, start: int, n: int, width: int) -> pa.Array:
    """Like `_ids`, built in Arrow (millions of transaction ids)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(start, start + n, dtype=np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _lookup(codes: np.ndarray, labels) -> pa.Array:
    """labels[codes] as a plain Arrow string array (decoded in C++)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)),
                                          pa.array(np.asarray(labels, dtype=object))).dictionary_decode()


def _opt_iso(days: np.ndarray) -> np.ndarray:
    return np.where(days >= 0, iso(np.maximum(days, 0)), "")


@dataclass
class Quotas:
    """Rows of each planted problem this chunk must carry, and where its new ids start."""

    duplicates: int = 0
    extra_ids: int = 0
    extra_id_start: int = 0          # global customer index of the first extra id
    missing_industry: int = 0
    invalid_uscc: int = 0
    orphans: int = 0
    orphan_start: int = 0
    negative_balances: int = 0
    future_txns: int = 0


@dataclass
class ChunkTables:
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    arrow: dict[str, pa.Table] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)
    truth_events: pa.Table | None = None
    truth_customers: pa.Table | None = None
    event_counts: dict[str, np.ndarray] = field(default_factory=dict)
    pilot: dict = field(default_factory=dict)


def build_tables(sim: ChunkSim, q: Quotas, *, txn_id_start: int, loan_id_start: int,
                 line_id_start: int, offer_id_start: int, contact_id_start: int) -> ChunkTables:
    rng = np.random.default_rng([int(sim.rng.integers(2**62)), 7])
    out = ChunkTables()
    cid = customer_ids(sim.cu.g)
    out.frames["customers"] = _customers(sim, cid, q, rng, out.problems)
    acc_ids, out.frames["accounts"] = _accounts(sim, cid, q, rng, out.problems)
    out.arrow["balances_monthly"] = _balances(sim, acc_ids, q, rng, out.problems)
    if sim.with_txns:
        out.arrow["transactions"] = _transactions(sim, acc_ids, q, rng, txn_id_start, out.problems)
    loans, five = _loans(sim, cid, acc_ids, rng, loan_id_start)
    out.frames["loans"] = loans
    out.frames["credit_lines"] = _credit_lines(sim, cid, five, rng, line_id_start)
    out.frames["loan_offers"] = _offers(sim, cid, offer_id_start)
    out.frames["tax_monthly"], out.frames["invoices_monthly"] = _external_monthly(sim, cid, rng)
    out.frames["registry_changes"] = _registry(sim, cid, rng)
    pa_frame, fb_frame, pilot_contacts, out.pilot = _pilot(sim, cid, rng)
    out.frames["pilot_assignments"], out.frames["pilot_feedback"] = pa_frame, fb_frame
    out.frames["marketing_contacts"] = _contacts(sim, cid, rng, pilot_contacts, contact_id_start)
    out.truth_events = _truth_events(sim, cid)
    out.truth_customers = _truth_customers(sim, cid)
    out.event_counts = _event_counts(sim)
    return out


# ---------------------------------------------------------------------------- customers, accounts
def _customers(sim: ChunkSim, cid: np.ndarray, q: Quotas, rng, problems: dict) -> pd.DataFrame:
    cu, st, pdata = sim.cu, sim.st, sim.personal
    n = cu.n
    frame = pd.DataFrame({
        "customer_id": cid,
        "customer_name": pdata["customer_name"],
        "customer_type": np.asarray(CUSTOMER_TYPES)[cu.ctype],
        "uscc": pdata["uscc"],
        "legal_rep_name": pdata["legal_rep_name"],
        "legal_rep_id_number": pdata["legal_rep_id_number"],
        "mobile": pdata["mobile"],
        "industry_code": cu.industry,
        "established_date": iso(cu.est_day),
        "relationship_start_date": iso(cu.rel_day),
        "registered_capital": cu.reg_capital,
        "employees": cu.employees,
        "annual_turnover": cu.turnover,
        "region_code": cu.region.astype(str),
        "branch_id": st.sub_branch_id[cu.sub],
        "grid_id": cu.grid,
        "rm_id": st.rm_ids[cu.rm],
        "credit_rating": np.asarray(RATINGS)[cu.rating],
    })
    pool = rng.permutation(n)
    take = iter(np.split(pool, np.cumsum([q.missing_industry, q.invalid_uscc, q.duplicates])))
    missing, invalid, dup = next(take), next(take), next(take)
    rest = next(take)
    enterprises = rest[cu.ctype[rest] > 0][:q.extra_ids]
    frame.loc[missing, "industry_code"] = ""
    frame.loc[invalid, "uscc"] = names.wrong_uscc_check(frame["uscc"].to_numpy()[invalid].astype(str), rng)
    extra = frame.iloc[enterprises].copy()
    extra["customer_id"] = customer_ids(q.extra_id_start + np.arange(len(enterprises)))
    back = np.round(rng.uniform(3, 8, len(enterprises)) * 365.25).astype(np.int64)
    extra["relationship_start_date"] = iso(cu.rel_day[enterprises] - back)
    extra["mobile"] = names.mobiles(rng, len(enterprises))
    # a duplicate sits right after its original, as a re-run export would put it
    order = np.concatenate([np.arange(n), dup])
    key = np.concatenate([np.arange(n) * 2, dup * 2 + 1])
    frame = frame.iloc[order[np.argsort(key, kind="stable")]]
    frame = pd.concat([frame, extra], ignore_index=True)
    problems.update(duplicate_rows=len(dup), same_uscc_multiple_ids=len(enterprises),
                    missing_industry=len(missing), invalid_uscc_check_digit=len(invalid))
    sim.extra_id_customers = enterprises
    sim.extra_id_g = q.extra_id_start + np.arange(len(enterprises))
    return frame


def _accounts(sim: ChunkSim, cid: np.ndarray, q: Quotas, rng, problems: dict):
    A, cu, st, cal = sim.acc, sim.cu, sim.st, sim.cal
    owner = A["owner"]
    assert A["serial"].max(initial=0) < 64, "more than 64 accounts for one customer"
    acc_ids = names.account_numbers(BANK_ACCOUNT_PREFIX, st.sub_branch_code[cu.sub[owner]],
                                    cu.g[owner] * 64 + A["serial"])
    product = np.asarray(PRODUCT_IDS)[A["product"]]
    close = A["close_day"]
    closed = (close >= 0) & (close <= cal.end)
    status = np.full(A.n, "正常", dtype=object)
    basic = A["product"] == PRODUCT_INDEX["DEP_BASIC"]
    suspended = basic & cu.dormant[owner] & (rng.random(A.n) < sim.cfg.dormant_suspended_share) & (
        cu.rel_month[owner] < sim.T - 12)
    status[suspended] = "久悬"
    frozen = basic & ~suspended & (rng.random(A.n) < sim.cfg.frozen_account_share)
    status[frozen] = "冻结"
    status[closed] = "销户"
    frame = pd.DataFrame({
        "account_id": acc_ids,
        "customer_id": cid[owner],
        "product_id": product,
        "account_type": [ACCOUNT_TYPE[p] for p in product],
        "currency": "CNY",
        "open_date": yyyymmdd(A["open_day"]),
        "close_date": np.where(closed, yyyymmdd(np.maximum(close, 0)), ""),
        "status": status.astype(str),
    })
    if q.orphans:
        m = q.orphans
        g = q.orphan_start + np.arange(m)
        opened = cal.start - rng.integers(400, 3000, m)
        shut = rng.random(m) < 0.5
        branch = st.sub_branch_code[rng.integers(0, len(st.sub_branch_code), m)]
        orphan = pd.DataFrame({
            "account_id": names.account_numbers(BANK_ACCOUNT_PREFIX, branch, g * 64),
            "customer_id": customer_ids(g),
            "product_id": "DEP_GENERAL", "account_type": ACCOUNT_TYPE["DEP_GENERAL"], "currency": "CNY",
            "open_date": yyyymmdd(opened),
            "close_date": np.where(shut, yyyymmdd(opened + rng.integers(100, 300, m)), ""),
            "status": np.where(shut, "销户", "久悬"),
        })
        frame = pd.concat([frame, orphan], ignore_index=True)
    problems["orphan_accounts"] = q.orphans
    problems["yyyymmdd_dates_open"] = len(frame)
    problems["yyyymmdd_dates_close"] = int((frame["close_date"] != "").sum())
    return acc_ids, frame


def _balances(sim: ChunkSim, acc_ids: np.ndarray, q: Quotas, rng, problems: dict) -> pa.Table:
    cols = [np.concatenate([p[i] for p in sim.bal_parts]) for i in range(8)]
    acc, k, end, avg, rate, credit, debit, count = cols
    # a few month-ends of active 基本户 driven below zero (fees debited to an empty account)
    basic = sim.acc["product"][acc] == PRODUCT_INDEX["DEP_BASIC"]
    active = ~sim.cu.dormant[sim.acc["owner"][acc]]
    pick = rng.permutation(np.flatnonzero(basic & active))[:q.negative_balances]
    end = end.copy()
    end[pick] = -rng.integers(1_000, 90_000, len(pick))
    problems["negative_balance"] = len(pick)
    rank = np.empty(len(acc_ids), np.int64)
    rank[np.argsort(acc_ids, kind="stable")] = np.arange(len(acc_ids))
    order = np.lexsort((k, rank[acc]))
    null = lambda x: pa.array(x[order] / 100.0, mask=(x[order] < 0))  # noqa: E731
    return pa.table({
        "account_id": _lookup(acc[order], acc_ids),
        "month": _lookup(k[order], sim.cal.labels),
        "balance_month_end": pa.array(end[order] / 100.0),
        "balance_daily_avg": pa.array(avg[order] / 100.0),
        "rate": pa.array(rate[order], mask=np.isnan(rate[order])),
        "credit_amount": null(credit),
        "debit_amount": null(debit),
        "txn_count": pa.array(count[order], mask=(count[order] < 0), type=pa.int64()),
    })


def _transactions(sim: ChunkSim, acc_ids: np.ndarray, q: Quotas, rng, start: int, problems: dict) -> pa.Table:
    keys = ("acc", "day", "cents", "dir", "purpose", "cp", "same", "usd", "channel")
    tx = {k: np.concatenate([p[k] for p in sim.txn_parts]) if sim.txn_parts else np.zeros(0, int)
          for k in keys}
    if q.future_txns:
        # 1–3 rows dated after the extract's last day (a clock error in the source system)
        m = q.future_txns
        basic = np.flatnonzero((sim.acc["product"] == PRODUCT_INDEX["DEP_BASIC"]) & ~sim.cu.dormant[sim.acc["owner"]])
        extra = {"acc": rng.choice(basic, m), "day": sim.cal.end + rng.integers(1, 15, m),
                 "cents": rng.integers(5_000, 200_000, m), "dir": np.ones(m, np.int8),
                 "purpose": np.full(m, PURPOSES.index("其他"), np.int8), "cp": np.ones(m, np.int8),
                 "same": np.zeros(m, bool), "usd": np.zeros(m, bool), "channel": np.ones(m, np.int8)}
        tx = {k: np.concatenate([tx[k], extra[k]]) for k in keys}
    problems["future_date"] = q.future_txns
    order = np.lexsort((tx["acc"], tx["day"]))
    n = len(order)

    def codes(x, labels):
        return _lookup(x[order], labels)

    return pa.table({
        "txn_id": _arrow_ids("T", start, n, 15),
        "account_id": codes(tx["acc"], acc_ids),
        "txn_date": pa.array(tx["day"][order].astype("datetime64[D]")),
        "amount": pa.array(tx["cents"][order] / 100.0),
        "direction": codes(tx["dir"], DIRECTIONS),
        "channel": codes(tx["channel"], CHANNELS),
        "purpose": codes(tx["purpose"], PURPOSES),
        "counterparty_bank": codes(tx["cp"], CP_BANKS),
        "counterparty_same_name": pa.array(tx["same"][order]),
        "currency": codes(tx["usd"].astype(np.int8), ["CNY", "USD"]),
    })


# ---------------------------------------------------------------------------- loans and pricing
def _loans(sim: ChunkSim, cid: np.ndarray, acc_ids: np.ndarray, rng, start: int):
    L, cfg, cal = sim.loans, sim.cfg, sim.cal
    n = L.n
    end_day = np.where(L["settled"] >= 0, L["settled"], L["maturity"])
    active = end_day > cal.end
    pd_ = np.asarray([cfg.pd_by_rating[r] for r in RATINGS])[sim.cu.rating[L["owner"]]]
    rel = pd_ / np.mean(list(cfg.pd_by_rating.values()))
    u = rng.random(n)
    shares = cfg.five_class_shares
    cut = np.cumsum([shares["损失"], shares["可疑"], shares["次级"], shares["关注"]])
    cls = np.select([u < cut[0] * rel, u < cut[1] * rel, u < cut[2] * rel, u < cut[3] * rel],
                    [4, 3, 2, 1], default=0)
    cls = np.where(active, cls, 0)
    overdue = np.select([cls == 1, cls == 2, cls >= 3],
                        [np.where(rng.random(n) < 0.5, 0, rng.integers(1, 91, n)),
                         rng.integers(91, 181, n), rng.integers(181, 361, n)], default=0)
    guarantee = np.where(L["guarantee"] >= 0, np.asarray(GUARANTEE)[np.maximum(L["guarantee"], 0)], "")
    frame = pd.DataFrame({
        "loan_id": _ids("LN", start, n),
        "customer_id": cid[L["owner"]],
        "account_id": np.where(L["account"] >= 0, acc_ids[np.maximum(L["account"], 0)], ""),
        "product_id": np.asarray(PRODUCT_IDS)[L["product"]],
        "contract_amount": np.round(L["amount"] / 1_000_000.0, 2),     # 万元, as the schema declares
        "disbursement_date": iso(L["disb"]),
        "maturity_date": iso(L["maturity"]),
        "executed_rate": L["rate"],
        "guide_rate": L["guide"],
        "guarantee_type": guarantee,
        "five_class": np.asarray(FIVE_CLASS)[cls],
        "overdue_days": overdue,
        "settled_date": np.where((L["settled"] >= 0) & (L["settled"] <= cal.end), _opt_iso(L["settled"]), ""),
    })
    return frame, cls


def _credit_lines(sim: ChunkSim, cid: np.ndarray, five: np.ndarray, rng, start: int) -> pd.DataFrame:
    """One line per customer × credit product ever drawn, plus unused lines; limits in 万元 (planted)."""
    L, cfg, cal = sim.loans, sim.cfg, sim.cal
    credit = np.isin(L["product"], [PRODUCT_INDEX[p] for p in CREDIT_LOANS])
    df = pd.DataFrame({"owner": L["owner"][credit], "product": L["product"][credit],
                       "disb": L["disb"][credit], "maturity": L["maturity"][credit],
                       "amount": L["amount"][credit], "bad": five[credit] >= 2,
                       "active": np.where(L["settled"][credit] >= 0, L["settled"][credit],
                                          L["maturity"][credit]) > cal.end})
    g = df.groupby(["owner", "product"], sort=True).agg(
        start=("disb", "min"), end=("maturity", "max"), amount=("amount", "max"), bad=("bad", "any"),
        active=("active", "any")).reset_index()
    m = len(g)
    lo, hi = cfg.credit_line_headroom
    limit = np.ceil(g["amount"].to_numpy() / 1_000_000.0 * rng.uniform(lo, hi, m))
    start_day = g["start"].to_numpy() - rng.integers(0, 21, m)
    end_day = g["end"].to_numpy()
    status = np.where(g["bad"].to_numpy(), "冻结",
                      np.where(g["active"].to_numpy() & (end_day > cal.end), "有效", "失效"))
    has_loan = np.zeros(sim.n, bool)
    has_loan[L["owner"]] = True
    unused = np.flatnonzero(~has_loan & ~sim.cu.dormant & (rng.random(sim.n) < cfg.unused_credit_line_share))
    u_start = cal.end - rng.integers(30, 360, len(unused))
    frame = pd.DataFrame({
        "owner": np.concatenate([g["owner"].to_numpy(), unused]),
        "product_id": np.concatenate([np.asarray(PRODUCT_IDS)[g["product"].to_numpy()],
                                      np.full(len(unused), "LOAN_OP")]),
        "limit_amount": np.concatenate([limit, rng.integers(10, 101, len(unused)).astype(float)]),
        "start": np.concatenate([start_day, u_start]),
        "end": np.concatenate([end_day, u_start + 365]),
        "status": np.concatenate([status, np.full(len(unused), "有效")]),
    }).sort_values(["owner", "start"], kind="stable")
    return pd.DataFrame({
        "credit_line_id": _ids("CL", start, len(frame)),
        "customer_id": cid[frame["owner"].to_numpy()],
        "product_id": frame["product_id"].to_numpy(),
        "limit_amount": frame["limit_amount"].to_numpy(),
        "start_date": iso(frame["start"].to_numpy()),
        "end_date": iso(frame["end"].to_numpy()),
        "status": frame["status"].to_numpy(),
    })


def _offers(sim: ChunkSim, cid: np.ndarray, start: int) -> pd.DataFrame:
    O = sim.offers
    order = np.lexsort((O["owner"], O["day"]))
    return pd.DataFrame({
        "offer_id": _ids("OF", start, O.n),
        "customer_id": cid[O["owner"][order]],
        "product_id": np.asarray(PRODUCT_IDS)[O["product"][order]],
        "offer_date": iso(O["day"][order]),
        "guide_rate": O["guide"][order],
        "offered_rate": O["offered"][order],
        "amount": O["amount"][order] / 100.0,
        "accepted": O["accepted"][order].astype(np.int8),
    })


# ---------------------------------------------------------------------------- external data
TAX_GRADE = {"AAA": "A", "AA": "A", "A": "B", "BBB": "B", "BB": "M", "B": "C", "C": "D", "未评级": "M"}


def _external_monthly(sim: ChunkSim, cid: np.ndarray, rng):
    cu, cal = sim.cu, sim.cal
    T = sim.T
    ks = np.arange(T)
    panel = cu.rel_month[:, None] <= ks[None, :]
    grade = np.asarray([TAX_GRADE[r] for r in RATINGS])[cu.rating]
    flip = rng.random(cu.n) < 0.15
    grade = np.where(flip, np.asarray(["A", "B", "M"])[rng.integers(0, 3, cu.n)], grade)
    i, k = np.nonzero(cu.tax_authorised[:, None] & panel)
    tax = pd.DataFrame({"customer_id": cid[i], "month": cal.labels[k],
                        "tax_paid": sim.tax_cents[i, k] / 100.0, "tax_credit_grade": grade[i]})
    i, k = np.nonzero(cu.invoice_authorised[:, None] & panel)
    amount = np.round(cu.turnover[i] / 12.0 * rng.lognormal(0, 0.25, len(i)), 2)
    count = np.maximum(1, rng.poisson(amount / rng.uniform(3_000, 30_000, len(i))))
    inv = pd.DataFrame({"customer_id": cid[i], "month": cal.labels[k], "invoice_amount": amount,
                        "invoice_count": count})
    return tax, inv


REGISTRY_WEIGHTS = [0.20, 0.15, 0.05, 0.10, 0.20, 0.12, 0.08, 0.10]
REGISTRY_DETAIL = {
    "法定代表人变更": ["法定代表人由原经营者变更为其亲属", "法定代表人变更"],
    "增资": ["注册资本增加50%", "注册资本由100万元增至200万元", "股东增资"],
    "减资": ["注册资本减少30%", "股东减资"],
    "新设分支机构": ["新设分公司一家", "新设门店"],
    "股权变更": ["新增自然人股东", "股东之间股权转让"],
    "经营异常": ["未按期报送年度报告", "通过登记的住所无法联系"],
    "行政处罚": ["市场监管部门罚款", "税务部门罚款"],
    "涉诉": ["买卖合同纠纷(被告)", "劳动争议(被告)", "借款合同纠纷(被告)"],
}


def _registry(sim: ChunkSim, cid: np.ndarray, rng) -> pd.DataFrame:
    cu, cal = sim.cu, sim.cal
    years = (cal.end - cal.start + 1) / 365.25
    cnt = rng.poisson(sim.cfg.registry_changes_per_customer_year * years, cu.n)
    who = np.repeat(np.arange(cu.n), cnt)
    days = cal.start + rng.integers(0, cal.end - cal.start + 1, len(who))
    kind = rng.choice(len(REGISTRY_TYPES), len(who), p=REGISTRY_WEIGHTS)
    types = np.asarray(REGISTRY_TYPES)[kind]
    detail = np.asarray([REGISTRY_DETAIL[t][rng.integers(0, len(REGISTRY_DETAIL[t]))] for t in types],
                        dtype=object)
    frame = pd.DataFrame({"customer_id": cid[who], "change_date": iso(days), "change_type": types,
                          "detail": detail.astype(str)})
    return frame.drop_duplicates(["customer_id", "change_date", "change_type"]).sort_values(
        ["change_date", "customer_id"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------- pilot and contacts
NOTES_CONVERTED = ["已放款", "客户已用信", "已成交，后续关注还款"]
NOTES_APPLIED = ["已提交申请，审批中", "资料待补充"]
NOTES_INTERESTED = ["有意向，需再跟进", "客户近期有扩产计划", "约好下周面谈"]
NOTES_NOT = ["暂无资金需求", "已在他行贷款", "客户对利率不满意", "经营者外出，改日再访"]
NOTES_UNREACHED = ["客户经理未跟进", "电话未接通"]


def _pilot(sim: ChunkSim, cid: np.ndarray, rng):
    cfg, cal = sim.cfg, sim.cal
    p = sim.pilot
    if p is None:
        empty = pd.DataFrame()
        return empty, empty, None, {}
    c = p.customers
    m = len(c)
    k = sim.pilot_k
    lo, hi = cal.first[k], cal.last[k + 2]
    L = sim.loans
    credit = np.isin(L["product"], [PRODUCT_INDEX[x] for x in CREDIT_LOANS])
    won = credit & (L["disb"] >= lo) & (L["disb"] <= hi)
    converted_all = np.zeros(sim.n, bool)
    converted_all[L["owner"][won]] = True
    converted = converted_all[c]
    rm_ids = sim.st.rm_ids[sim.cu.rm[c]]
    assignments = pd.DataFrame({
        "pilot_id": cfg.pilot_id, "customer_id": cid[c], "arm": np.where(p.treat, "treatment", "control"),
        "stratum": p.stratum, "rm_id": rm_ids, "event_id": p.event_id,
        "assigned_date": cfg.pilot_assigned_date})
    t = np.flatnonzero(p.treat)
    con = p.contacted[t]
    conv = converted[t] & con
    interested = con & (conv | (rng.random(len(t)) < 0.3))
    applied = con & (conv | (interested & (rng.random(len(t)) < 0.35)))
    fb_day = np.where(con, np.minimum(p.contact_day[t] + rng.integers(1, 21, len(t)), cal.end), cal.last[k])
    notes = np.where(conv, _choice(rng, NOTES_CONVERTED, len(t)),
                     np.where(applied, _choice(rng, NOTES_APPLIED, len(t)),
                              np.where(interested, _choice(rng, NOTES_INTERESTED, len(t)),
                                       np.where(con, _choice(rng, NOTES_NOT, len(t)),
                                                _choice(rng, NOTES_UNREACHED, len(t))))))
    opt = lambda flag: np.where(con, flag.astype(int), -1)  # noqa: E731  (-1 → empty cell)
    feedback = pd.DataFrame({
        "pilot_id": cfg.pilot_id, "customer_id": cid[c[t]], "rm_id": rm_ids[t],
        "contacted": con.astype(int), "contact_date": np.where(con, iso(p.contact_day[t]), ""),
        "interested": opt(interested), "applied": opt(applied), "converted": opt(conv),
        "feedback_date": iso(fb_day), "notes": notes})
    outcome = np.where(conv, "已成交", np.where(applied, "已申请", np.where(interested, "有意向", "无意向")))
    product = np.where(p.event_id[t] == "EV_TAX_STABLE_NO_LOAN", "LOAN_TAX", "LOAN_OP")
    contacts = pd.DataFrame({
        "owner": c[t][con], "rm_id": rm_ids[t][con], "day": p.contact_day[t][con],
        "channel": _choice(rng, ["上门", "上门", "电话", "电话", "微信"], int(con.sum())),
        "event_id": p.event_id[t][con], "product_id": product[con], "outcome": outcome[con]})
    # deposit outcome as the extract shows it
    ob = sim.ob
    change = ob.demand_avg[c, k:k + 3].mean(axis=1) - ob.demand_avg[c, k - 3:k].mean(axis=1)
    delta = np.asarray([cfg.pilot_conversion_uplift[x] for x in cfg.pilot_tiers])[p.tier]
    dep = np.asarray([cfg.pilot_deposit_uplift[x] for x in cfg.pilot_tiers])[p.tier]
    truth = {"n": m, "sum_rate": float(p.rate.sum()), "sum_rate_delta": float((p.rate * delta).sum()),
             "sum_rate_dep": float((p.rate * dep).sum()),
             "n_treat": int(p.treat.sum()), "n_contacted": int(p.contacted.sum()),
             "conv_treat": int(converted[p.treat].sum()), "conv_control": int(converted[~p.treat].sum()),
             "dep_treat": float(change[p.treat].sum()), "dep_control": float(change[~p.treat].sum()),
             "sum_p0": float(p.p0.sum()),
             "tiers": {name: {"n": int((p.tier == j).sum()),
                              "sum_rate": float(p.rate[p.tier == j].sum()),
                              "sum_rate_delta": float((p.rate * delta)[p.tier == j].sum()),
                              "sum_rate_dep": float((p.rate * dep)[p.tier == j].sum())}
                       for j, name in enumerate(cfg.pilot_tiers)}}
    return assignments, feedback, contacts, truth


def _choice(rng, options: list[str], n: int) -> np.ndarray:
    return np.asarray(options)[rng.integers(0, len(options), n)]


def _contacts(sim: ChunkSim, cid: np.ndarray, rng, pilot_contacts: pd.DataFrame | None,
              start: int) -> pd.DataFrame:
    cfg, cu, cal = sim.cfg, sim.cu, sim.cal
    first = np.maximum(cu.rel_day, cal.start)
    years = (cal.end - first + 1) / 365.25
    cnt = rng.poisson(cfg.random_contacts_per_customer_year * years)
    who = np.repeat(np.arange(cu.n), cnt)
    days = first[who] + np.floor(rng.random(len(who)) * (cal.end - first[who] + 1)).astype(np.int64)
    with_event = rng.random(len(who)) < 0.3
    ev = np.asarray(EVENT_IDS)[rng.integers(0, len(EVENT_IDS), len(who))]
    ev_product = np.asarray([EVENT_TARGET[e] for e in ev])
    any_product = np.asarray(TAKEUP_PRODUCTS)[rng.integers(0, len(TAKEUP_PRODUCTS), len(who))]
    outcome = np.asarray(["未接通", "无意向", "有意向", "已申请"])[
        rng.choice(4, len(who), p=[0.25, 0.45, 0.22, 0.08])]
    parts = [pd.DataFrame({"owner": who, "rm_id": sim.st.rm_ids[cu.rm[who]], "day": days,
                           "channel": _choice(rng, ["电话", "上门", "微信", "短信", "网点"], len(who)),
                           "event_id": np.where(with_event, ev, ""),
                           "product_id": np.where(with_event, ev_product, any_product),
                           "outcome": outcome})]
    for who_t, product, days_t in sim.takeup_log:
        keep = rng.random(len(who_t)) < cfg.takeup_contact_share
        w, d = who_t[keep], days_t[keep]
        d = np.maximum(d - rng.integers(0, 21, len(d)), np.maximum(cu.rel_day[w], cal.start))
        k = np.clip(sim.cal.index_of_day(d), 0, sim.T - 1)
        ev = np.full(len(w), "", dtype=object)
        for e, name in enumerate(EVENT_IDS):
            if EVENT_TARGET[name] != product:
                continue
            for lag in (3, 2, 1):
                kk = k - lag
                hit = (kk >= 0) & sim.fired[e, w, np.maximum(kk, 0)]
                ev = np.where(hit, name, ev)
        parts.append(pd.DataFrame({"owner": w, "rm_id": sim.st.rm_ids[cu.rm[w]], "day": d,
                                   "channel": _choice(rng, ["电话", "上门", "微信", "网点"], len(w)),
                                   "event_id": ev.astype(str), "product_id": product, "outcome": "已成交"}))
    if pilot_contacts is not None:
        parts.append(pilot_contacts)
    df = pd.concat(parts, ignore_index=True).sort_values(["day", "owner"], kind="stable")
    assert set(df["channel"]) <= set(CONTACT_CHANNELS)
    return pd.DataFrame({
        "contact_id": _ids("MC", start, len(df)),
        "customer_id": cid[df["owner"].to_numpy()],
        "rm_id": df["rm_id"].to_numpy(),
        "contact_date": iso(df["day"].to_numpy()),
        "channel": df["channel"].to_numpy(),
        "event_id": df["event_id"].to_numpy(),
        "product_id": df["product_id"].to_numpy(),
        "outcome": df["outcome"].to_numpy(),
    })


# ---------------------------------------------------------------------------- truth
def _truth_events(sim: ChunkSim, cid: np.ndarray) -> pa.Table:
    """Every (customer, month, event) the generator fired, ordered by event, customer, month."""
    e, i, k = np.nonzero(sim.fired)          # C order: event, then customer, then month
    extra = getattr(sim, "extra_id_customers", np.zeros(0, np.int64))
    labels = np.concatenate([cid, customer_ids(sim.extra_id_g)]) if len(extra) else cid
    if len(extra):
        # stale second ids (same USCC) have no accounts and a relationship older than the window:
        # the extract shows them dormant every month, and their firm's anniversaries
        ex_i = np.repeat(sim.n + np.arange(len(extra)), sim.T)
        ex_k = np.tile(np.arange(sim.T), len(extra))
        est = np.repeat(month_index(sim.cu.est_day[extra]), sim.T)
        m_abs = sim.cal.month0 + ex_k
        anniversary = (est % 12 == m_abs % 12) & (m_abs >= est + 12)
        e = np.concatenate([e, np.full(len(ex_i), EVENT_IDS.index("EV_DORMANT_3M")),
                            np.full(int(anniversary.sum()), EVENT_IDS.index("EV_ANNIVERSARY"))])
        i = np.concatenate([i, ex_i, ex_i[anniversary]])
        k = np.concatenate([k, ex_k, ex_k[anniversary]])
        order = np.lexsort((k, i, e))
        e, i, k = e[order], i[order], k[order]
    return pa.table({"customer_id": _lookup(i, labels), "month": _lookup(k, sim.cal.labels),
                     "event_id": _lookup(e, EVENT_IDS)})


def _truth_customers(sim: ChunkSim, cid: np.ndarray) -> pa.Table:
    cu, cfg = sim.cu, sim.cfg
    n = cu.n
    arm = np.full(n, "", dtype=object)
    tier = np.full(n, "", dtype=object)
    contacted = np.zeros(n, bool)
    rate = np.full(n, np.nan)
    p0 = np.full(n, np.nan)
    induced = np.zeros(n, bool)
    if sim.pilot is not None:
        p = sim.pilot
        arm[p.customers] = np.where(p.treat, "treatment", "control")
        tier[p.customers] = np.asarray(cfg.pilot_tiers)[p.tier]
        contacted[p.customers] = p.contacted
        rate[p.customers] = p.rate
        p0[p.customers] = p.p0
        induced[p.customers] = p.induced_day >= 0
    realised = sim.share * cu.wallet
    return pa.table({
        "customer_id": cid,
        "wallet": cu.wallet, "log_wallet": cu.log_wallet, "share_of_wallet": sim.share,
        "realised_contribution": realised, "headroom": cu.wallet - realised,
        "monthly_deposit_growth": sim.growth,
        "demand_level_start": sim.level0,
        "products_held_start": sim.products_held0.astype(np.int64),
        "years_with_bank_start": cu.years_with_bank, "years_established": cu.years_established,
        "annual_tax_latent": cu.annual_tax, "dormant": cu.dormant, "tax_authorised": cu.tax_authorised,
        "pilot_arm": arm.astype(str), "pilot_tier": tier.astype(str), "pilot_contacted": contacted,
        "rm_follow_up_rate": rate, "pilot_p0": p0, "pilot_induced_conversion": induced,
    })


def _event_counts(sim: ChunkSim) -> dict[str, np.ndarray]:
    """Per event: [triggers, eligible triggers, their take-ups, eligible non-triggers, their take-ups,
    customers triggered] over every complete-window month and over the last 12 of them."""
    T, w = sim.T, sim.cfg.event_window_months
    panel = sim.ob.panel
    out = {}
    last = T - 1 - w
    for e, name in enumerate(EVENT_IDS):
        j = TAKEUP_PRODUCTS.index(EVENT_TARGET[name])
        rows = []
        for first in (0, max(0, last - 11)):
            ks = np.arange(first, last + 1)
            f = sim.fired[e][:, ks]
            el = panel[:, ks] & ~sim.hold_end[j][:, ks]
            hit = np.stack([sim.takeup[j][:, k + 1:k + 1 + w].any(axis=1) for k in ks], axis=1)
            rows.append([f.sum(), (f & el).sum(), (f & el & hit).sum(), (~f & el).sum(), (~f & el & hit).sum(),
                         f.any(axis=1).sum()])
        out[name] = np.asarray(rows, dtype=np.int64)
    return out
