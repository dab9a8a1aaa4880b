"""`playbook`: the command line of the SME marketing playbook (contracts in DESIGN.md §7).

Exit codes: 0 done; 2 bad input or configuration (message names file / row / column / fix);
1 a fault of the package.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="SME (小微) digital-marketing playbook: workspace, ingest, stage notebooks, reports.")
err = Console(stderr=True)
out = Console()

LANG_HELP = "Report language: zh (default) or en."


def _fail(exc: InputError) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(2)


def _check_language(language: str | None) -> None:
    if language not in (None, "zh", "en"):
        raise InputError(f"unknown language '{language}'", column="--language", fix="use zh or en")


@app.command()
def init(path: Path = typer.Argument(..., help="Folder of the new workspace."),
         bank: str = typer.Option(..., "--bank", help="The bank's name (Chinese)."),
         bank_en: Optional[str] = typer.Option(None, "--bank-en", help="The bank's name in English."),
         as_of: str = typer.Option("2022-12", "--as-of", help="Data as-of month, YYYY-MM."),
         language: str = typer.Option("zh", "--language", help=LANG_HELP),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing engagement.yaml.")):
    """Scaffold a workspace for a bank engagement."""
    from .config import Engagement, Bank
    from .workspace import init_workspace

    try:
        _check_language(language)
        Engagement(bank=Bank(name_zh=bank, name_en=bank_en or bank), as_of=as_of, language=language)
        ws = init_workspace(path, bank_zh=bank, bank_en=bank_en, as_of=as_of, language=language, force=force)
    except InputError as exc:
        _fail(exc)
    except ValueError as exc:
        _fail(InputError(str(exc).splitlines()[-1], column="--as-of", fix="write the month as YYYY-MM"))
    out.print(f"Workspace ready: {ws.root}\n"
              f"Next: give the bank's IT {ws.root / 'data_request'} (templates and data dictionary), put their "
              f"files in {ws.inbox}, then `playbook ingest {ws.root}`.")


@app.command()
def ingest(path: Path = typer.Argument(..., help="Workspace folder.")):
    """Load inbox/ into the warehouse; writes runs/<run-id>/ingest.json (rows in = loaded + quarantined)."""
    from .pipeline import ingest_workspace
    from .workspace import Workspace

    try:
        ws = Workspace.open(path)
        report_path, error = ingest_workspace(ws)
    except InputError as exc:
        _fail(exc)
    out.print(f"Ingest report: {report_path}")
    if error is not None:
        _fail(error)


@app.command()
def run(path: Path = typer.Argument(..., help="Workspace folder."),
        stage: list[str] = typer.Option(None, "--stage", help="Run only this stage (repeatable)."),
        from_: Optional[str] = typer.Option(None, "--from", help="Resume from this stage onwards.")):
    """Execute the stage notebooks with the workspace's parameters."""
    from .pipeline import run_workspace
    from .workspace import Workspace

    try:
        ws = Workspace.open(path)
        outcome = run_workspace(ws, stages=stage or None, from_stage=from_)
    except InputError as exc:
        _fail(exc)
    _print_outcome(outcome)
    if not outcome.ok:
        raise typer.Exit(1)


def _print_outcome(outcome) -> None:
    for s in outcome.stages:
        mark = {"ok": "[green]ok[/]", "carried": "[dim]carried[/]", "failed": "[red]FAILED[/]"}[s.status]
        out.print(f"  {s.stage:<22} {mark} {s.seconds:6.1f}s")
    f = outcome.failed
    if f:
        err.print(f"[bold red]Stage {f.stage} failed[/] at {f.failing_cell}: {f.error}\n"
                  f"Executed notebook: {outcome.run_dir / 'notebooks' / (f.stage + '.ipynb')}\n"
                  f"Fix the cause, then resume with `playbook run PATH --from {f.stage}`.", highlight=False)


@app.command()
def render(path: Path = typer.Argument(..., help="Workspace folder."),
           language: Optional[str] = typer.Option(None, "--language", help=LANG_HELP)):
    """Render html + pdf of every stage and the executive summary into reports/."""
    from .pipeline import render_workspace
    from .workspace import Workspace

    try:
        _check_language(language)
        ws = Workspace.open(path)
        written = render_workspace(ws, language=language)
    except InputError as exc:
        _fail(exc)
    for p in written:
        out.print(str(p))


@app.command()
def demo(path: Path = typer.Argument(Path("demo-engagement"), help="Workspace folder for the demo bank."),
         customers: int = typer.Option(10_000, "--customers", min=200, help="Number of SME customers."),
         seed: int = typer.Option(20221231, "--seed", help="Random seed of the synthetic bank."),
         language: str = typer.Option("zh", "--language", help=LANG_HELP)):
    """Synthesize a demo bank, ingest it, run every stage and render the reports."""
    from .pipeline import demo_engagement

    try:
        _check_language(language)
        t0 = time.time()
        pdf = demo_engagement(path, customers=customers, seed=seed, language=language, console=out)
    except InputError as exc:
        _fail(exc)
    out.print(f"Demo engagement finished in {time.time() - t0:.0f}s.")
    # The contract: the last line printed is the absolute path of the executive summary pdf.
    print(str(pdf.resolve()))


@app.command()
def templates(out_dir: Path = typer.Argument(Path("data_templates"), help="Where to write them.")):
    """Regenerate blank extract templates and the data-request workbook from the schema."""
    from .templates import generate_templates

    for p in generate_templates(out_dir):
        out.print(str(p))


@app.command("evaluate-pilot")
def evaluate_pilot(file: Path = typer.Argument(..., help="Customer-level experiment table (csv/xlsx/parquet)."),
                   arm: str = typer.Option(..., "--arm", help="Column holding the arm of each customer."),
                   control: str = typer.Option(..., "--control", help="Value of --arm that marks the control group."),
                   outcome: list[str] = typer.Option(..., "--outcome", help="Outcome column (repeatable)."),
                   covariate: list[str] = typer.Option(None, "--covariate", help="Pre-period covariate (repeatable)."),
                   cluster: Optional[str] = typer.Option(None, "--cluster", help="Cluster column (e.g. rm_id)."),
                   out_dir: Path = typer.Option(..., "--out", help="Output folder."),
                   language: str = typer.Option("en", "--language", help=LANG_HELP)):
    """Evaluate any customer-level experiment: results.csv, summary.json, report.html."""
    from .pilot import run_evaluate_pilot

    try:
        _check_language(language)
        run_evaluate_pilot(file, arm, control, list(outcome), list(covariate or []), cluster, out_dir,
                           language=language)
    except InputError as exc:
        _fail(exc)
    out.print(f"Wrote {out_dir / 'results.csv'}, {out_dir / 'summary.json'}, {out_dir / 'report.html'}")


@app.command()
def assess(input_path: Path = typer.Argument(..., metavar="INPUT",
                                             help="A csv / xlsx / parquet file, or a folder of them."),
           out_dir: Path = typer.Option(..., "--out", help="Output folder."),
           target: Optional[str] = typer.Option(None, "--target", help="Binary target column (adds IV)."),
           positive: Optional[str] = typer.Option(None, "--positive", help="Value of --target that is the event."),
           mapping: Optional[Path] = typer.Option(None, "--mapping", help="Mapping yaml: INPUT's files → template tables (examples/berka/mapping.yaml)."),
           workspace: Optional[Path] = typer.Option(None, "--workspace", help="With --mapping: write the mapped tables to its inbox/ and load them into its warehouse."),
           language: str = typer.Option("en", "--language", help=LANG_HELP)):
    """Assess any file or folder, template or not: assessment.html, findings.xlsx, assessment.json."""
    from .assess_files import apply_mapping, ingest_mapped, run_assess

    try:
        _check_language(language)
        if (mapping is None) != (workspace is None):
            raise InputError("--mapping and --workspace go together", column="--mapping",
                             fix="give both, e.g. --mapping examples/berka/mapping.yaml --workspace WS")
        result = run_assess(input_path, out_dir, target=target, positive=positive, language=language)
        if mapping is not None:
            from .workspace import Workspace

            ws = Workspace.open(workspace)
            notes = apply_mapping(mapping, input_path, ws.inbox)
            report = ingest_mapped(ws.root, notes)
            out.print(f"Mapped tables: {', '.join(notes)} → {ws.inbox}; ingest report {report}. "
                      f"Next: `playbook run {ws.root} --stage 01_data_assessment`.",
                      highlight=False, soft_wrap=True)
    except InputError as exc:
        _fail(exc)
    for t in result.tables:
        out.print(f"  {t.file}: {t.rows:,} rows, {len(t.columns)} columns", highlight=False)
    out.print(f"{len(result.findings)} findings. Wrote {out_dir / 'assessment.html'}, "
              f"{out_dir / 'findings.xlsx'}, {out_dir / 'assessment.json'}", highlight=False, soft_wrap=True)


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except InputError as exc:  # raised outside a command body
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except Exception:  # a fault of the package: show it, exit 1
        err.print("[bold red]internal error[/] — please report it with the traceback below.")
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
