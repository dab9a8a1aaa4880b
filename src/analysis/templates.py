"""Blank extract templates and the data-request workbook, generated from data_templates/schema.yaml."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import xlsxwriter

from .schema import Schema, load_schema

_TYPE_ZH = {"string": "文本", "integer": "整数", "decimal": "数值", "date": "日期",
            "month": "月份(YYYY-MM)", "boolean": "是/否(1/0)", "category": "代码值"}
_FIXED_DATE = datetime(2022, 1, 1)  # fixed document date: regenerating gives identical content


def template_csv_text(table) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(table.column_names)
    return buf.getvalue()


def dictionary_rows(schema: Schema) -> list[list[str]]:
    """One row per column: the data dictionary the bank's IT fills against."""
    rows = []
    for t in schema.tables.values():
        for c in t.columns:
            rows.append([
                t.name, t.label_zh, c.name, c.label_zh, c.label_en, _TYPE_ZH[c.type],
                c.unit or "", "是" if c.required else "否", "主键" if c.key else "",
                c.references or "", c.pii or "", "、".join(c.values or []),
                c.description or "", "、".join(c.used_by),
            ])
    return rows


DICTIONARY_HEADER = ["表名", "表中文名", "字段名", "字段中文名", "字段英文名", "类型", "单位", "必填",
                     "键", "关联", "个人信息级别(JR/T 0171)", "取值范围", "说明", "用于阶段"]


def generate_templates(out_dir: Path, schema: Schema | None = None) -> list[Path]:
    """Write templates/<table>.csv (header only, UTF-8 with BOM for Excel) and data_request.xlsx."""
    schema = schema or load_schema()
    out_dir = Path(out_dir)
    (out_dir / "templates").mkdir(parents=True, exist_ok=True)
    written = []
    for t in schema.tables.values():
        p = out_dir / "templates" / f"{t.name}.csv"
        p.write_text(template_csv_text(t), encoding="utf-8-sig")
        written.append(p)
    xlsx = out_dir / "data_request.xlsx"
    wb = xlsxwriter.Workbook(str(xlsx))
    wb.set_properties({"title": "小微数字化营销 数据需求与数据字典", "created": _FIXED_DATE})
    head = wb.add_format({"bold": True, "bg_color": "#1F3A5F", "font_color": "#FFFFFF", "border": 1})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})
    title = wb.add_format({"bold": True, "font_size": 16})
    cover = wb.add_worksheet("说明")
    cover.set_column(0, 0, 110)
    lines = [
        ("小微客户数字化营销项目 · 数据需求与数据字典", title),
        ("用途: 请行内科技部门按“数据字典”页逐表逐字段准备数据, 每张表一个文件 (csv/xlsx/parquet), 文件名为表名 (如 customers.csv)。", wrap),
        ("编码: UTF-8 或 GBK 均可; 日期统一为 YYYY-MM-DD (YYYYMMDD 亦可识别); 金额单位以“单位”列为准 (万元字段请保持万元)。", wrap),
        ("个人信息: 标注 C2 的字段属于个人金融信息 (JR/T 0171-2020), 请经行内审批后通过安全介质传输; 报告与名单中一律脱敏展示。", wrap),
        ("必填字段为空、类型无法识别或主键重复的行将被隔离 (quarantine) 并逐行反馈, 不会被静默丢弃。", wrap),
        ("Purpose: the bank's IT prepares one file per table following the data-dictionary sheet; each table also has a blank sheet with its header row.", wrap),
    ]
    for i, (text, fmt) in enumerate(lines):
        cover.write(i * 2, 0, text, fmt)
    dd = wb.add_worksheet("数据字典")
    widths = [20, 16, 24, 20, 26, 12, 8, 6, 6, 30, 14, 40, 50, 24]
    for j, (h, w) in enumerate(zip(DICTIONARY_HEADER, widths)):
        dd.write(0, j, h, head)
        dd.set_column(j, j, w)
    for i, row in enumerate(dictionary_rows(schema), start=1):
        for j, v in enumerate(row):
            dd.write_string(i, j, v, wrap)
    dd.autofilter(0, 0, len(dictionary_rows(schema)), len(DICTIONARY_HEADER) - 1)
    dd.freeze_panes(1, 0)
    for t in schema.tables.values():
        ws = wb.add_worksheet(t.name[:31])
        for j, c in enumerate(t.columns):
            ws.write(0, j, c.name, head)
            ws.write_comment(0, j, f"{c.label_zh} / {c.label_en}")
            ws.set_column(j, j, max(12, len(c.name) + 2))
        ws.freeze_panes(1, 0)
    wb.close()
    written.append(xlsx)
    return written
