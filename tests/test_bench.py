"""`make bench` smoke test: a tiny bank through every stage, and the shape of results.json.

Not a timed test: it checks that each stage ran in its own process and reported seconds and peak
memory, that the pandas ratio is filled where asked, and that targets carry a verdict and reason.
"""

from __future__ import annotations

import json

import pytest

from analysis import bench, bench_pandas

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench")]

SIZE = 300     # one tiny bank: the suite runs beside other work, and each stage is a process


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    out = root / "results.json"
    rc = bench.run_bench([SIZE], root / "data", out, pandas_sizes=(SIZE,), log=lambda *a: None)
    assert rc == 0
    return json.loads(out.read_text(encoding="utf-8")), root


def test_every_stage_at_every_size_has_seconds_and_peak_memory(results):
    res, _ = results
    assert list(res["sizes"]) == [str(SIZE)]
    assert res["pending_sizes"] == []
    for n in (SIZE,):
        entry = res["sizes"][str(n)]
        assert list(entry["stages"]) == list(bench.STAGES)
        for stage, rec in entry["stages"].items():
            assert "error" not in rec, (n, stage, rec.get("error"))
            assert rec["seconds"] > 0 and rec["peak_memory_mb"] > 50, (n, stage)
            assert rec["wall_seconds"] >= rec["seconds"]
        assert entry["floor"]["result"]["rows"] == entry["transactions"] > 0
        assert entry["pipeline_seconds"] == pytest.approx(
            sum(r["seconds"] for r in entry["stages"].values()), abs=0.11)
        assert entry["pipeline_peak_memory_mb"] == max(r["peak_memory_mb"] for r in entry["stages"].values())
        assert entry["stages"]["tag_table"]["result"]["rows"] == entry["stages"]["event_triggers"]["result"]["rows"]


def test_pandas_ratio_on_heavy_stages(results):
    res, _ = results
    stages = res["sizes"][str(SIZE)]["stages"]
    for stage in bench.HEAVY:
        assert "pandas_error" not in stages[stage], stages[stage].get("pandas_error")
        assert stages[stage]["pandas_seconds"] > 0 and stages[stage]["pandas_peak_memory_mb"] > 50
        assert stages[stage]["pandas_cpu_seconds"] > 0 and stages[stage]["cpu_ratio"] > 0
        assert stages[stage]["ratio"] == pytest.approx(stages[stage]["pandas_seconds"] / stages[stage]["seconds"],
                                                       abs=0.01)
    for stage in ("ingest", "assessment"):
        assert "pandas_seconds" not in stages[stage]


def test_machine_settings_scaling_and_targets(results):
    res, root = results
    m = res["machine"]
    assert m["cores"] >= 1 and m["python"].count(".") == 2 and m["duckdb"]
    assert res["duckdb_settings"] == {"memory_limit": bench.DUCKDB_MEMORY_LIMIT, "threads": bench.DUCKDB_THREADS}
    assert res["scaling"] == {stage: {} for stage in (*bench.STAGES, "floor")}   # one size: no exponent
    targets = res["targets"]
    assert set(targets) == {"pipeline_1m_under_10_min_and_8_gib", "cost_at_most_linear",
                            "5x_faster_than_pandas_at_100k"}
    # sizes not measured say so rather than pass
    assert targets["pipeline_1m_under_10_min_and_8_gib"]["met"] is None
    assert "not measured" in targets["pipeline_1m_under_10_min_and_8_gib"]["reason"]
    assert targets["5x_faster_than_pandas_at_100k"]["met"] is None
    assert targets["cost_at_most_linear"] == {"met": None, "tolerance": 1.1,
                                              "reason": "fewer than two sizes measured"}
    # the bank is fingerprinted and reused, never regenerated for the same parameters
    fp = json.loads((root / "data" / str(SIZE) / "fingerprint.json").read_text())
    assert fp["params"] == bench.bank_params(SIZE)
    assert bench.ensure_bank(root / "data" / str(SIZE), SIZE, log=lambda *a: None)["reused"] is True
    assert "| 300 | tag_table |" in bench.table(res)


def test_exponent_targets_and_trigger_translation():
    assert bench.exponent(10_000, 2.0, 100_000, 20.0) == 1.0
    assert bench.exponent(10_000, 2.0, 100_000, 200.0) == 2.0
    assert bench.exponent(10_000, None, 100_000, 2.0) is None
    assert bench_pandas._trigger_to_pandas("a >= 1.5 * b AND b >= 50000") == "(a >= 1.5 * b) & (b >= 50000)"
    assert bench_pandas._trigger_to_pandas("coalesce(x, 0) > 0") == "(x.fillna(0) > 0)"
    assert bench_pandas._trigger_to_pandas("p = 1 OR q = 1") == "(p == 1) | (q == 1)"
    assert bench.txn_for_size(100_000) == bench.TXN_PER_ACTIVE_MONTH
    assert bench.txn_for_size(1_000_000) == bench.TXN_PER_ACTIVE_MONTH_1M
    # targets judged on made-up results: a steep stage and a slow pandas ratio are named
    stage = {"seconds": 10.0, "peak_memory_mb": 100.0, "wall_seconds": 11.0, "ratio": 8.0}
    fake = {"sizes": {"10000": {"stages": {s: dict(stage) for s in bench.STAGES}},
                      "100000": {"stages": {s: dict(stage) for s in bench.STAGES}}},
            "scaling": {"tag_table": {"10000->100000": 1.4}, "ingest": {"10000->100000": 0.9}}}
    fake["sizes"]["100000"]["stages"]["event_backtest"]["ratio"] = 3.0
    t = bench.assess_targets(fake)
    assert t["cost_at_most_linear"]["met"] is False and "tag_table 10000->100000: 1.4" in t["cost_at_most_linear"]["reason"]
    assert t["5x_faster_than_pandas_at_100k"]["met"] is False
    assert t["5x_faster_than_pandas_at_100k"]["reason"] == "below 5×: event_backtest: 3.0×"
    assert t["pipeline_1m_under_10_min_and_8_gib"]["met"] is None


def test_pandas_triggers_equal_duckdb_event_triggers(results):
    """The pandas side does the same work: its triggers equal DuckDB's on the bench bank."""
    import duckdb

    from analysis.catalog import load_event_catalog

    _, root = results
    con = duckdb.connect(str(root / "data" / str(SIZE) / "warehouse.duckdb"), read_only=True)
    try:
        tags = con.execute("SELECT * FROM tag_table ORDER BY customer_id, month").df()
        ref = con.execute("SELECT * FROM event_triggers ORDER BY customer_id, month").df()
    finally:
        con.close()
    catalog = load_event_catalog()
    ours = bench_pandas._triggers(tags, catalog)
    assert len(ours) == len(ref) > 0
    for ev in catalog.events:
        assert (ours[ev.id].to_numpy() == ref[ev.id].to_numpy()).all(), ev.id


def test_pandas_tag_table_equals_duckdb_tag_table(results):
    """The pandas tag layer evaluates each catalogue tag's own expression: equal to DuckDB's tag_table."""
    import duckdb
    import numpy as np
    import pandas as pd

    _, root = results
    con = duckdb.connect(str(root / "data" / str(SIZE) / "warehouse.duckdb"), read_only=True)
    try:
        ref = con.execute("SELECT * FROM tag_table ORDER BY customer_id, month").df()
        ours = bench_pandas.tag_frame(con, bench.AS_OF)
    finally:
        con.close()
    assert set(ours.columns) == set(ref.columns)
    assert len(ours) == len(ref) > 0
    assert (ours["customer_id"].to_numpy() == ref["customer_id"].to_numpy()).all()
    assert (pd.to_datetime(ours["month"]).to_numpy() == pd.to_datetime(ref["month"]).to_numpy()).all()
    for tag in ref.columns.drop(["customer_id", "month"]):
        if pd.api.types.is_numeric_dtype(ref[tag]) or pd.api.types.is_bool_dtype(ref[tag]):
            np.testing.assert_allclose(np.asarray(ours[tag], dtype=float),
                                       ref[tag].to_numpy(dtype=float, na_value=np.nan),
                                       rtol=1e-9, equal_nan=True, err_msg=tag)
        else:   # strings / categories: equal, NULL ↔ None / NaN
            a, b = ours[tag].to_numpy(dtype=object), ref[tag].to_numpy(dtype=object)
            same = (a == b) | (pd.isna(a) & pd.isna(b))
            assert same.all(), (tag, [(x, y) for x, y in zip(a[~same][:3], b[~same][:3])])
