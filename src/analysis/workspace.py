"""The engagement workspace: one place that decides every path (DESIGN.md §2)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .config import Bank, Engagement, dump_engagement, load_engagement
from .errors import InputError
from .resources import catalog_dir, data_templates_dir

STAGES: tuple[str, ...] = (
    "01_data_assessment", "02_tag_design", "03_value_tiers",
    "04_opportunities", "05_pilot", "executive_summary",
)


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, path: str | Path) -> "Workspace":
        root = Path(path).expanduser().resolve()
        if not (root / "engagement.yaml").exists():
            raise InputError("not a workspace: engagement.yaml is missing", file=str(root),
                             fix="run `playbook init PATH --bank NAME` first, or point at the workspace folder")
        return cls(root)

    # ---- layout
    @property
    def config_path(self) -> Path:
        return self.root / "engagement.yaml"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def deliverables(self) -> Path:
        return self.root / "deliverables"

    @property
    def truth_path(self) -> Path:
        return self.root / "truth.json"

    def config(self) -> Engagement:
        return load_engagement(self.config_path)

    # ---- runs
    def new_run_id(self) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")[:-3]
        return f"run-{stamp}"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def latest_run(self) -> Path | None:
        link = self.runs / "latest"
        if link.is_symlink() or link.exists():
            target = link.resolve()
            return target if target.exists() else None
        return None

    def set_latest(self, run_id: str) -> None:
        link = self.runs / "latest"
        tmp = self.runs / f".latest-{os.getpid()}"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(run_id)
        os.replace(tmp, link)  # atomic: readers never see a missing 'latest'

    def results_path(self, run_dir: Path, stage: str) -> Path:
        return run_dir / "results" / f"{stage}.json"


def init_workspace(path: str | Path, *, bank_zh: str, bank_en: str | None = None,
                   as_of: str = "2022-12", language: str = "zh", force: bool = False) -> Workspace:
    """Scaffold a workspace: engagement.yaml, catalogue copies, blank extract templates, empty folders."""
    root = Path(path).expanduser().resolve()
    if (root / "engagement.yaml").exists() and not force:
        raise InputError("a workspace already exists here", file=str(root / "engagement.yaml"),
                         fix="choose another folder, or pass --force to overwrite engagement.yaml")
    for sub in ("inbox", "catalog", "quarantine", "runs", "reports", "deliverables", "data_request"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cfg = Engagement(bank=Bank(name_zh=bank_zh, name_en=bank_en or bank_zh), as_of=as_of,
                     language=language)
    dump_engagement(cfg, root / "engagement.yaml")
    for src in catalog_dir().glob("*.yaml"):
        shutil.copy2(src, root / "catalog" / src.name)
    templates = data_templates_dir()
    for src in sorted((templates / "templates").glob("*.csv")):
        shutil.copy2(src, root / "data_request" / src.name)
    for name in ("data_request.xlsx", "schema.yaml"):
        if (templates / name).exists():
            shutil.copy2(templates / name, root / "data_request" / name)
    gitignore = root / ".gitignore"
    if not gitignore.exists():
        # Bank data must never reach a repository, even if someone runs `git init` here.
        gitignore.write_text("*\n", encoding="utf-8")
    return Workspace(root)
