"""`evalsuite card`: a model card's leaderboard section and `model-index` metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def card(
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file."),
    model: str = typer.Option(..., "--model", "-m", help="Model name in the experiment's last run."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="File to write (atomically); default: stdout."),
    math_parser: str = typer.Option("math-verify", "--math-parser",
                                    help="MATH Lvl 5 scorer: math-verify (today's leaderboard) or original (its cards of late 2024)."),
    strict: bool = typer.Option(False, "--strict", help="Refuse results of a --limit run instead of marking them."),
) -> None:
    """Write the "Open LLM Leaderboard Evaluation Results" section and the Hub's model-index
    metadata (YAML front matter) for one model, from the stored results of the last run.

    The table has the bot's rows (Avg., IFEval (0-Shot), BBH (3-Shot), MATH Lvl 5 (4-Shot),
    GPQA (0-shot), MuSR (0-shot), MMLU-PRO (5-shot)), two decimals; a line says which harness
    profile and which MATH parser produced the numbers. A --limit run is marked as not comparable
    with the leaderboard (refused with --strict). A benchmark without results shows "—" and no Avg.

    Examples:

      evalsuite card --config examples/demo.yaml --model tiny-merge

      evalsuite card --model Gemmaslerp2-9B --math-parser original --out card.md
    """
    from evalsuite.published.card import MATH_PARSERS, load_card, render
    from evalsuite.config import load_experiment
    from evalsuite.errors import UserError
    from evalsuite.fsio import atomic_write_text

    from evalsuite.names import check_name

    check_name(model, "--model")
    if out is not None and out.is_dir():
        raise UserError(f"--out {out}: is a folder")
    if math_parser not in MATH_PARSERS:
        raise UserError(f"--math-parser {math_parser!r}: choose one of {', '.join(MATH_PARSERS)}")
    exp = load_experiment(config)
    hub = next((m.hub for m in exp.models if m.display_name == model), None)
    c = load_card(Path(exp.output.results), exp.name, model, math_parser=math_parser, hub=hub)
    if strict and c.limit is not None:
        raise UserError(f"{model}: the stored results come from a --limit {c.limit} run (limited to {c.limit} "
                        f"documents per task: not comparable with the leaderboard); --strict refuses them")
    text = render(c)
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    atomic_write_text(out, text)
    typer.echo(f"card: {out}", err=True)
