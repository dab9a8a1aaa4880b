"""Presentation helpers for stage notebooks: publish markdown, tables, figures and KPIs the renderer understands.

Every helper publishes a display bundle without a ``text/plain`` part, so no
``<Figure size ...>`` or DataFrame repr can leak into a report. The pdf renderer
turns ``text/markdown`` into real markdown (tables stay tables); the html renderer
uses ``text/html``; ``text/x-typst`` (tables, KPIs) gives the pdf a native Typst
block, which the pdf renderer prefers to the markdown.
Outside an IPython kernel nothing is published and the bundle is returned instead,
so scripts and tests can call the helpers.
"""

from __future__ import annotations

import base64
import html
import io
import numbers
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import pandas as pd

MARKDOWN = "text/markdown"
HTML = "text/html"
PNG = "image/png"
TYPST = "text/x-typst"  # read only by analysis.render; Jupyter front ends ignore unknown types

Bundle = dict[str, str]


@lru_cache(maxsize=1)
def _markdown_to_html():
    import mistune

    return mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])


def _kernel():
    """The running IPython kernel shell, or None in a plain interpreter."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return None
    return get_ipython()


def _publish(bundle: Bundle, metadata: dict | None = None) -> Bundle | None:
    if _kernel() is None:
        return bundle
    from IPython.display import publish_display_data

    publish_display_data(data=bundle, metadata=metadata or {})
    return None  # so a helper on a cell's last line echoes nothing


# ---------------------------------------------------------------- bundles (pure)

def markdown_bundle(text: str) -> Bundle:
    """Display bundle for a markdown paragraph."""
    return {MARKDOWN: text, HTML: _markdown_to_html()(text)}


def _default_format(value) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, numbers.Real):
        return f"{value:,.2f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _md_cell(text: str) -> str:
    # A pipe or a line break inside a cell would break the pipe table.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


_MAX_RULE = 36
_LONG_TEXT = 24  # display width from which a text column wraps instead of growing


def _typst_str(text: str) -> str:
    """A Typst string literal: shown verbatim, never read as markup."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ") + '"'


def _display_width(text: str) -> int:
    """Width in monospace cells: CJK and full-width characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _show_index(df: pd.DataFrame, index: bool | None) -> bool:
    if index is not None:
        return index
    # A default 0..n-1 index carries no meaning; a named or labelled one does.
    plain = isinstance(df.index, pd.RangeIndex) and df.index.name is None
    return not plain


def table_bundle(df: pd.DataFrame, caption: str | None = None,
                 formats: Mapping[str, Callable[[object], str]] | None = None,
                 index: bool | None = None) -> Bundle:
    """Display bundle for a table: a pipe table (for pdf) and an html table (for html).

    formats maps a column name to a callable turning a value into display text
    (e.g. ``{"贷款余额": lambda v: fmt_money(v, "zh")}``); other cells get thousands
    separators. index=None shows the index only when it is named or not 0..n-1.
    """
    formats = dict(formats or {})
    unknown = set(formats) - {str(c) for c in df.columns} - {str(n) for n in df.index.names}
    if unknown:
        from analysis.errors import InputError

        raise InputError(f"formats names columns the table does not have: {sorted(unknown)}",
                         fix="use the table's column names as keys")
    frame = df.reset_index() if _show_index(df, index) else df
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.set_axis([" ".join(str(p) for p in c if str(p)) for c in frame.columns],
                               axis=1)
    headers = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    rows = [
        [formats.get(h, _default_format)(v) for h, v in zip(headers, record)]
        for record in frame.itertuples(index=False, name=None)
    ]

    # Dash counts carry each column's share of the width: pandoc uses them when the table
    # is too wide for a line, so a long text column gets room instead of wrapping per word.
    widths = [min(_MAX_RULE, max(3, _display_width(h), *(_display_width(r[k]) for r in rows)))
              for k, h in enumerate(headers)]
    rule = [("-" * w + ":") if num else (":" + "-" * w) for w, num in zip(widths, numeric)]
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |",
             "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    markdown = "\n".join(lines)
    if caption:
        markdown = f"{markdown}\n\n: {_md_cell(caption)}"

    esc = html.escape
    cls = ['class="num"' if num else "" for num in numeric]
    head = "".join(f"<th {c}>{esc(h)}</th>" for c, h in zip(cls, headers))
    body = "".join(
        "<tr>" + "".join(f"<td {c}>{esc(v)}</td>" for c, v in zip(cls, row)) + "</tr>"
        for row in rows
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    table_html = (f'<table class="pb-table">{cap}<thead><tr>{head}</tr></thead>'
                  f"<tbody>{body}</tbody></table>")
    # Typst sizes short columns to their content and lets long text columns share the rest.
    spans = ["1fr" if not num and w >= _LONG_TEXT else "auto" for w, num in zip(widths, numeric)]
    typst = (
        "#report-table("
        f"caption: {_typst_str(caption) if caption else 'none'}, "
        f"columns: ({', '.join(spans)},), "
        f"align: ({', '.join('right' if num else 'left' for num in numeric)},), "
        f"header: ({', '.join(_typst_str(h) for h in headers)},), "
        "rows: (" + "".join(f"({', '.join(_typst_str(c) for c in row)},), " for row in rows) + "))"
    )
    return {MARKDOWN: markdown, HTML: table_html, TYPST: typst}


def figure_bundle(fig, dpi: int = 150) -> Bundle:
    """Display bundle for a matplotlib figure: a PNG only (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.15,
                    facecolor="white")
    finally:
        plt.close(fig)
    return {PNG: base64.b64encode(buffer.getvalue()).decode("ascii")}


def kpis_bundle(items: Sequence[tuple[str, str]]) -> Bundle:
    """Display bundle for a row of headline numbers given as (label, value text) pairs."""
    items = [(str(label), str(value)) for label, value in items]
    if not items:
        from analysis.errors import InputError

        raise InputError("show_kpis needs at least one (label, value) pair",
                         fix="pass a list such as [('客户数', '12.3万')]")
    esc = html.escape
    cards = "".join(
        f'<div class="pb-kpi"><div class="pb-kpi-value">{esc(v)}</div>'
        f'<div class="pb-kpi-label">{esc(k)}</div></div>'
        for k, v in items
    )
    markdown = ("| " + " | ".join(_md_cell(k) for k, _ in items) + " |\n"
                + "| " + " | ".join(":---:" for _ in items) + " |\n"
                + "| " + " | ".join(_md_cell(v) for _, v in items) + " |")

    pairs = ", ".join(f"({_typst_str(k)}, {_typst_str(v)})" for k, v in items)
    return {MARKDOWN: markdown, HTML: f'<div class="pb-kpis">{cards}</div>',
            TYPST: f"#kpis(({pairs},))"}


# ---------------------------------------------------------------- notebook helpers

def show_markdown(text: str) -> Bundle | None:
    """Publish markdown (e.g. narrative with computed numbers) as markdown and html."""
    return _publish(markdown_bundle(text))


def show_table(df: pd.DataFrame, caption: str | None = None,
               formats: Mapping[str, Callable[[object], str]] | None = None,
               index: bool | None = None) -> Bundle | None:
    """Publish a DataFrame as a pipe table and an html table; see table_bundle for arguments."""
    return _publish(table_bundle(df, caption=caption, formats=formats, index=index))


def show_figure(fig, dpi: int = 150) -> Bundle | None:
    """Publish a matplotlib figure as a PNG only and close it."""
    return _publish(figure_bundle(fig, dpi=dpi))


def show_kpis(items: Sequence[tuple[str, str]]) -> Bundle | None:
    """Publish a row of headline numbers: [(label, formatted value), ...]."""
    return _publish(kpis_bundle(items))
