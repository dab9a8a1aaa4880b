# %% tags=["parameters"]
workspace = "demo-engagement"
run_dir = ""
language = "zh"
as_of = "2022-12"
seed = 20221231

# %%
import pandas as pd
import matplotlib.pyplot as plt
from analysis.context import StageContext
from analysis.schema import load_schema
from analysis import assessment, style
from analysis.report import show_markdown, show_table, show_figure, show_kpis

ctx = StageContext.open(workspace, run_dir, language)
style.setup_matplotlib()
T = ctx.t
schema = load_schema()
ingest = ctx.ingest_report() or {}
findings = assessment.run_checks(ctx.con, schema, as_of=ctx.as_of, ingest_report=ingest,
                                 quarantine_dir=ctx.workspace.quarantine,
                                 lpr_1y=ctx.config.stages.data_assessment.lpr_1y)
readiness = assessment.readiness_matrix(findings, schema, ctx.con)
profiles = assessment.column_profiles(ctx.con, schema)
summary = assessment.assessment_summary(findings, readiness)
tables = ingest.get("tables", {})
rows_in = sum(t.get("rows_in", 0) for t in tables.values())
rows_q = sum(t.get("rows_quarantined", 0) for t in tables.values())
sev = findings["severity"].value_counts()
go = readiness[readiness["go"]]["stage"].tolist() if "go" in readiness else []

# %%
stage_names = {"tags": T("标签", "tags"), "value": T("价值分层", "value tiers"), "pricing": T("定价", "pricing"),
               "events": T("商机事件", "events"), "pilot": T("试点", "pilot")}
nogo = [s for s in readiness["stage"] if s not in go]
show_markdown(T(
    f"## 结论\n\n本次共收到 {len(tables)} 张表、{rows_in:,} 行数据, 其中 {rows_q:,} 行因必填缺失、类型错误或主键重复被隔离 (均逐行记录, 无静默丢弃)。"
    f"发现问题 {len(findings)} 项: 阻断 **{sev.get('blocker', 0)}** 项、重要 {sev.get('major', 0)} 项、一般 {sev.get('minor', 0)} 项。\n\n"
    f"**可以启动**: {'、'.join(stage_names[s] for s in go) or '无'}。" + (f" **暂不具备条件**: {'、'.join(stage_names[s] for s in nogo)}, 需行内科技部门按问题清单整改。" if nogo else ""),
    f"## Conclusions\n\nThe bank delivered {len(tables)} tables with {rows_in:,} rows; {rows_q:,} rows were quarantined for missing required values, type errors or duplicate keys (each recorded, none dropped silently). "
    f"{len(findings)} findings: **{sev.get('blocker', 0)} blockers**, {sev.get('major', 0)} major, {sev.get('minor', 0)} minor.\n\n"
    f"**Ready to start**: {', '.join(stage_names[s] for s in go) or 'none'}." + (f" **Not yet ready**: {', '.join(stage_names[s] for s in nogo)}; the bank's IT must fix the findings below." if nogo else "")))

# %%
briefs = assessment.blocker_briefs(findings, readiness, schema, language)
if briefs:
    show_markdown(T("## 阻断问题：是什么、影响哪些阶段、如何修复", "## Blockers: what they are, what they hold up, the fix")
                  + "\n\n" + "\n\n".join(f"{i}. {b}" for i, b in enumerate(briefs, start=1)))

# %%
show_markdown(T("## 各阶段数据就绪度", "## Readiness by stage"))
rd = readiness.copy()
rd["stage"] = rd["stage"].map(stage_names)
reason = "reason_zh" if language == "zh" else "reason_en"
rd = rd[["stage", "fields_needed", "fields_fit", "score", "decision", reason]]
show_table(rd.rename(columns={"stage": T("阶段", "Stage"), "fields_needed": T("所需字段", "Fields needed"),
                              "fields_fit": T("可用字段", "Fields fit"), "score": T("得分", "Score"),
                              "decision": T("结论", "Decision"), reason: T("原因", "Reason")}),
           formats={T("得分", "Score"): lambda v: f"{v:.0f}"})

# %%
show_markdown(T("## 问题清单 (按严重程度)", "## Findings by severity"))
fix_col = "fix_zh" if language == "zh" else "fix_en"
ft = findings[["table", "column", "check", "severity", "rows_affected", "example", fix_col]].head(40)
show_table(ft.rename(columns={"table": T("表", "Table"), "column": T("字段", "Column"), "check": T("检查项", "Check"),
                              "severity": T("严重程度", "Severity"), "rows_affected": T("影响行数", "Rows"),
                              "example": T("示例(脱敏)", "Example (masked)"), fix_col: T("整改要求", "Fix request")}),
           formats={T("影响行数", "Rows"): lambda v: f"{int(v):,}"})

# %%
if tables:
    acc = pd.DataFrame([{"table": k, "rows_in": v.get("rows_in", 0), "rows_loaded": v.get("rows_loaded", 0),
                         "rows_quarantined": v.get("rows_quarantined", 0), "encoding": v.get("encoding", "")} for k, v in tables.items()])
    show_markdown(T("## 行数核对 (收到 = 入库 + 隔离)", "## Row accounting (in = loaded + quarantined)"))
    show_table(acc.rename(columns={"table": T("表", "Table"), "rows_in": T("收到", "In"), "rows_loaded": T("入库", "Loaded"),
                                   "rows_quarantined": T("隔离", "Quarantined"), "encoding": T("编码", "Encoding")}),
               formats={T("收到", "In"): "{:,}".format, T("入库", "Loaded"): "{:,}".format, T("隔离", "Quarantined"): "{:,}".format})

# %%
show_markdown(T("## 字段概况", "## Column profiles"))
# Top values are the bank's own data (Chinese codes, masked names): shown in the Chinese edition only.
prof = profiles.drop(columns=[c for c in ("top_values",) if language != "zh" and c in profiles.columns])
show_table(prof.head(80))

# %%
assessment.write_findings_xlsx(findings, ctx.deliverable("data_findings.xlsx"), language=language)
ctx.save_results("01_data_assessment", {**summary, "rows_in": rows_in, "rows_quarantined": rows_q,
                                        "findings": findings.drop(columns=["example"], errors="ignore")})
ctx.close()
