"""`playbook assess` on files that do not follow the template: detection, checks, IV, and no
traceback on any malformed file (DESIGN.md §7)."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import assess_files as AF
from analysis.errors import InputError


def playbook(*args):
    return subprocess.run([sys.executable, "-m", "analysis.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------ detection

def test_line_endings():
    assert AF.line_ending("a,b\r\n1,2\r\n") == "CRLF"
    assert AF.line_ending("a,b\r1,2\r") == "CR"
    assert AF.line_ending("a,b\n1,2\n") == "LF"
    assert AF.line_ending("a,b\n1,2\r\n") == "mixed"


def test_dialect_semicolon_quoted_header():
    assert AF.detect_dialect('"a";"b";"c"\r\n1;"x";3\r\n4;"y";6\r\n') == (";", '"', 0, 1)


def test_dialect_title_line_and_two_header_rows():
    text = "客户余额报表 2022-12\n\n客户号,余额\ncustomer_id,balance\nC1,10.5\nC2,20\nC3,7\n"
    assert AF.detect_dialect(text) == (",", None, 2, 2)


def test_dialect_no_header():
    assert AF.detect_dialect("1|2|3\n4|5|6\n7|8|9\n") == ("|", None, 0, 0)


def _assess_text(tmp_path, name, text, encoding="utf-8", newline="\n", **kw):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return AF.assess(path, today=dt.date(2023, 1, 31), **kw)


def test_cr_only_gbk_file_with_two_header_rows(tmp_path):
    text = "客户号,客户名称,开户日期\ncustomer_id,name,open_date\nC1,甲公司,20220105\nC2,乙公司,20220301\n"
    res = _assess_text(tmp_path, "extract.txt", text, encoding="gb18030", newline="\r")
    t = res.tables[0]
    assert (t.rows, t.encoding, t.line_ending, t.header_rows, t.delimiter) == \
        (2, "gb18030", "CR", 2, ",")
    assert t.columns == ["客户号 / customer_id", "客户名称 / name", "开户日期 / open_date"]
    checks = set(res.findings["check"])
    assert {"encoding_non_utf8", "date_text_format", "file_format_note"} <= checks


def test_generic_checks_find_each_planted_problem(tmp_path):
    rows = ["id,name,amount,opened,age,code"]
    for i in range(1, 201):
        rows.append(f"{i},公司{i},{100 + i},2022-01-{1 + i % 28:02d},{30 + i % 40},A{i}")
    rows[5] = "4,公司4,104,2022-01-05,34,A4"                 # duplicates row 4 exactly (id 4 twice)
    rows[10] = "10,公司10,?,2022-01-11,40,A10"               # placeholder
    rows[11] = "11,公司11,abc,2022-01-12,41,A11"             # not a number
    rows[12] = "12,,112,2022-01-13,42,Ａ12"                  # empty name, full-width
    rows[13] = "13,å¬å¸13,113,2030-01-14,43,A13"           # mojibake, future date
    rows[14] = "14,公司14,-5,2022-01-15,150,A14"             # rare negative, impossible age
    res = _assess_text(tmp_path, "planted.csv", "\n".join(rows) + "\n")
    f = res.findings.set_index(["check", "column"])["rows_affected"].to_dict()
    assert res.findings.query("check == 'duplicate_rows'")["rows_affected"].tolist() == [1]
    assert res.findings.query("check == 'duplicate_key'")[["column", "rows_affected"]].values.tolist() \
        == [["id", 1]]
    assert f[("placeholder_value", "amount")] == 1
    assert f[("mixed_types", "amount")] == 1
    assert f[("null_values", "name")] == 1
    assert f[("fullwidth_characters", "code")] == 1
    assert f[("mojibake", "name")] == 1
    assert f[("out_of_range", "opened")] == 1
    assert f[("out_of_range", "amount")] == 1
    assert f[("out_of_range", "age")] == 1
    types = res.profiles.set_index("column")["type"].to_dict()
    assert types == {"id": "integer", "name": "text", "amount": "integer", "opened": "date",
                     "age": "integer", "code": "text"}


def test_yymmdd_and_birth_number_sex_encoding(tmp_path):
    rows = ["client_id;birth_number;date"]
    for i in range(100):
        month = 1 + i % 12 + (50 if i % 2 else 0)
        rows.append(f'{i};"70{month:02d}{1 + i % 28:02d}";93{1 + i % 12:02d}01')
    res = _assess_text(tmp_path, "client.asc", "\n".join(rows) + "\n", newline="\r\n")
    types = res.profiles.set_index("column")["type"].to_dict()
    assert types["birth_number"] == "yymmdd_sex" and types["date"] == "yymmdd"
    sex = res.findings.query("check == 'encoded_sex_in_date'").iloc[0]
    assert (sex["column"], sex["rows_affected"], sex["rows_total"]) == ("birth_number", 50, 100)
    assert "6" not in sex["example"][:2] and sex["example"].startswith("**")  # masked
    assert set(res.findings.query("check == 'date_text_format'")["column"]) == {"birth_number", "date"}


def test_information_value_matches_hand_computation(tmp_path):
    rng = np.random.default_rng(7)
    n = 2000
    colour = rng.choice(["red", "green", "blue", "never"], size=n, p=[0.4, 0.4, 0.19, 0.01])
    y = np.where(colour == "red", rng.random(n) < 0.3, rng.random(n) < 0.1)
    y[colour == "never"] = False  # a category with zero events: 0.5 added
    frame = pd.DataFrame({"colour": colour, "score": rng.normal(size=n).round(3),
                          "target": np.where(y, "yes", "no")})
    path = tmp_path / "iv.csv"
    frame.to_csv(path, index=False)
    res = AF.assess(path, target="target", positive="yes")
    counts = pd.crosstab(frame["colour"], frame["target"]).astype(float)
    ev, ne = counts["yes"].replace(0, 0.5), counts["no"].replace(0, 0.5)
    ev_share, ne_share = ev / counts["yes"].sum(), ne / counts["no"].sum()
    hand = float(((ne_share - ev_share) * np.log(ne_share / ev_share)).sum())
    assert res.iv["colour"] == pytest.approx(hand, rel=1e-9)
    assert 0 <= res.iv["score"] < 0.1  # noise


def test_target_errors_name_the_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,y\n1,yes\n2,no\n", encoding="utf-8")
    with pytest.raises(InputError, match="target column 'nope'") as exc:
        AF.assess(path, target="nope", positive="yes")
    assert exc.value.column == "nope" and "a, y" in exc.value.fix
    with pytest.raises(InputError, match="no rows equal to 'maybe'"):
        AF.assess(path, target="y", positive="maybe")
    with pytest.raises(InputError, match="go together"):
        AF.assess(path, target="y")


def test_outputs_are_written_and_compact(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.csv").write_text("id,v\n" + "".join(f"{i},{i % 3}\n" for i in [*range(1, 40), 7]),
                               encoding="utf-8")
    (src / "b.csv").write_bytes(b"\x00\x01garbage\x00")
    (src / "notes.md").write_text("ignored", encoding="utf-8")
    out = tmp_path / "out"
    res = AF.run_assess(src, out)
    doc = json.loads((out / "assessment.json").read_text(encoding="utf-8"))
    assert [(t["name"], t["rows"], t["columns"]) for t in doc["tables"]] == [("a", 40, 2)]
    checks = {f["check"]: f for f in doc["findings"]}
    assert checks["unreadable_file"]["severity"] == "blocker" and "b.csv" in checks["unreadable_file"]["fix_en"]
    assert checks["duplicate_key"]["rows_affected"] == 1
    html = (out / "assessment.html").read_text(encoding="utf-8")
    assert "<script" not in html and "Findings" in html and len(html) < 50_000
    assert (out / "findings.xlsx").stat().st_size > 0 and len(res.findings) == len(doc["findings"])


# ------------------------------------------------------------------ malformed files: exit 2 or 0, never a traceback

def _malformed(root: Path) -> dict[str, tuple[Path, int]]:
    root.mkdir(exist_ok=True)
    cases: dict[str, tuple[Path, int]] = {}

    def put(name, data: bytes, rc):
        p = root / name
        p.write_bytes(data)
        cases[name] = (p, rc)

    put("empty.csv", b"", 2)
    put("garbage.csv", bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)), 2)
    put("blank.csv", b"  \n\n \n", 2)
    put("truncated_quote.csv", b'a,b\n1,"abc\n2,x\n', 0)
    put("ragged.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n", 0)
    put("huge_line.csv", b"a,b\n" + b"x" * (10 * 1024 * 1024) + b",1\n1,2\n", 0)
    put("one_huge_line.csv", b"y" * (3 * 1024 * 1024), 2)
    put("csv_named.parquet", b"id,name\n1,a\n2,b\n", 0)
    put("csv_named.xlsx", b"id,name\n1,a\n2,b\n", 0)
    put("broken.parquet", b"PAR1 not really", 2)
    put("broken.xlsx", b"PK\x03\x04 not a workbook", 2)
    put("header_only.csv", b"id,name\n", 0)
    put("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, 2)
    nothing = root / "nothing_readable"
    nothing.mkdir(exist_ok=True)
    (nothing / "readme.md").write_text("no tables here", encoding="utf-8")
    cases["nothing_readable"] = (nothing, 2)
    unreadable = root / "only_garbage"
    unreadable.mkdir(exist_ok=True)
    (unreadable / "a.csv").write_bytes(b"\x00\x01\x02")
    (unreadable / "b.txt").write_bytes(b"")
    cases["only_garbage"] = (unreadable, 2)
    cases["does_not_exist"] = (root / "missing.csv", 2)
    return cases


MALFORMED = ["empty.csv", "garbage.csv", "blank.csv", "truncated_quote.csv", "ragged.csv",
             "huge_line.csv", "one_huge_line.csv", "csv_named.parquet", "csv_named.xlsx",
             "broken.parquet", "broken.xlsx", "header_only.csv", "old.xls", "nothing_readable",
             "only_garbage", "does_not_exist"]


@pytest.fixture(scope="module")
def malformed(tmp_path_factory):
    return _malformed(tmp_path_factory.mktemp("malformed"))


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_input_never_raises_past_the_cli(tmp_path, malformed, name):
    """In-process: an exception escaping the command would be a traceback from main()."""
    from typer.testing import CliRunner

    from analysis.cli import app

    path, rc = malformed[name]
    result = CliRunner().invoke(app, ["assess", str(path), "--out", str(tmp_path / "out")])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == rc, result.output
    if rc == 2:
        assert "Fix:" in result.output and "file" in result.output
    else:
        assert json.loads((tmp_path / "out" / "assessment.json").read_text(encoding="utf-8"))["tables"]


@pytest.mark.parametrize("name", ["garbage.csv", "nothing_readable"])
def test_malformed_input_real_process_exits_2_without_traceback(tmp_path, malformed, name):
    path, _ = malformed[name]
    proc = playbook("assess", path, "--out", tmp_path / "out")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2 and "Fix:" in proc.stderr


def test_malformed_rows_are_counted_with_their_line(malformed):
    cases = malformed
    ragged = AF.assess(cases["ragged.csv"][0])
    f = ragged.findings.query("check == 'rejected_rows'").iloc[0]
    assert (ragged.tables[0].rows, f["rows_affected"], f["rows_total"]) == (2, 2, 4)
    assert f["example"].startswith("line 3")
    trunc = AF.assess(cases["truncated_quote.csv"][0])
    assert "unterminated quote" in trunc.findings.query("check == 'rejected_rows'").iloc[0]["fix_en"]
    named = AF.assess(cases["csv_named.xlsx"][0])
    assert named.tables[0].format == "csv" and named.tables[0].rows == 2
    assert "content is csv" in named.findings.query("check == 'file_format_note'").iloc[0]["example"]
