"""`evalsuite baseline`: name a recorded run as the reference for `evalsuite regress`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.options import RESULTS_HELP, results_root

app = typer.Typer(no_args_is_help=True, help="Name recorded runs as baselines for `evalsuite regress`.")


@app.command("set")
def set_(
    name: str = typer.Argument(..., help="Baseline name, e.g. nightly or release-1.0."),
    run: Optional[str] = typer.Option(None, "--run", help="Run id (or unique prefix); default: the latest complete run."),
    if_missing: bool = typer.Option(False, "--if-missing", help="Leave an existing baseline of that name alone (bootstraps a nightly)."),
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file (for its results folder)."),
) -> None:
    """Point baseline NAME at a run (replacing where it pointed before).

    Examples:

      evalsuite baseline set nightly

      evalsuite baseline set release-1 --run 20261126T181502Z-3fa9c1
    """
    from evalsuite.history.runs import list_baselines, set_baseline

    root = results_root(results, config)
    if if_missing:
        old = next((b for b in list_baselines(root) if b.name == name), None)
        if old is not None:
            typer.echo(f"baseline {old.name} -> run {old.run_id} (kept)")
            return
    b = set_baseline(root, name, run)
    typer.echo(f"baseline {b.name} -> run {b.run_id}")


@app.command("list")
def list_(
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file (for its results folder)."),
) -> None:
    """List the baselines and the runs they point at.

    Examples:

      evalsuite baseline list

      evalsuite baseline list --config examples/demo.yaml   # the demo's results folder
    """
    from evalsuite.history.runs import get_run, list_baselines

    root = results_root(results, config)
    baselines = list_baselines(root)
    if not baselines:
        typer.echo("no baselines (set one with `evalsuite baseline set NAME`)")
    for b in baselines:
        run = get_run(root, b.run_id)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(b.created))
        typer.echo(f"{b.name}\t{b.run_id}\t{run.experiment}\tcandidate {run.candidate}\t(set {when})")
