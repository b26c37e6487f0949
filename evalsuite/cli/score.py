"""`evalsuite score`: lm-eval results JSON -> Open LLM Leaderboard v2 numbers."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from evalsuite.errors import UserError
from evalsuite.results.store import read_job_record


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def score(
    paths: list[Path] = typer.Argument(..., help="lm-eval results_*.json files, or folders searched recursively."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table (2 decimals), json or csv (unrounded)."),
    suite_file: Path = typer.Option(None, "--suite", help="Suite file (default: tasks/leaderboard_v2.yaml)."),
) -> None:
    """Print normalized leaderboard scores; files of the same model merge into one row.

    Notes under the table (on stderr with --format csv; a "notes" list in each json row) say
    which parser made each MATH number (by task version), and which rows come from --limit runs.
    A benchmark with only some of its subtasks is shown as "k/n tasks" (no number, no Average;
    json rows: "incomplete", with each present subtask's normalized value).

    Example:  evalsuite score results/ --format json
    """
    from evalsuite import score as sc
    from evalsuite.report.scores import note_lines, score_grid, to_csv, to_json
    from evalsuite.suite import DEFAULT_SUITE, load_suite

    suite = load_suite(suite_file or DEFAULT_SUITE)
    scores = [run_model_name(s) for s in sc.score_paths(paths, suite, partial=True)]  # a partial benchmark: shown incomplete
    if not scores:  # find_results_files refuses empty folders; kept for safety
        raise UserError("no results to score")
    if fmt is Format.json:
        typer.echo(to_json(scores))
    elif fmt is Format.csv:
        typer.echo(to_csv(scores, suite), nl=False)
        for line in note_lines(scores):  # csv stays machine-readable; json rows carry them
            typer.echo(line, err=True)
    else:
        from evalsuite.report.tables import print_grids

        print_grids([score_grid(scores, suite)], notes=note_lines(scores))


def run_model_name(scores):
    """A row from evalsuite's own job folders is named as the run named its model (`job.json`'s
    model: `tiny-parent_a`), not by lm-eval's model_name (the model's folder path); any other
    results file keeps lm-eval's name."""
    names = set()
    for src in scores.sources:
        found = None
        for folder in list(Path(src).parents)[:4]:
            job = folder / "job.json"
            if job.is_file():
                try:
                    found = read_job_record(folder).model
                except (OSError, ValueError, UserError):
                    found = None
                break
        names.add(found)
    if len(names) == 1 and isinstance(next(iter(names)), str):
        return scores.model_copy(update={"model": next(iter(names))})
    return scores
