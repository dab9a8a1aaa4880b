"""An English engagement renders wholly in English: no Chinese characters in any report, except the
bank's own Chinese name where the bank has no English one.

One module-scoped demo in English (1,500 customers) serves every test; it runs in its own xdist
group. Leaks are listed by report so whoever owns the stage sees exactly which lines leak.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.i18n import CJK_RE
from analysis.privacy import pdf_text_pages

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("english_demo")]

CUSTOMERS = 1500
STAGES = ["01_data_assessment", "02_tag_design", "03_value_tiers", "04_opportunities", "05_pilot"]
# Reports owned by this suite's deliverables (strict); the stage reports above belong to the
# stage notebooks and are reported as expected failures while they still leak (see leaks()).
OWN = ["executive_summary"]


@pytest.fixture(scope="module")
def english_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("english") / "demo"
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "demo", str(root), "--customers", str(CUSTOMERS),
                           "--language", "en"], capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    bank = json.loads((root / "truth.json").read_text(encoding="utf-8"))["bank"]
    return root, bank


def html_text(path: Path) -> str:
    """Visible text of an html page: no styles, no inlined images, no tags."""
    page = path.read_text(encoding="utf-8")
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    page = re.sub(r"data:[^\"')\s]+", " ", page)
    return html_lib.unescape(re.sub(r"<[^>]+>", "\n", page))


def leaks(text: str, bank: dict) -> list[str]:
    """Lines holding Chinese characters, after removing the bank's Chinese name when it has no English one."""
    allowed = bank["name_zh"] if not bank.get("name_en") or bank["name_en"] == bank["name_zh"] else None
    out = []
    for line in text.splitlines():
        probe = line.replace(allowed, "") if allowed else line
        if CJK_RE.search(probe):
            out.append(line.strip()[:120])
    return sorted(set(out))


def _report_text(root: Path, name: str) -> dict[str, str]:
    reports = root / "reports"
    return {f"{name}.html": html_text(reports / f"{name}.html"),
            f"{name}.pdf": "\n".join(pdf_text_pages(reports / f"{name}.pdf"))}


def test_the_demo_bank_has_an_english_name(english_demo):
    _, bank = english_demo
    assert bank["name_en"] and not CJK_RE.search(bank["name_en"])


@pytest.mark.parametrize("name", OWN)
def test_executive_summary_is_wholly_english(english_demo, name):
    root, bank = english_demo
    found = {k: leaks(v, bank) for k, v in _report_text(root, name).items()}
    assert not any(found.values()), found
    text = _report_text(root, name)[f"{name}.pdf"]
    assert bank["name_en"] in text and "Key conclusions" in text
    assert "\ufffd" not in text and "□" not in text


@pytest.mark.parametrize("stage", STAGES)
def test_stage_reports_are_english(english_demo, stage):
    root, bank = english_demo
    found = {k: leaks(v, bank) for k, v in _report_text(root, stage).items()}
    found = {k: v for k, v in found.items() if v}
    assert not found, f"{stage} leaks Chinese: " + json.dumps({k: v[:8] for k, v in found.items()}, ensure_ascii=False)


def test_deck_is_english(english_demo):
    from pptx import Presentation

    root, bank = english_demo
    deck = root / "reports" / "executive_deck.pptx"
    prs = Presentation(str(deck))
    assert 10 <= len(prs.slides) <= 15
    text = "\n".join(sh.text_frame.text for s in prs.slides for sh in s.shapes if sh.has_text_frame)
    assert not leaks(text, bank), leaks(text, bank)
    assert bank["name_en"] in text


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_deck_converts_in_libreoffice(english_demo, tmp_path):
    from analysis.deck import pptx_to_pdf

    root, bank = english_demo
    pdf = pptx_to_pdf(root / "reports" / "executive_deck.pptx", tmp_path)
    text = "\n".join(pdf_text_pages(pdf))
    assert "Key conclusions" in text and bank["name_en"] in text and not leaks(text, bank)


def test_dashboard_and_one_pagers_are_english(english_demo):
    root, bank = english_demo
    pages = [root / "reports" / "pilot_dashboard.html", *sorted((root / "reports" / "customer360").glob("*.html"))]
    assert len(pages) == 6  # the dashboard and the top 5 strategic customers
    found = {p.name: leaks(html_text(p), bank) for p in pages}
    assert not any(found.values()), {k: v for k, v in found.items() if v}
    for p in pages:
        page = p.read_text(encoding="utf-8")
        assert "Traceback" not in page and "http://" not in page and "https://" not in page
