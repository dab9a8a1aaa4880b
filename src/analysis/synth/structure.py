"""The bank's organisation: 分行 / 支行, grids, relationship managers, products, and the chunk plan.

Everything here depends only on the seed and the number of customers, so it is drawn once
before the customers are streamed in chunks. Chunks hold whole RM books, so randomisation
within RM × tier strata (the pilot) never spans two chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import names
from .catalog import GRID_TYPES, PRODUCTS
from .config import BankConfig

# 分行: (city, 2-digit city code, [(支行 name, district, 2-digit district code)])
BRANCH_LAYOUT = [
    ("江澄市", 1, [("营业部", "中心区", 2), ("东城支行", "东城区", 3), ("高新区支行", "高新区", 4),
                  ("经开区支行", "经开区", 5), ("滨江支行", "滨江区", 6), ("西城支行", "西城区", 7),
                  ("南湖支行", "南湖区", 8)]),
    ("云溪市", 2, [("城中支行", "城中区", 2), ("北城支行", "北城区", 3), ("工业园支行", "工业园区", 4),
                  ("青石镇支行", "青石镇", 21), ("云溪新区支行", "新区", 5), ("云溪东关支行", "东关区", 6),
                  ("云溪桃源支行", "桃源镇", 22)]),
    ("临川市", 3, [("中山路支行", "中山区", 2), ("南湖新城支行", "新城区", 3), ("开发区支行", "开发区", 4),
                  ("白沙镇支行", "白沙镇", 21), ("站前支行", "站前区", 5), ("临川河西支行", "河西区", 6),
                  ("临川石桥支行", "石桥镇", 22)]),
]
PROVINCE_CODE = 35
BANK_ACCOUNT_PREFIX = 7312
GRID_WORDS = {"商圈": "中心商圈", "园区": "产业园", "市场": "综合市场", "社区": "社区", "乡镇": "乡镇片区"}


@dataclass
class Chunk:
    index: int
    rm_start: int
    rm_end: int          # exclusive
    cust_start: int      # global customer index
    cust_end: int


@dataclass
class Structure:
    """The organisation and the RM books (arrays indexed by RM or by 支行)."""

    branches: pd.DataFrame
    grids: pd.DataFrame
    rms: pd.DataFrame
    products: pd.DataFrame
    sub_branch_id: np.ndarray        # per 支行
    sub_branch_code: np.ndarray      # 3-digit code used in account numbers
    sub_branch_city: np.ndarray
    sub_branch_district: np.ndarray
    sub_branch_region: np.ndarray    # 6-digit 行政区划代码
    sub_branch_pilot: np.ndarray     # bool
    grid_ids_by_sub: list[np.ndarray]
    rm_ids: np.ndarray
    rm_sub: np.ndarray               # 支行 index of each RM
    rm_grid: np.ndarray              # grid_id of each RM
    rm_book: np.ndarray              # customers per RM
    rm_follow_up: np.ndarray         # pilot follow-up rate per RM
    chunks: list[Chunk]


def _book_sizes(rng: np.random.Generator, customers: int, n_rm: int, cfg: BankConfig) -> np.ndarray:
    """Uneven RM book sizes summing exactly to `customers` (within the configured range when feasible)."""
    lo, hi = cfg.rm_book_range
    mean = customers / n_rm
    if not lo <= mean <= hi:   # tiny or huge banks: keep the shape, drop the range
        lo, hi = 1, max(1, customers)
    w = rng.lognormal(0.0, cfg.rm_book_sigma, n_rm)
    sizes = np.clip(w / w.mean() * mean, lo, hi)
    for _ in range(50):       # rescale the unclipped ones until the total fits
        free = (sizes > lo) & (sizes < hi)
        gap = customers - sizes.sum()
        if abs(gap) < 0.5 or not free.any():
            break
        sizes[free] = np.clip(sizes[free] * (1 + gap / sizes[free].sum()), lo, hi)
    out = np.floor(sizes).astype(np.int64)
    out = np.maximum(out, 1 if customers >= n_rm else 0)
    diff = customers - out.sum()
    order = rng.permutation(n_rm)
    i = 0
    while diff != 0:          # hand out (or take back) the rounding remainder one by one
        r = order[i % n_rm]
        step = 1 if diff > 0 else -1
        if out[r] + step >= (1 if customers >= n_rm else 0):
            out[r] += step
            diff -= step
        i += 1
    return out


def build_structure(rng: np.random.Generator, cfg: BankConfig, customers: int,
                    chunk_size: int) -> Structure:
    """Draw the organisation, RM books and chunk plan for a bank of `customers`."""
    per = cfg.sub_branches_per_branch
    branch_rows = [{"branch_id": "B000", "branch_name": f"{cfg.bank_name_zh}总行", "level": "总行",
                    "parent_branch_id": None, "city": cfg.home_city_zh}]
    sub_id, sub_code, sub_city, sub_district, sub_region = [], [], [], [], []
    for b, (city, city_code, subs) in enumerate(BRANCH_LAYOUT):
        bid = f"B{b + 1}00"
        short = city.removesuffix("市")
        branch_rows.append({"branch_id": bid, "branch_name": f"{cfg.bank_name_zh}{short}分行",
                            "level": "分行", "parent_branch_id": "B000", "city": city})
        for s, (name, district, dcode) in enumerate(subs[:per]):
            code = (b + 1) * 100 + s + 1
            full = f"{cfg.bank_name_zh}{short}分行{name}" if name == "营业部" else f"{cfg.bank_name_zh}{name}"
            branch_rows.append({"branch_id": f"B{code}", "branch_name": full, "level": "支行",
                                "parent_branch_id": bid, "city": city})
            sub_id.append(f"B{code}")
            sub_code.append(code)
            sub_city.append(city)
            sub_district.append(district)
            sub_region.append(PROVINCE_CODE * 10000 + city_code * 100 + dcode)
    n_sub = len(sub_id)

    grid_rows, grids_by_sub = [], []
    g_lo, g_hi = cfg.grids_per_sub_branch
    for s in range(n_sub):
        k = int(rng.integers(g_lo, g_hi + 1))
        types = rng.choice(GRID_TYPES, size=k, replace=k > len(GRID_TYPES))
        ids = []
        for j, t in enumerate(types):
            gid = f"G{sub_code[s]}{j + 1:02d}"
            ids.append(gid)
            grid_rows.append({"grid_id": gid, "grid_name": f"{sub_district[s]}{GRID_WORDS[t]}{j + 1}号网格",
                              "branch_id": sub_id[s], "grid_type": t})
        grids_by_sub.append(np.asarray(ids))

    n_rm = max(n_sub, int(round(customers / cfg.customers_per_rm)))
    rm_sub = np.sort(np.concatenate([np.arange(n_sub), rng.integers(0, n_sub, n_rm - n_sub)]))
    rm_ids = np.asarray([f"RM{r + 1:04d}" for r in range(n_rm)])
    rm_grid = np.asarray([grids_by_sub[s][rng.integers(0, len(grids_by_sub[s]))] for s in rm_sub])
    book = _book_sizes(rng, customers, n_rm, cfg)
    pilot_subs = np.zeros(n_sub, dtype=bool)
    pilot_subs[rng.choice(n_sub, size=min(cfg.pilot_sub_branches, n_sub), replace=False)] = True
    follow_up = rng.uniform(*cfg.pilot_follow_up_range, n_rm)
    status = np.full(n_rm, "在岗", dtype=object)
    movable = np.flatnonzero(~pilot_subs[rm_sub])
    n_left = min(len(movable), int(round(cfg.rm_left_share * n_rm)))
    if n_left:
        left = rng.choice(movable, size=n_left, replace=False)
        status[left] = rng.choice(["离职", "调岗"], size=n_left)
    hire = (np.datetime64("2008-01-01") + rng.integers(0, 365 * 13, n_rm)).astype("datetime64[D]")
    rms = pd.DataFrame({
        "rm_id": rm_ids,
        "rm_name": names.person_names(rng, n_rm),
        "branch_id": np.asarray(sub_id)[rm_sub],
        "grid_id": rm_grid,
        "hire_date": np.datetime_as_string(hire),
        "status": status.astype(str),
        "mobile": names.mobiles(rng, n_rm),
    })

    products = pd.DataFrame(
        [{"product_id": pid, "product_name_zh": zh, "product_name_en": en, "product_type": ptype,
          "guide_rate": _product_guide(cfg, pid), "term_months": cfg.term_months.get(pid)}
         for pid, zh, en, ptype, _ in PRODUCTS])
    products["term_months"] = products["term_months"].astype("Int64")

    chunks, start_rm, start_c, acc = [], 0, 0, 0
    for r in range(n_rm):
        acc += int(book[r])
        if acc - start_c >= chunk_size or r == n_rm - 1:
            chunks.append(Chunk(len(chunks), start_rm, r + 1, start_c, acc))
            start_rm, start_c = r + 1, acc
    return Structure(
        branches=pd.DataFrame(branch_rows), grids=pd.DataFrame(grid_rows), rms=rms, products=products,
        sub_branch_id=np.asarray(sub_id), sub_branch_code=np.asarray(sub_code),
        sub_branch_city=np.asarray(sub_city), sub_branch_district=np.asarray(sub_district),
        sub_branch_region=np.asarray(sub_region), sub_branch_pilot=pilot_subs,
        grid_ids_by_sub=grids_by_sub, rm_ids=rm_ids, rm_sub=rm_sub, rm_grid=rm_grid, rm_book=book,
        rm_follow_up=follow_up, chunks=chunks)


def _product_guide(cfg: BankConfig, pid: str) -> float | None:
    if pid in cfg.guide_rate:
        return cfg.guide_rate[pid]
    deposit = {"DEP_BASIC": float(np.mean(cfg.demand_rate_range)),
               "DEP_GENERAL": float(np.mean(cfg.demand_rate_range)),
               "TD": float(np.mean(cfg.td_rate_range)), "AGD": float(np.mean(cfg.agreement_rate_range)),
               "MARGIN": cfg.margin_rate}
    v = deposit.get(pid)
    return None if v is None else round(v, 4)
