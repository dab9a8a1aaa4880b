# %% tags=["parameters"]
workspace = "demo-engagement"
run_dir = ""
language = "zh"
as_of = "2022-12"
seed = 20221231

# %%
import re
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from analysis.context import StageContext
from analysis.catalog import TAG_CATEGORY_EN, load_tag_catalog, load_event_catalog, load_product_catalog
from analysis import tags as tagmod, style
from analysis.stats import psi, psi_band, PSI_BAND_LABELS
from analysis.report import show_markdown, show_table, show_figure, show_kpis
from analysis.xlsx import write_sheets

ctx = StageContext.open(workspace, run_dir, language)
style.setup_matplotlib()
T = ctx.t
zh = language == "zh"
params = ctx.config.stages.tag_design
catalog = load_tag_catalog(ctx.workspace.catalog)
event_catalog = load_event_catalog(ctx.workspace.catalog)
product_catalog = load_product_catalog(ctx.workspace.catalog)
# The customer × month tag table is the heavy step: it runs where engagement.yaml says (DuckDB or Spark).
n_rows = ctx.build_on_engine(lambda con: tagmod.build_tag_table(con, catalog, ctx.as_of), "customer_month", "tag_table")
evaluation = tagmod.evaluate_tags(ctx.con, catalog, ctx.as_of, target_products=params.target_products,
                                  window=params.target_window_months)
n_customers = ctx.con.execute("SELECT count(DISTINCT customer_id) FROM tag_table").fetchone()[0]
ref = evaluation.attrs["reference_month"]
tag_by_id = {t.id: t for t in catalog.tags}
label_col = "label_zh" if zh else "label_en"
cat_name = (lambda c: c) if zh else (lambda c: TAG_CATEGORY_EN[c])

# Snapshot fields exist only at the extract date: judge their coverage there, never drop them for
# being empty at the (earlier) reference month.
snapshot_ids = [t.id for t in catalog.tags if "快照" in t.definition]
if snapshot_ids:
    snap_cov = ctx.con.execute("SELECT " + ", ".join(f"avg(CASE WHEN {i} IS NULL THEN 0 ELSE 1 END)" for i in snapshot_ids)
                               + f" FROM tag_table WHERE month = DATE '{ctx.as_of}-01'").fetchone()
    for i, cov in zip(snapshot_ids, snap_cov):
        m = evaluation["tag_id"] == i
        evaluation.loc[m, "coverage"] = float(cov or 0.0)
        evaluation.loc[m, "recommendation"] = "keep"
        evaluation.loc[m, "reason"] = "snapshot at the extract date: judged at the as-of month"

# Which event triggers read each tag: a tag an event depends on is never dropped silently.
used_by = {t.id: sorted(e.id for e in event_catalog.events if re.search(rf"\b{t.id}\b", e.trigger)) for t in catalog.tags}
evaluation["events_using"] = evaluation["tag_id"].map(lambda i: len(used_by[i]))

# %%
# Stability over the PSI horizon: each numeric tag at the reference month against psi_months earlier.
base_month = str(pd.Period(ref, "M") - params.psi_months)
numeric_ids = [t.id for t in catalog.tags if t.type == "numeric"]
cols_sql = ", ".join(numeric_ids)
base_df = ctx.con.execute(f"SELECT {cols_sql} FROM tag_table WHERE month = DATE '{base_month}-01'").df()
ref_df = ctx.con.execute(f"SELECT {cols_sql} FROM tag_table WHERE month = DATE '{ref}-01'").df()
psi_long = {}
for i in numeric_ids:
    a, b = base_df[i].astype(float), ref_df[i].astype(float)
    if a.notna().sum() > 50 and b.notna().sum() > 50 and a.nunique() > 1:
        try:
            psi_long[i] = float(psi(a.to_numpy(), b.to_numpy(), bins=10))
        except Exception:  # a degenerate distribution has no PSI; shown as blank
            pass
evaluation["psi_horizon"] = evaluation["tag_id"].map(psi_long)
evaluation["psi_band_horizon"] = evaluation["psi_horizon"].map(lambda v: psi_band(v) if v == v else "n/a")

# Redundancy: Spearman correlation of numeric and flag tags at the reference month, on a seeded
# sample of at most 50,000 customers; tags linked by |rho| >= 0.9 form one cluster.
corr_ids = [t.id for t in catalog.tags if t.type in ("numeric", "flag")]
sample = ctx.con.execute(f"SELECT {', '.join(corr_ids)} FROM tag_table WHERE month = DATE '{ref}-01' ORDER BY customer_id").df()
if len(sample) > 50_000:
    sample = sample.sample(n=50_000, random_state=np.random.default_rng(seed).integers(2**31))
sample = sample.astype(float)
varying = [c for c in corr_ids if sample[c].nunique() > 1 and sample[c].notna().sum() > 50]
rho = sample[varying].corr(method="spearman", min_periods=50)
strong = (rho.abs() >= 0.9).to_numpy() & ~np.eye(len(varying), dtype=bool)
n_comp, comp = connected_components(csr_matrix(strong), directed=False)
iv_of = evaluation.set_index("tag_id")["iv"].fillna(0).to_dict()
clusters = []
for k in range(n_comp):
    members = [varying[j] for j in np.flatnonzero(comp == k)]
    if len(members) < 2:
        continue
    # keep the member events depend on, then the most predictive, then the catalogue's first
    rep = sorted(members, key=lambda i: (-len(used_by[i]), -iv_of.get(i, 0), corr_ids.index(i)))[0]
    sub = rho.loc[members, members].abs().to_numpy()
    clusters.append({"representative": rep, "members": sorted(members, key=corr_ids.index),
                     "min_abs_rho": float(sub[~np.eye(len(members), dtype=bool)].min())})
clusters.sort(key=lambda c: (-len(c["members"]), c["representative"]))
redundant_of = {m: c["representative"] for c in clusters for m in c["members"] if m != c["representative"]}
for i, rep in redundant_of.items():
    m = (evaluation["tag_id"] == i) & (evaluation["recommendation"] == "keep")
    if used_by[i]:
        continue  # event triggers read it: keep, the cluster table shows the overlap
    evaluation.loc[m, "recommendation"] = "review"
    evaluation.loc[m, "reason"] = f"redundant with {rep} (|rho| >= 0.9)"

REASON_ZH = {
    "coverage < 5%": "覆盖率低于 5%",
    "almost always zero: check the source data or the definition": "几乎恒为 0: 请核查源数据或口径",
    "unstable month over month (PSI ≥ 0.25)": "月度分布不稳定 (PSI ≥ 0.25)",
    "predictive (IV ≥ 0.1)": "有预测力 (IV ≥ 0.1)",
    "weakly predictive (IV 0.02–0.1)": "弱预测力 (IV 0.02–0.1)",
    "descriptive tag for profiles and triggers": "描述性标签, 用于画像与事件触发",
    "snapshot at the extract date: judged at the as-of month": "提数日快照字段, 按数据截至月评估",
}
VERDICT = {"keep": T("保留", "keep"), "review": T("复核", "review"), "drop": T("删除", "drop")}


def reason_text(r: str) -> str:
    if zh:
        if r.startswith("redundant with "):
            other = r.split()[2]
            return f"与「{tag_by_id[other].label_zh}」高度相关 (|rho| ≥ 0.9), 择一使用"
        return REASON_ZH.get(r, r)
    return r.replace(">=", "≥")


# A category with many levels (branch, grid) scores an inflated IV on a few thousand customers:
# it is shown, but not ranked as predictive.
cat_levels = {t.id: ctx.con.execute(f"SELECT count(DISTINCT {t.id}) FROM tag_table WHERE month = DATE '{ref}-01'").fetchone()[0]
              for t in catalog.tags if t.type == "category"}
high_card = [i for i, n in cat_levels.items() if n > 20]
for i in high_card:
    m = evaluation["tag_id"] == i
    evaluation.loc[m, "iv"] = float("nan")
    evaluation.loc[m, "reason"] = "high-cardinality category: IV not comparable, used for segmentation"
REASON_ZH["high-cardinality category: IV not comparable, used for segmentation"] = "类别过多, IV 虚高不可比, 用于分群而非预测"
evaluation["category_label"] = evaluation["category"].map(cat_name)
evaluation["verdict_label"] = evaluation["recommendation"].map(VERDICT)
evaluation["reason_label"] = evaluation["reason"].map(reason_text)
counts = evaluation["recommendation"].value_counts().reindex(["keep", "review", "drop"], fill_value=0)
predictive = evaluation[evaluation["iv"] >= 0.02].sort_values("iv", ascending=False).reset_index(drop=True)
strong_iv = evaluation[evaluation["iv"] >= 0.1]
psi_counts = evaluation.loc[evaluation["type"] == "numeric", "psi_band"].value_counts()
order = ["基础属性", "经营行为", "资金流", "价值", "风险", "产品持有", "生命周期", "外部数据"]
by_cat = (evaluation.assign(category=pd.Categorical(evaluation["category"], order, ordered=True))
          .groupby("category", observed=True)
          .agg(tags=("tag_id", "count"), keep=("recommendation", lambda s: int((s == "keep").sum())),
               review=("recommendation", lambda s: int((s == "review").sum())),
               drop=("recommendation", lambda s: int((s == "drop").sum())),
               predictive=("iv", lambda s: int((s >= 0.02).sum())),
               used_by_events=("events_using", lambda s: int((s > 0).sum())))
          .reset_index())
by_cat["category"] = by_cat["category"].astype(str)
top = predictive.iloc[0] if len(predictive) else None

# %%
top_text_zh = f"预测力最强的是「{top['label_zh']}」(IV {top['iv']:.2f})。" if top is not None else ""
top_text_en = f"The strongest predictor is “{top['label_en']}” (IV {top['iv']:.2f}). " if top is not None else ""
show_markdown(T(
    f"## 结论\n\n"
    f"- 标签库共 **{len(catalog.tags)} 个客户标签**, 覆盖全部 {len(order)} 个类别, 已按时点口径在 {n_customers:,} 户客户 × 每月上计算 (共 {n_rows:,} 行); "
    f"另有 **{len(product_catalog.products)} 个产品**的产品标签 ({len(product_catalog.product_tags)} 个产品标签) 与 **{len(catalog.metrics)} 个业务指标**。\n"
    f"- 建议 **保留 {counts['keep']} 个**, 复核 {counts['review']} 个, 删除 {counts['drop']} 个; {int((evaluation['events_using'] > 0).sum())} 个标签被 {len(event_catalog.events)} 个商机事件直接引用。\n"
    f"- 以 {ref} 为参考月、{params.target_window_months} 个月内新增贷款为目标 (基准转化率 {style.fmt_pct(evaluation.attrs['target_rate'])}), "
    f"**{len(predictive)} 个标签有预测力** (IV ≥ 0.02), 其中 {len(strong_iv)} 个 IV ≥ 0.1。{top_text_zh}\n"
    f"- 稳定性: 数值标签中 {int(psi_counts.get('stable', 0))} 个月度稳定 (PSI < 0.1), {int(psi_counts.get('watch', 0))} 个需关注, {int(psi_counts.get('shift', 0))} 个显著偏移。\n"
    f"- 冗余: {len(clusters)} 组标签由 |rho| ≥ 0.9 的强相关连成 (共 {sum(len(c['members']) for c in clusters)} 个标签), 每组保留一个代表, 其余列入复核。",
    f"## Conclusions\n\n"
    f"- The library holds **{len(catalog.tags)} customer tags** in all {len(order)} categories, computed point-in-time for {n_customers:,} customers × month ({n_rows:,} rows), "
    f"plus product tags for **{len(product_catalog.products)} products** ({len(product_catalog.product_tags)} product tags) and **{len(catalog.metrics)} business metrics**.\n"
    f"- **Keep {counts['keep']}**, review {counts['review']}, drop {counts['drop']}; {int((evaluation['events_using'] > 0).sum())} tags are read directly by the {len(event_catalog.events)} opportunity events.\n"
    f"- Against new loans within {params.target_window_months} months of {ref} (base rate {style.fmt_pct(evaluation.attrs['target_rate'])}), "
    f"**{len(predictive)} tags are predictive** (IV ≥ 0.02), {len(strong_iv)} of them with IV ≥ 0.1. {top_text_en}\n"
    f"- Stability: of the numeric tags, {int(psi_counts.get('stable', 0))} are stable month over month (PSI < 0.1), {int(psi_counts.get('watch', 0))} to watch and {int(psi_counts.get('shift', 0))} shifted.\n"
    f"- Redundancy: {len(clusters)} clusters of tags are linked by |rho| ≥ 0.9 ({sum(len(c['members']) for c in clusters)} tags); one representative per cluster is kept, the rest go to review."))
show_kpis([(f"{len(catalog.tags)}", T("客户标签", "customer tags")), (f"{counts['keep']}", T("建议保留", "to keep")),
           (f"{len(predictive)}", T("有预测力", "predictive")), (f"{len(clusters)}", T("冗余标签组", "redundant clusters"))])

# %%
show_markdown(T("## 一、标签库结构\n\n八大类别的标签数、评估结论与被商机事件引用的数量。口径 (定义与 SQL) 见标签目录 xlsx。",
                "## 1. The library by category\n\nTags per category, their verdicts and how many the opportunity events read. Definitions and SQL are in the tag catalogue workbook."))
show_table(by_cat.assign(category=by_cat["category"].map(cat_name)).rename(columns=dict(
    category=T("类别", "Category"), tags=T("标签数", "Tags"), keep=T("保留", "Keep"), review=T("复核", "Review"),
    drop=T("删除", "Drop"), predictive=T("有预测力", "Predictive"), used_by_events=T("被事件引用", "Used by events"))))
examples = (evaluation.assign(category=pd.Categorical(evaluation["category"], order, ordered=True))
            .sort_values(["category", "iv"], ascending=[True, False]).groupby("category", observed=True)[label_col]
            .apply(lambda s: ("、" if zh else "; ").join(s.head(6))).reset_index())
examples["category"] = examples["category"].astype(str).map(cat_name)
show_table(examples.rename(columns={"category": T("类别", "Category"), label_col: T("代表标签 (按预测力)", "Example tags (by IV)")}))

# %%
show_markdown(T("## 二、预测力: 哪些标签能预判新增贷款",
                "## 2. Predictive tags: which tags anticipate new loans"))
top_iv = predictive.head(15).iloc[::-1]
if len(top_iv):
    fig, ax = plt.subplots(figsize=(8, 5.2))
    ax.barh(top_iv[label_col], top_iv["iv"], color=style.PALETTE["navy"])
    ax.axvline(0.1, color=style.PALETTE["gold"], lw=1, ls="--")
    ax.set_xlabel(T("信息值 IV (虚线 = 0.1)", "Information value (dashed line = 0.1)"))
    style.chart_title(ax, T(f"「{top['label_zh']}」对新增贷款最有预测力", f"“{top['label_en']}” best predicts new loans"),
                      T("行内数据, 标签库计算", "Bank data, tag library"), ctx.as_of, language)
    show_figure(fig)
show_table(predictive.head(20)[["tag_id", label_col, "category_label", "iv", "coverage"]].rename(columns={
    "tag_id": T("标签", "Tag"), label_col: T("名称", "Name"), "category_label": T("类别", "Category"),
    "iv": "IV", "coverage": T("覆盖率", "Coverage")}),
    formats={"IV": lambda v: f"{v:.3f}", T("覆盖率", "Coverage"): style.fmt_pct})

# %%
show_markdown(T(f"## 三、稳定性: PSI 分档\n\n月度 PSI 比较参考月 {ref} 与上月; 跨期 PSI 比较 {ref} 与 {params.psi_months} 个月前 ({base_month})。"
                "PSI < 0.1 稳定, 0.1–0.25 关注, ≥ 0.25 显著偏移 (需查明原因: 口径变化、季节性或业务变化)。",
                f"## 3. Stability: PSI bands\n\nMonthly PSI compares the reference month {ref} with the month before; horizon PSI compares {ref} with {params.psi_months} months earlier ({base_month}). "
                "PSI < 0.1 stable, 0.1–0.25 watch, ≥ 0.25 shift (find the cause: a definition change, seasonality or a business change)."))
num_eval = evaluation[evaluation["type"] == "numeric"]
band_table = pd.DataFrame({
    T("分档", "Band"): [PSI_BAND_LABELS[b][language] for b in ("stable", "watch", "shift")] + [T("无法计算", "not computable")],
    T("月度 PSI 标签数", "Tags (monthly PSI)"): [int((num_eval["psi_band"] == b).sum()) for b in ("stable", "watch", "shift", "n/a")],
    T("跨期 PSI 标签数", "Tags (horizon PSI)"): [int((num_eval["psi_band_horizon"] == b).sum()) for b in ("stable", "watch", "shift", "n/a")],
})
show_table(band_table)
unstable = num_eval[(num_eval["psi"] >= 0.1) | (num_eval["psi_horizon"] >= 0.1)].sort_values("psi_horizon", ascending=False).reset_index(drop=True)
if len(unstable):
    show_table(unstable.head(25)[["tag_id", label_col, "psi", "psi_horizon"]].rename(columns={
        "tag_id": T("标签", "Tag"), label_col: T("名称", "Name"), "psi": T("月度 PSI", "Monthly PSI"),
        "psi_horizon": T("跨期 PSI", "Horizon PSI")}),
        caption=T("需关注或已偏移的数值标签", "Numeric tags to watch or shifted"),
        formats={T("月度 PSI", "Monthly PSI"): lambda v: "" if v != v else f"{v:.3f}",
                 T("跨期 PSI", "Horizon PSI"): lambda v: "" if v != v else f"{v:.3f}"})

# %%
show_markdown(T(f"## 四、冗余: 高度相关的标签组\n\n在参考月对 {len(sample):,} 户 (最多抽样 5 万户) 计算数值与标志标签的 Spearman 相关; |rho| ≥ 0.9 的标签两两相连成组 (链式相连, 故组内最弱相关可低于 0.9)。"
                "每组保留被事件引用或预测力最高的一个, 其余列入复核 (被事件引用的标签保留)。",
                f"## 4. Redundancy: clusters of highly correlated tags\n\nSpearman correlation of numeric and flag tags at the reference month on {len(sample):,} customers (a seeded sample of at most 50,000); tags linked by |rho| ≥ 0.9 form a cluster (links chain, so the weakest pair in a cluster can be below 0.9). "
                "Each cluster keeps the member events read or, failing that, the most predictive one; the rest go to review (tags events read are kept)."))
if clusters:
    show_table(pd.DataFrame([{
        T("组", "Cluster"): k + 1,
        T("保留代表", "Representative"): tag_by_id[c["representative"]].label_zh if zh else tag_by_id[c["representative"]].label_en,
        T("组内其他标签", "Other members"): ("、" if zh else "; ").join(
            (tag_by_id[m].label_zh if zh else tag_by_id[m].label_en) for m in c["members"] if m != c["representative"]),
        T("组内最弱相关 |rho|", "Weakest |rho| in cluster"): c["min_abs_rho"]} for k, c in enumerate(clusters)]),
        formats={T("组内最弱相关 |rho|", "Weakest |rho| in cluster"): lambda v: f"{v:.2f}"})
else:
    show_markdown(T("没有 |rho| ≥ 0.9 的标签组。", "No tags correlate at |rho| ≥ 0.9."))

# %%
show_markdown(T("## 五、保留 / 复核 / 删除清单\n\n以下为建议复核或删除的标签及理由; 其余标签建议保留。完整评估见附录与标签目录 xlsx。",
                "## 5. Keep / review / drop\n\nTags recommended for review or removal, with the reason; all others are kept. The full evaluation is in the appendix and the workbook."))
flagged = evaluation[evaluation["recommendation"] != "keep"].sort_values(["recommendation", "category", "tag_id"]).reset_index(drop=True)
if len(flagged):
    show_table(flagged[["tag_id", label_col, "category_label", "verdict_label", "reason_label"]].rename(columns={
        "tag_id": T("标签", "Tag"), label_col: T("名称", "Name"), "category_label": T("类别", "Category"),
        "verdict_label": T("建议", "Verdict"), "reason_label": T("理由", "Reason")}))

# %%
show_markdown(T("## 六、产品标签库\n\n每个产品的目标客群、风险等级、定价基础、渠道、期限、交叉销售搭配与指向它的商机事件数。",
                "## 6. Product tag library\n\nEach product's target segment, risk level, pricing basis, channels, term, cross-sell pairs and the number of opportunity events that target it."))
pt_label = {t.id: (t.label_zh if zh else t.label_en) for t in product_catalog.product_tags}
RISK = {"low": T("低", "low"), "medium": T("中", "medium"), "high": T("高", "high")}
CHANNEL = {"branch": T("网点", "branch"), "online": T("线上", "online"), "rm": T("客户经理", "RM")}
sep = "、" if zh else "; "
products_table = pd.DataFrame([{
    T("产品", "Product"): p.id, T("名称", "Name"): p.name_zh if zh else p.name_en,
    T("目标客群", "Target segment"): p.segment_zh if zh else p.segment_en, T("风险", "Risk"): RISK[p.risk_level],
    T("定价基础", "Pricing basis"): p.pricing_basis_zh if zh else p.pricing_basis_en,
    T("渠道", "Channels"): sep.join(CHANNEL[c] for c in p.channels), T("期限", "Term"): p.term_zh if zh else p.term_en,
    T("交叉销售", "Cross-sell"): ", ".join(p.cross_sell), T("事件数", "Events"): len(p.event_ids)} for p in product_catalog.products])
show_table(products_table)
show_table(pd.DataFrame([{T("产品", "Product"): p.id, T("产品标签", "Product tags"): sep.join(pt_label[t] for t in p.tags)}
                         for p in product_catalog.products]))

# %%
show_markdown(T("## 七、业务指标库", "## 7. Business-metric library"))
metrics_df = pd.DataFrame([m.model_dump() for m in catalog.metrics])
if zh:
    show_table(metrics_df[["id", "label_zh", "formula", "grain", "unit"]].rename(columns={
        "id": "指标", "label_zh": "名称", "formula": "公式", "grain": "粒度", "unit": "单位"}))
else:
    show_table(metrics_df[["id", "label_en"]].rename(columns={"id": "Metric", "label_en": "Name"}),
               caption="Formulas, grain and units are in the tag catalogue workbook (Chinese edition).")

# %%
show_markdown(T("## 附录: 标签评估明细 (覆盖率、稳定性 PSI、预测力 IV)", "## Appendix: tag evaluation (coverage, stability PSI, predictive power IV)"))
cols = ["tag_id", label_col, "category_label", "coverage", "psi", "iv", "events_using", "verdict_label"]
fmt3 = lambda v: "" if v != v else f"{v:.3f}"  # noqa: E731
show_table(evaluation[cols].rename(columns={"tag_id": T("标签", "Tag"), label_col: T("名称", "Name"),
                                            "category_label": T("类别", "Category"), "coverage": T("覆盖率", "Coverage"),
                                            "psi": "PSI", "iv": "IV", "events_using": T("事件引用", "Events"),
                                            "verdict_label": T("建议", "Verdict")}),
           formats={T("覆盖率", "Coverage"): style.fmt_pct, "PSI": fmt3, "IV": fmt3})

# %%
stats_cols = ["tag_id", "coverage", "share_nonzero", "psi", "psi_horizon", "iv", "events_using", "recommendation", "reason"]
tags_sheet = pd.DataFrame([t.model_dump() for t in catalog.tags]).merge(
    evaluation[stats_cols], left_on="id", right_on="tag_id").drop(columns="tag_id")
tags_sheet["category"] = tags_sheet["category"].map(cat_name)
tags_sheet["reason"] = tags_sheet["reason"].map(reason_text)
tags_sheet["recommendation"] = tags_sheet["recommendation"].map(VERDICT)
cluster_sheet = pd.DataFrame([{"cluster": k + 1, "representative": c["representative"], "members": ", ".join(c["members"]),
                               "min_abs_rho": round(c["min_abs_rho"], 4)} for k, c in enumerate(clusters)])
products_sheet = pd.DataFrame([p.model_dump() for p in product_catalog.products])
for c in ("channels", "cross_sell", "event_ids", "tags"):
    products_sheet[c] = products_sheet[c].map(", ".join)
product_tags_sheet = pd.DataFrame([t.model_dump() for t in product_catalog.product_tags])
if not zh:
    # The English workbook carries no Chinese: definitions and SQL (with the bank's Chinese data values)
    # are in the Chinese edition.
    tags_sheet = tags_sheet.drop(columns=["label_zh", "definition", "expr", "owner"])
    products_sheet = products_sheet.drop(columns=[c for c in products_sheet.columns if c.endswith("_zh")])
    product_tags_sheet = product_tags_sheet.drop(columns=["label_zh"])
    metrics_sheet = metrics_df[["id", "label_en"]]
else:
    metrics_sheet = metrics_df
write_sheets(ctx.deliverable("tag_catalogue.xlsx"), {
    T("客户标签库", "Customer tags"): tags_sheet, T("冗余标签组", "Redundant clusters"): cluster_sheet,
    T("产品标签库", "Products"): products_sheet, T("产品标签词表", "Product tags"): product_tags_sheet,
    T("业务指标库", "Business metrics"): metrics_sheet},
    cover_title=T(f"{ctx.bank_name} 客户标签库、产品标签库与业务指标库", f"{ctx.bank_name} tag, product and metric library"),
    cover_lines=[T(f"数据截至 {ctx.as_of}。每个标签含定义、SQL 口径、负责部门、更新频率、覆盖率、稳定性 (PSI)、预测力 (IV)、被事件引用数及保留建议。",
                   f"Data as of {ctx.as_of}. Each tag has its category, type, coverage, stability (PSI), predictive power (IV), the number of events using it and a verdict."),
                 T("冗余标签组: 参考月 Spearman |rho| ≥ 0.9 的标签组及保留代表。", "Redundant clusters: tags with Spearman |rho| ≥ 0.9 at the reference month and the representative kept."),
                 *([] if zh else ["Definitions, SQL and metric formulas are in the Chinese edition of this workbook (language: zh)."])])
ctx.save_results("02_tag_design", {
    "tags": len(catalog.tags), "rows": n_rows, "customers": n_customers,
    "reference_month": ref, "target_rate": evaluation.attrs["target_rate"],
    "by_category": by_cat, "recommendations": {k: int(v) for k, v in counts.items()},
    "predictive_tags": predictive[["tag_id", "iv"]].head(20),
    "psi_bands": {b: int((num_eval["psi_band"] == b).sum()) for b in ("stable", "watch", "shift", "n/a")},
    "redundant_clusters": [{"representative": c["representative"], "members": c["members"],
                            "min_abs_rho": round(c["min_abs_rho"], 4)} for c in clusters],
    "products": len(product_catalog.products), "product_tags": len(product_catalog.product_tags),
    "metrics": len(catalog.metrics), "events": len(event_catalog.events),
    "evaluation": evaluation[["tag_id", "category", "coverage", "psi", "psi_horizon", "iv", "events_using", "recommendation"]],
})
ctx.close()
