"""`evalsuite compare`: the candidate against each parent, in the terminal."""

from __future__ import annotations

from pathlib import Path

import typer

from evalsuite.cli.options import stats_options
from evalsuite.config import StatsSettings


@stats_options("n_boot", "seed", "alpha", alpha={"min": 0.0001, "max": 0.5})
def compare(
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file."),
    stats: StatsSettings = StatsSettings(),
) -> None:
    """Compare the candidate with each parent on the stored results of `evalsuite run`.

    Shows every model's leaderboard-normalized scores (MATH under both parsers) with 95% bootstrap
    intervals, then candidate − parent per benchmark on the documents both answered: paired
    bootstrap interval, McNemar's exact test, Holm's correction, and a verdict.

    Examples:

      evalsuite compare --config examples/demo.yaml

      evalsuite compare --boot 5000 --seed 1
    """
    from rich.console import Console

    from evalsuite.config import load_experiment
    from evalsuite.study import compare_study, read_study

    exp = load_experiment(config)
    study = read_study(Path(exp.output.results), exp.name)
    comparison = compare_study(study, stats=stats.over(exp.stats))
    out = Console()
    for table in tables(study, comparison):
        out.print(table)


def tables(study, comparison) -> list:
    """Rich tables: scores with intervals, then one table of deltas per parent."""
    from rich.table import Table

    from evalsuite.score import table_columns
    from evalsuite.suite import load_suite

    suite = load_suite()
    cols = table_columns(suite)
    scores = Table(title=f"{study.experiment}: leaderboard-normalized scores, 95% bootstrap intervals")
    scores.add_column("Model", overflow="fold")
    for c in cols:
        scores.add_column(c, justify="right")
    for m in study.models:
        name = m.name
        s = study.scores.get(name)
        cells = [f"{name} ({m.role})"]
        for c in cols:
            v = s.value(c) if s else None
            iv = comparison.intervals.get(name, {}).get(c)
            cells.append("—" if v is None else f"{v:.2f}" + (f"\n[{iv.low:.2f}, {iv.high:.2f}]" if iv else ""))
        scores.add_row(*cells)
    out = [scores]
    style = {"better": "green", "worse": "red", "indistinguishable": "dim"}
    for parent in comparison.parents:
        t = Table(title=f"{comparison.candidate} − {parent} (paired; Holm-corrected McNemar, α = {comparison.alpha})")
        for h in ("Score", "docs", "Δ", "95% interval", "cand only ✓", "parent only ✓", "p", "Holm p", "verdict"):
            t.add_column(h, justify="left" if h in ("Score", "verdict") else "right")
        for r in comparison.for_parent(parent):
            t.add_row(r.display, f"{r.n_docs:,}", f"{r.delta:+.2f}", f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]", str(r.only_candidate),
                      str(r.only_parent), _p(r.p_value), _p(r.p_holm), f"[{style[r.verdict]}]{r.verdict}[/]")
        for a in comparison.averages:
            if a.parent == parent:
                t.add_row("Average", "", f"{a.delta:+.2f}", f"[{a.ci_low:+.2f}, {a.ci_high:+.2f}]", "", "", "", "", "")
        out.append(t)
    return out


def _p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"
