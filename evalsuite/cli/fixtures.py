"""`evalsuite fixtures`: build the demo's tiny Gemma-2 models (offline, deterministic)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    name="fixtures",
    help="Tiny test models built in code (no downloads).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Tiny test models built in code (no downloads)."""


@app.command("build")
def build(
    out: Path = typer.Option(
        Path(".cache/evalsuite/fixtures"), "--out", help="Folder for the models (reused when already built)."
    ),
) -> None:
    """Build (or reuse) the demo models parent_a, parent_b and candidate; print their paths.

    Examples:

      evalsuite fixtures build                         # into .cache/evalsuite/fixtures

      evalsuite fixtures build --out /tmp/tiny-models  # somewhere else; reused when already built
    """
    from evalsuite.fixtures.tiny import build_demo_models

    for name, path in build_demo_models(out).items():
        typer.echo(f"{name}\t{path.resolve()}")
