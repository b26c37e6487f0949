"""`evalsuite export`: a model's stored run as a leaderboard details folder (evalsuite/published/export.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.errors import UserError


def export(
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file."),
    model: str = typer.Option(..., "--model", "-m", help="The model to export (its name in the experiment)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write <org>__<model>/ into."),
    hub_id: Optional[str] = typer.Option(None, "--hub-id", help="ORG/NAME naming the folder (default: the model's hub id, else evalsuite/<model>)."),
) -> None:
    """Write MODEL's stored run in the leaderboard's details layout:
    OUT/<org>__<model>/results_<timestamp>.json and one
    samples_<task>_<timestamp>.jsonl per leaf task, as lm-eval wrote them.
    `evalsuite import OUT` and `evalsuite verify --against OUT` read it.

    Examples:

      evalsuite export --model tiny-merge --out details/

      hf upload --repo-type dataset ME/tiny-merge-details details/ .
    """
    from evalsuite.published import export as ex
    from evalsuite.config import load_experiment
    from evalsuite.results.store import Store
    from evalsuite.published.sides import find_model, stored_runs

    ex.check_hub_id(hub_id)
    exp = load_experiment(config)
    spec = find_model(exp, model)
    hub = hub_id or ex.default_hub_id(spec)
    if Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"--out {out}: not a folder")
    study = stored_runs(Store(Path(exp.output.results)), exp.name, model)
    done = ex.export_run(study, model, out, hub)
    how = "the lm-eval process's own results file" if done.whole_process_file else "the jobs' results files merged"
    typer.echo(f"exported {model} ({', '.join(done.benchmarks)}) to {done.folder}: {done.results} ({how}), "
               f"{len(done.samples)} samples files")
