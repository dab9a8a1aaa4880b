# %% tags=["parameters"]
workspace = "demo-engagement"
run_dir = ""
language = "zh"
as_of = "2022-12"
seed = 20221231

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from analysis.context import StageContext
from analysis.catalog import load_event_catalog, load_tag_catalog
from analysis import events as evmod, dispatch, style
from analysis.report import show_markdown, show_table, show_figure, show_kpis
from analysis.xlsx import write_sheets

ctx = StageContext.open(workspace, run_dir, language)
style.setup_matplotlib()
T = ctx.t
p = ctx.config.stages.opportunities
catalog = load_event_catalog(ctx.workspace.catalog)
tag_ids = [r[0] for r in ctx.con.execute("DESCRIBE tag_table").fetchall()]
products = [r[0] for r in ctx.con.execute("SELECT product_id FROM products").fetchall()]
evmod.validate_events(catalog, tag_ids, products)
ctx.build_on_engine(lambda con: evmod.build_event_triggers(con, catalog), "event_triggers", "product_starts")
# The backtest recomputes every trigger on the data truncated at its last month and rejects any
# event whose past triggers change (it would be reading the outcome window).
card, monthly = evmod.backtest_events(ctx.con, catalog, ctx.as_of, window=p.outcome_window_months,
                                      n_months=p.backtest_months, fdr_q=p.fdr_q, min_lift=p.min_lift,
                                      min_triggers=p.min_triggers, tag_catalog=load_tag_catalog(ctx.workspace.catalog))
first, last = card.attrs["backtest_months"]
leaking = card.loc[~card["point_in_time"], "event_id"].tolist()
balances = evmod.new_product_balances(ctx.con, first, last)
pilot_exp = evmod.pilot_expectations(card, balances)
tasks = dispatch.build_task_list(ctx.con, catalog, card, ctx.as_of, rm_capacity=p.rm_capacity_per_month,
                                 contacts_per_customer=p.contacts_per_customer, language=language)
product_names = dict(ctx.con.execute(
    f"SELECT product_id, {'product_name_zh' if language == 'zh' else 'product_name_en'} FROM products").fetchall())
if len(tasks):
    tasks = dispatch.add_expected_balance(tasks, balances)
    tasks = dispatch.attach_recommendations(tasks, dispatch.recommend_products(ctx.con, ctx.as_of), product_names)
selected = card[card["selected"]]
label = "label_zh" if language == "zh" else "label_en"
expected_conv = float(tasks["expected_conversion"].sum()) if len(tasks) else 0.0
expected_bal = float(tasks["expected_balance"].sum()) if len(tasks) else 0.0

# %%
show_markdown(T(
    f"## 结论\n\n在 {first} 至 {last} 的 {p.backtest_months} 个月回测中, 参与回测的 {len(card)} 个商机事件 (另有 {len(catalog.events) - len(card)} 个风险事件只用于暂停营销) 中有 **{len(selected)} 个** 在控制错误发现率 (FDR ≤ {p.fdr_q:.0%}) 后仍显著提升目标产品的 {p.outcome_window_months} 个月内转化, 建议纳入试点。"
    f"按本月 ({ctx.as_of}) 触发情况和客户经理每月 {p.rm_capacity_per_month} 户的承载上限, 生成 **{len(tasks):,} 户** 营销名单, 分派给 {tasks['rm_id'].nunique() if len(tasks) else 0} 位客户经理, 预计成交 **{expected_conv:,.0f} 户**, 带来新增余额约 **{style.fmt_money(expected_bal, 'zh')}** (回测转化率 × 行内同类新开产品的平均余额)。",
    f"## Conclusions\n\nBacktested over the {p.backtest_months} trigger months {first} to {last}, **{len(selected)} of {len(card)} backtested events** (plus {len(catalog.events) - len(card)} risk events that only suspend offers) raise take-up of their target product within {p.outcome_window_months} months significantly after false-discovery control (FDR ≤ {p.fdr_q:.0%}) and are recommended for the pilot. "
    f"This month's ({ctx.as_of}) triggers, capped at {p.rm_capacity_per_month} customers per RM, give **{len(tasks):,} customers** to contact across {tasks['rm_id'].nunique() if len(tasks) else 0} RMs, with **{expected_conv:,.0f} expected conversions** bringing about **{style.fmt_money(expected_bal, 'en')}** of new balances (backtested hit rate × the average balance of a new product of that kind at this bank)."))

show_kpis([(T("入选事件", "Events selected"), f"{len(selected)} / {len(card)}"),
           (T("本月名单客户", "Customers on this month's lists"), f"{len(tasks):,}"),
           (T("预计成交户数", "Expected conversions"), f"{expected_conv:,.0f}"),
           (T("预计新增余额", "Expected new balances"), style.fmt_money(expected_bal, language))])

# %%
plot = card[card["lift"].notna() & card["lift_ci_low"].notna()].sort_values("lift")
fig, ax = plt.subplots(figsize=(8, 0.35 * len(plot) + 1.5))
y = np.arange(len(plot))
colors = [style.PALETTE["navy"] if s else style.PALETTE["grey_light"] for s in plot["selected"]]
ax.hlines(y, plot["lift_ci_low"], plot["lift_ci_high"], color=colors, lw=2)
ax.scatter(plot["lift"], y, color=colors, zorder=3)
ax.axvline(1, color=style.PALETTE["grey"], lw=1, ls="--")
ax.set_yticks(y, plot[label])
ax.set_xlabel(T("提升度 (触发客户转化率 / 未触发客户转化率), 95% 置信区间", "Lift (hit rate / base rate), 95% interval"))
style.chart_title(ax, T(f"{len(selected)} 个事件的转化提升经回测证实", f"{len(selected)} events show a proven lift in take-up"),
                  T("行内数据回测", "Backtest on the bank's data"), ctx.as_of, language)
show_figure(fig)

# %%
show_markdown(T("## 商机事件记分卡", "## Event scorecard") + "\n\n" + T(
    "提升度区间按客户聚类计算 (同一客户多个月份并非独立样本); q 值为 Benjamini–Hochberg 校正后的错误发现率。95% 区间的含义: 若重复抽样, 这样构造的区间有 95% 会覆盖真实提升度。",
    "Lift intervals are clustered by customer (a customer's months are not independent); q is the Benjamini–Hochberg false-discovery rate. A 95% interval is built so that, over repeated samples, 95% of such intervals cover the true lift."))
sc = card[[label, "target_products", "triggers", "hit_rate", "base_rate", "lift", "lift_ci_low", "lift_ci_high", "q_value", "monthly_volume", "selected"]].copy()
sc["target_products"] = sc["target_products"].map(lambda ids: ", ".join(product_names.get(x, x) for x in ids.split(",") if x))
sc["interval"] = [f"{a:.2f}–{b:.2f}" if a == a else "" for a, b in zip(sc.lift_ci_low, sc.lift_ci_high)]
sc = sc.drop(columns=["lift_ci_low", "lift_ci_high"])
sc["selected"] = sc["selected"].map({True: T("入选", "yes"), False: ""})
show_table(sc.rename(columns={label: T("事件", "Event"), "target_products": T("目标产品", "Product"), "triggers": T("触发次数", "Triggers"),
                              "hit_rate": T("触发转化率", "Hit rate"), "base_rate": T("基准转化率", "Base rate"), "lift": T("提升度", "Lift"),
                              "interval": T("95%区间", "95% CI"), "q_value": "q", "monthly_volume": T("月均触发", "Per month"), "selected": T("入选", "Selected")}),
           formats={T("触发转化率", "Hit rate"): style.fmt_pct, T("基准转化率", "Base rate"): style.fmt_pct,
                    T("提升度", "Lift"): lambda v: "" if v != v else f"{v:.2f}", "q": lambda v: "" if v != v else f"{v:.3f}",
                    T("月均触发", "Per month"): lambda v: f"{v:,.0f}"})

# %%
show_markdown(T("## 建议纳入试点的事件及理由", "## Events recommended for the pilot, and why") + "\n\n" + T(
    f"入选条件: 回测触发不少于 {p.min_triggers} 次; 提升度不低于 {p.min_lift:g} 且 95% 区间下限高于 1; FDR 校正后 q ≤ {p.fdr_q:g}; 且通过时点一致性检验 (把 {last} 之后的数据全部删除重算, 历史触发不变)。"
    "预计月成交 = 月均触发 × 回测转化率; 其中 \"增量\" 扣除了不触发时也会发生的基准转化; 预计新增余额 = 预计成交 × 该产品在行内新开时的平均余额 (贷款取合同金额, 存款取开户后 3 个月日均; 结算类产品无余额)。",
    f"An event is selected when it triggered at least {p.min_triggers} times in the backtest, its lift is at least {p.min_lift:g} with the 95% interval above 1, its Benjamini–Hochberg q ≤ {p.fdr_q:g}, and it passes the point-in-time check (deleting every fact after {last} and recomputing leaves its past triggers unchanged). "
    "Expected monthly conversions = monthly triggers × backtested hit rate; 'incremental' subtracts the conversions the base rate gives anyway; expected new balance = expected conversions × the average balance a new product of that kind brought at this bank (loans: contract amount; deposits: daily average over the first 3 months; service products carry none)."))
if leaking:
    show_markdown(T(f"**时点一致性检验未通过、已剔除的事件:** {', '.join(leaking)} (其触发条件读取了触发月之后的数据)。",
                    f"**Rejected for reading future data:** {', '.join(leaking)} (their triggers change when later months are removed)."))
if len(pilot_exp):
    pe = pilot_exp.merge(card[["event_id", "lift_ci_low", "q_value"]], on="event_id")
    pe = pe.assign(event=pe[label], product=pe["product_id"].map(product_names).fillna(pe["product_id"]),
                   why=[T(f"提升 {r.lift:.1f} 倍 (下限 {r.lift_ci_low:.2f}), q={r.q_value:.3f}",
                          f"lift {r.lift:.1f}× (lower bound {r.lift_ci_low:.2f}), q={r.q_value:.3f}") for r in pe.itertuples()])
    show_table(pe[["event", "product", "why", "monthly_volume", "hit_rate", "expected_conversions", "incremental_conversions",
                   "expected_balance"]].rename(columns={
                       "event": T("事件", "Event"), "product": T("目标产品", "Product"), "why": T("入选理由", "Why"),
                       "monthly_volume": T("月均触发", "Triggers per month"), "hit_rate": T("回测转化率", "Hit rate"),
                       "expected_conversions": T("预计月成交", "Expected conversions / month"),
                       "incremental_conversions": T("其中增量", "of which incremental"),
                       "expected_balance": T("预计新增余额", "Expected new balance")}),
               formats={T("月均触发", "Triggers per month"): lambda v: f"{v:,.0f}", T("回测转化率", "Hit rate"): style.fmt_pct,
                        T("预计月成交", "Expected conversions / month"): lambda v: f"{v:,.1f}",
                        T("其中增量", "of which incremental"): lambda v: f"{v:,.1f}",
                        T("预计新增余额", "Expected new balance"): lambda v: "" if v != v else style.fmt_money(v, language)})

# %%
if len(tasks):
    show_markdown(T("## 本月营销名单 (按支行汇总)", "## This month's task lists by sub-branch"))
    show_table(dispatch.branch_summary(tasks, language=language),
               formats={T("预计成交户数", "Expected conversions"): lambda v: f"{v:,.1f}",
                        T("预计新增余额(元)", "Expected new balance (CNY)"): lambda v: style.fmt_money(v, language)})

# %%
internal = dispatch.write_dispatch_workbook(tasks, catalog, ctx.deliverable("rm_task_lists_internal.xlsx"), language=language,
                                            masked=False, bank_name=ctx.bank_name, as_of=ctx.as_of) if len(tasks) and p.internal_lists else None
masked = dispatch.write_dispatch_workbook(tasks, catalog, ctx.deliverable("rm_task_lists.xlsx"), language=language,
                                          masked=True, bank_name=ctx.bank_name, as_of=ctx.as_of) if len(tasks) else None
ctx.save_results("04_opportunities", {
    "backtest_first_month": first, "backtest_last_month": last, "outcome_window_months": p.outcome_window_months,
    "fdr_q": p.fdr_q,
    "events": card[["event_id", "category", "target_products", "triggers", "hits", "hit_rate", "hit_rate_ci_low", "hit_rate_ci_high",
                    "base_rate", "lift", "lift_ci_low", "lift_ci_high", "p_value", "q_value", "monthly_volume", "coverage",
                    "lead_time_months", "months_lift_above_1", "selected", "reason"]],
    "selected_events": selected["event_id"].tolist(),
    "point_in_time_cutoff": card.attrs["point_in_time_cutoff"], "leaking_events": leaking,
    "pilot_events": pilot_exp[["event_id", "product_id", "monthly_volume", "hit_rate", "expected_conversions",
                               "incremental_conversions", "avg_new_balance", "expected_balance"]].round(6),
    "new_product_balances": balances.round(2),
    "task_list": {"customers": int(len(tasks)), "rms": int(tasks["rm_id"].nunique()) if len(tasks) else 0,
                  "expected_conversions": round(expected_conv, 6), "expected_balance": round(expected_bal, 2)},
})
ctx.close()
