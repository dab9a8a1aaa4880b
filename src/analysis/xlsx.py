"""Excel deliverables with a cover sheet, readable Chinese, frozen headers and sensible widths."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import xlsxwriter

_FIXED_DATE = datetime(2022, 1, 1)  # fixed document property: identical inputs give identical files


def _width(series: pd.Series, header: str) -> float:
    def w(s: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)
    longest = max([w(str(header))] + [w(str(v)) for v in series.head(200)])
    return min(max(10, longest + 2), 60)


def write_sheets(path: Path, sheets: dict[str, pd.DataFrame], *, cover_title: str,
                 cover_lines: list[str], what: str | None = None, as_of: str | None = None,
                 how_to_use: str | None = None) -> Path:
    """Write an xlsx whose first sheet is a cover saying what it is, as-of month and how to use it.

    what / as_of / how_to_use, when given, are written as labelled rows (in the cover's language)
    above the free cover_lines; the data sheets get frozen bold headers, filters and widths.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True})
    wb.set_properties({"title": cover_title, "created": _FIXED_DATE})
    head = wb.add_format({"bold": True, "bg_color": "#1F3A5F", "font_color": "#FFFFFF", "border": 1,
                          "text_wrap": True, "valign": "vcenter"})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})
    zh = any(ord(c) > 0x2E80 for c in cover_title)
    cover = wb.add_worksheet("说明" if zh else "About")
    cover.hide_gridlines(2)
    cover.set_column(0, 0, 120)
    cover.write(0, 0, cover_title, wb.add_format({"bold": True, "font_size": 16, "font_color": "#0B2545"}))
    labelled = [(("这是什么", "What it is"), what), (("数据截至", "As of"), as_of), (("如何使用", "How to use"), how_to_use)]
    lines = [f"{lab_zh if zh else lab_en}{'：' if zh else ': '}{value}" for (lab_zh, lab_en), value in labelled if value]
    for i, line in enumerate(lines + list(cover_lines), start=2):
        cover.write(i, 0, line, wrap)
    for name, df in sheets.items():
        ws = wb.add_worksheet(name[:31])
        for j, col in enumerate(df.columns):
            ws.write(0, j, str(col), head)
            ws.set_column(j, j, _width(df[col], str(col)), wrap if df[col].dtype == object else None)
        for i, row in enumerate(df.itertuples(index=False), start=1):
            for j, v in enumerate(row):
                if v is None or (isinstance(v, float) and v != v):
                    continue
                ws.write(i, j, v)
        ws.freeze_panes(1, 0)
        if len(df.columns):
            ws.autofilter(0, 0, max(len(df), 1), len(df.columns) - 1)
    wb.close()
    return path
