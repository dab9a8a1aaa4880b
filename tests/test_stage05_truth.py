"""Stage 05 on a synthetic bank: the pilot's planted effects against the generator's truth.json.

The bank is generated, ingested and scored as the stages do (customer_value from the stage-03
scoring, then pilot_frame). Tested: truth.json["pilot"] (intention-to-treat: loan conversion
and deposit change per assigned customer) lies inside the 95% intervals of evaluate_experiment
(difference in proportions; deposits with CUPED-style regression adjustment on the pre-period),
and truth.json["pilot_contacted_effect"] inside the 95% intervals of the instrumented
contacted-customer effect; the sample-ratio test does not reject; the by-tier and by-event
tables carry Benjamini–Hochberg adjusted p-values.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml

from analysis import pilot, tags, value
from analysis.ingest import ingest_inbox
from analysis.pilot_data import funnel, pilot_frame, rm_league
from analysis.synth.bank import generate_bank
from analysis.value_data import ValueAssumptions, score_customers

# same group as test_stage03_truth.py (see there)
pytestmark = pytest.mark.xdist_group("stage_truth")

SEED = 20221231
CATALOG = Path(__file__).resolve().parents[1] / "playbook" / "catalog"
WINDOW = dict(window_start="2022-10", window_end="2022-12", pre_start="2022-07", pre_end="2022-09")


@pytest.fixture(scope="module")
def pilot_bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage05")
    summary = generate_bank(root / "inbox", customers=4_000, seed=SEED, txn_per_active_month=2)
    ingest_inbox(root / "inbox", root / "warehouse.duckdb", root / "quarantine")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    tags.build_customer_month(con, "2022-12")
    doc = yaml.safe_load((CATALOG / "pricing.yaml").read_text(encoding="utf-8"))
    scheme = value.TierScheme.from_catalog(yaml.safe_load((CATALOG / "tiers.yaml").read_text(encoding="utf-8")))
    frame, _, _ = score_customers(con, "2022-12", 12, assumptions=ValueAssumptions(**doc["assumptions"]),
                                  ftp=value.FtpCurve(0.024, 0.030), scheme=scheme)
    con.register("scored", frame[["customer_id", "tier"]])
    con.execute("CREATE OR REPLACE TABLE customer_value AS SELECT * FROM scored")
    truth = json.loads(summary.truth_path.read_text(encoding="utf-8"))
    pf = pilot_frame(con, truth["pilot_design"]["pilot_id"], **WINDOW)
    yield con, truth, pf
    con.close()


def test_pilot_frame_matches_the_design(pilot_bank):
    _, truth, pf = pilot_bank
    m = truth["pilot_measured"]
    assert len(pf) == m["customers"]
    assert int(pf["assigned"].sum()) == m["treatment"]
    assert int(pf["contacted"].sum()) == m["contacted"]
    assert set(pf["tier"]) - {"unknown"}  # tiers came from the stage-03 scoring
    assert (pf.loc[pf["assigned"] == 0, "contacted"] == 0).all()


def test_itt_effects_cover_the_planted_ones(pilot_bank):
    _, truth, pf = pilot_bank
    conv = pilot.evaluate_experiment(pf, "arm", "control", ["loan_conversion"])
    dep = pilot.evaluate_experiment(pf, "arm", "control", ["deposit_change"], covariates=["pre_deposit"])
    assert conv.summary["srm_p_value"] > 0.01
    rc, rd = conv.results.iloc[0], dep.results.iloc[0]
    assert rc["ci_low"] <= truth["pilot"]["loan_conversion"] <= rc["ci_high"], rc
    assert rd["ci_low"] <= truth["pilot"]["deposit_change"] <= rd["ci_high"], rd
    assert rd["method"] == "ols_adjusted"


def test_contacted_effects_cover_the_planted_ones(pilot_bank):
    _, truth, pf = pilot_bank
    for outcome in ("loan_conversion", "deposit_change"):
        est = pilot.contacted_effect(pf, "assigned", "contacted", outcome)
        planted = truth["pilot_contacted_effect"][outcome]
        assert est.ci_low <= planted <= est.ci_high, (outcome, est, planted)
        assert est.first_stage == pytest.approx(truth["pilot_measured"]["contact_rate_treatment"])


def test_heterogeneity_and_execution_tables(pilot_bank):
    _, _, pf = pilot_bank
    for seg in ("tier", "event_id"):
        table = pilot.effects_by_segment(pf.assign(event_id=pf["event_id"].fillna("none")), seg, "arm",
                                         "loan_conversion", control_value="control")
        ok = table["p_value"].notna()
        assert ok.any() and (table.loc[ok, "p_adjusted"] >= table.loc[ok, "p_value"] - 1e-12).all()
    league = rm_league(pf)
    assert league["listed"].sum() == int(pf["assigned"].sum())
    assert funnel(pf, "branch_id")["listed"].sum() == int(pf["assigned"].sum())
