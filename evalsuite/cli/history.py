"""`evalsuite history`: the recorded runs of the results folder (results/history.sqlite)."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.options import RESULTS_HELP, results_root


class Format(str, Enum):
    table = "table"
    json = "json"


def history(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Only runs that evaluated this model (name)."),
    experiment: Optional[str] = typer.Option(None, "--experiment", "-e", help="Only runs of this experiment."),
    limit: Optional[int] = typer.Option(None, "--last", "-n", help="Only the last N runs."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table (2 decimals) or json (unrounded, with job ids and the machines the jobs ran on)."),
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file (for its results folder)."),
) -> None:
    """List recorded runs with their normalized scores, oldest first.

    Examples:

      evalsuite history --config examples/demo.yaml --model tiny-merge   # the demo's candidate

      evalsuite history --format json --last 5
    """
    from evalsuite.history.runs import list_baselines, list_runs, machines

    root = results_root(results, config)
    runs = list_runs(root, experiment=experiment, model=model, limit=limit, details=fmt is Format.json)
    marks: dict[str, list[str]] = {}
    for b in list_baselines(root):
        marks.setdefault(b.run_id, []).append(b.name)
    if fmt is Format.json:
        typer.echo(json.dumps([{**_run_json(r, marks.get(r.run_id, []), model), "machines": machines(root, r)} for r in runs], indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from evalsuite.suite import load_suite

    suite = load_suite()
    benches = [b for b in suite.benchmarks if any(s.benchmark == b.id for r in runs for s in r.scores)]
    table = Table(title=f"Run history ({root})")
    for col in ["run", "time", "experiment", "model"]:
        table.add_column(col, overflow="fold")
    for b in benches:
        table.add_column(b.display, justify="right")
    for r in runs:
        run_label = r.run_id + "".join(f"\nbaseline {n}" for n in marks.get(r.run_id, [])) + ("" if r.status == "ok" else f"\n({r.status})")
        for m in r.models:
            if model is not None and m.name != model:
                continue
            scores = r.main_scores(m.name)
            cells = [f"{scores[b.id].value:.2f}" if b.id in scores else "—" for b in benches]
            name = m.name + (" *" if m.role == "candidate" else "")
            table.add_row(*map(escape, [run_label, r.when, r.experiment, name]), *cells)
            run_label = ""
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    if not runs:
        console.print("no recorded runs" + (f" of model {model}" if model else ""))
    else:
        console.print("* = the run's candidate")


def _run_json(r, baselines: list[str], model: Optional[str]) -> dict:
    models = []
    for m in r.models:
        if model is not None and m.name != model:
            continue
        models.append({
            "name": m.name,
            "role": m.role,
            "identity": m.identity,
            "scores": {s.benchmark: {"score": s.display, "value": s.value, "stderr": s.stderr}
                       for s in r.scores if s.model == m.name and s.subtask == "" and s.score_id == s.benchmark},
            "extra_scores": {s.score_id: {"score": s.display, "value": s.value, "stderr": s.stderr}
                             for s in r.scores if s.model == m.name and s.subtask == "" and s.score_id != s.benchmark},
            "jobs": {j.benchmark: j.job_id for j in r.jobs if j.model == m.name},
        })
    return {
        "run_id": r.run_id,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.created)),
        "experiment": r.experiment,
        "status": r.status,
        "lm_eval": r.lm_eval,
        "data": r.data,
        "baselines": baselines,
        "models": models,
    }
