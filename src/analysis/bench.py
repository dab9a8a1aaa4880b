"""`make bench`: time every heavy stage on synthetic banks of 10k / 100k / 1M customers.

For each size a bank is synthesized into ``bench/data/<size>/`` (reused while its fingerprint —
generator arguments and the generator's source — is unchanged), then each stage runs in its own
child process so that its peak resident memory is that child's ``ru_maxrss`` and nothing one
stage caches helps the next. Stages: ingest, assessment checks (+ readiness), the tag table,
value and tiers (score_customers), event triggers, event backtest; a raw DuckDB scan of the
transactions Parquet is the floor. The heavy stages are also run as straightforward pandas
implementations (``analysis.bench_pandas``) at the smaller sizes for a ratio measured in the
same run. Results go to ``bench/results.json`` and a table is printed.

    python -m analysis.bench --out bench/results.json [--sizes 10000,100000] [--data bench/data]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

SEED = 20221231
MONTHS = 24
END_MONTH = "2022-12"
AS_OF = "2022-12"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
PANDAS_SIZES = (10_000, 100_000)
# Ordinary transactions per active 基本户-month; the 3-4 event-relevant ones come on top, so ~100.
# At 1M customers that would be ~1.9 billion rows (~12 GB of Parquet, hours to synthesize on two
# cores): the million-customer bank carries a lighter transaction load (see txn_for_size).
TXN_PER_ACTIVE_MONTH = 96
TXN_PER_ACTIVE_MONTH_1M = 4
CHUNK_SIZE = 5_000
DUCKDB_MEMORY_LIMIT = "6GB"
DUCKDB_THREADS = 2
PANDAS_TIMEOUT_S = 900       # a pandas stage past this is stopped and its ratio reported as a lower bound
MEMORY_CAP_MB = 12 * 1024       # any stage past this resident size is stopped (and reported)
STAGE_TIMEOUT_S = 3600
STAGES = ("ingest", "assessment", "tag_table", "value_tiers", "event_triggers", "event_backtest")
HEAVY = ("tag_table", "value_tiers", "event_triggers", "event_backtest")
TARGET_TOTAL_S = 600
TARGET_PEAK_MB = 8 * 1024
TARGET_RATIO = 5.0


def txn_for_size(customers: int) -> float:
    """Ordinary transactions per active account-month used for a bank of `customers`."""
    return TXN_PER_ACTIVE_MONTH if customers < 1_000_000 else TXN_PER_ACTIVE_MONTH_1M


# ---------------------------------------------------------------- data

def _generator_hash() -> str:
    """Hash of the synthetic generator's source: a changed generator means different data."""
    synth = Path(__file__).parent / "synth"
    h = hashlib.sha256()
    for p in sorted(synth.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def bank_params(customers: int) -> dict:
    return {"customers": int(customers), "seed": SEED, "months": MONTHS, "end_month": END_MONTH,
            "txn_per_active_month": txn_for_size(customers), "chunk_size": CHUNK_SIZE,
            "generator": _generator_hash()}


def _wait_for_other_generator(root: Path, log) -> None:
    """Another bench process is synthesizing this bank: wait for it rather than start over."""
    lock = root / ".generating"
    told = False
    while lock.exists():
        try:
            os.kill(int(lock.read_text().strip()), 0)
        except (ValueError, ProcessLookupError, PermissionError, FileNotFoundError):
            return      # a stale lock: its process is gone
        if not told:
            log(f"waiting for another process synthesizing {root} …")
            told = True
        time.sleep(10)


def ensure_bank(root: Path, customers: int, log=print) -> dict:
    """Synthesize the bank into root/inbox unless a bank with the same fingerprint is there."""
    params = bank_params(customers)
    fp_path = root / "fingerprint.json"
    _wait_for_other_generator(root, log)
    if fp_path.exists():
        fp = json.loads(fp_path.read_text())
        if fp.get("params") == params and (root / "inbox" / "transactions.parquet").exists():
            fp["reused"] = True
            return fp
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    log(f"synthesizing {customers:,} customers into {root} …")
    lock = root / ".generating"
    lock.write_text(str(os.getpid()))
    t0 = time.perf_counter()
    try:
        stage = _run_child("generate", root, customers, timeout=6 * 3600)
    finally:
        lock.unlink(missing_ok=True)
    if stage.get("seconds") is None:
        raise RuntimeError(f"synthesizing {customers:,} customers failed: {stage.get('error')}")
    rows = stage.pop("result", {}).get("rows", {})
    fp = {"params": params, "rows": rows,
          "bytes": {p.name: p.stat().st_size for p in sorted((root / "inbox").iterdir())},
          "generate_seconds": round(time.perf_counter() - t0, 1),
          "generate_peak_memory_mb": stage.get("peak_memory_mb")}
    fp_path.write_text(json.dumps(fp, indent=2) + "\n")
    fp["reused"] = False
    return fp


# ---------------------------------------------------------------- child processes

def _connect(path: Path, read_only: bool = False):
    import duckdb

    return duckdb.connect(str(path), read_only=read_only,
                          config={"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": DUCKDB_THREADS})


def _pin_duckdb_settings() -> None:
    """Make every duckdb.connect in this process use the bench's memory limit and threads.

    ingest_inbox opens its own connection; wrapping connect keeps the settings identical for
    every stage without changing the stage's code.
    """
    import duckdb

    original = duckdb.connect
    if getattr(original, "_bench_pinned", False):
        return

    def connect(database=":memory:", read_only=False, config=None, **kw):
        cfg = {"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": DUCKDB_THREADS, **(config or {})}
        return original(database, read_only=read_only, config=cfg, **kw)

    connect._bench_pinned = True  # type: ignore[attr-defined]
    duckdb.connect = connect


def _value_setup():
    from .catalog import load_yaml
    from .value import FtpCurve, TierScheme
    from .value_data import ValueAssumptions

    scheme = TierScheme.from_catalog(load_yaml("tiers.yaml"))
    assumptions = ValueAssumptions(**load_yaml("pricing.yaml").get("assumptions", {}))
    return scheme, assumptions, FtpCurve(deposit_ftp=0.024, loan_ftp=0.030)


def _import_stage_modules() -> None:
    """Import every module a timed stage uses (DuckDB and pandas sides alike) before its clock
    starts: `seconds` is work time, and statsmodels / scipy alone take about a second to import,
    which would otherwise be charged to whichever side imports first."""
    from . import assessment, bench_pandas, catalog, events, ingest, schema, tags, value, value_data  # noqa: F401


def run_stage(stage: str, root: Path, customers: int) -> dict:
    """Run one stage on the bank in `root`; returns {"seconds": work time, "result": small facts}."""
    _pin_duckdb_settings()
    if stage != "generate":
        _import_stage_modules()
    inbox, warehouse = root / "inbox", root / "warehouse.duckdb"
    if stage == "generate":
        from .synth.bank import generate_bank

        p = bank_params(customers)
        t0 = time.perf_counter()
        s = generate_bank(inbox, customers=customers, seed=p["seed"], months=p["months"],
                          end_month=p["end_month"], txn_per_active_month=p["txn_per_active_month"],
                          chunk_size=p["chunk_size"])
        return {"seconds": time.perf_counter() - t0, "result": {"rows": s.rows}}
    if stage == "ingest":
        from .ingest import IngestOptions, ingest_inbox

        t0 = time.perf_counter()
        rep = ingest_inbox(inbox, warehouse, root / "quarantine", options=IngestOptions(on_bad_rows="quarantine"))
        secs = time.perf_counter() - t0
        (root / "ingest.json").write_text(json.dumps(rep.to_dict(), ensure_ascii=False, indent=1))
        return {"seconds": secs, "result": {"rows_loaded": sum(t.rows_loaded for t in rep.tables.values()),
                                            "rows_quarantined": rep.rows_quarantined}}
    if stage == "floor":
        import duckdb

        con = duckdb.connect()
        t0 = time.perf_counter()
        n, total = con.execute("SELECT count(*), sum(amount) FROM read_parquet(?)",
                               [str(inbox / "transactions.parquet")]).fetchone()
        return {"seconds": time.perf_counter() - t0, "result": {"rows": int(n)}}
    if stage.startswith("pandas_"):
        from . import bench_pandas

        con = _connect(warehouse, read_only=True)
        t0 = time.perf_counter()
        out = bench_pandas.STAGES[stage[len("pandas_"):]](con, AS_OF)
        return {"seconds": time.perf_counter() - t0, "result": out}

    con = _connect(warehouse)
    t0 = time.perf_counter()
    if stage == "assessment":
        from .assessment import readiness_matrix, run_checks
        from .schema import load_schema

        schema = load_schema()
        ingest = json.loads((root / "ingest.json").read_text())
        findings = run_checks(con, schema, as_of=AS_OF, ingest_report=ingest, quarantine_dir=root / "quarantine")
        readiness = readiness_matrix(findings, schema, con)
        result = {"findings": len(findings), "stages": len(readiness)}
    elif stage == "tag_table":
        from .catalog import load_tag_catalog
        from .tags import build_tag_table

        catalog = load_tag_catalog()
        result = {"rows": int(build_tag_table(con, catalog, AS_OF)), "tags": len(catalog.tags)}
    elif stage == "value_tiers":
        from .value_data import score_customers

        scheme, assumptions, ftp = _value_setup()
        frame, _, _ = score_customers(con, AS_OF, 12, assumptions=assumptions, ftp=ftp, scheme=scheme,
                                      quantile=0.8)
        result = {"customers": len(frame)}
    elif stage == "event_triggers":
        from .catalog import load_event_catalog
        from .events import build_event_triggers, validate_events

        catalog = load_event_catalog()
        tag_ids = [r[0] for r in con.execute("DESCRIBE tag_table").fetchall()]
        products = [r[0] for r in con.execute("SELECT product_id FROM products").fetchall()]
        validate_events(catalog, tag_ids, products)
        build_event_triggers(con, catalog)
        result = {"rows": con.execute("SELECT count(*) FROM event_triggers").fetchone()[0],
                  "events": len(catalog.events)}
    elif stage == "event_backtest":
        from .catalog import load_event_catalog
        from .events import backtest_events

        card, monthly = backtest_events(con, load_event_catalog(), AS_OF, window=3, n_months=12)
        result = {"events": len(card), "selected": int(card["selected"].sum())}
    else:
        raise SystemExit(f"unknown stage {stage}")
    secs = time.perf_counter() - t0
    con.close()
    return {"seconds": secs, "result": result}


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _run_child(stage: str, root: Path, customers: int, timeout: float = STAGE_TIMEOUT_S,
               memory_cap_mb: float = MEMORY_CAP_MB) -> dict:
    """Run `stage` in a fresh interpreter; seconds (work, in the child), wall, cpu, peak RSS of that child."""
    import threading

    out = root / f".stage-{stage}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "analysis.bench", "--child", stage, "--root", str(root),
           "--customers", str(customers), "--child-out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timed_out, capped, done = threading.Event(), threading.Event(), threading.Event()

    def watch():
        # the machine may be shared: a stage past the cap is stopped, not left to swap or OOM others
        while not done.wait(0.5):
            if time.perf_counter() - t0 > timeout:
                timed_out.set()
                proc.kill()
                return
            if _rss_mb(proc.pid) > memory_cap_mb:
                capped.set()
                proc.kill()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    err_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    # wait4 gives this child's own rusage: its peak RSS, not the max over every child so far
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    reader.join(5)
    wall = time.perf_counter() - t0
    rss_kb = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    rec = {"wall_seconds": round(wall, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
           "peak_memory_mb": round(rss_kb / 1024, 1)}
    if proc.returncode == 0 and out.exists():
        child = json.loads(out.read_text())
        rec["seconds"] = round(child["seconds"], 2)
        rec["result"] = child.get("result", {})
        out.unlink()
    else:
        tail = b"".join(err_chunks).decode("utf-8", "replace").strip().splitlines()[-3:]
        rec["seconds"] = None
        if capped.is_set():
            rec["error"] = f"stopped at the {memory_cap_mb / 1024:.0f} GiB memory cap after {wall:.0f} s"
        elif timed_out.is_set():
            rec["error"] = f"timed out after {timeout:.0f} s"
        else:
            rec["error"] = f"exit {proc.returncode}: " + " | ".join(tail)
    return rec




class _TimedConnection:
    """A DuckDB connection that records the time of every statement (for `--profile`)."""

    def __init__(self, con, log: list):
        self._con, self._log = con, log

    def execute(self, sql, *args, **kw):
        # a multi-statement string (build_customer_month's temp tables) is timed statement by statement
        parts = [p for p in sql.split(";\n") if p.strip()] if not args and not kw else [sql]
        for part in parts:
            t0, c0 = time.perf_counter(), time.process_time()
            self._con.execute(part, *args, **kw)
            head = " ".join(part.split())[:110]
            self._log.append({"seconds": round(time.perf_counter() - t0, 3),
                              "cpu_seconds": round(time.process_time() - c0, 3), "sql": head})
        return self._con

    # the Engine interface (analysis.engines), so stages that wrap their connection accept this one
    name = "duckdb"

    def run(self, sql: str) -> None:
        self.execute(sql)

    def df(self, sql: str):
        return self.execute(sql).df()

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self.execute(f"DESCRIBE {table}").fetchall()]

    def has_table(self, table: str) -> bool:
        return bool(self.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                 [table]).fetchone()[0])

    def __getattr__(self, name):
        return getattr(self._con, name)


def profile_stage(stage: str, root: Path, customers: int, top: int = 12) -> dict:
    """Run one stage with every SQL statement timed; returns the slowest statements (python -m analysis.bench --profile)."""
    import duckdb

    log: list = []
    _pin_duckdb_settings()
    pinned = duckdb.connect
    duckdb.connect = lambda *a, **kw: _TimedConnection(pinned(*a, **kw), log)  # type: ignore[assignment]
    try:   # _connect and ingest_inbox both reach duckdb.connect at call time
        res = run_stage(stage, root, customers)
    finally:
        duckdb.connect = pinned
    sql_total = sum(r["seconds"] for r in log)
    return {"stage": stage, "customers": customers, "seconds": round(res["seconds"], 2),
            "result": res.get("result", {}),
            "sql_seconds": round(sql_total, 2), "python_seconds": round(res["seconds"] - sql_total, 2),
            "statements": len(log), "slowest": sorted(log, key=lambda r: -r["seconds"])[:top]}


# ---------------------------------------------------------------- the run

def machine() -> dict:
    import duckdb

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {"cores": os.cpu_count(), "memory_gib": mem, "cpu_model": cpu, "platform": platform.platform(),
            "python": platform.python_version(), "duckdb": duckdb.__version__,
            "pandas": __import__("pandas").__version__}


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def exponent(n1: int, t1: float | None, n2: int, t2: float | None) -> float | None:
    """Scaling exponent log(t2/t1) / log(n2/n1); None when either time is missing or zero."""
    if not t1 or not t2 or n1 == n2:
        return None
    return round(math.log(t2 / t1) / math.log(n2 / n1), 2)


def _stage_record(rec: dict) -> dict:
    keep = ("seconds", "peak_memory_mb", "wall_seconds", "cpu_seconds", "error", "result")
    return {k: rec[k] for k in keep if k in rec}


def run_size(n: int, data: Path, *, with_pandas: bool, log=print) -> dict:
    root = data / str(n)
    fp = ensure_bank(root, n, log=log)
    rows = fp.get("rows", {})
    entry = {"customers": n, "txn_per_active_month": fp["params"]["txn_per_active_month"],
             "transactions": rows.get("transactions"), "balances_monthly": rows.get("balances_monthly"),
             "transactions_per_customer_month": round(rows.get("transactions", 0) / (n * MONTHS), 1),
             "data_reused": fp.get("reused", False), "generate_seconds": fp.get("generate_seconds"),
             "generate_peak_memory_mb": fp.get("generate_peak_memory_mb"),
             "data_bytes": sum(fp.get("bytes", {}).values()), "stages": {}}
    failed = False
    for stage in STAGES:
        if failed:
            entry["stages"][stage] = {"seconds": None, "peak_memory_mb": None, "error": "skipped: an earlier stage failed"}
            continue
        load = _load()
        rec = _stage_record(_run_child(stage, root, n))
        rec["load_avg_before"] = load
        entry["stages"][stage] = rec
        log(f"  {n:>9,} {stage:<15} {rec.get('seconds')!s:>9} s  {rec.get('peak_memory_mb')!s:>8} MB"
            + (f"  {rec['error']}" if rec.get("error") else ""))
        failed = rec.get("seconds") is None
    entry["floor"] = _stage_record(_run_child("floor", root, n))
    log(f"  {n:>9,} {'floor (scan)':<15} {entry['floor'].get('seconds')!s:>9} s")
    if with_pandas and not failed:
        for stage in HEAVY:
            rec = _run_child(f"pandas_{stage}", root, n, timeout=PANDAS_TIMEOUT_S)
            target = entry["stages"][stage]
            target["pandas_seconds"] = rec.get("seconds")
            target["pandas_peak_memory_mb"] = rec.get("peak_memory_mb")
            target["pandas_cpu_seconds"] = rec.get("cpu_seconds")
            if target.get("cpu_seconds") and rec.get("cpu_seconds") and rec.get("seconds"):
                # CPU ratio: the comparison that holds when the machine is shared with other work
                target["cpu_ratio"] = round(rec["cpu_seconds"] / target["cpu_seconds"], 2)
            if rec.get("error"):
                target["pandas_error"] = rec["error"]
                if "timed out" in rec["error"]:
                    # the ratio is at least the timeout over DuckDB's time
                    target["ratio_at_least"] = round(PANDAS_TIMEOUT_S / target["seconds"], 1)
            if target.get("seconds") and rec.get("seconds"):
                target["ratio"] = round(rec["seconds"] / target["seconds"], 2)
            log(f"  {n:>9,} pandas {stage:<8} {rec.get('seconds')!s:>9} s  {rec.get('peak_memory_mb')!s:>8} MB"
                f"  ratio {target.get('ratio')}" + (f"  {rec['error']}" if rec.get("error") else ""))
    done = [r for r in entry["stages"].values() if r.get("seconds") is not None]
    entry["pipeline_seconds"] = round(sum(r["seconds"] for r in done), 1) if len(done) == len(STAGES) else None
    entry["pipeline_wall_seconds"] = (round(sum(r["wall_seconds"] for r in done), 1)
                                      if len(done) == len(STAGES) else None)
    entry["pipeline_cpu_seconds"] = (round(sum(r["cpu_seconds"] for r in done), 1)
                                     if len(done) == len(STAGES) else None)
    entry["pipeline_peak_memory_mb"] = max((r["peak_memory_mb"] for r in done), default=None)
    return entry


def assess_targets(results: dict) -> dict:
    sizes = results["sizes"]
    out = {}
    big = sizes.get(str(1_000_000))
    if big is None or big.get("pipeline_seconds") is None:
        out["pipeline_1m_under_10_min_and_8_gib"] = {
            "met": None, "reason": "1,000,000 customers not measured in this run" if big is None
            else "a stage failed at 1,000,000: " + "; ".join(
                f"{k}: {v.get('error')}" for k, v in big["stages"].items() if v.get("error"))}
    else:
        t, m = big["pipeline_wall_seconds"], big["pipeline_peak_memory_mb"]
        why = []
        if t >= TARGET_TOTAL_S:
            parts = []
            for name, rec in sorted(big["stages"].items(), key=lambda kv: -kv[1]["wall_seconds"])[:3]:
                top = (rec.get("result") or {}).get("slowest_sql") or []
                where = f"; its slowest statement {top[0]['seconds']:.0f} s: {top[0]['sql'][:70]}…" if top else ""
                parts.append(f"{name} {rec['wall_seconds']:.0f} s{where}")
            why.append(f"{t:.0f} s ≥ {TARGET_TOTAL_S} s — largest stages: " + " | ".join(parts)
                       + " (operator-level causes and what would meet it: bench/README.md, "
                       "'Where the time goes at 1,000,000 customers')")
        if m >= TARGET_PEAK_MB:
            why.append(f"peak {m:.0f} MB ≥ {TARGET_PEAK_MB} MB")
        out["pipeline_1m_under_10_min_and_8_gib"] = {"met": not why, "seconds": t, "peak_memory_mb": m,
                                                     "reason": "; ".join(why) or None}
    steep = []
    for stage, exps in results["scaling"].items():
        for pair, e in exps.items():
            if e is not None and e > 1.1:
                steep.append(f"{stage} {pair}: {e}")
    measured = any(e is not None for exps in results["scaling"].values() for e in exps.values())
    out["cost_at_most_linear"] = {"met": (not steep) if measured else None, "tolerance": 1.1,
                                  "reason": ("exponent > 1.1: " + "; ".join(steep)) if steep
                                  else (None if measured else "fewer than two sizes measured")}
    mid = sizes.get(str(100_000))
    if mid is None:
        out["5x_faster_than_pandas_at_100k"] = {"met": None, "reason": "100,000 customers not measured"}
    else:
        ratios = {s: mid["stages"][s].get("ratio", mid["stages"][s].get("ratio_at_least")) for s in HEAVY}
        low = [f"{s}: {r}×" for s, r in ratios.items() if r is not None and r < TARGET_RATIO]
        missing = [s + (f" ({mid['stages'][s]['pandas_error']})" if mid["stages"][s].get("pandas_error") else "")
                   for s, r in ratios.items() if r is None]
        out["5x_faster_than_pandas_at_100k"] = {
            "met": (not low) if not missing else (False if low else None), "ratios": ratios,
            "reason": "; ".join(([f"below {TARGET_RATIO:g}×: " + ", ".join(low)] if low else [])
                                + ([f"not measured: {', '.join(missing)}"] if missing else [])) or None}
    return out


def table(results: dict) -> str:
    """The results as a markdown table (one row per stage and size)."""
    lines = ["| customers | stage | seconds | peak MB | cpu s | pandas s | pandas peak MB | ratio | exponent |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    sizes = sorted(results["sizes"], key=int)

    def f(v, fmt="{:,.1f}"):
        return "" if v is None else fmt.format(v)

    for n in sizes:
        e = results["sizes"][n]
        for stage in STAGES:
            r = e["stages"].get(stage, {})
            prev = sizes[sizes.index(n) - 1] if sizes.index(n) else None
            exp = results["scaling"].get(stage, {}).get(f"{prev}->{n}") if prev else None
            ratio = r.get("ratio")
            if ratio is None and r.get("ratio_at_least"):
                ratio_txt = f"≥{r['ratio_at_least']}"
            else:
                ratio_txt = f(ratio, "{:.1f}×")
            lines.append(f"| {int(n):,} | {stage} | {f(r.get('seconds'))} | {f(r.get('peak_memory_mb'), '{:,.0f}')} | "
                         f"{f(r.get('cpu_seconds'))} | {f(r.get('pandas_seconds'))} | "
                         f"{f(r.get('pandas_peak_memory_mb'), '{:,.0f}')} | {ratio_txt} | {f(exp, '{:.2f}')} |")
        fl = e.get("floor", {})
        lines.append(f"| {int(n):,} | floor: DuckDB scan of transactions.parquet | {f(fl.get('seconds'))} | "
                     f"{f(fl.get('peak_memory_mb'), '{:,.0f}')} | {f(fl.get('cpu_seconds'))} |  |  |  |  |")
        lines.append(f"| {int(n):,} | **pipeline (sum of stages)** | {f(e.get('pipeline_seconds'))} | "
                     f"{f(e.get('pipeline_peak_memory_mb'), '{:,.0f}')} |  |  |  |  |  |")
    return "\n".join(lines)


def run_bench(sizes: list[int], data: Path, out: Path, *, pandas_sizes=PANDAS_SIZES, log=print) -> int:
    started = time.perf_counter()
    results = {"machine": machine(),
               "duckdb_settings": {"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": DUCKDB_THREADS},
               "parameters": {"seed": SEED, "months": MONTHS, "end_month": END_MONTH, "as_of": AS_OF,
                              "chunk_size": CHUNK_SIZE,
                              "txn_per_active_month": {str(n): txn_for_size(n) for n in sizes},
                              "pandas_sizes": [n for n in sizes if n in pandas_sizes],
                              "pandas_timeout_seconds": PANDAS_TIMEOUT_S},
               "definitions": {
                   "seconds": "work time of the stage inside its own child process (imports excluded)",
                   "wall_seconds": "the child process's whole life, interpreter start included",
                   "cpu_seconds": "user + system CPU of the child (robust to other load on the machine)",
                   "peak_memory_mb": "peak resident set size of the stage's child process (wait4 ru_maxrss)",
                   "ratio": "pandas_seconds / seconds at the same size, measured in the same run",
                   "cpu_ratio": "pandas_cpu_seconds / cpu_seconds (both whole child processes)",
                   "exponent": "log(t2/t1) / log(n2/n1) between consecutive sizes (seconds)",
                   "pipeline": "sum over the six stages; peak = the largest stage peak (stages run one after another)"},
               "load_avg_at_start": _load(), "sizes": {}}
    log(f"bench: sizes {', '.join(f'{n:,}' for n in sizes)}; DuckDB memory_limit={DUCKDB_MEMORY_LIMIT} "
        f"threads={DUCKDB_THREADS}")
    for n in sizes:
        results["sizes"][str(n)] = run_size(n, data, with_pandas=n in pandas_sizes, log=log)
        _finish(results, sizes, out, started)   # a partial file survives an interrupted long run
    _finish(results, sizes, out, started)
    log("")
    log(table(results))
    log("")
    for name, t in results["targets"].items():
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        log(f"target {name}: {verdict}" + (f" — {t['reason']}" if t.get("reason") else ""))
    log(f"wrote {out}")
    return 0


def _finish(results: dict, sizes: list[int], out: Path, started: float) -> None:
    pending = [n for n in sizes if str(n) not in results["sizes"]]
    results["pending_sizes"] = pending
    ordered = sorted(results["sizes"], key=int)
    results["scaling"] = {}
    for stage in (*STAGES, "floor"):
        exps = {}
        for a, b in zip(ordered, ordered[1:]):
            ra = results["sizes"][a]["floor"] if stage == "floor" else results["sizes"][a]["stages"][stage]
            rb = results["sizes"][b]["floor"] if stage == "floor" else results["sizes"][b]["stages"][stage]
            exps[f"{a}->{b}"] = exponent(int(a), ra.get("seconds"), int(b), rb.get("seconds"))
        results["scaling"][stage] = exps
    results["targets"] = assess_targets(results)
    results["load_avg_at_end"] = _load()
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)


def _child_main(args) -> None:
    if args.child in STAGES:
        # Every statement is timed (negligible overhead), so results.json says where a stage's
        # time goes without a separate --profile run.
        prof = profile_stage(args.child, Path(args.root), args.customers, top=3)
        res = {"seconds": prof["seconds"],
               "result": {**prof["result"], "sql_seconds": prof["sql_seconds"],
                          "python_seconds": prof["python_seconds"], "slowest_sql": prof["slowest"]}}
    else:
        res = run_stage(args.child, Path(args.root), args.customers)
    Path(args.child_out).write_text(json.dumps(res, default=str))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results.json")
    ap.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES))
    ap.add_argument("--data", default="bench/data")
    ap.add_argument("--pandas-sizes", default=",".join(str(s) for s in PANDAS_SIZES),
                    help="sizes at which the pandas implementations run too (default 10000,100000)")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--profile", metavar="STAGE",
                    help="time every SQL statement of one stage on the first of --sizes (bank must exist)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--customers", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child_main(args)
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.profile:
        print(json.dumps(profile_stage(args.profile, Path(args.data) / str(sizes[0]), sizes[0]),
                         ensure_ascii=False, indent=1))
        return 0
    if args.generate_only:
        for n in sizes:
            fp = ensure_bank(Path(args.data) / str(n), n)
            print(n, json.dumps(fp))
        return 0
    pandas_sizes = [int(s.replace("_", "")) for s in args.pandas_sizes.split(",") if s.strip()]
    return run_bench(sizes, Path(args.data), Path(args.out), pandas_sizes=pandas_sizes)


if __name__ == "__main__":
    sys.exit(main())
