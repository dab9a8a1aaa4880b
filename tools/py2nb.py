"""Build notebooks/<stage>.ipynb from notebooks/src/<stage>.py (percent format, like jupytext).

Cells start with `# %%`; `# %% [markdown]` starts a markdown cell whose lines are `# `-prefixed;
`# %% tags=["parameters"]` tags a cell. Outputs are never written. tests/test_notebooks.py fails
when a committed notebook differs from its source, so edit the .py and run `python tools/py2nb.py`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def convert(source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    cells, current, kind, tags = [], [], None, []

    def flush():
        if kind is None:
            return
        text = "\n".join(current).strip("\n")
        if kind == "markdown":
            text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.splitlines())
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in source.splitlines():
        m = HEADER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            current = []
        elif kind is not None:
            current.append(line)
    flush()
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i:02d}"  # stable ids: regenerating gives identical files
    nb.cells = cells
    return nb


def render(source_path: Path) -> str:
    return nbformat.writes(convert(source_path.read_text(encoding="utf-8"))) + "\n"


def main() -> int:
    for src in sorted((ROOT / "notebooks" / "src").glob("*.py")):
        (ROOT / "notebooks" / f"{src.stem}.ipynb").write_text(render(src), encoding="utf-8")
        print(f"notebooks/{src.stem}.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
