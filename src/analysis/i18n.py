"""Labels in zh and en shared by notebooks and reports, so a report never mixes languages."""

from __future__ import annotations

STAGE_TITLES = {
    "01_data_assessment": ("数据评估报告", "Data assessment"),
    "02_tag_design": ("标签体系设计报告", "Tag library design"),
    "03_value_tiers": ("客户价值分层与一户一价报告", "Value tiers and per-customer pricing"),
    "04_opportunities": ("商机事件回测与营销名单报告", "Opportunity events and RM task lists"),
    "05_pilot": ("试点评估报告", "Pilot evaluation"),
    "executive_summary": ("小微客户数字化经营 管理层摘要", "SME digital marketing: executive summary"),
}


def stage_title(stage: str, language: str) -> str:
    zh, en = STAGE_TITLES[stage]
    return zh if language == "zh" else en


def t(zh: str, en: str, language: str) -> str:
    """Pick the label of the report language."""
    return zh if language == "zh" else en
