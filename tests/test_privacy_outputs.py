"""The privacy scanner over a complete demo's outputs: nothing unmasked anywhere, and planted
unmasked values are found.

One demo (1,500 customers, seed 3) is built once for the module. Its synthetic bank's own people
(sole-proprietor names registered as a person's name, legal representatives, RMs) are passed to
the scanner as known names and its account numbers as known values, so the scan looks for the
exact values that could leak, on top of the check-digit patterns (ID number, USCC) and mobiles.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.privacy import id_check_digit, scan_paths, uscc_check_char
from test_reproducible import shared_demo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("privacy_demo")]

CUSTOMERS, SEED = 1500, 3


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return shared_demo(tmp_path_factory, "privacy", CUSTOMERS, SEED)


def read_inbox_table(inbox: Path, table: str):
    """One delivered file as strings, whatever its format and encoding."""
    import pandas as pd

    from analysis.readers import guess_encoding

    (path,) = [p for p in inbox.iterdir() if p.stem == table]
    if path.suffix == ".parquet":
        return pd.read_parquet(path).astype("string")
    if path.suffix == ".xlsx":
        return pd.read_excel(path, dtype=str)
    return pd.read_csv(path, dtype=str, encoding=guess_encoding(path)[0], keep_default_na=False)


@pytest.fixture(scope="module")
def bank_identities(demo) -> dict:
    """The synthetic bank's full names and account numbers, read from its inbox files."""
    inbox = demo / "inbox"
    customers = read_inbox_table(inbox, "customers")
    rms = read_inbox_table(inbox, "relationship_managers")
    accounts = read_inbox_table(inbox, "accounts")
    sole = customers.loc[customers["customer_type"] == "个体工商户", "customer_name"]
    # a sole proprietor registered without a trade name carries the operator's full name
    person_like = sole[sole.str.fullmatch(r"[\u4e00-\u9fff]{2,4}", na=False)]
    names = {n for n in [*person_like, *customers["legal_rep_name"], *rms["rm_name"]] if isinstance(n, str) and n}
    return {"names": names, "accounts": sorted(a for a in accounts["account_id"] if a)}


def output_files(root: Path) -> list[Path]:
    """Every rendered report, executed notebook, run log / json and deliverable workbook."""
    runs = root / "runs"
    files = [*sorted((root / "reports").glob("*.html")), *sorted((root / "reports").glob("*.pdf")),
             *sorted(runs.glob("*/notebooks/*.ipynb")),
             *sorted(p for p in runs.rglob("*") if p.is_file() and p.suffix in (".json", ".log", ".txt")),
             *sorted((root / "deliverables").glob("*.xlsx"))]
    return [p for p in files if "latest" not in p.relative_to(root).parts]  # runs/latest repeats a run


def test_demo_outputs_hold_no_unmasked_personal_data(demo, bank_identities):
    files = output_files(demo)
    kinds = {p.suffix for p in files}
    assert {".html", ".pdf", ".ipynb", ".json", ".xlsx"} <= kinds, kinds
    assert len([p for p in files if p.suffix == ".ipynb"]) >= 6
    # a default demo writes only the masked RM task lists
    assert (demo / "deliverables" / "rm_task_lists.xlsx").exists()
    assert not list((demo / "deliverables").glob("*internal*"))
    assert len(bank_identities["names"]) > 1000 and len(bank_identities["accounts"]) > 1000
    findings = scan_paths(files, known_names=bank_identities["names"],
                          known_values={"account": bank_identities["accounts"]})
    assert findings == [], "\n".join(f"{f.path.relative_to(demo)} {f.kind} {f.location}: {f.excerpt}"
                                     for f in findings[:20])


def _valid_id_number() -> str:
    body = "33010619850315123"
    return body + id_check_digit(body)


def _valid_uscc() -> str:
    body = "91330106MA2B3C4D5"
    return body + uscc_check_char(body)


@pytest.fixture(scope="module")
def planted(demo, bank_identities, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Copies of an html report, an executed notebook and a deliverable workbook, each with one
    unmasked value of every kind planted into otherwise clean content."""
    name = sorted(bank_identities["names"])[0]
    account = bank_identities["accounts"][0]
    values = {"person_name": name, "id_number": _valid_id_number(), "uscc": _valid_uscc(),
              "mobile": "13912345678", "account": account}
    line = f"客户经理 {name}，证件 {values['id_number']}，信用代码 {values['uscc']}，手机 {values['mobile']}，账号 {account}"
    out = tmp_path_factory.mktemp("planted")

    html = out / "report.html"
    text = (demo / "reports" / "03_value_tiers.html").read_text(encoding="utf-8")
    html.write_text(text.replace("</body>", f"<p>{line}</p></body>", 1), encoding="utf-8")

    nb = json.loads((demo / "runs" / "latest" / "notebooks" / "04_opportunities.ipynb").read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and c.get("outputs"))
    cell["outputs"].append({"output_type": "display_data", "metadata": {},
                            "data": {"text/html": f"<table><tr><td>{line}</td></tr></table>"}})
    ipynb = out / "notebook.ipynb"
    ipynb.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")

    from openpyxl import load_workbook
    xlsx = out / "tasks.xlsx"
    shutil.copy(demo / "deliverables" / "rm_task_lists.xlsx", xlsx)
    wb = load_workbook(xlsx)
    ws = wb.worksheets[-1]
    row = ws.max_row + 1
    for col, value in enumerate(values.values(), start=1):
        ws.cell(row=row, column=col, value=value)
    wb.save(xlsx)
    return out, values


@pytest.mark.parametrize("suffix", [".html", ".ipynb", ".xlsx"])
def test_scanner_finds_each_planted_value(planted, bank_identities, suffix):
    out, values = planted
    (path,) = [p for p in out.iterdir() if p.suffix == suffix]
    findings = scan_paths(path, known_names=bank_identities["names"],
                          known_values={"account": bank_identities["accounts"]})
    found = {f.kind for f in findings}
    assert found == set(values), findings
    # the findings themselves never echo a raw value
    for f in findings:
        assert not any(v in f.excerpt for v in values.values()), f.excerpt


def test_each_planted_copy_was_clean_before_planting(demo, bank_identities):
    """The copies' originals are in the clean scan above; this pins which originals were used."""
    originals = [demo / "reports" / "03_value_tiers.html",
                 demo / "runs" / "latest" / "notebooks" / "04_opportunities.ipynb",
                 demo / "deliverables" / "rm_task_lists.xlsx"]
    assert scan_paths(originals, known_names=bank_identities["names"],
                      known_values={"account": bank_identities["accounts"]}) == []
