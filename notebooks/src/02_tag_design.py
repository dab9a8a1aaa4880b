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
from analysis.catalog import load_tag_catalog
from analysis import tags as tagmod, style
from analysis.report import show_markdown, show_table, show_figure, show_kpis
from analysis.xlsx import write_sheets

ctx = StageContext.open(workspace, run_dir, language)
style.setup_matplotlib()
T = ctx.t
params = ctx.config.stages.tag_design
catalog = load_tag_catalog(ctx.workspace.catalog)
n_rows = tagmod.build_tag_table(ctx.con, catalog, ctx.as_of)
evaluation = tagmod.evaluate_tags(ctx.con, catalog, ctx.as_of, target_products=params.target_products,
                                  window=params.target_window_months)
by_cat = evaluation.groupby("category").agg(tags=("tag_id", "count"), keep=("recommendation", lambda s: (s == "keep").sum()),
                                            review=("recommendation", lambda s: (s == "review").sum()),
                                            drop=("recommendation", lambda s: (s == "drop").sum())).reset_index()
n_customers = ctx.con.execute("SELECT count(DISTINCT customer_id) FROM tag_table").fetchone()[0]
predictive = evaluation[evaluation["iv"] >= 0.02].sort_values("iv", ascending=False)

# %%
show_markdown(T(
    f"## 结论\n\n标签库共 **{len(catalog.tags)} 个客户标签**, 覆盖 {by_cat.shape[0]} 个类别, 已在 {n_customers:,} 户客户 × 每月 上按时点口径计算 (共 {n_rows:,} 行)。"
    f"其中 **{(evaluation.recommendation == 'keep').sum()} 个建议保留**, {(evaluation.recommendation == 'review').sum()} 个需复核, {(evaluation.recommendation == 'drop').sum()} 个建议删除。"
    f"对 {evaluation.attrs['reference_month']} 起 {params.target_window_months} 个月内贷款新增 (基准转化率 {style.fmt_pct(evaluation.attrs['target_rate'])}) 具有预测力 (IV ≥ 0.02) 的标签有 **{len(predictive)} 个**。",
    f"## Conclusions\n\nThe library holds **{len(catalog.tags)} customer tags** in {by_cat.shape[0]} categories, computed point-in-time for {n_customers:,} customers × month ({n_rows:,} rows). "
    f"**{(evaluation.recommendation == 'keep').sum()} are recommended to keep**, {(evaluation.recommendation == 'review').sum()} to review and {(evaluation.recommendation == 'drop').sum()} to drop. "
    f"**{len(predictive)} tags** predict new loans within {params.target_window_months} months of {evaluation.attrs['reference_month']} (IV ≥ 0.02; base rate {style.fmt_pct(evaluation.attrs['target_rate'])})."))

# %%
show_markdown(T("## 标签库结构", "## The library by category"))
show_table(by_cat.rename(columns=dict(category=T("类别", "Category"), tags=T("标签数", "Tags"), keep=T("保留", "Keep"),
                                     review=T("复核", "Review"), drop=T("删除", "Drop"))))

# %%
top = predictive.head(12).iloc[::-1]
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.barh(top["label_zh" if language == "zh" else "label_en"], top["iv"], color=style.PALETTE["navy"])
ax.set_xlabel(T("信息值 IV", "Information value"))
style.chart_title(ax, T("资金流与经营行为标签对贷款新增最有预测力", "Flow and behaviour tags best predict new loans"),
                  T("行内数据, 标签库计算", "Bank data, tag library"), ctx.as_of, language)
show_figure(fig)

# %%
show_markdown(T("## 标签评估明细 (覆盖率、稳定性 PSI、预测力 IV)", "## Tag evaluation (coverage, stability PSI, predictive power IV)"))
cols = ["tag_id", "label_zh" if language == "zh" else "label_en", "category", "coverage", "psi", "iv", "recommendation", "reason"]
show_table(evaluation[cols].rename(columns={"tag_id": T("标签", "Tag"), "label_zh": T("名称", "Name"), "label_en": "Name",
                                            "category": T("类别", "Category"), "coverage": T("覆盖率", "Coverage"),
                                            "psi": "PSI", "iv": "IV", "recommendation": T("建议", "Verdict"),
                                            "reason": T("理由", "Reason")}),
           formats={T("覆盖率", "Coverage"): style.fmt_pct, "PSI": lambda v: "" if v != v else f"{v:.3f}",
                    "IV": lambda v: "" if v != v else f"{v:.3f}"})

# %%
catalog_sheet = pd.DataFrame([{**t.model_dump()} for t in catalog.tags]).merge(
    evaluation[["tag_id", "coverage", "psi", "iv", "recommendation", "reason"]], left_on="id", right_on="tag_id").drop(columns="tag_id")
write_sheets(ctx.deliverable("tag_catalogue.xlsx"), {T("客户标签库", "Customer tags"): catalog_sheet,
             T("业务指标库", "Business metrics"): pd.DataFrame([m.model_dump() for m in catalog.metrics])},
             cover_title=T(f"{ctx.bank_name} 客户标签库与业务指标库", f"{ctx.bank_name} tag and metric library"),
             cover_lines=[T(f"数据截至 {ctx.as_of}。每个标签含定义、SQL 口径、覆盖率、稳定性 (PSI) 与预测力 (IV) 及保留建议。",
                            f"Data as of {ctx.as_of}. Each tag has its definition, SQL, coverage, stability (PSI), predictive power (IV) and a verdict.")])
ctx.save_results("02_tag_design", {
    "tags": len(catalog.tags), "rows": n_rows, "customers": n_customers,
    "reference_month": evaluation.attrs["reference_month"], "target_rate": evaluation.attrs["target_rate"],
    "by_category": by_cat, "recommendations": evaluation["recommendation"].value_counts().to_dict(),
    "predictive_tags": predictive[["tag_id", "iv"]].head(20),
    "evaluation": evaluation[["tag_id", "category", "coverage", "psi", "iv", "recommendation"]],
})
ctx.close()
