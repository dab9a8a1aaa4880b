"""Render an executed notebook into a client-ready html and pdf report, with or without Quarto.

Quarto is used when it is on PATH (it renders the stored outputs without executing).
Otherwise, or when PLAYBOOK_RENDERER=builtin, the built-in renderer makes the html
with nbconvert and the pdf with pandoc (ipynb → Typst) and the ``typst`` compiler.
Either way the report shows outputs only: no code, no parameters, no stderr.
"""

from __future__ import annotations

import base64
import copy
import html
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import nbformat

from analysis.errors import InputError
from analysis.report import MARKDOWN, TYPST
from analysis.style import PALETTE, cjk_font_dir, cjk_font_family

log = logging.getLogger(__name__)

Language = Literal["zh", "en"]

REMOVED_TAGS = {"parameters", "injected-parameters", "remove_cell", "remove-cell"}
OUTPUT_REMOVED_TAGS = {"remove_output", "remove-output"}
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
# Extensions pandoc's ipynb reader leaves off but reports need: table captions, sized
# images, raw Typst, footnotes, and no stray spaces where a Chinese line wraps.
PANDOC_IPYNB = ("ipynb+table_captions+link_attributes+raw_attribute+footnotes"
                "+east_asian_line_breaks+implicit_figures")
TEXT_WIDTH_IN = (210 - 2 * 24) / 25.4  # A4 minus the side margins of the Typst page below

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "contents": "目录", "as_of": "数据截至", "report_date": "报告日期",
        "confidential": "机密 · 仅供{bank}内部使用", "lang_region": "cn",
    },
    "en": {
        "contents": "Contents", "as_of": "As of", "report_date": "Report date",
        "confidential": "Confidential · for internal use by {bank} only", "lang_region": "gb",
    },
}


@dataclass(frozen=True)
class ReportMeta:
    """What the title page and footer of a report say; a report is wholly in one language."""

    title: str
    bank_name: str
    as_of: str  # month the data runs to, e.g. "2022-12"
    report_date: str  # ISO date, e.g. "2023-01-15"
    language: Language = "zh"
    confidentiality: str | None = None  # None → the default line for the language
    logo: Path | None = None

    def __post_init__(self):
        if self.language not in LABELS:
            raise InputError(f"Unknown report language {self.language!r}", column="language",
                             fix="use 'zh' or 'en'")
        if not re.fullmatch(r"\d{4}-\d{2}", self.as_of):
            raise InputError(f"as_of must be a month like 2022-12, got {self.as_of!r}",
                             column="as_of", fix="write the month as YYYY-MM")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.report_date):
            raise InputError(f"report_date must be an ISO date, got {self.report_date!r}",
                             column="report_date", fix="write the date as YYYY-MM-DD")
        if self.logo is not None and not Path(self.logo).is_file():
            raise InputError("Logo file not found", file=str(self.logo),
                             fix="point logo at a png, jpg or svg file, or leave it out")

    @property
    def labels(self) -> dict[str, str]:
        return LABELS[self.language]

    @property
    def confidentiality_line(self) -> str:
        if self.confidentiality is not None:
            return self.confidentiality
        return self.labels["confidential"].format(bank=self.bank_name)


@dataclass(frozen=True)
class RenderedReport:
    """Paths of the rendered report."""

    html: Path
    pdf: Path


# ---------------------------------------------------------------- entry point

def quarto_available() -> bool:
    """True when Quarto is on PATH and the built-in renderer is not forced (PLAYBOOK_RENDERER=builtin)."""
    if os.environ.get("PLAYBOOK_RENDERER", "").strip().lower() == "builtin":
        return False
    return shutil.which("quarto") is not None


def render_notebook(executed_ipynb: Path, out_dir: Path, *, stem: str,
                    meta: ReportMeta) -> RenderedReport:
    """Render an executed notebook to ``out_dir/<stem>.html`` and ``out_dir/<stem>.pdf``."""
    executed_ipynb = Path(executed_ipynb).resolve()
    if not executed_ipynb.is_file():
        raise InputError("Executed notebook not found", file=str(executed_ipynb),
                         fix="run the stage first (playbook run) or check the path")
    try:
        nb = nbformat.read(executed_ipynb, as_version=4)
    except Exception as exc:  # nbformat raises several types for a damaged file
        raise InputError(f"Not a readable Jupyter notebook: {exc}", file=str(executed_ipynb),
                         fix="re-run the stage to regenerate the executed notebook") from exc
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    renderer = RENDERERS["quarto" if quarto_available() else "builtin"]
    return renderer(nb, out_dir, stem, meta, source_dir=executed_ipynb.parent)


# ---------------------------------------------------------------- notebook clean-up

def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []) or [])


def _keep_output(output) -> bool:
    if output.get("output_type") in ("stream", "error"):
        # stdout is console chatter and stderr carries warnings: neither belongs in a report.
        return False
    data = output.get("data", {})
    return bool(set(data) - {"text/plain"})  # a bare repr such as "<Figure size ...>"


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Copy of nb fit for a reader: no parameter / removed cells, no code, no streams or errors."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        tags = _tags(cell)
        if tags & REMOVED_TAGS:
            continue
        if cell.cell_type == "code":
            cell.source = ""
            cell.outputs = [] if tags & OUTPUT_REMOVED_TAGS else [
                o for o in cell.outputs if _keep_output(o)]
            for o in cell.outputs:
                o.get("data", {}).pop("text/plain", None)
            if not cell.outputs:
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


# ---------------------------------------------------------------- built-in html

_HTML_CSS = """
:root { --navy: %(navy)s; --teal: %(teal)s; --gold: %(gold)s; --ink: #1F2329;
        --grey-dark: %(grey_dark)s; --grey: %(grey)s; --grey-light: %(grey_light)s;
        --grey-faint: %(grey_faint)s; }
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.7;
       font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
                    sans-serif; -webkit-font-smoothing: antialiased; }
.pb-page { max-width: 980px; margin: 0 auto; padding: 0 48px 48px; }
.pb-titleblock { background: var(--navy); color: #fff; padding: 56px 48px 40px; }
.pb-titleblock .pb-inner { max-width: 884px; margin: 0 auto; display: flex;
                           justify-content: space-between; gap: 32px; }
.pb-bank { font-size: 1.05rem; letter-spacing: .08em; opacity: .85; margin: 0 0 28px; }
.pb-titleblock h1.pb-title { font-size: 2.1rem; line-height: 1.3; font-weight: 500; margin: 0;
                             padding: 0; border: 0; color: #fff; }
.pb-rule { width: 72px; height: 3px; background: var(--gold); margin: 22px 0 18px; border: 0; }
.pb-meta { font-size: .9rem; opacity: .85; margin: 0; }
.pb-meta span + span::before { content: "  |  "; white-space: pre; opacity: .6; }
.pb-logo img { max-height: 56px; max-width: 180px; background: #fff; padding: 6px; }
.pb-confidential-band { background: var(--grey-faint); color: var(--grey-dark); font-size: .8rem;
                        padding: 8px 48px; }
.pb-confidential-band div { max-width: 884px; margin: 0 auto; }
nav.pb-toc { border-left: 3px solid var(--gold); padding: 4px 0 4px 20px; margin: 36px 0 12px; }
nav.pb-toc h2 { font-size: .8rem; letter-spacing: .12em; text-transform: uppercase;
                color: var(--grey); margin: 0 0 6px; border: 0; padding: 0; }
nav.pb-toc ol { list-style: none; margin: 0; padding: 0; }
nav.pb-toc li { margin: 2px 0; }
nav.pb-toc li.l2 { padding-left: 1.2em; font-size: .95rem; }
nav.pb-toc li.l3 { padding-left: 2.4em; font-size: .9rem; }
nav.pb-toc a { color: var(--navy); text-decoration: none; }
nav.pb-toc a:hover { text-decoration: underline; }
h1, h2, h3, h4 { color: var(--navy); font-weight: 500; line-height: 1.35; }
h1 { font-size: 1.75rem; margin: 2.4rem 0 .8rem; padding-bottom: .45rem;
     border-bottom: 2px solid var(--gold); }
h2 { font-size: 1.3rem; margin: 2rem 0 .6rem; }
h3 { font-size: 1.08rem; color: var(--teal); margin: 1.5rem 0 .4rem; }
a.anchor-link { display: none; }
p, li { max-width: 46em; }
strong { color: var(--navy); font-weight: 600; }
.output_area, .output_subarea { margin: 0; padding: 0; }
.output_png { margin: 1.2rem 0 1.6rem; text-align: center; }
.output_png img, .text_cell_render img { max-width: 100%%; height: auto; }
table.pb-table, table.dataframe, .text_cell_render table {
  border-collapse: collapse; margin: 1.2rem 0 1.6rem; font-size: .88rem;
  font-variant-numeric: tabular-nums; min-width: 50%%; }
table.pb-table caption, table.dataframe caption { caption-side: top; text-align: left;
  color: var(--grey-dark); font-size: .85rem; padding-bottom: .5rem; }
table.pb-table th, table.dataframe th, .text_cell_render th {
  color: var(--navy); font-weight: 500; text-align: left; padding: .5rem .8rem;
  border-top: 2px solid var(--navy); border-bottom: 1px solid var(--navy);
  background: var(--grey-faint); }
table.pb-table td, table.dataframe td, .text_cell_render td {
  padding: .42rem .8rem; border-bottom: 1px solid var(--grey-light); }
table.pb-table tbody tr:last-child td { border-bottom: 1px solid var(--grey); }
.num, table.dataframe td { text-align: right; }
th.num { text-align: right; }
.pb-kpis { display: flex; gap: 14px; margin: 1.2rem 0 1.6rem; flex-wrap: wrap; }
.pb-kpi { flex: 1 1 160px; background: var(--grey-faint); border-top: 3px solid var(--navy);
          padding: 14px 16px 12px; }
.pb-kpi-value { font-size: 1.6rem; color: var(--navy); line-height: 1.2; }
.pb-kpi-label { font-size: .82rem; color: var(--grey-dark); margin-top: 4px; }
footer.pb-footer { border-top: 1px solid var(--grey-light); margin-top: 3rem; padding-top: 12px;
                   color: var(--grey); font-size: .8rem; display: flex;
                   justify-content: space-between; }
@media print { .pb-titleblock { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
               a.anchor-link { display: none; } }
""" % PALETTE

_HEADING_RE = re.compile(r'<h([1-3]) id="([^"]+)">(.*?)</h\1>', re.S)


def _html_toc(body: str, meta: ReportMeta) -> str:
    entries = []
    for level, anchor, inner in _HEADING_RE.findall(body):
        text = re.sub(r"<[^>]+>", "", re.sub(r'<a class="anchor-link".*?</a>', "", inner)).strip()
        if text:
            entries.append(f'<li class="l{level}"><a href="#{anchor}">{text}</a></li>')
    if len(entries) < 2:
        return ""
    return (f'<nav class="pb-toc"><h2>{html.escape(meta.labels["contents"])}</h2>'
            f'<ol>{"".join(entries)}</ol></nav>')


def _logo_data_uri(logo: Path) -> str:
    mime = {".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(
        logo.suffix.lower(), "image/png")
    return f"data:{mime};base64,{base64.b64encode(logo.read_bytes()).decode('ascii')}"


def render_html(nb: nbformat.NotebookNode, meta: ReportMeta,
                source_dir: Path | None = None) -> str:
    """Self-contained html report of an executed notebook (outputs only, house style)."""
    from nbconvert import HTMLExporter

    # embed_images inlines images that markdown cells link by path, so the file stands alone.
    exporter = HTMLExporter(template_name="basic", exclude_input=True, embed_images=True,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    resources = {"metadata": {"path": str(source_dir)}} if source_dir else None
    body, _ = exporter.from_notebook_node(clean_notebook(nb), resources=resources)
    body = body.replace(' alt="No description has been provided for this image"', ' alt=""')
    esc = html.escape
    lab = meta.labels
    logo = (f'<div class="pb-logo"><img alt="" src="{_logo_data_uri(Path(meta.logo))}"></div>'
            if meta.logo else "")
    lang_attr = "zh-CN" if meta.language == "zh" else "en"
    return f"""<!DOCTYPE html>
<html lang="{lang_attr}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(meta.bank_name)} · {esc(meta.title)}</title>
<style>{_HTML_CSS}</style>
</head>
<body>
<header class="pb-titleblock"><div class="pb-inner"><div>
<p class="pb-bank">{esc(meta.bank_name)}</p>
<h1 class="pb-title">{esc(meta.title)}</h1>
<hr class="pb-rule">
<p class="pb-meta"><span>{esc(lab["as_of"])} {esc(meta.as_of)}</span><span>{esc(lab["report_date"])} {esc(meta.report_date)}</span></p>
</div>{logo}</div></header>
<div class="pb-confidential-band"><div>{esc(meta.confidentiality_line)}</div></div>
<main class="pb-page">
{_html_toc(body, meta)}
{body}
<footer class="pb-footer"><span>{esc(meta.confidentiality_line)}</span><span>{esc(meta.bank_name)} · {esc(meta.as_of)}</span></footer>
</main>
</body>
</html>
"""


# ---------------------------------------------------------------- built-in pdf

def _typst_str(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _png_width_in(data: bytes) -> float | None:
    """Natural width in inches of a PNG from its IHDR and pHYs chunks (None if unknown)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width_px = int.from_bytes(data[16:20], "big")
    at = data.find(b"pHYs")
    if at < 0:
        return None
    per_metre = int.from_bytes(data[at + 4:at + 8], "big")
    unit = data[at + 12]
    if unit != 1 or per_metre == 0:
        return None
    return width_px / (per_metre * 0.0254)


def _figure_width(data: bytes) -> str:
    natural = _png_width_in(data)
    share = 100.0 if natural is None else min(100.0, 100.0 * natural / TEXT_WIDTH_IN)
    return f"{share:.0f}%"


def pandoc_notebook(nb: nbformat.NotebookNode, media_dir: Path) -> nbformat.NotebookNode:
    """Notebook pandoc renders faithfully: outputs become markdown cells or raw Typst cells.

    Pandoc shows code cells and drops text/markdown and text/html outputs, so every kept
    output is lifted out of its code cell: Typst blocks and markdown verbatim, images as
    files in media_dir placed by the preamble's report-figure function.
    """
    nb = clean_notebook(nb)
    media_dir.mkdir(parents=True, exist_ok=True)
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            cells.append(cell)
        elif cell.cell_type == "raw":
            fmt = (cell.metadata.get("format") or cell.metadata.get("raw_mimetype") or "").lower()
            if "typst" in fmt:
                cells.append(_raw_typst(cell.source))
        else:
            for j, output in enumerate(cell.outputs):
                data = output.get("data", {})
                if TYPST in data:
                    cells.append(_raw_typst(_joined(data[TYPST])))
                elif MARKDOWN in data:
                    cells.append(nbformat.v4.new_markdown_cell(_joined(data[MARKDOWN])))
                else:
                    mime = next((m for m in IMAGE_TYPES if m in data), None)
                    if mime is None:
                        continue  # html-only or other outputs Typst cannot show
                    name = f"output-{i}-{j}.{IMAGE_TYPES[mime]}"
                    raw = (_joined(data[mime]).encode("utf-8") if mime == "image/svg+xml"
                           else base64.b64decode(_joined(data[mime])))
                    (media_dir / name).write_bytes(raw)
                    width = _figure_width(raw) if mime == "image/png" else "100%"
                    path = f"{media_dir.name}/{name}"
                    cells.append(_raw_typst(f"#report-figure({_typst_str(path)}, {width})"))
    nb.cells = cells
    return nb


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _raw_typst(source: str):
    cell = nbformat.v4.new_raw_cell(source)
    cell.metadata["format"] = "typst"
    return cell


# Pandoc wraps every notebook cell in a Div (a Typst #block), inside which page breaks
# before chapter headings are not allowed; unwrapping keeps the body flat.
_LUA_UNWRAP = """
function Div(el) return el.content end
"""


def _pandoc_to_typst(notebook_path: Path, workdir: Path, source_dir: Path | None) -> str:
    import pypandoc

    lua = workdir / "unwrap.lua"
    lua.write_text(_LUA_UNWRAP, encoding="utf-8")
    try:
        return pypandoc.convert_file(
            str(notebook_path), "typst", format=PANDOC_IPYNB,
            # A pipe table wider than --columns gets relative widths from its dash counts
            # (show_table sets them from the content); narrower ones stay compact.
            extra_args=["--extract-media=media", f"--lua-filter={lua}", "--wrap=preserve",
                        "--columns=100", "--quiet",
                        f"--resource-path={source_dir or workdir}"],
            cworkdir=str(workdir),
        )
    except RuntimeError as exc:
        raise RuntimeError(f"pandoc could not convert {notebook_path.name} to Typst: {exc}") from exc


def typst_preamble(meta: ReportMeta, logo_file: str | None = None) -> str:
    """Typst house style: A4, CJK font, title page, contents, confidentiality footer."""
    lab = meta.labels
    colors = "\n".join(f'#let {k.replace("_", "-")} = rgb("{v}")' for k, v in PALETTE.items())
    values = {
        "FONT": _typst_str(cjk_font_family()),
        "BANK": _typst_str(meta.bank_name),
        "TITLE": _typst_str(meta.title),
        "AS_OF": _typst_str(meta.as_of),
        "REPORT_DATE": _typst_str(meta.report_date),
        "CONFIDENTIAL": _typst_str(meta.confidentiality_line),
        "LANG": _typst_str(meta.language),
        "REGION": _typst_str(lab["lang_region"]),
        "L_CONTENTS": _typst_str(lab["contents"]),
        "L_AS_OF": _typst_str(lab["as_of"]),
        "L_REPORT_DATE": _typst_str(lab["report_date"]),
        "LOGO": _typst_str(logo_file) if logo_file else "none",
    }
    text = _TYPST_TEMPLATE.replace("@@COLORS@@", colors)
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    return text


_TYPST_TEMPLATE = r"""// House style of the playbook's reports; generated by analysis.render.
@@COLORS@@
#let ink = rgb("#1F2329")

#let meta = (
  bank: @@BANK@@, title: @@TITLE@@, as-of: @@AS_OF@@, report-date: @@REPORT_DATE@@,
  confidential: @@CONFIDENTIAL@@, logo: @@LOGO@@,
  l-contents: @@L_CONTENTS@@, l-as-of: @@L_AS_OF@@, l-report-date: @@L_REPORT_DATE@@,
)

// Names pandoc's Typst writer presupposes.
#let horizontalrule = block(above: 1.2em, below: 1.2em, line(length: 100%, stroke: 0.5pt + grey-light))
#let horizontalRule = horizontalrule

#let report-figure(path, width) = block(width: 100%, above: 1.1em, below: 1.5em,
  align(center, image(path, width: width)))

#let report-table(caption: none, columns: (), align: (), header: (), rows: ()) = figure(
  kind: table, caption: caption,
  // A full-width block lets 1fr columns take the room the auto columns leave; wide tables
  // get a smaller type and tighter cells so they fit the page instead of overlapping.
  block(width: 100%, {
    let n = columns.len()
    show table: set text(size: if n > 9 { 6.8pt } else if n > 6 { 7.8pt } else { 8.8pt })
    set table(inset: if n > 9 { (x: 3pt, y: 4pt) } else if n > 6 { (x: 4.5pt, y: 5pt) } else { (x: 6pt, y: 5.5pt) })
    std.align(left, table(
      columns: columns, align: align,
      table.header(..header), table.hline(),
      ..rows.flatten(),
    ))
  }))

#let kpis(items) = block(width: 100%, above: 1.1em, below: 1.5em, breakable: false,
  grid(
    columns: (1fr,) * items.len(), column-gutter: 8pt,
    ..items.map(((label, value)) => block(
      width: 100%, fill: grey-faint, stroke: (top: 2pt + navy),
      inset: (x: 11pt, top: 11pt, bottom: 10pt),
      {
        text(size: 17pt, fill: navy, value)
        v(2pt)
        text(size: 8.5pt, fill: grey-dark, label)
      },
    )),
  ))

#set document(title: meta.title, author: meta.bank)
// cjk-latin-spacing off: bankers write 12.3万 and A层, not 12.3 万.
#set text(font: (@@FONT@@,), size: 10pt, lang: @@LANG@@, region: @@REGION@@, fill: ink,
  cjk-latin-spacing: none)
#set par(justify: true, leading: 0.78em, spacing: 1.25em)
#set list(indent: 0.4em, body-indent: 0.6em, marker: text(fill: teal)[▪])
#set enum(indent: 0.4em, body-indent: 0.6em)
// The CJK font ships one weight: strong text gets a hairline stroke (a faux bold) and
// emphasis a colour, since a missing bold or italic face would silently look regular.
#show strong: it => text(fill: navy, stroke: 0.022em + navy, it.body)
#show emph: set text(fill: teal)
#show link: set text(fill: teal)

#show heading: set text(fill: navy, weight: "regular")
#show heading: set par(justify: false)
#show heading.where(level: 1): it => {
  pagebreak(weak: true)
  v(0.6cm)
  block(below: 0.5em, text(size: 21pt, it.body))
  block(below: 1.4em, line(length: 2.2cm, stroke: 2pt + gold))
}
#show heading.where(level: 2): it => block(above: 1.9em, below: 0.9em, sticky: true,
  text(size: 13.5pt, it.body))
#show heading.where(level: 3): it => block(above: 1.5em, below: 0.7em, sticky: true,
  text(size: 11pt, fill: teal, it.body))
#show heading.where(level: 4): it => block(above: 1.2em, below: 0.6em, sticky: true,
  text(size: 10pt, fill: grey-dark, it.body))

#set table(
  inset: (x: 6pt, y: 5.5pt),
  stroke: (x, y) => (
    top: if y == 0 { 1.2pt + navy } else { 0pt },
    bottom: 0.4pt + grey-light,
  ),
  fill: (x, y) => if y == 0 { grey-faint },
)
#set table.hline(stroke: 0.8pt + navy)
#show table: set text(size: 8.8pt)
#show table: set par(justify: false)
#show table.cell.where(y: 0): set text(fill: navy)
#show figure.where(kind: table): set figure.caption(position: top)
#show figure.caption.where(kind: table): set align(left)
#show figure.where(kind: table): set block(breakable: true)
#show figure: set block(above: 1.2em, below: 1.6em)
#show figure.caption: it => text(size: 9pt, fill: grey-dark, it)

#set page(
  paper: "a4",
  margin: (top: 2.7cm, bottom: 2.5cm, x: 2.4cm),
  header: context {
    set text(size: 7.5pt, fill: grey)
    grid(columns: (1fr, auto), align: (left, right), meta.bank, meta.title)
    v(-5pt)
    line(length: 100%, stroke: 0.4pt + grey-light)
  },
  footer: context {
    set text(size: 7.5pt, fill: grey)
    grid(columns: (1fr, auto), align: (left + horizon, right + horizon),
      meta.confidential, counter(page).display("1 / 1", both: true))
  },
)

// Title page: a navy band carrying the client and the title, details beneath.
#page(margin: 0pt, header: none, footer: none, {
  block(width: 100%, height: 47%, fill: navy, inset: (x: 2.4cm, top: 2.6cm, bottom: 2.2cm), {
    grid(columns: (1fr, auto), align: (left + top, right + top),
      text(size: 19pt, fill: white, tracking: 0.04em, meta.bank),
      if meta.logo != none { box(fill: white, inset: 5pt, image(meta.logo, height: 1.1cm)) },
    )
    place(bottom + left, {
      block(width: 15.5cm, par(justify: false, leading: 0.85em,
        text(size: 27pt, fill: white, meta.title)))
      v(0.5cm)
      line(length: 2.6cm, stroke: 2.5pt + gold)
    })
  })
  block(inset: (x: 2.4cm, top: 1.4cm), {
    set text(size: 10.5pt)
    grid(columns: (auto, auto), column-gutter: 1.2em, row-gutter: 0.9em,
      text(fill: grey, meta.l-as-of), text(fill: ink, meta.as-of),
      text(fill: grey, meta.l-report-date), text(fill: ink, meta.report-date),
    )
  })
  place(bottom + left, dx: 2.4cm, dy: -2.0cm, block(width: 16.2cm, {
    line(length: 100%, stroke: 0.4pt + grey-light)
    v(4pt)
    text(size: 8.5pt, fill: grey-dark, meta.confidential)
  }))
})
#counter(page).update(1)

#context if query(heading.where(level: 1).or(heading.where(level: 2))).len() > 1 {
  block(below: 1.2em, text(size: 21pt, fill: navy, meta.l-contents))
  block(below: 1.6em, line(length: 2.2cm, stroke: 2pt + gold))
  show outline.entry.where(level: 1): set block(above: 1.1em)
  show outline.entry.where(level: 1): set text(fill: navy, size: 10.5pt)
  show outline.entry.where(level: 2): set text(fill: grey-dark, size: 9.5pt)
  outline(title: none, depth: 2, indent: 1.4em)
  pagebreak()
}

"""


def _check_warnings(warnings) -> None:
    for warning in warnings or []:
        message = str(getattr(warning, "message", warning))
        if "font" in message.lower():
            # A missing font means tofu for every Chinese character: fail loudly instead.
            raise RuntimeError(f"typst could not use the report font: {message}")
        log.debug("typst warning: %s", message)


def write_typst_source(nb: nbformat.NotebookNode, meta: ReportMeta, workdir: Path,
                       source_dir: Path | None = None) -> Path:
    """Write ``report.typ`` and its media into workdir (the Typst root) and return its path.

    source_dir is where the notebook lives, so images its markdown links by relative path
    are found.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "report.ipynb"
    nbformat.write(pandoc_notebook(nb, workdir / "media"), source)
    # Exhibits sit flush left under their titles, as the charts do.
    body = _pandoc_to_typst(source, workdir, source_dir).replace("align(center)[#table(",
                                                                 "align(left)[#table(")
    logo_file = None
    if meta.logo:
        logo_file = "logo" + Path(meta.logo).suffix.lower()
        shutil.copyfile(meta.logo, workdir / logo_file)
    typ = workdir / "report.typ"
    typ.write_text(typst_preamble(meta, logo_file) + body, encoding="utf-8")
    return typ


def compile_typst(typ: Path) -> bytes:
    """Compile a Typst file with the CJK font (system fonts ignored, so every machine matches)."""
    import typst

    try:
        pdf_bytes, warnings = typst.compile_with_warnings(
            str(typ), root=str(typ.parent), font_paths=[str(cjk_font_dir())],
            ignore_system_fonts=True)
    except Exception as exc:  # typst raises TypstError carrying the source location
        raise RuntimeError(f"typst could not compile the report: {exc}") from exc
    _check_warnings(warnings)
    return pdf_bytes


def render_pdf(nb: nbformat.NotebookNode, meta: ReportMeta, pdf_path: Path,
               source_dir: Path | None = None) -> Path:
    """pdf report of an executed notebook: pandoc (ipynb → Typst) + house preamble + typst."""
    with tempfile.TemporaryDirectory(prefix="playbook-pdf-") as tmp:
        pdf_bytes = compile_typst(write_typst_source(nb, meta, Path(tmp), source_dir))
    pdf_path.write_bytes(pdf_bytes)
    return pdf_path


def render_builtin(nb: nbformat.NotebookNode, out_dir: Path, stem: str, meta: ReportMeta,
                   source_dir: Path | None = None) -> RenderedReport:
    """html via nbconvert and pdf via pandoc + Typst, no Quarto needed."""
    html_path = out_dir / f"{stem}.html"
    html_path.write_text(render_html(nb, meta, source_dir), encoding="utf-8")
    pdf_path = render_pdf(nb, meta, out_dir / f"{stem}.pdf", source_dir)
    return RenderedReport(html=html_path, pdf=pdf_path)


# ---------------------------------------------------------------- Quarto

def _quarto_front_matter(meta: ReportMeta) -> str:
    import json

    q = json.dumps  # JSON strings are valid YAML scalars and escape everything needed
    return "\n".join([
        "---",
        f"title: {q(meta.title)}",
        f"subtitle: {q(meta.bank_name)}",
        f"date: {q(meta.report_date)}",
        f"lang: {q('zh-CN' if meta.language == 'zh' else 'en')}",
        f"description: {q(meta.labels['as_of'] + ' ' + meta.as_of)}",
        "execute: {echo: false, warning: false, error: false}",
        "toc: true",
        f"toc-title: {q(meta.labels['contents'])}",
        "format:",
        "  html: {embed-resources: true}",
        f"  typst: {{mainfont: {q(cjk_font_family())}, "
        f"font-paths: [{q(str(cjk_font_dir()))}], papersize: a4}}",
        f"footer: {q(meta.confidentiality_line)}",
        "---",
    ])


def quarto_project_dir() -> Path | None:
    """reports/ of the source tree (or its packaged copy) holding _quarto.yml and templates/."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "reports", here.parent / "_resources" / "reports"):
        if (candidate / "_quarto.yml").is_file():
            return candidate
    return None


def render_quarto(nb: nbformat.NotebookNode, out_dir: Path, stem: str, meta: ReportMeta,
                  source_dir: Path | None = None) -> RenderedReport:
    """Render with Quarto from the stored outputs (no execution); untested where Quarto is absent."""
    cleaned = clean_notebook(nb)
    front = nbformat.v4.new_raw_cell(_quarto_front_matter(meta))
    cleaned.cells.insert(0, front)
    with tempfile.TemporaryDirectory(prefix="playbook-quarto-") as tmp:
        workdir = Path(tmp)
        source = workdir / f"{stem}.ipynb"
        nbformat.write(cleaned, source)
        project = quarto_project_dir()
        if project is not None:
            # The house-style project (reports/_quarto.yml + templates/) beside the notebook.
            shutil.copy(project / "_quarto.yml", workdir / "_quarto.yml")
            shutil.copytree(project / "templates", workdir / "templates", dirs_exist_ok=True)
        produced = {}
        for fmt, suffix in (("html", ".html"), ("typst", ".pdf")):
            result = subprocess.run(
                ["quarto", "render", source.name, "--to", fmt, "--no-execute"],
                cwd=workdir, capture_output=True, text=True, check=False)
            out = workdir / f"{stem}{suffix}"
            if result.returncode != 0 or not out.is_file():
                raise RuntimeError(f"quarto render --to {fmt} failed: "
                                   f"{(result.stderr or result.stdout).strip()[-2000:]}")
            produced[suffix] = shutil.move(str(out), out_dir / f"{stem}{suffix}")
    return RenderedReport(html=Path(produced[".html"]), pdf=Path(produced[".pdf"]))


# Each takes (notebook, out_dir, stem, meta, *, source_dir) and returns a RenderedReport.
RENDERERS: dict[str, Callable[..., RenderedReport]] = {
    "builtin": render_builtin,
    "quarto": render_quarto,
}
