"""Report rendering: house number formats, display bundles, and html + pdf from an executed notebook."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis import render as render_module  # noqa: E402
from analysis.errors import InputError  # noqa: E402
from analysis.render import (  # noqa: E402
    ReportMeta,
    clean_notebook,
    quarto_available,
    render_notebook,
    write_typst_source,
)
from analysis.report import (  # noqa: E402
    HTML,
    MARKDOWN,
    PNG,
    TYPST,
    figure_bundle,
    kpis_bundle,
    show_figure,
    show_kpis,
    show_markdown,
    show_table,
    table_bundle,
)
from analysis.style import (  # noqa: E402
    cjk_font_dir,
    cjk_font_family,
    cjk_font_path,
    chart_title,
    fmt_bp,
    fmt_count,
    fmt_money,
    fmt_pct,
    fmt_rate,
    setup_matplotlib,
)

BANK_ZH = "青山农村商业银行"
BANK_EN = "Qingshan Rural Commercial Bank"
# Strings that exist only in code, parameters or stderr: none may reach a report.
CODE_SENTINEL = "CODE-SOURCE-SENTINEL"
PARAM_SENTINEL = "PARAM-SENTINEL"
STDERR_SENTINEL = "STDERR-SENTINEL"
WARN_SENTINEL = "WARNING-SENTINEL"
STDOUT_SENTINEL = "STDOUT-SENTINEL"
PLAIN_SENTINEL = "TEXT-PLAIN-SENTINEL"
LEAKS = [CODE_SENTINEL, PARAM_SENTINEL, STDERR_SENTINEL, WARN_SENTINEL, STDOUT_SENTINEL,
         PLAIN_SENTINEL,
         "Traceback", "UserWarning", "<Figure size", "show_table(", "import pandas"]


# ---------------------------------------------------------------- number formats

@pytest.mark.parametrize("value, zh, en", [
    (123_456_789, "1.23亿元", "CNY 123.46M"),
    (4_567_000, "456.7万元", "CNY 4.57M"),
    (1_230_000_000, "12.30亿元", "CNY 1.23bn"),
    (8_900, "8,900元", "CNY 8.9K"),
    (890, "890元", "CNY 890"),
    (99_999_999, "1.00亿元", "CNY 100.00M"),  # rounds up into the next unit, not "10000.0万元"
    (-12_345, "-1.2万元", "CNY -12.3K"),
    (0.4, "0元", "CNY 0"),  # never "-0"
])
def test_fmt_money(value, zh, en):
    assert fmt_money(value, "zh") == zh
    assert fmt_money(value, "en") == en


def test_fmt_money_missing_and_bad_language():
    assert fmt_money(float("nan"), "zh") == "—"
    assert fmt_money(None, "en") == "—"
    assert fmt_money(pd.NA, "zh") == "—"
    with pytest.raises(InputError, match="zh"):
        fmt_money(1.0, "fr")


@pytest.mark.parametrize("value, zh, en", [
    (12_345, "12,345", "12,345"),
    (99_999, "99,999", "99,999"),
    (123_456, "12.3万", "123,456"),
    (150_000_000, "1.50亿", "150,000,000"),
    (0, "0", "0"),
])
def test_fmt_count(value, zh, en):
    assert fmt_count(value, "zh") == zh
    assert fmt_count(value, "en") == en


def test_fmt_pct_rate_bp():
    assert fmt_pct(0.1234) == "12.3%"
    assert fmt_pct(0.1234, digits=2) == "12.34%"
    assert fmt_pct(0.0345) == "3.5%"  # half-up on the decimal value, not on 3.4499… in binary
    assert fmt_pct(-0.00001) == "0.0%"
    assert fmt_pct(float("nan")) == "—"
    assert fmt_rate(0.0385) == "3.85%"
    assert fmt_rate(0.0345) == "3.45%"
    assert fmt_bp(0.0012) == "12 bp"
    assert fmt_bp(-0.00255) == "-26 bp"
    assert fmt_bp(0.00001) == "0 bp"


# ---------------------------------------------------------------- style

def test_setup_matplotlib_uses_the_shipped_cjk_font():
    setup_matplotlib()
    assert cjk_font_path().is_file()
    assert cjk_font_path().parent == cjk_font_dir()
    assert cjk_font_family() == "Noto Sans CJK SC"
    assert plt.rcParams["font.family"] == ["Noto Sans CJK SC"]
    assert plt.rcParams["axes.unicode_minus"] is False
    assert plt.rcParams["axes.spines.top"] is False


def test_chart_title_sets_message_and_source_note():
    setup_matplotlib()
    fig, ax = plt.subplots()
    chart_title(ax, "A 层客户贡献六成余额", "核心系统", "2022-12", "zh")
    assert ax.get_title(loc="left") == "A 层客户贡献六成余额"
    assert [t.get_text() for t in ax.texts] == ["来源：核心系统　数据截至 2022-12"]
    chart_title(ax, "Tier A holds 60% of balances", "core system", "2022-12", "en")
    assert ax.texts[-1].get_text() == "Source: core system, as of 2022-12"
    plt.close(fig)


# ---------------------------------------------------------------- display bundles

def test_table_bundle_markdown_html_and_typst():
    df = pd.DataFrame({"客户层级": ["A", "B|C"], "客户数": [1200, 5400], "余额": [4.5e9, 7.7e8]})
    bundle = table_bundle(df, caption="各层客户", formats={"余额": lambda v: fmt_money(v, "zh")})
    assert set(bundle) == {MARKDOWN, HTML, TYPST}  # no text/plain to leak a repr
    assert bundle[MARKDOWN].splitlines() == [
        "| 客户层级 | 客户数 | 余额 |",
        "| :-------- | ------: | ---------: |",  # dashes = display width (CJK = 2)
        "| A | 1,200 | 45.00亿元 |",
        "| B\\|C | 5,400 | 7.70亿元 |",
        "",
        ": 各层客户",
    ]
    assert '<th class="num">客户数</th>' in bundle[HTML]
    assert '<td class="num">45.00亿元</td>' in bundle[HTML]
    assert "<caption>各层客户</caption>" in bundle[HTML]
    assert bundle[TYPST].startswith('#report-table(caption: "各层客户", columns: (auto, auto, auto,)')
    assert '("B|C", "5,400", "7.70亿元",)' in bundle[TYPST]
    assert df.columns.tolist() == ["客户层级", "客户数", "余额"]  # input untouched


def test_table_bundle_index_only_when_meaningful():
    plain = pd.DataFrame({"x": [1, 2]})
    assert table_bundle(plain)[MARKDOWN].splitlines()[0] == "| x |"
    named = plain.set_axis(pd.Index(["甲", "乙"], name="支行"))
    assert table_bundle(named)[MARKDOWN].splitlines()[0] == "| 支行 | x |"
    with pytest.raises(InputError, match="nope"):
        table_bundle(plain, formats={"nope": str})


def test_figure_and_kpi_bundles_outside_a_kernel():
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    bundle = show_figure(fig)  # no kernel here: the bundle comes back instead of being published
    assert set(bundle) == {PNG}
    assert not plt.fignum_exists(fig.number)
    assert set(figure_bundle(plt.figure())) == {PNG}
    kpis = show_kpis([("客户数", "12.3万"), ('带"引号', "1.2亿元")])
    assert kpis == kpis_bundle([("客户数", "12.3万"), ('带"引号', "1.2亿元")])
    assert kpis[TYPST] == '#kpis((("客户数", "12.3万"), ("带\\"引号", "1.2亿元"),))'
    assert '<div class="pb-kpi-value">12.3万</div>' in kpis[HTML]
    assert show_markdown("**要点**")[HTML].strip() == "<p><strong>要点</strong></p>"
    assert set(show_table(pd.DataFrame({"a": [1]}))) == {MARKDOWN, HTML, TYPST}
    with pytest.raises(InputError):
        kpis_bundle([])


# ---------------------------------------------------------------- report meta

def test_report_meta_defaults_and_validation():
    zh = ReportMeta(title="t", bank_name=BANK_ZH, as_of="2022-12", report_date="2023-01-15")
    assert zh.confidentiality_line == f"机密 · 仅供{BANK_ZH}内部使用"
    en = ReportMeta(title="t", bank_name=BANK_EN, as_of="2022-12", report_date="2023-01-15",
                    language="en")
    assert en.confidentiality_line == f"Confidential · for internal use by {BANK_EN} only"
    with pytest.raises(InputError, match="language"):
        ReportMeta(title="t", bank_name="b", as_of="2022-12", report_date="2023-01-15",
                   language="fr")
    with pytest.raises(InputError, match="YYYY-MM"):
        ReportMeta(title="t", bank_name="b", as_of="2022年12月", report_date="2023-01-15")


def test_quarto_choice(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/quarto")
    monkeypatch.delenv("PLAYBOOK_RENDERER", raising=False)
    assert quarto_available()
    monkeypatch.setenv("PLAYBOOK_RENDERER", "builtin")
    assert not quarto_available()


def test_missing_notebook_is_an_input_error(tmp_path):
    meta = ReportMeta(title="t", bank_name="b", as_of="2022-12", report_date="2023-01-15")
    with pytest.raises(InputError, match="not found"):
        render_notebook(tmp_path / "nope.ipynb", tmp_path, stem="x", meta=meta)


# ---------------------------------------------------------------- end to end

def _stage_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(f'bank = "{PARAM_SENTINEL}"\nseed = 1')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 客户价值分层\n\n本节给出**分层结果**与要点。"),
        params,
        nbformat.v4.new_code_cell(
            f"# {CODE_SENTINEL}\n"
            "import pandas as pd\nimport matplotlib.pyplot as plt\n"
            "from analysis.style import setup_matplotlib, chart_title, fmt_money\n"
            "from analysis.report import show_table, show_figure, show_kpis, show_markdown\n"
            "setup_matplotlib()"),
        nbformat.v4.new_markdown_cell("## 分层概览\n\n分层依据当前价值与潜在价值。"),
        nbformat.v4.new_code_cell("show_kpis([('客户数', '12.3万'), ('贷款余额', '45.6亿元')])"),
        nbformat.v4.new_code_cell(
            f"# {CODE_SENTINEL} in a cell that has an output\n"
            "tiers = pd.DataFrame({'客户层级': ['A 核心', 'B 成长', 'C 潜力'],\n"
            "                      '客户数': [1200, 5400, 23000],\n"
            "                      '贷款余额': [4.5e9, 2.1e9, 7.7e8]})\n"
            "show_table(tiers, caption='各层客户与余额',\n"
            "           formats={'贷款余额': lambda v: fmt_money(v, 'zh')})"),
        nbformat.v4.new_code_cell(
            "fig, ax = plt.subplots()\n"
            "ax.bar(tiers['客户层级'], tiers['贷款余额'] / 1e8)\n"
            "chart_title(ax, 'A 层客户贡献了六成余额', '核心系统', '2022-12', 'zh')\n"
            "show_figure(fig)"),
        nbformat.v4.new_code_cell(
            "import sys, warnings\n"
            f"sys.stderr.write('{STDERR_SENTINEL}\\n')\n"
            f"warnings.warn('{WARN_SENTINEL}')\n"
            f"print('{STDOUT_SENTINEL}')\n"
            f"'{PLAIN_SENTINEL}'"),
        nbformat.v4.new_markdown_cell("## 结论\n\n- 要点一\n- 要点二"),
        nbformat.v4.new_code_cell("show_markdown('A 层客户占比 **4%**，贡献六成余额。')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    import papermill

    folder = tmp_path_factory.mktemp("stage")
    source, executed = folder / "stage.ipynb", folder / "stage.executed.ipynb"
    nbformat.write(_stage_notebook(), source)
    papermill.execute_notebook(str(source), str(executed), parameters={"seed": 2},
                               kernel_name="python3", progress_bar=False, cwd=str(folder))
    return executed


@pytest.fixture(scope="module")
def reports(executed, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    metas = {
        "zh": ReportMeta(title="客户价值分层与一户一价", bank_name=BANK_ZH, as_of="2022-12",
                         report_date="2023-01-15", language="zh"),
        "en": ReportMeta(title="Customer value tiers and pricing", bank_name=BANK_EN,
                         as_of="2022-12", report_date="2023-01-15", language="en"),
    }
    import os

    previous = os.environ.get("PLAYBOOK_RENDERER")
    os.environ["PLAYBOOK_RENDERER"] = "builtin"  # what CI tests, even where Quarto exists
    try:
        return {lang: render_notebook(executed, out, stem=f"tiers_{lang}", meta=meta)
                for lang, meta in metas.items()}
    finally:
        if previous is None:
            os.environ.pop("PLAYBOOK_RENDERER")
        else:
            os.environ["PLAYBOOK_RENDERER"] = previous


def test_executed_notebook_has_what_the_report_must_drop(executed):
    nb = nbformat.read(executed, as_version=4)
    tags = [tag for cell in nb.cells for tag in cell.metadata.get("tags", [])]
    assert {"parameters", "injected-parameters"} <= set(tags)
    streams = [o.get("name") for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "stream"]
    assert "stderr" in streams
    # show_* publish display data only: nothing is echoed as an execute_result.
    results = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "execute_result"]
    assert len(results) == 1 and set(results[0].data) == {"text/plain"}  # the bare string
    cleaned = clean_notebook(nb)
    assert all(not c.get("source") for c in cleaned.cells if c.cell_type == "code")
    assert len(cleaned.cells) == 7  # 3 markdown + KPIs, table, chart, narrative


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_report(reports, lang):
    page = reports[lang].html.read_text(encoding="utf-8")
    # Compare on the visible text too: highlighted code would be split by <span> tags.
    visible = html.unescape(re.sub(r"<[^>]+>", "", page))
    for leak in LEAKS:
        assert leak not in page and leak not in visible
    assert "客户层级" in page and '<td class="num">45.00亿元</td>' in page
    assert "data:image/png;base64," in page  # self-contained
    assert '"Noto Sans CJK SC"' in page
    if lang == "zh":
        assert BANK_ZH in page and "目录" in page and "数据截至 2022-12" in page
        assert page.count(f"机密 · 仅供{BANK_ZH}内部使用") == 2  # title block and footer
    else:
        assert BANK_EN in page and "Contents" in page and "As of 2022-12" in page
        assert page.count(f"Confidential · for internal use by {BANK_EN} only") == 2


def _pdf_text(pdf: Path) -> str:
    """Text of a pdf by the first extractor available: pypdf, pdfminer.six, poppler's pdftotext."""
    try:
        from pypdf import PdfReader

        return "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    except ImportError:
        pass
    try:
        from pdfminer.high_level import extract_text

        return extract_text(str(pdf))
    except ImportError:
        pass
    exe = shutil.which("pdftotext")
    if exe:
        return subprocess.run([exe, "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
    pytest.skip("no pdf text extractor: add pypdf to the test extras (or install poppler-utils)")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pdf_report_text(reports, lang):
    pdf = reports[lang].pdf
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = _pdf_text(pdf)
    assert "\ufffd" not in text
    for leak in LEAKS:
        assert leak not in text
    # The table survived pandoc and Typst: header and formatted cells are real text.
    for cell in ["客户层级", "贷款余额", "A 核心", "23,000", "45.00亿元", "7.70亿元", "12.3万"]:
        assert cell in text
    assert "客户价值分层" in text and "要点一" in text
    if lang == "zh":
        assert BANK_ZH in text and "目录" in text and "数据截至" in text
        assert f"机密 · 仅供{BANK_ZH}内部使用" in text
    else:
        assert BANK_EN in text and "Contents" in text and "Report date" in text


def test_pdf_has_the_chart_and_no_tofu(executed, tmp_path):
    from fontTools.ttLib import TTFont

    meta = ReportMeta(title="客户价值分层", bank_name=BANK_ZH, as_of="2022-12",
                      report_date="2023-01-15")
    typ = write_typst_source(nbformat.read(executed, as_version=4), meta, tmp_path / "build")
    source = typ.read_text(encoding="utf-8")
    assert '#report-figure("media/' in source
    assert any(p.suffix == ".png" for p in (tmp_path / "build" / "media").iterdir())
    # Every non-ASCII character Typst will set must have a glyph in the font: no tofu.
    font = TTFont(cjk_font_path(), lazy=True)
    cmap = font.getBestCmap()
    missing = {ch for ch in source if ord(ch) > 127 and ord(ch) not in cmap}
    assert missing == set()


def test_unknown_font_fails_loudly(executed, tmp_path, monkeypatch):
    monkeypatch.setattr(render_module, "cjk_font_family", lambda: "No Such Font SC")
    meta = ReportMeta(title="t", bank_name="b", as_of="2022-12", report_date="2023-01-15")
    with pytest.raises(RuntimeError, match="font"):
        render_module.render_pdf(nbformat.read(executed, as_version=4), meta,
                                 tmp_path / "x.pdf")
