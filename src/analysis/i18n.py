"""Labels in zh and en shared by notebooks and reports, so a report never mixes languages.

The glossary (playbook/glossary.yaml, shipped as a package resource) maps the terms of the
engagement and the Chinese data values of the bank's systems (customer types, account types,
ratings) to English; ``translate`` uses it so an English report never shows a raw Chinese value.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

STAGE_TITLES = {
    "01_data_assessment": ("数据评估报告", "Data assessment"),
    "02_tag_design": ("标签体系设计报告", "Tag library design"),
    "03_value_tiers": ("客户价值分层与一户一价报告", "Value tiers and per-customer pricing"),
    "04_opportunities": ("商机事件回测与营销名单报告", "Opportunity events and RM task lists"),
    "05_pilot": ("试点评估报告", "Pilot evaluation"),
    "executive_summary": ("小微客户数字化经营 管理层摘要", "SME digital marketing: executive summary"),
    "executive_deck": ("小微客户数字化经营 管理层汇报", "SME digital marketing: leadership briefing"),
    "pilot_dashboard": ("试点进度看板", "Pilot progress dashboard"),
    "customer360": ("客户一页纸画像", "Customer 360 one-pager"),
}

CJK_RE = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


def stage_title(stage: str, language: str) -> str:
    zh, en = STAGE_TITLES[stage]
    return zh if language == "zh" else en


def t(zh: str, en: str, language: str) -> str:
    """Pick the label of the report language."""
    return zh if language == "zh" else en


def glossary_path() -> Path:
    """playbook/glossary.yaml in a source tree, else the copy shipped inside the package."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "playbook" / "glossary.yaml",
                      here.parent / "_resources" / "glossary.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("playbook/glossary.yaml is missing from the installation")


@lru_cache(maxsize=1)
def glossary() -> dict[str, tuple[str, str]]:
    """Term id → (zh, en), as written in the glossary file."""
    import yaml

    data = yaml.safe_load(glossary_path().read_text(encoding="utf-8"))
    return {str(e["id"]): (str(e["zh"]), str(e["en"])) for e in data["terms"]}


@lru_cache(maxsize=1)
def _zh_to_en() -> dict[str, str]:
    out: dict[str, str] = {}
    for zh, en in glossary().values():
        out.setdefault(zh, en)  # first entry wins where a Chinese term repeats
    return out


def term(term_id: str, language: str) -> str:
    """A glossary term in the report language; an unknown id is a programming error (KeyError)."""
    zh, en = glossary()[term_id]
    return zh if language == "zh" else en


def translate(value, language: str) -> str:
    """A data value in the report language: Chinese values become their glossary English.

    A Chinese value the glossary lacks is shown as "—" in English rather than leak Chinese.
    """
    text = "" if value is None else str(value)
    if language == "zh" or not CJK_RE.search(text):
        return text
    return _zh_to_en().get(text.strip(), "—")


def has_cjk(text: str) -> bool:
    """True when text holds a Chinese (CJK) character or full-width punctuation."""
    return bool(CJK_RE.search(text))
