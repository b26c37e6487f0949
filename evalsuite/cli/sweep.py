"""`evalsuite sweep`: evaluate many merge recipes of the same parents and rank them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from evalsuite.errors import UserError


def sweep(
    config: Path = typer.Option(..., "--config", "-c", help="Sweep file (parents, base recipe, grid / candidates)."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="halving (default: rounds on growing random subsets, drops by a paired test) or full (every candidate on every document)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table (default; fits the terminal), json (one JSON object on stdout) or csv (the ranking)."),
    keep: bool = typer.Option(False, "--keep", help="Keep every merged candidate (default: each is deleted after its jobs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display (CI logs)."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip the HTML sweep report."),
) -> None:
    """Merge and evaluate every candidate recipe of a sweep, one merge at a time, and rank them.

    The parents are evaluated (or reused) once. With `halving` every candidate first answers a
    seeded random subset of each task; after each round a candidate worse than the best by a
    paired test (Holm-corrected) is dropped; the survivors answer more; the finalists answer
    every document. A killed sweep started again resumes where it stopped.

    Examples:

      evalsuite sweep --config examples/demo-sweep.yaml                # offline demo, tiny models

      evalsuite sweep --config examples/demo-sweep.yaml --format json  # the ranking as JSON

      evalsuite sweep --config sweep.yaml --strategy full              # every candidate on every document
    """
    if strategy not in (None, "halving", "full"):
        raise UserError(f"--strategy {strategy!r}: halving or full")
    if fmt not in ("table", "json", "csv"):
        raise UserError(f"--format {fmt!r}: table, json or csv")
    from evalsuite.sweep import SweepFailed, load_sweep, run_sweep

    sw = load_sweep(config)
    if keep:
        sw = sw.model_copy(update={"settings": type(sw.settings).model_validate({**sw.settings.model_dump(), "keep": True})})
    console = Console(stderr=True, quiet=quiet)
    try:
        rec = run_sweep(sw, strategy=strategy, console=console, quiet=quiet)  # type: ignore[arg-type]
    except SweepFailed as exc:
        typer.echo(f"failed: {exc}", err=True)
        typer.echo("the sweep stopped: run it again to retry (stored jobs and rounds are kept)", err=True)
        raise typer.Exit(1)
    if not no_report:
        from evalsuite.report.sweep import write_report

        path = write_report(sw, rec)
        console.print(f"report: {path}")
    if fmt == "json":
        from evalsuite.report.sweep import summary_json

        typer.echo(json.dumps(summary_json(rec), indent=1))
    else:
        from evalsuite.report import tables
        from evalsuite.report.sweep import ranking_grid

        if fmt == "csv":
            typer.echo(tables.to_csv([ranking_grid(rec)]), nl=False)
        else:
            tables.print_grids([ranking_grid(rec)])
