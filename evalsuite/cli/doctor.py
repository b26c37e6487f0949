"""`evalsuite doctor`: one table of environment checks, with the fix for each failure."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from evalsuite.config import load_experiment

STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


def doctor(
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file."),
) -> None:
    """Check packages, device, offline settings, data, NLTK data and disk for an experiment.

    Exit code 1 when any check fails.

    Example:  evalsuite doctor --config examples/demo.yaml
    """
    exp = load_experiment(config)
    from evalsuite.doctor import run_checks

    checks = run_checks(exp)
    table = Table(title=f"evalsuite doctor — {exp.name}")
    for col in ("check", "status", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(c.name, f"[{STYLE[c.status]}]{c.status}[/]", c.detail, c.fix)
    Console().print(table)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)
