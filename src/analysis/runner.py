"""Execute the stage notebooks with papermill and record a reproducible run manifest."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import InputError
from .resources import notebooks_dir, repo_root
from .workspace import STAGES, Workspace

KERNEL_NAME = "sme-playbook"


@dataclass
class StageOutcome:
    stage: str
    status: str  # ok | failed | carried
    seconds: float = 0.0
    carried_from: str | None = None
    error: str | None = None
    failing_cell: str | None = None


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    stages: list[StageOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.stages)

    @property
    def failed(self) -> StageOutcome | None:
        return next((s for s in self.stages if s.status == "failed"), None)


def ensure_kernel() -> str:
    """Register a kernelspec for this interpreter, so notebooks run with the package's own Python."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name="SME playbook", prefix=sys.prefix)
    return KERNEL_NAME


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit() -> str | None:
    root = repo_root()
    if root is None or not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def resolve_stages(stages: list[str] | None, from_stage: str | None) -> list[str]:
    for s in (stages or []) + ([from_stage] if from_stage else []):
        if s not in STAGES:
            raise InputError(f"unknown stage '{s}'", column="--stage/--from",
                             fix=f"use one of: {', '.join(STAGES)}")
    if stages:
        return [s for s in STAGES if s in stages]
    if from_stage:
        return list(STAGES[STAGES.index(from_stage):])
    return list(STAGES)


def _failing_cell(exc) -> tuple[str, str]:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    cell = getattr(exc, "exec_count", None)
    return f"{ename}: {evalue}", (f"cell [{cell}]" if cell is not None else "unknown cell")


def run_stages(ws: Workspace, *, stages: list[str] | None = None, from_stage: str | None = None,
               progress: bool = True) -> RunOutcome:
    """Run the chosen stages in a new run folder; stages not run are carried over from the latest run."""
    import papermill as pm

    cfg = ws.config()
    to_run = resolve_stages(stages, from_stage)
    previous = ws.latest_run()
    run_id = ws.new_run_id()
    run_dir = ws.run_dir(run_id)
    (run_dir / "results").mkdir(parents=True)
    (run_dir / "notebooks").mkdir()
    outcome = RunOutcome(run_id, run_dir)
    kernel = ensure_kernel()
    if previous and (previous / "ingest.json").exists():
        shutil.copy2(previous / "ingest.json", run_dir / "ingest.json")

    started = time.time()
    for stage in STAGES:
        if stage not in to_run:
            carried = _carry_over(ws, previous, run_dir, stage)
            if carried:
                outcome.stages.append(StageOutcome(stage, "carried", carried_from=previous.name))
            continue
        if outcome.failed:
            break
        t0 = time.time()
        params = {
            "workspace": str(ws.root), "run_dir": str(run_dir), "language": cfg.language,
            "as_of": cfg.as_of, "seed": cfg.seed,
        }
        try:
            pm.execute_notebook(
                str(notebooks_dir() / f"{stage}.ipynb"), str(run_dir / "notebooks" / f"{stage}.ipynb"),
                parameters=params, kernel_name=kernel, progress_bar={"desc": stage} if progress else False,
                cwd=str(run_dir), log_output=False, start_timeout=300,
            )
            outcome.stages.append(StageOutcome(stage, "ok", round(time.time() - t0, 2)))
        except Exception as exc:  # papermill wraps the notebook's exception; report it, keep earlier stages
            error, cell = _failing_cell(exc)
            outcome.stages.append(StageOutcome(stage, "failed", round(time.time() - t0, 2),
                                               error=error, failing_cell=cell))
    write_manifest(ws, outcome, cfg, started)
    ws.set_latest(run_id)
    return outcome


def _carry_over(ws: Workspace, previous: Path | None, run_dir: Path, stage: str) -> bool:
    if previous is None:
        return False
    res = ws.results_path(previous, stage)
    if not res.exists():
        return False
    shutil.copy2(res, ws.results_path(run_dir, stage))
    nb = previous / "notebooks" / f"{stage}.ipynb"
    if nb.exists():
        shutil.copy2(nb, run_dir / "notebooks" / nb.name)
    return True


def write_manifest(ws: Workspace, outcome: RunOutcome, cfg, started: float) -> Path:
    inbox_files = sorted(p for p in ws.inbox.glob("*") if p.is_file())
    manifest = {
        "run_id": outcome.run_id,
        "package": "sme-playbook", "package_version": __version__, "git_commit": git_commit(),
        "python": platform.python_version(), "platform": platform.platform(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 2),
        "seed": cfg.seed,
        "parameters": cfg.model_dump(mode="json"),
        "inputs": {p.name: file_sha256(p) for p in inbox_files},
        "catalog": {p.name: file_sha256(p) for p in sorted(ws.catalog.glob("*.yaml"))},
        "stages": [s.__dict__ for s in outcome.stages],
        "ok": outcome.ok,
    }
    path = outcome.run_dir / "manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
