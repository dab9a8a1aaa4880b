"""Render the playbook (playbook/*.md) as an html book: Quarto where installed, else pandoc.

`python -m analysis.book --out build/playbook` (what `make playbook` runs). Generated parts: the data
request table list (from data_templates/schema.yaml) and the glossary (from playbook/glossary.yaml).
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .resources import repo_root
from .schema import load_schema

CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;
margin:0;color:#1d2733;line-height:1.65}
nav{position:fixed;top:0;left:0;bottom:0;width:250px;background:#0B2545;color:#fff;padding:24px 18px;
overflow:auto;font-size:14px}
nav a{color:#dfe7f1;text-decoration:none;display:block;padding:4px 0}
nav a.current{color:#C8963E;font-weight:bold}
nav .title{font-size:16px;font-weight:bold;margin-bottom:16px;color:#fff}
main{margin-left:290px;max-width:900px;padding:32px 40px}
h1{color:#0B2545;border-bottom:3px solid #C8963E;padding-bottom:6px}
h2,h3{color:#0B2545}
table{border-collapse:collapse;margin:12px 0}
th{background:#0B2545;color:#fff;padding:6px 10px;text-align:left}
td{border-bottom:1px solid #d6dde6;padding:6px 10px;vertical-align:top}
blockquote{background:#f3f6f9;border-left:4px solid #13807A;margin:12px 0;padding:8px 16px}
code{background:#f3f6f9;padding:1px 4px;border-radius:3px}
pre{background:#f3f6f9;padding:12px;overflow:auto}
footer{margin-top:48px;color:#7a8796;font-size:12px}
"""


def book_dir() -> Path:
    root = repo_root()
    if root is None:
        raise SystemExit("the playbook book is rendered from a source checkout (playbook/ folder)")
    return root / "playbook"


def chapters(folder: Path) -> list[str]:
    cfg = yaml.safe_load((folder / "_quarto.yml").read_text(encoding="utf-8"))
    return list(cfg["book"]["chapters"])


def data_request_tables() -> str:
    """The table list of the data request letter, generated from the extract contract."""
    s = load_schema()
    lines = ["| 表 | 中文名 | 必需 | 字段数 | 说明 |", "| --- | --- | --- | --- | --- |"]
    for t in s.tables.values():
        lines.append(f"| `{t.name}` | {t.label_zh} | {'是' if t.required else '可选'} | {len(t.columns)} | "
                     f"{t.description.replace('|', '/')} |")
    return "\n".join(lines)


def glossary_markdown(folder: Path) -> str:
    path = folder / "glossary.yaml"
    terms = []
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        terms = data.get("terms", data if isinstance(data, list) else [])
    lines = ["# 术语表 · Glossary", "",
             "> **In brief (EN).** Terms used by the reports and this book, in Chinese and English; a report "
             "uses one language throughout.", "",
             "| 中文 | English | 说明 |", "| --- | --- | --- |"]
    for t in terms:
        if isinstance(t, dict):
            lines.append(f"| {t.get('zh', '')} | {t.get('en', '')} | {t.get('note_zh') or t.get('note') or t.get('definition', '')} |")
    return "\n".join(lines) + "\n"


def chapter_source(folder: Path, name: str) -> str:
    if name == "glossary.md" and not (folder / name).exists():
        return glossary_markdown(folder)
    text = (folder / name).read_text(encoding="utf-8")
    return text.replace("{{DATA_REQUEST_TABLES}}", data_request_tables())


def _title(md: str, fallback: str) -> str:
    m = re.search(r"^# (.+)$", md, re.M)
    return m.group(1).strip() if m else fallback


def render_builtin(folder: Path, out: Path) -> list[Path]:
    import pypandoc

    out.mkdir(parents=True, exist_ok=True)
    names = chapters(folder)
    sources = {n: chapter_source(folder, n) for n in names}
    titles = {n: _title(sources[n], n) for n in names}
    written = []
    for n in names:
        body = pypandoc.convert_text(sources[n], "html5", format="gfm")
        body = re.sub(r'href="([\w\-]+)\.md(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
        nav = "".join(f'<a href="{Path(c).stem}.html"{" class=current" if c == n else ""}>{html.escape(titles[c])}</a>'
                      for c in names)
        page = (f"<!DOCTYPE html><html lang=zh><head><meta charset=utf-8><title>{html.escape(titles[n])}</title>"
                f"<style>{CSS}</style></head><body><nav><div class=title>小微数字化经营咨询手册</div>{nav}</nav>"
                f"<main>{body}<footer>SME marketing playbook · 内部资料</footer></main></body></html>")
        p = out / f"{Path(n).stem}.html"
        p.write_text(page, encoding="utf-8")
        written.append(p)
    return written


def render_book(out: Path, *, use_quarto: bool | None = None) -> list[Path]:
    folder = book_dir()
    if use_quarto is None:
        use_quarto = shutil.which("quarto") is not None
    if use_quarto:
        # Quarto renders the same chapters; the generated glossary must exist as a file for it.
        (folder / "glossary.md").write_text(glossary_markdown(folder), encoding="utf-8") \
            if not (folder / "glossary.md").exists() else None
        subprocess.run(["quarto", "render", str(folder), "--output-dir", str(out.resolve())], check=True)
        return sorted(out.glob("*.html"))
    return render_builtin(folder, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render the playbook book to html.")
    ap.add_argument("--out", type=Path, default=Path("build/playbook"))
    ap.add_argument("--builtin", action="store_true", help="use the built-in renderer even where Quarto exists")
    args = ap.parse_args(argv)
    pages = render_book(args.out, use_quarto=False if args.builtin else None)
    print(f"{len(pages)} pages in {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
