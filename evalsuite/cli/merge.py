"""`evalsuite merge`: build a merged model from a verbatim mergekit recipe (or reuse it)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.errors import UserError


def _pairs(values: Optional[list[str]], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise UserError(f"{option} {v!r}: expected HUB_ID=VALUE")
        out[key] = val
    return out


def merge(
    recipe: Path = typer.Argument(..., help="mergekit recipe (YAML), used verbatim."),
    out_dir: Path = typer.Argument(..., help="Folder for the merged model (created atomically)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if OUT_DIR already holds this merge."),
    shard_size: str = typer.Option("5GB", "--shard-size", help="Largest output shard, e.g. 5GB, 500MB."),
    local_model: Optional[list[str]] = typer.Option(None, "--local-model", help="HUB_ID=FOLDER: use a local folder for a hub id (repeatable)."),
    revision: Optional[list[str]] = typer.Option(None, "--revision", help="HUB_ID=REV: pin a hub parent's revision (repeatable)."),
    plan_only: bool = typer.Option(False, "--plan-only", help="Preflight and print the plan; write nothing."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show mergekit's progress bars."),
) -> None:
    """Merge the recipe's parents with mergekit into OUT_DIR; print the per-layer t plan.

    Preflight (parents, architecture, tensor shapes, tokenizers, t range) runs before any work;
    a later run with the same fingerprint reuses OUT_DIR after checking its file hashes.

    Example:  evalsuite merge examples/gemmaslerp2-9b.mergekit.yml merged/gemmaslerp2-9b
    """
    from evalsuite.models.merge import build_merge, plan_merge

    local = {k: Path(v) for k, v in _pairs(local_model, "--local-model").items()}
    revs = _pairs(revision, "--revision")
    if plan_only:
        typer.echo(plan_merge(recipe, local_models=local, revisions=revs).table())
        return
    result = build_merge(
        recipe, out_dir, local_models=local, revisions=revs, force=force, shard_size=shard_size,
        progress=progress, log=lambda msg: typer.echo(msg, err=True),
    )
    typer.echo(result.plan.table())
    typer.echo(f"{'reused' if result.reused else 'built'} {result.path}")
    typer.echo(f"fingerprint {result.fingerprint}")
