"""`evalsuite run`: evaluate the candidate and its parents on the leaderboard benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from evalsuite.config import load_experiment
from evalsuite.errors import UserError


def run(
    all_: bool = typer.Option(False, "--all", help="Run every (model x benchmark) job of the experiment."),
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file."),
    benchmark: Optional[list[str]] = typer.Option(None, "--benchmark", "-b", help="Only this benchmark (repeatable)."),
    limit: Optional[int] = typer.Option(None, help="Documents per task (demos, smoke tests)."),
    harness: Optional[str] = typer.Option(None, "--harness", help="leaderboard (the fork the leaderboard ran; default) or upstream (lm-eval 0.4.13 as released). See docs/fidelity.md."),
    executor: Optional[str] = typer.Option(None, "--executor", help="local (default: lm-eval processes on this machine) or ray."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join a Ray cluster: auto or HOST:PORT (default: start a local one)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display (CI logs)."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip the HTML comparison report."),
    fmt: str = typer.Option("table", "--format", "-f", help="table (fits the terminal), json or csv: the final tables on stdout."),
) -> None:
    """Run the experiment through lm-eval with the leaderboard's settings.

    Finished jobs are reused; each job's lm-eval output and the bare lm-eval command that
    reproduces it are stored under the results folder. With the default `harness: leaderboard`
    each model is one lm-eval process over all its benchmarks, as the leaderboard ran them.

    Examples:

      evalsuite run --all --config examples/demo.yaml      # offline demo, tiny models

      evalsuite run --all                                  # the study in ./evalsuite.yaml

      evalsuite run -b bbh -b musr --limit 10              # two benchmarks, 10 docs per task

      evalsuite run --all --harness upstream               # lm-eval 0.4.13 as released, one process per job

      evalsuite run --all --executor ray --ray-address auto   # spread jobs over a Ray cluster
    """
    if fmt not in ("table", "json", "csv"):
        raise UserError(f"--format {fmt!r}: table, json or csv")
    if not all_ and not benchmark:
        raise UserError("say what to run: --all, or --benchmark NAME (see evalsuite run --help)")
    overrides = {}
    if benchmark:
        overrides["benchmarks"] = list(benchmark)
    if limit is not None:
        overrides["limit"] = limit
    if harness is not None:
        overrides["harness"] = harness
    if executor is not None or ray_address is not None:
        overrides["executor"] = {"name": executor or "ray", **({"ray_address": ray_address} if ray_address else {})}
    refuse_sweep_file(config)
    exp = load_experiment(config, overrides)

    from evalsuite.published import importer
    from evalsuite.run.runner import run_experiment

    console = Console(stderr=True, quiet=quiet)
    outcome = run_experiment(exp, console=console, quiet=quiet, importer=importer)
    study = outcome.study
    if any(outcome.done.values()):
        from evalsuite.history.runs import record_run

        run_id = record_run(study.store.root, study, failed=outcome.failed)
        console.print(f"history: recorded run {run_id} ({study.store.root / 'history.sqlite'})")
    print_final(study, fmt, ok=outcome.ok)
    if not outcome.ok:  # said even with --quiet
        for line in outcome.failed:
            typer.echo(f"failed: {line}", err=True)
        typer.echo("no report: some jobs failed (re-run to retry them; finished jobs are kept)", err=True)
        raise typer.Exit(1)
    if not no_report:
        from evalsuite.report.build import report_experiment

        paths = report_experiment(exp, study=study)
        console.print(f"report: {paths.html}", markup=False, highlight=False)
    for line in next_steps(config, report=not no_report):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def next_steps(config: Path, report: bool = True) -> list[str]:
    """What to do after a run, each command with this run's --config."""
    import shlex

    c = shlex.quote(str(config))
    lines = ["next (compare: deltas and verdicts; view: the reports; history: runs over time):",
             f"  evalsuite compare --config {c}"]
    if not report:
        lines.append(f"  evalsuite report --config {c}")
    lines += [f"  evalsuite view --config {c} --open", f"  evalsuite history --config {c}"]
    return lines


def is_sweep_file(config: Path) -> bool:
    """A sweep file: a `grid:` or `candidates:` of recipes, no `candidate:` (an unreadable file is
    not: load_experiment says what is wrong with it)."""
    import yaml

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "candidate" not in data and ("grid" in data or "candidates" in data)


def refuse_sweep_file(config: Path) -> None:
    """A sweep file given to `run`: say that `evalsuite sweep` runs it, rather than a
    missing-field error."""
    if is_sweep_file(config):
        raise UserError(f"{config} is a sweep file (grid/candidates of recipes): run it with `evalsuite sweep --config {config}`")


def final_grids(study) -> list:
    """The tables a run ends with: raw lm-eval metrics, then the leaderboard-normalized scores."""
    grids = [raw_grid(study)]
    scores = normalized_scores(study)
    if scores:
        from evalsuite.report.scores import score_grid

        grids.append(score_grid(scores, title="Open LLM Leaderboard v2 (normalized)"))
    return grids


def print_final(study, fmt: str = "table", ok: bool = True) -> None:
    """`final_grids` on stdout: laid out for the terminal ($COLUMNS, else 160, when piped), or json/csv."""
    from evalsuite.report import tables

    grids = final_grids(study)
    if fmt == "json":
        typer.echo(tables.to_json(grids, {"experiment": study.experiment, "ok": ok}))
    elif fmt == "csv":
        typer.echo(tables.to_csv(grids), nl=False)
    else:
        tables.print_grids(grids)


def normalized_scores(study) -> list:
    """Leaderboard numbers per model of the run (evalsuite.study), named as in the experiment."""
    return [study.scores[m.name] for m in study.models if m.name in study.scores]


def raw_grid(study):
    """Raw lm-eval metrics (each benchmark's group value, as lm-eval aggregated it), as a
    `tables.Grid`: model names whole at any width."""
    from evalsuite.report.tables import Grid

    suite = study.suite
    benches = [b for b in suite.benchmarks if any(b.id in per for per in study.runs.values())]
    heads = [f"{b.display} {b.metrics[0].split(',')[0]}" for b in benches]
    grid = Grid(title="Raw lm-eval metrics (group values, not leaderboard-normalized)", key="model", columns=heads)
    for model, per in study.runs.items():
        vals = []
        for b in benches:
            job = per.get(b.id)
            found = (job.parsed.groups.get(b.group) or job.parsed.metrics.get(b.group) or {}) if job is not None else {}
            val = found.get(b.metrics[0])
            vals.append(val if isinstance(val, (int, float)) else None)
        grid.add(model, ["—" if v is None else f"{v:.4f}" for v in vals], {"model": model, **dict(zip(heads, vals))})
    return grid


def raw_table(study) -> Table:
    """Raw lm-eval metrics as one wide rich table (see `raw_grid`)."""
    return raw_grid(study).wide()[0]
