"""The extract schema is the single source of truth: generated templates must not drift from it."""

import csv
from pathlib import Path

import openpyxl
import pytest

from analysis.schema import Schema, load_schema
from analysis.templates import DICTIONARY_HEADER, dictionary_rows, generate_templates

ROOT = Path(__file__).resolve().parents[1]


def test_schema_loads_and_references_resolve():
    s = load_schema()
    assert {"customers", "accounts", "balances_monthly", "transactions", "loans", "credit_lines", "products",
            "marketing_contacts", "relationship_managers", "branches", "grids"} <= set(s.tables)
    assert s.table("loans").column("contract_amount").unit == "万元"
    assert s.table("customers").primary_key == ["customer_id"]


def test_every_personal_column_has_a_class_and_mask():
    s = load_schema()
    masked = s.pii_columns()
    assert masked["customers"]["legal_rep_id_number"] == "id_number"
    assert masked["customers"]["mobile"] == "mobile"
    assert masked["accounts"]["account_id"] == "account"


def test_bad_reference_is_rejected():
    with pytest.raises(ValueError, match="references unknown"):
        Schema.model_validate({"version": 1, "tables": {"a": {
            "label_zh": "a", "label_en": "a", "required": True, "description": "d",
            "columns": [{"name": "x", "type": "string", "label_zh": "x", "label_en": "x", "references": "b.y"}]}}})


def test_committed_csv_templates_match_schema():
    s = load_schema()
    folder = ROOT / "data_templates" / "templates"
    assert sorted(p.stem for p in folder.glob("*.csv")) == sorted(s.tables)
    for t in s.tables.values():
        with open(folder / f"{t.name}.csv", encoding="utf-8-sig", newline="") as fh:
            assert next(csv.reader(fh)) == t.column_names, t.name


def test_committed_workbook_matches_schema(tmp_path):
    s = load_schema()
    wb = openpyxl.load_workbook(ROOT / "data_templates" / "data_request.xlsx")
    dd = [[c if c is not None else "" for c in row] for row in wb["数据字典"].iter_rows(values_only=True)]
    assert dd[0] == DICTIONARY_HEADER
    assert dd[1:] == dictionary_rows(s)
    for t in s.tables.values():
        assert [c.value for c in wb[t.name][1]] == t.column_names


def test_regeneration_is_identical_in_content(tmp_path):
    generate_templates(tmp_path)
    for p in (tmp_path / "templates").glob("*.csv"):
        assert p.read_bytes() == (ROOT / "data_templates" / "templates" / p.name).read_bytes()
