"""Orchestration of an engagement: ingest → run stages → render. Above the stages; they never import it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .errors import InputError
from .runner import RunOutcome, run_stages, write_manifest
from .workspace import STAGES, Workspace, init_workspace


def ingest_workspace(ws: Workspace) -> tuple[Path, InputError | None]:
    """Ingest inbox/ into the warehouse; returns the ingest.json path and the stopping error, if any."""
    import time

    from .ingest import IngestOptions, ingest_inbox
    from .runner import RunOutcome

    cfg = ws.config()
    units = {k: {"yuan": "元", "10k_yuan": "万元"}.get(v, v) for k, v in cfg.ingest.units.items()}
    opts = IngestOptions(encodings=cfg.ingest.encodings, units=units,
                         on_bad_rows=cfg.ingest.on_bad_rows, column_map=cfg.ingest.column_map)
    run_id = ws.new_run_id()
    run_dir = ws.run_dir(run_id)
    (run_dir / "results").mkdir(parents=True)
    started = time.time()
    error = None
    try:
        report = ingest_inbox(ws.inbox, ws.warehouse, ws.quarantine, options=opts)
    except InputError as exc:
        report = getattr(exc, "report", None)
        if report is None:
            raise
        error = exc
    path = run_dir / "ingest.json"
    path.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    write_manifest(ws, RunOutcome(run_id, run_dir), cfg, started)
    ws.set_latest(run_id)
    return path, error


def run_workspace(ws: Workspace, *, stages=None, from_stage=None, progress: bool = True) -> RunOutcome:
    if not ws.warehouse.exists():
        raise InputError("the warehouse does not exist yet", file=str(ws.warehouse),
                         fix=f"run `playbook ingest {ws.root}` first")
    return run_stages(ws, stages=stages, from_stage=from_stage, progress=progress)


def render_workspace(ws: Workspace, *, language: str | None = None) -> list[Path]:
    """Render each executed stage notebook of the latest run to reports/<stage>.html and .pdf."""
    import datetime as dt

    from .render import ReportMeta, render_notebook
    from .i18n import stage_title

    cfg = ws.config()
    lang = language or cfg.language
    run_dir = ws.latest_run()
    if run_dir is None:
        raise InputError("no run to render", file=str(ws.runs), fix=f"run `playbook run {ws.root}` first")
    if lang != cfg.language:
        raise InputError(f"the latest run was executed in '{cfg.language}', not '{lang}'",
                         column="--language",
                         fix=f"set language: {lang} in engagement.yaml and run `playbook run {ws.root}` again")
    ws.reports.mkdir(exist_ok=True)
    written = []
    for stage in STAGES:
        nb = run_dir / "notebooks" / f"{stage}.ipynb"
        if not nb.exists():
            continue
        meta = ReportMeta(title=stage_title(stage, lang), bank_name=cfg.bank.name(lang), as_of=cfg.as_of,
                          report_date=dt.date.today().isoformat(), language=lang,
                          logo=str(ws.root / cfg.bank.logo) if cfg.bank.logo else None)
        rendered = render_notebook(nb, ws.reports, stem=stage, meta=meta)
        written += [rendered.html, rendered.pdf]
    # The leadership deck, the pilot dashboard and the customer one-pagers come from the same
    # run: results/*.json for the deck, the warehouse (read-only) for the other two.
    from .customer360 import write_customer360
    from .dashboard import write_dashboard
    from .deck import write_deck

    results = {}
    for stage in STAGES:
        path = run_dir / "results" / f"{stage}.json"
        results[stage] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    if any(results.values()):
        written.append(write_deck(ws, results, lang))
    if ws.warehouse.exists():
        dashboard = write_dashboard(ws, lang)
        if dashboard is not None:
            written.append(dashboard)
        written += write_customer360(ws, lang, n=5)
    return written


def demo_engagement(path: Path, *, customers: int, seed: int, language: str, console=None) -> Path:
    """Synthesize a bank into `path`, ingest, run every stage, render; returns the summary pdf."""
    from .config import Bank, SyntheticSettings, dump_engagement
    from .synth.bank import generate_bank

    def say(msg):
        if console is not None:
            console.print(msg)

    root = Path(path).expanduser().resolve()
    if root.exists() and (root / "engagement.yaml").exists() and not (root / "truth.json").exists():
        raise InputError("this folder holds a real engagement, not a demo", file=str(root),
                         fix="choose another folder for the demo")
    # A demo workspace is rebuilt from scratch; earlier runs are kept for comparison.
    for sub in ("inbox", "quarantine", "reports", "deliverables"):
        shutil.rmtree(root / sub, ignore_errors=True)
    for f in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (root / f).unlink(missing_ok=True)
    say(f"Synthesizing a bank of {customers:,} SME customers (seed {seed}) …")
    ws = init_workspace(root, bank_zh="(demo)", as_of="2022-12", language=language, force=True)
    summary = generate_bank(ws.inbox, customers=customers, seed=seed)
    cfg = ws.config()
    cfg.bank = Bank(name_zh=summary.bank_name_zh, name_en=summary.bank_name_en)
    cfg.seed = seed
    cfg.synthetic = SyntheticSettings(customers=customers, seed=seed)
    dump_engagement(cfg, ws.config_path)
    say("Ingesting the extract …")
    report, error = ingest_workspace(ws)
    if error is not None:
        raise error
    say("Running the stage notebooks …")
    outcome = run_workspace(ws, progress=console is not None)
    if not outcome.ok:
        f = outcome.failed
        raise RuntimeError(f"stage {f.stage} failed at {f.failing_cell}: {f.error} "
                           f"(see {outcome.run_dir / 'notebooks' / (f.stage + '.ipynb')})")
    say("Rendering reports …")
    render_workspace(ws, language=language)
    return ws.reports / "executive_summary.pdf"
