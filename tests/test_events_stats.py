"""The customer-clustered lift interval equals statsmodels' Poisson GLM with cluster-robust errors."""

import numpy as np
import pandas as pd
import statsmodels.api as sm

from analysis.events import clustered_lift


def _panel(seed=3, customers=400, months=8):
    rng = np.random.default_rng(seed)
    cid = np.repeat(np.arange(customers), months)
    frailty = np.repeat(rng.gamma(2.0, 0.5, customers), months)  # customers differ: correlated months
    trig = rng.random(cid.size) < 0.2
    p = np.clip(0.03 * frailty * np.where(trig, 2.0, 1.0), 0, 1)
    hit = rng.random(cid.size) < p
    return pd.DataFrame({"customer_id": cid, "trig": trig.astype(int), "hit": hit.astype(int)})


def test_matches_poisson_glm_cluster_robust():
    df = _panel()
    g = df.groupby("customer_id")
    a = g.apply(lambda d: (d.trig * d.hit).sum(), include_groups=False)
    m = g["trig"].sum()
    b = g.apply(lambda d: ((1 - d.trig) * d.hit).sum(), include_groups=False)
    k = g.apply(lambda d: (1 - d.trig).sum(), include_groups=False)
    ours = clustered_lift(a, m, b, k)
    fit = sm.GLM(df["hit"], sm.add_constant(df["trig"]), family=sm.families.Poisson()).fit(
        cov_type="cluster", cov_kwds={"groups": df["customer_id"], "use_correction": False})
    se_sm = float(fit.bse["trig"])
    g_n = df["customer_id"].nunique()
    assert np.isclose(np.log(ours.lift), fit.params["trig"], atol=1e-10)
    # our variance carries the G/(G-1) small-sample factor; statsmodels' without correction does not
    assert np.isclose(ours.se_log, se_sm * np.sqrt(g_n / (g_n - 1)), rtol=1e-8)


def test_worked_example_by_hand():
    # two customers: (a, m, b, k) = (1, 2, 0, 2) and (0, 2, 1, 2) → p1 = 1/4, p0 = 1/4, lift = 1
    r = clustered_lift([1, 0], [2, 2], [0, 1], [2, 2])
    assert r.lift == 1.0
    # r1 = a - m/4 = (0.5, -0.5); r0 = b - k/4 = (-0.5, 0.5); A = B = 1
    # Σr1² = 0.5, Σr0² = 0.5, Σr1·r0 = -0.5 → 0.5 + 0.5 + 1.0 = 2.0; × G/(G-1) = 2 → var 4, se 2
    assert np.isclose(r.se_log, 2.0)


def test_no_hits_gives_no_interval():
    r = clustered_lift([0, 0], [3, 3], [1, 0], [5, 5])
    assert r.lift == 0.0 and np.isnan(r.ci_low) and np.isnan(r.p_value)


def test_no_comparison_hits_uses_haldane_anscombe_worked_example():
    # A = 4 hits in M = 10 triggered months; B = 0 in K = 20: cells +0.5 → p1 = 4.5/11, p0 = 0.5/21
    r = clustered_lift([4, 0], [6, 4], [0, 0], [10, 10])
    assert np.isclose(r.lift, (4.5 / 11) / (0.5 / 21))  # 17.1818…
    assert np.isclose(r.lift, 94.5 / 5.5)
    se = np.sqrt(1 / 4.5 - 1 / 11 + 1 / 0.5 - 1 / 21)
    assert np.isclose(r.se_log, se) and np.isclose(se, 1.4435, atol=1e-4)
    z = 1.959963984540054
    assert np.isclose(r.ci_low, r.lift * np.exp(-z * se)) and np.isclose(r.ci_high, r.lift * np.exp(z * se))
    assert np.isclose(r.p_value, 2 * (1 - __import__("scipy").stats.norm.cdf(np.log(r.lift) / se)))


def test_median_from_counts_equals_pandas_median_of_the_expanded_sample():
    from analysis.events import _median_from_counts

    rng = np.random.default_rng(0)
    for _ in range(200):
        counts = {v: int(rng.integers(0, 4)) for v in (1, 2, 3)}
        sample = pd.Series([v for v, c in counts.items() for _ in range(c)], dtype=float)
        expected = sample.median()
        got = _median_from_counts(counts)
        assert (np.isnan(expected) and np.isnan(got)) or got == expected, (counts, got, expected)


def test_backtest_in_customer_batches_equals_one_pass(tmp_path, monkeypatch):
    """The per-event sums are added over customer batches; batching must not change any number."""
    import duckdb

    from analysis import events as evmod
    from analysis.catalog import EventCatalog, EventDef

    rng = np.random.default_rng(7)
    con = duckdb.connect()
    months = pd.period_range("2022-01", "2022-12", freq="M").to_timestamp()
    n = 600
    grid = pd.DataFrame([(c, m) for c in range(n) for m in months], columns=["customer_id", "month"])
    grid["customer_id"] = "C" + grid["customer_id"].astype(str)
    grid["holds_p1"] = (rng.random(len(grid)) < 0.1).astype(int)
    trig = grid[["customer_id", "month"]].copy()
    trig["EV_A"] = rng.random(len(grid)) < 0.2
    trig["EV_B"] = rng.random(len(grid)) < 0.05
    starts = grid.sample(400, random_state=1)[["customer_id", "month"]].rename(columns={"month": "start_month"})
    starts["product_id"] = "P1"
    customers = pd.DataFrame({"customer_id": grid["customer_id"].unique()})
    for name, frame in (("customers", customers), ("customer_month", grid), ("event_triggers", trig),
                        ("product_starts", starts)):
        con.register("_f", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _f")
        con.unregister("_f")
    con.execute("UPDATE customer_month SET month = CAST(month AS DATE)")
    cat = EventCatalog(version=1, events=[
        EventDef(id=e, label_zh=e, label_en=e, category="cross_sell", trigger="true", target_products=["P1"],
                 script_zh="{name}", script_en="{name}") for e in ("EV_A", "EV_B")])
    one, m1 = evmod.backtest_events(con, cat, "2022-12", window=3, n_months=6, min_triggers=1)
    from analysis import tags as tagmod

    monkeypatch.setattr(tagmod, "BATCH_CUSTOMERS", 97)
    assert len(tagmod.customer_batches(tagmod.as_engine(con))) == 7
    many, m2 = evmod.backtest_events(con, cat, "2022-12", window=3, n_months=6, min_triggers=1)
    pd.testing.assert_frame_equal(one, many)
    pd.testing.assert_frame_equal(m1, m2)
    assert one["triggers"].sum() > 0 and one["hits"].sum() > 0
