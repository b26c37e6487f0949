"""`evalsuite compare`: the candidate against each parent, in the terminal."""

from __future__ import annotations

from pathlib import Path

import typer

from evalsuite.cli.options import stats_options
from evalsuite.config import StatsSettings


@stats_options("n_boot", "seed", "alpha", alpha={"max": 0.5})
def compare(
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file."),
    stats: StatsSettings = StatsSettings(),
    fmt: str = typer.Option("table", "--format", "-f", help="table (fits the terminal), json (the whole comparison) or csv."),
) -> None:
    """Compare the candidate with each parent on the stored results of `evalsuite run`.

    Shows every model's leaderboard-normalized scores (MATH under both parsers) with 95% bootstrap
    intervals, then candidate − parent per benchmark on the documents both answered: paired
    bootstrap interval, McNemar's exact test, Holm's correction, and a verdict.

    Examples:

      evalsuite compare --config examples/demo.yaml

      evalsuite compare --boot 5000 --seed 1

      evalsuite compare --config examples/demo.yaml --format json   # for scripts
    """
    from evalsuite.report import tables as tb
    from evalsuite.config import load_experiment
    from evalsuite.errors import UserError
    from evalsuite.study import compare_study, read_study

    if fmt not in ("table", "json", "csv"):
        raise UserError(f"--format {fmt!r}: table, json or csv")
    exp = load_experiment(config)
    study = read_study(Path(exp.output.results), exp.name)
    comparison = compare_study(study, stats=stats.over(exp.stats))
    if fmt == "json":
        import json

        scores = {m.name: {"role": m.role, **({c: s.value(c) for c in _cols()} if (s := study.scores.get(m.name)) else {})}
                  for m in study.models}
        typer.echo(json.dumps({"experiment": study.experiment, "scores": scores, **comparison.model_dump(mode="json")}, indent=1))
        return
    grids = grids_of(study, comparison)
    if fmt == "csv":
        typer.echo(tb.to_csv(grids), nl=False)
        return
    tb.print_grids(grids)


def grids_of(study, comparison) -> list:
    """Scores with intervals, then one grid of deltas per parent (`evalsuite.report.tables`: laid out
    to fit the terminal, names and verdicts whole)."""
    from evalsuite.report.tables import Grid
    from evalsuite.report.scores import table_columns
    from evalsuite.suite import load_suite

    cols = table_columns(load_suite())
    scores = Grid(title=f"{study.experiment}: leaderboard-normalized scores, {int(round(comparison.level * 100))}% bootstrap intervals",
                  key="Model", columns=cols)
    for m in study.models:
        s = study.scores.get(m.name)
        cells, data = [], {"model": m.name, "role": m.role}
        for c in cols:
            v = s.value(c) if s else None
            iv = comparison.intervals.get(m.name, {}).get(c)
            cells.append("—" if v is None else f"{v:.2f}" + (f"\n[{iv.low:.2f}, {iv.high:.2f}]" if iv else ""))
            data[c] = v
            data[f"{c} interval"] = [iv.low, iv.high] if iv else None
        scores.add(f"{m.name}\n({m.role})", cells, data)
    out = [scores]
    style = {"better": "green", "worse": "red", "indistinguishable": "dim"}
    heads = ["docs", "Δ\n[95% interval]", "✓ cand\n/ parent", "p\n(Holm p)", "verdict"]
    for parent in comparison.parents:
        g = Grid(title=f"{comparison.candidate} − {parent} (paired; Holm-corrected McNemar, α = {comparison.alpha}; "
                       f"✓: right where the other is wrong)", key="Score", columns=heads, left={"verdict"}, wrap_key=True)
        for r in comparison.for_parent(parent):
            g.styles[(len(g.rows), "verdict")] = style[r.verdict]
            g.add(r.display, [f"{r.n_docs:,}", f"{r.delta:+.2f}\n[{r.ci_low:+.2f}, {r.ci_high:+.2f}]",
                              f"{r.only_candidate} / {r.only_parent}", f"{_p(r.p_value)}\n({_p(r.p_holm)})", r.verdict],
                  r.model_dump())
        for a in comparison.averages:
            if a.parent == parent:
                g.add("Average", ["", f"{a.delta:+.2f}\n[{a.ci_low:+.2f}, {a.ci_high:+.2f}]", "", "", ""], a.model_dump())
        out.append(g)
    return out


def tables(study, comparison) -> list:
    """Rich tables (the wide layout of `grids_of`)."""
    return [g.wide()[0] for g in grids_of(study, comparison)]


def _cols() -> list[str]:
    from evalsuite.report.scores import table_columns

    return table_columns()


def _p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"
