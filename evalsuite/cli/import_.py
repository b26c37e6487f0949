"""`evalsuite import`: published per-sample details -> re-scored evalsuite jobs (evalsuite/published/importer.py)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer


class Format(str, Enum):
    table = "table"
    json = "json"


def import_(
    source: str = typer.Argument(..., help="Hub details repo `open-llm-leaderboard/<org>__<model>-details[@revision]`, or a local folder of lm-eval output."),
    name: str = typer.Option(..., "--name", help="Model / experiment name to store it under."),
    config: Optional[Path] = typer.Option(None, "--config", help="Experiment config whose results folder receives the jobs (default: ./results)."),
    run: Optional[str] = typer.Option(None, "--run", help="Date id of the run to import (default: the newest), e.g. 2024-06-26T12-34-56.123456."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, or json (the `evalsuite score --format json` row; agreement on stderr)."),
) -> None:
    """Import published details: validate every file, re-score every sample with the installed
    lm-eval's task code, store one job per benchmark and an experiment record.

    Example:  evalsuite import open-llm-leaderboard/google__gemma-2-9b-it-details --name gemma-2-9b-it
    """
    from evalsuite.report.scores import note_lines, score_grid, to_json
    from evalsuite.published.importer import agreement_rows, import_details
    from evalsuite.results.store import Store
    from evalsuite.study import load_study

    from evalsuite.cli.options import results_root
    from evalsuite.config import load_experiment

    store = Store(results_root(None, config, load_experiment(config) if config is not None else None))
    result = import_details(source, name, store, run=run)
    # its jobs were hashed by the import (stored now, or checked when reused): scored from the study
    study = load_study(store, store.read_experiment(name), verified={r.job_id for r in result.jobs.values()})
    scores = [study.scores[name]]
    rows = agreement_rows(result)
    head = f"{result.name}: run {result.run} of {result.source} ({result.identity}); " + (
        "reused the stored jobs" if result.reused else f"re-scored with lm-eval {result.lm_eval}")
    if fmt is Format.json:
        typer.echo(to_json(scores))
        typer.echo(head, err=True)
        for t, n, c, a, remark in rows:
            typer.echo(f"agreement: {t}: {a}/{c} recorded values agree ({n} records){'; ' + remark if remark else ''}", err=True)
        return
    from rich.table import Table

    from evalsuite.report.tables import out_console

    console = out_console()
    console.print(head, markup=False, highlight=False)
    from evalsuite.report.tables import print_grids

    print_grids([score_grid(scores)], console, notes=note_lines(scores))
    table = Table(title="Per-sample agreement (recorded vs recomputed)")
    for col, just in (("Task", "left"), ("Records", "right"), ("Compared", "right"), ("Agree", "right"), ("%", "right"), ("Remark", "left")):
        table.add_column(col, justify=just, overflow="fold")
    for t, n, c, a, remark in rows:
        table.add_row(t, str(n), str(c), str(a), f"{100 * a / c:.1f}" if c else "—", remark)
    console.print(table)
