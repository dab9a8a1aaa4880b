"""The playbook book renders without Quarto, and every command and notebook it quotes exists."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.book import chapter_source, chapters, render_builtin
from analysis.workspace import STAGES

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "playbook"


def _all_text():
    return "\n".join(chapter_source(BOOK, c) for c in chapters(BOOK))


def test_book_renders_to_html_without_quarto(tmp_path):
    pages = render_builtin(BOOK, tmp_path)
    assert len(pages) == len(chapters(BOOK))
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "小微数字化经营咨询手册" in index and 'href="phases.html"' in index
    templates = (tmp_path / "templates.html").read_text(encoding="utf-8")
    assert "balances_monthly" in templates  # the data request table list is generated from the schema
    assert "{{" not in templates


def quoted_commands():
    cmds = set(re.findall(r"`?playbook ([a-z][a-z\-]+)", _all_text()))
    return sorted(cmds)


def test_book_quotes_commands():
    assert {"init", "ingest", "run", "render", "assess", "evaluate-pilot"} <= set(quoted_commands())


@pytest.mark.parametrize("cmd", quoted_commands())
def test_every_quoted_command_parses(cmd):
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", cmd, "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"`playbook {cmd} --help` failed: {proc.stderr[-500:]}"


def test_every_quoted_notebook_exists():
    text = _all_text()
    for nb in re.findall(r"notebooks/([\w]+)\.ipynb", text):
        assert (ROOT / "notebooks" / f"{nb}.ipynb").exists(), nb
    for stage in set(re.findall(r"`(0[1-5]_[a-z_]+|executive_summary)`", text)):
        assert stage in STAGES, stage


def test_internal_links_resolve():
    names = {Path(c).stem for c in chapters(BOOK)}
    for target in re.findall(r"\]\(([\w\-]+)\.md", _all_text()):
        assert target in names, target
