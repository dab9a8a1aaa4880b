"""Masking rules, salted hashes and the scanner for unmasked personal data (analysis.privacy).

Valid-looking 18-digit IDs, USCCs and card numbers are never written in this file: they are built
at run time from a body plus a check character computed by the independent code below.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import mplfonts
import nbformat
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from analysis import privacy as pv
from analysis.errors import InputError
from analysis.schema import load_schema

# ------------------------------------------------------------------ independent check digits

USCC_SET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def gb11643_check(body17: str) -> str:
    # Weights are 2^(17-i) mod 11 (the standard's definition), not the module's table.
    r = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(body17)) % 11
    return "10X98765432"[r]


def gb32100_check(body17: str) -> str:
    # Weights are 3^i mod 31 (GB 32100-2015 §5), not the module's table.
    r = sum(USCC_SET.index(c) * pow(3, i, 31) for i, c in enumerate(body17)) % 31
    return USCC_SET[(31 - r) % 31]


def luhn_complete(body: str) -> str:
    for d in "0123456789":
        digits = [int(c) for c in body + d][::-1]
        total = sum(digits[0::2]) + sum(sum(divmod(2 * x, 10)) for x in digits[1::2])
        if total % 10 == 0:
            return body + d
    raise AssertionError("unreachable")


ID18 = "33010619850615123" + gb11643_check("33010619850615123")
ID18_X = next(b + "X" for b in (f"3301061985061512{i}" for i in range(10))
              if gb11643_check(b) == "X")
ID15 = "330106" + "850615" + "123"
USCC = "91330106MA2B3C4D5" + gb32100_check("91330106MA2B3C4D5")
CARD = luhn_complete("622202123456789013")
MOBILE = "13812345678"
MOBILE2 = "13912345678"
NAME = "张三丰"
NAME2 = "欧阳娜娜"
CORP_ACCOUNT = "330016162350590" + "01234"  # 对公账号: no check digit, found only as a known value
KNOWN = {NAME, NAME2}
RAW_VALUES = [ID18, ID18_X, ID15, USCC, CARD, MOBILE, MOBILE2, NAME, NAME2, CORP_ACCOUNT]
FONT_DIR = Path(mplfonts.__file__).parent / "fonts"
NO_PDF_EXTRACTOR = "no pdf text extractor: neither pypdf nor pdftotext (poppler-utils) is installed"


def test_independent_check_digits_agree_with_worked_examples():
    # GB 11643-1999's own worked example: body 11010519491231002 → X.
    assert gb11643_check("11010519491231002") == "X"
    assert pv.id_check_digit("11010519491231002") == "X"
    # Wikipedia's Luhn example 7992739871 → 3.
    assert luhn_complete("7992739871") == "79927398713"
    assert pv.luhn_valid("79927398713") and not pv.luhn_valid("79927398710")
    for body in ("33010619850615123", "44030419991231001", "62010120000229456"):
        assert pv.id_check_digit(body) == gb11643_check(body)
    for body in ("91330106MA2B3C4D5", "92440300L12345678", "12100000400010398"):
        assert pv.uscc_check_char(body) == gb32100_check(body)
    assert pv.is_valid_id_number(ID18) and pv.is_valid_id_number(ID18_X.lower())
    assert pv.is_valid_uscc(USCC) and pv.luhn_valid(CARD) and len(CARD) == 19


# --------------------------------------------------------------------------- masking


def test_mask_mobile_exact():
    assert pv.mask_mobile("13812345678") == "138****5678"
    assert pv.mask_mobile("+86 138-1234-5678") == "138****5678"
    assert pv.mask_mobile("8613812345678") == "138****5678"
    assert pv.mask_mobile(13812345678) == "138****5678"
    assert pv.mask_mobile(13812345678.0) == "138****5678"  # an int column read with NaN
    assert pv.mask_mobile("１３８１２３４５６７８") == "138****5678"  # full-width digits
    assert pv.mask_mobile("0571-88886666") == "057*****6666"
    assert pv.mask_mobile("88886666") == "******66"
    assert pv.mask_mobile("12345") == "*****"


def test_mask_id_number_exact():
    # a made-up ID-shaped string (…1234); the GB 11643 worked examples elsewhere are public
    assert pv.mask_id_number("110101199003071234") == "110101********1234"
    assert pv.mask_id_number(ID18_X.lower()) == ID18_X[:6] + "********" + ID18_X[-4:]
    assert pv.mask_id_number(ID18_X.lower()).endswith("X")
    assert pv.mask_id_number(ID15) == "330106******123"
    assert pv.mask_id_number("E12345678") == "E1*****78"
    assert pv.mask_id_number("1234567") == "*******"


def test_mask_person_name_exact():
    assert pv.mask_person_name("张三丰") == "张**"
    assert pv.mask_person_name("张三") == "张*"
    assert pv.mask_person_name("欧阳娜娜") == "欧阳**"
    assert pv.mask_person_name("司马光") == "司马*"
    assert pv.mask_person_name("诸葛亮") == "诸葛*"
    assert pv.mask_person_name("上官婉儿") == "上官**"
    assert pv.mask_person_name("欧阳") == "欧*"  # 2 characters: a one-character surname
    assert pv.mask_person_name("张") == "*"
    assert pv.mask_person_name(" 张 三 ") == "张*"
    assert pv.mask_person_name("买买提·艾力") == "买**·**"
    assert pv.mask_person_name("Zhang San") == "Z**** ***"


def test_mask_uscc_and_account_exact():
    assert pv.mask_uscc(USCC) == "91330106**********"
    assert pv.mask_uscc(USCC.lower()) == "91330106**********"
    assert pv.mask_uscc("330106009912345") == "330106*********"  # old 15-digit 注册号
    assert pv.mask_uscc("12345678-9") == "*********"  # 组织机构代码
    assert pv.mask_account("6222021234567890123") == "****0123"
    assert pv.mask_account("6222 0212 3456 7890 123") == "****0123"
    assert pv.mask_account(CORP_ACCOUNT) == "****1234"
    assert pv.mask_account("1234567") == "****"


def test_mask_org_name_exact():
    assert pv.mask_org_name("杭州顺发贸易有限公司") == "杭州******公司"
    assert pv.mask_org_name("西湖区王小明小吃店") == "西湖*****吃店"
    assert pv.mask_org_name("张记五金店") == "张***店"
    assert pv.mask_org_name("上城张三丰店") == "上****店"
    assert pv.mask_org_name("张三丰") == "张**"  # 个体工商户 registered under the operator's name
    assert pv.mask_org_name("欧阳娜娜") == "欧阳**"
    assert pv.mask_org_name("张三丰（个体工商户）") == "张**(个体工商户)"
    assert pv.mask_org_name("个体户张三丰") == "个体户张**"


def test_missing_values_pass_through_and_series_are_not_mutated():
    for fn in (pv.mask_mobile, pv.mask_id_number, pv.mask_person_name, pv.mask_uscc,
               pv.mask_account, pv.mask_org_name):
        assert fn(None) is None
        assert np.isnan(fn(np.nan))
        assert fn(pd.NA) is pd.NA
    s = pd.Series([MOBILE, None, np.nan, "13912345678"], index=[10, 11, 12, 13], name="mobile")
    before = s.copy()
    out = pv.mask_mobile(s)
    pd.testing.assert_series_equal(s, before)
    assert out.name == "mobile" and list(out.index) == [10, 11, 12, 13]
    assert out.iloc[0] == "138****5678" and out.iloc[3] == "139****5678"
    assert out.isna().tolist() == [False, True, True, False]
    numeric = pd.Series([13812345678, None])  # float64 after the None
    assert pv.mask_mobile(numeric).tolist()[0] == "138****5678"


def test_mask_value_dispatch_and_unknown_kind():
    assert pv.mask_value("张三丰", "person_name") == "张**"
    assert pv.mask_value(ID18, "id_number") == ID18[:6] + "********" + ID18[-4:]
    assert pv.mask_value(pd.Series(["6222021234567890123"]), "account").tolist() == ["****0123"]
    with pytest.raises(InputError, match="unknown personal-data kind 'phone'"):
        pv.mask_value("1", "phone")


def test_mask_frame_uses_the_schema_mask_kinds():
    df = pd.DataFrame({
        "customer_id": ["C001", "C002"],
        "customer_name": ["杭州顺发贸易有限公司", "张记五金店"],
        "uscc": [USCC, None],
        "legal_rep_name": ["欧阳娜娜", "张三丰"],
        "legal_rep_id_number": [ID18, ID15],
        "mobile": [MOBILE, np.nan],
        "industry_code": ["F", "H"],
    })
    before = df.copy()
    out = pv.mask_frame(df, load_schema().table("customers"))
    pd.testing.assert_frame_equal(df, before)  # input untouched
    assert list(out.columns) == list(df.columns)
    assert out["customer_id"].tolist() == ["C001", "C002"]
    assert out["industry_code"].tolist() == ["F", "H"]
    assert out["customer_name"].tolist() == ["杭州******公司", "张***店"]
    assert out["uscc"].iloc[0] == "91330106**********" and pd.isna(out["uscc"].iloc[1])
    assert out["legal_rep_name"].tolist() == ["欧阳**", "张**"]
    assert out["legal_rep_id_number"].tolist() == ["330106********" + ID18[-4:], "330106******123"]
    assert out["mobile"].iloc[0] == "138****5678" and pd.isna(out["mobile"].iloc[1])
    by_name = pv.mask_frame(df, "customers")
    pd.testing.assert_frame_equal(by_name, out)
    by_mapping = pv.mask_frame(df, {"mobile": "mobile", "not_there": "account"})
    assert by_mapping["legal_rep_name"].tolist() == ["欧阳娜娜", "张三丰"]
    assert by_mapping["mobile"].iloc[0] == "138****5678"
    with pytest.raises(InputError):
        pv.mask_frame(df, {"mobile": "telephone"})
    with pytest.raises(InputError):
        pv.mask_frame(df, "no_such_table")


def test_every_schema_mask_kind_is_known():
    kinds = {k for cols in load_schema().pii_columns().values() for k in cols.values()}
    assert kinds and kinds <= set(pv.MASK_KINDS)


def test_salted_hash():
    salt = "engagement-salt-01"
    expected = hashlib.sha256((salt + MOBILE).encode("utf-8")).hexdigest()[:16]
    assert pv.salted_hash(MOBILE, salt) == expected
    assert len(expected) == 16 and int(expected, 16) >= 0
    assert pv.salted_hash(ID18_X.lower(), salt) == pv.salted_hash(ID18_X, salt)
    assert pv.salted_hash(" 13812345678 ", salt) == expected
    assert pv.salted_hash(MOBILE, salt + "x") != expected
    out = pv.salted_hash(pd.Series([MOBILE, None]), salt)
    assert out.iloc[0] == expected and pd.isna(out.iloc[1])
    with pytest.raises(InputError, match="salt"):
        pv.salted_hash(MOBILE, "short")


# --------------------------------------------------------------------------- scan_text


def test_scan_text_finds_each_kind_with_masked_excerpts():
    text = (f"客户{NAME}，电话{MOBILE}；身份证 {ID18}\n"
            f"代码:{USCC} 卡号 {CARD} 旧证 {ID15} 又 {ID18_X.lower()}\n"
            f"账号 {CORP_ACCOUNT} 对接人 {NAME2}")
    found = pv.scan_text(text, known_names=KNOWN, known_values={"account": [CORP_ACCOUNT]})
    assert [(f.location, f.kind) for f in found] == [
        ("line 1", "person_name"), ("line 1", "mobile"), ("line 1", "id_number"),
        ("line 2", "uscc"), ("line 2", "account"), ("line 2", "id_number"), ("line 2", "id_number"),
        ("line 3", "account"), ("line 3", "person_name"),
    ]
    assert found[1].excerpt == "客户张**,电话138****5678;身份证 330106*…"
    for f in found:
        assert f.path is None
        for raw in RAW_VALUES:
            assert raw not in str(f) and raw.lower() not in str(f)


def test_scan_text_masked_values_are_clean():
    masked = (f"客户{pv.mask_person_name(NAME)} 电话{pv.mask_mobile(MOBILE)} "
              f"证件{pv.mask_id_number(ID18)} "
              f"{pv.mask_uscc(USCC)} {pv.mask_account(CARD)} {pv.mask_id_number(ID15)} "
              f"{pv.mask_person_name(NAME2)} {pv.mask_account(CORP_ACCOUNT)} "
              f"{pv.salted_hash(ID18, 'some-secret-salt')}")
    assert pv.scan_text(masked, known_names=KNOWN, known_values={"account": [CORP_ACCOUNT]}) == []


def test_scan_text_no_false_positives():
    body = "33010619850615123"
    wrong_id_check = next(d for d in "0123456789" if d != gb11643_check(body))
    # ID-shaped, wrong GB 11643 check, but Luhn-valid and starting 3: still not a card.
    wrong_but_luhn = luhn_complete(body)
    assert gb11643_check(body) != wrong_but_luhn[-1]
    random18 = "123456789012345670"
    assert gb11643_check(random18[:17]) != random18[-1]
    assert gb32100_check(random18[:17]) != random18[-1]
    decoys = [
        "金额 123456789012.50 元", "合计 13812345678.50", "比例 0.13812345678", f"-{CARD}.5",
        "日期 2024-01-31 20240131 2024/1/31", "时间戳 20240131123456789 流水 2024013100001234",
        "epoch us 1706659200000000 ns 1706659200000000000 ms 1706659200000",
        f"无效证件 {body}{wrong_id_check} 与 {wrong_but_luhn}", f"随机 {random18}",
        "金额 13,812,345,678 元", "hash a13812345678b 3f13812345678e",
        pv.salted_hash(MOBILE, "salt-salt"),
        "customer C13812345678 S0000000000000000 0000000000000000",
        "张** 欧阳** 张*丰", "客户数 1381234 比例 13.8%",
        "合计 15234567890 元 ¥15234567890 RMB 15234567890 贷款 15234567890万", "余额 15000000000",
        "流水号 202401310000123456 202212310099887766",
    ]
    for text in decoys:
        assert pv.scan_text(text, known_names=KNOWN) == [], text


def test_scan_text_names_longest_match_bounds_and_kinds_filter():
    found = pv.scan_text("张三丰和张三", known_names={"张三", "张三丰"})
    assert [f.excerpt for f in found] == ["张**和张*", "张**和张*"]
    assert pv.scan_text("XLi Na", known_names={"Li Na"}) == []
    assert [f.kind for f in pv.scan_text("by Li Na.", known_names={"Li Na"})] == ["person_name"]
    only_mobile = pv.scan_text(f"{MOBILE} {ID18} {NAME}", known_names=KNOWN, kinds={"mobile"})
    assert [f.kind for f in only_mobile] == ["mobile"]
    with pytest.raises(InputError):
        pv.scan_text("x", kinds={"email"})
    # a float-typed phone column written as text keeps its '.0'
    assert [f.kind for f in pv.scan_text("13812345678.0,+8613912345678")] == ["mobile", "mobile"]


# --------------------------------------------------------------------------- scan_paths on files

PLANTED = Counter({"person_name": 2, "mobile": 2, "id_number": 2, "uscc": 1, "account": 1})
DECOYS = "合计 123456789012.50 元，日期 2024-01-31，流水 20240131123456789"


def values(masked: bool) -> dict[str, str]:
    raw = {"name": NAME, "name2": NAME2, "mobile": MOBILE, "mobile2": MOBILE2, "id": ID18,
           "id15": ID15, "uscc": USCC, "card": CARD}
    if not masked:
        return raw
    kinds = {"name": "person_name", "name2": "person_name", "mobile": "mobile", "mobile2": "mobile",
             "id": "id_number", "id15": "id_number", "uscc": "uscc", "card": "account"}
    return {k: pv.mask_value(v, kinds[k]) for k, v in raw.items()}


def lines(v: dict[str, str]) -> list[str]:
    return [f"客户 {v['name']} 电话 {v['mobile']}", f"身份证 {v['id']} 旧证 {v['id15']}",
            f"信用代码 {v['uscc']} 卡号 {v['card']}", f"联系人 {v['name2']} 手机 {v['mobile2']}",
            DECOYS]


def write_html(path: Path, v: dict[str, str]) -> None:
    name_entities = "".join(f"&#{ord(c)};" for c in v["name"])  # entity-encoded name
    path.write_text(
        "<html><body><h1>商机名单</h1>\n"
        f"<table><tr><th>姓名</th><th>手机</th></tr>\n<tr><td>{name_entities}</td><td>{v['mobile']}</td></tr>\n"
        f"<tr><td>{v['name2']}</td><td>{v['mobile2']}</td></tr></table>\n"
        f"<p>证件 {v['id']}<br>旧证 {v['id15']}</p>\n<p>{v['uscc']} / {v['card']}</p>\n"
        f"<img src=\"data:image/png;base64,{base64.b64encode(bytes(range(256)) * 8).decode()}\">\n"
        f"<p>{DECOYS}</p></body></html>\n", encoding="utf-8")


def write_ipynb(path: Path, v: dict[str, str]) -> None:
    png = base64.b64encode(np.random.default_rng(7).bytes(3000)).decode()
    code = new_code_cell(f"phone = '{v['mobile']}'\nprint(phone)", outputs=[
        new_output("stream", name="stdout", text=f"证件 {v['id']}\n旧证 {v['id15']}\n"),
        new_output("execute_result", execution_count=1, data={
            "text/plain": f"'{v['uscc']}'",
            "text/html": f"<table><tr><td>{v['name']}</td></tr></table>",
        }),
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
        new_output("error", ename="ValueError", evalue="bad card",
                   traceback=[f"\x1b[0;31mValueError\x1b[0m: card {v['card']}"]),
    ])
    md = new_markdown_cell(f"联系人 {v['name2']}，手机 {v['mobile2']}。{DECOYS}")
    nbformat.write(new_notebook(cells=[code, md]), path)


def write_xlsx(path: Path, v: dict[str, str]) -> None:
    df = pd.DataFrame({"姓名": [v["name"], v["name2"]],
                       # a numeric phone column, as Excel users keep them
                       "手机": [int(v["mobile"]) if v["mobile"].isdigit() else v["mobile"],
                              int(v["mobile2"]) if v["mobile2"].isdigit() else v["mobile2"]],
                       "证件": [v["id"], v["id15"]],
                       "金额": [123456789012.5, 2.0]})
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        df.to_excel(xw, sheet_name="客户", index=False)
        pd.DataFrame({"代码": [v["uscc"]], "卡号": [v["card"]], "备注": [DECOYS]}).to_excel(
            xw, sheet_name="企业", index=False)


def write_csv(path: Path, v: dict[str, str], encoding: str = "utf-8") -> None:
    pd.DataFrame({"姓名": [v["name"], v["name2"]], "手机": [v["mobile"], v["mobile2"]],
                  "证件": [v["id"], v["id15"]], "代码": [v["uscc"], ""], "卡号": [v["card"], ""],
                  "金额": ["123456789012.50", "20240131"]}).to_csv(path, index=False,
                                                                    encoding=encoding)


def write_pdf(path: Path, v: dict[str, str]) -> None:
    typst = pytest.importorskip("typst")
    src = path.with_suffix(".typ")
    body = "\n".join(f'#"{line}" \\' for line in lines(v))  # strings: '*' is markup in typst
    header = '#set text(font: "Noto Sans CJK SC", lang: "zh")\n= 名单\n'
    src.write_text(f"{header}{body}\n", encoding="utf-8")
    typst.compile(str(src), output=str(path), font_paths=[str(FONT_DIR)])
    src.unlink()


def write_json(path: Path, v: dict[str, str]) -> None:
    # ensure_ascii escapes the names as \\uXXXX; the scanner must read the decoded values.
    rows = [{"name": v["name"], "mobile": v["mobile"], "id": v["id"]},
            {"name": v["name2"], "mobile": v["mobile2"], "id": v["id15"]}]
    path.write_text(json.dumps({"rows": rows, "codes": {v["uscc"]: v["card"]}, "note": DECOYS}),
                    encoding="utf-8")


def write_text(suffix: str):
    def write(path: Path, v: dict[str, str]) -> None:
        path.write_text("\n".join(lines(v)) + "\n", encoding="utf-8")
    write.__name__ = f"write{suffix}"
    return write


def pdf_extractor_available() -> bool:
    try:
        import pypdf  # noqa: F401
        return True
    except ImportError:
        return shutil.which("pdftotext") is not None


WRITERS = {".html": write_html, ".ipynb": write_ipynb, ".xlsx": write_xlsx, ".csv": write_csv,
           ".pdf": write_pdf, ".json": write_json, ".md": write_text(".md"),
           ".log": write_text(".log"), ".typ": write_text(".typ")}


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_scan_paths_finds_planted_values_and_nothing_once_masked(tmp_path, suffix):
    if suffix == ".pdf" and not pdf_extractor_available():
        pytest.skip(NO_PDF_EXTRACTOR)
    raw, masked = tmp_path / f"raw{suffix}", tmp_path / f"masked{suffix}"
    WRITERS[suffix](raw, values(masked=False))
    WRITERS[suffix](masked, values(masked=True))
    found = pv.scan_paths([raw], known_names=KNOWN)
    assert Counter(f.kind for f in found) == PLANTED, [str(f) for f in found]
    assert all(f.path == raw for f in found)
    for f in found:
        for secret in RAW_VALUES:
            assert secret not in f.excerpt
    assert pv.scan_paths([masked], known_names=KNOWN) == []


def test_scan_locations_name_cells_pages_and_outputs(tmp_path):
    v = values(masked=False)
    write_xlsx(tmp_path / "a.xlsx", v)
    write_ipynb(tmp_path / "a.ipynb", v)
    found = pv.scan_paths(tmp_path, known_names=KNOWN)
    where = {(f.path.name, f.kind, f.location) for f in found}
    assert ("a.xlsx", "mobile", "客户!B2") in where
    assert ("a.xlsx", "id_number", "客户!C3") in where
    assert ("a.xlsx", "account", "企业!B2") in where
    assert ("a.ipynb", "mobile", "cell 1 source, line 1") in where
    assert ("a.ipynb", "id_number", "cell 1 output 1 (stdout), line 1") in where
    assert ("a.ipynb", "person_name", "cell 1 output 2 (text/html), line 1") in where
    assert ("a.ipynb", "uscc", "cell 1 output 2 (text/plain), line 1") in where
    assert ("a.ipynb", "account", "cell 1 output 4 (error), line 3") in where
    assert ("a.ipynb", "mobile", "cell 2 source, line 1") in where
    if pdf_extractor_available():
        write_pdf(tmp_path / "b.pdf", v)
        pages = {f.location for f in pv.scan_paths([tmp_path / "b.pdf"], known_names=KNOWN)}
        assert pages == {"page 1, line 2", "page 1, line 3", "page 1, line 4", "page 1, line 5"}


def test_gbk_csv_and_known_account_values(tmp_path):
    p = tmp_path / "gbk.csv"
    pd.DataFrame({"户名": [NAME], "账号": [CORP_ACCOUNT]}).to_csv(p, index=False, encoding="gbk")
    assert [f.kind for f in pv.scan_paths([p], known_names=KNOWN)] == ["person_name"]
    found = pv.scan_paths([p], known_names=KNOWN, known_values={"account": [CORP_ACCOUNT]})
    assert [(f.kind, f.excerpt, f.location) for f in found] == [
        ("person_name", "张**,****1234", "line 2"), ("account", "张**,****1234", "line 2")]


def test_pdf_without_an_extractor_is_reported_not_passed(tmp_path, monkeypatch):
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    monkeypatch.setitem(sys.modules, "pypdf", None)  # import pypdf → ImportError
    monkeypatch.setattr(pv.shutil, "which", lambda name: None)
    found = pv.scan_paths([pdf])
    assert [(f.kind, f.location) for f in found] == [("unscanned", "whole file")]
    assert "pypdf" in found[0].excerpt and "pdftotext" in found[0].excerpt


def test_directory_walk_and_unreadable_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "out.txt").write_text(f"tel {MOBILE}\n", encoding="utf-8")
    (tmp_path / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + MOBILE.encode())
    (tmp_path / "notes.cfg").write_text(f"tel={MOBILE2}\n", encoding="utf-8")
    walked = pv.scan_paths(tmp_path)
    assert [(f.path.name, f.kind) for f in walked] == [("out.txt", "mobile")]  # png/cfg not walked
    explicit = pv.scan_paths([tmp_path / "chart.png", tmp_path / "notes.cfg"])
    assert [(f.path.name, f.kind) for f in explicit] == [("chart.png", "unscanned"),
                                                         ("notes.cfg", "mobile")]
    with pytest.raises(InputError, match="does not exist"):
        pv.scan_paths([tmp_path / "missing.html"])


def test_pdf_with_no_text_is_reported_not_passed(tmp_path):
    if not pdf_extractor_available():
        pytest.skip(NO_PDF_EXTRACTOR)
    typst = pytest.importorskip("typst")
    src = tmp_path / "blank.typ"
    src.write_text("#rect(width: 2cm, height: 1cm, fill: gray)\n", encoding="utf-8")
    typst.compile(str(src), output=str(tmp_path / "blank.pdf"))
    found = pv.scan_paths([tmp_path / "blank.pdf"])
    assert [(f.kind, f.location) for f in found] == [("unscanned", "whole file")]
    assert "no extractable text" in found[0].excerpt
