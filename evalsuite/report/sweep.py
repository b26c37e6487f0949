"""The sweep's outputs: a ranked, self-contained HTML report (jinja2 autoescape, the experiment
report's CSS, figures as data URIs, no script), a terminal table, and the `--format json` object."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.table import Table

from evalsuite.errors import UserError
from evalsuite.paths import inside
from evalsuite.report import plots
from evalsuite.report.build import static_text, template_env
from evalsuite.report.tables import Grid
from evalsuite.score import score_paths
from evalsuite.fsio import atomic_write_text
from evalsuite.results.store import Store
from evalsuite.suite import load_suite
from evalsuite.sweep.config import Sweep
from evalsuite.sweep.record import SweepRecord

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def summary_json(rec: SweepRecord) -> dict[str, Any]:
    """`evalsuite sweep --format json`: the winner, the strategy, the candidates' lm-eval requests
    and each candidate's rank, drop round and normalized scores."""
    return {
        "winner": rec.winner,
        "strategy": rec.strategy,
        "requests": rec.requests,
        "candidates": [
            {"name": r.name, "rank": r.rank, "dropped_in_round": r.dropped_in_round, "scores": r.scores}
            for r in rec.ranking
        ],
    }


def _display(bench_id: str) -> str:
    return load_suite().get(bench_id).display


def ranking_grid(rec: SweepRecord):
    """The ranking as an `evalsuite.report.tables.Grid`: candidate names and recipes whole at any width."""
    benches = [_display(b) for b in rec.benchmarks]
    grid = Grid(title=f"Sweep {rec.sweep} ({rec.strategy}): {rec.requests} lm-eval requests for the candidates", key="candidate",
                columns=["rank", "recipe", "dropped in round", "objective", *benches, "documents"], left={"recipe"})
    for r in rec.ranking:
        grid.add(r.name, [str(r.rank), r.label, "—" if r.dropped_in_round is None else str(r.dropped_in_round), f"{r.objective:.2f}",
                          *(f"{r.scores[b]:.2f}" for b in rec.benchmarks), str(r.documents)],
                 {"candidate": r.name, "rank": r.rank, "recipe": r.label, "dropped_in_round": r.dropped_in_round,
                  "objective": r.objective, **{d: r.scores[b] for d, b in zip(benches, rec.benchmarks)}, "documents": r.documents})
    return grid


def ranking_table(rec: SweepRecord) -> Table:
    return ranking_grid(rec).wide()[0]


def parent_scores(sweep: Sweep, rec: SweepRecord) -> dict[str, dict[str, float]]:
    """Each parent's normalized score per benchmark and its objective ("objective"), from its
    stored jobs (the same scoring as the candidates'); a parent whose jobs cannot be read is left out."""
    store = Store(Path(sweep.base.output.results))
    out: dict[str, dict[str, float]] = {}
    for parent, jobs in rec.parents.items():
        try:
            files = [store.results_path(r) for b in rec.benchmarks if (r := store.finished_job(jobs.get(b, ""))) is not None]
            (scores,) = score_paths(files) if files else (None,)
        except (UserError, ValueError, OSError):
            continue
        if scores is None:
            continue
        vals = {b: scores.value(_display(b)) for b in rec.benchmarks}
        if any(v is None for v in vals.values()):
            continue
        mean = sum(vals.values()) / len(vals)  # type: ignore[arg-type]
        out[parent] = {**vals, "objective": mean if rec.objective == "average" else vals.get(rec.objective, mean)}  # type: ignore[dict-item]
    return out


def _plot(rec: SweepRecord, sweep: Sweep, parents: dict[str, dict[str, float]] | None = None) -> str:
    """Each benchmark (and the objective) against the swept parameter, in the candidates' order."""
    order = [c.name for c in sweep.candidates]
    by_name = {r.name: r for r in rec.ranking}
    labels = [by_name[n].label for n in order]
    series = {_display(b): [by_name[n].scores[b] for n in order] for b in rec.benchmarks}
    if len(rec.benchmarks) > 1:
        series["objective"] = [by_name[n].objective for n in order]
    lows = {_display(b): [by_name[n].intervals.get(b, (None, None))[0] for n in order] for b in rec.benchmarks}
    highs = {_display(b): [by_name[n].intervals.get(b, (None, None))[1] for n in order] for b in rec.benchmarks}
    finalists = [by_name[n].dropped_in_round is None for n in order]
    refs = {f"{p} ({'objective' if len(rec.benchmarks) > 1 else _display(rec.benchmarks[0])})": v["objective"] for p, v in (parents or {}).items()}
    return plots.sweep_lines(labels, series, lows, highs, finalists, winner=order.index(rec.winner) if rec.winner in order else None,
                             references=refs)


def render(sweep: Sweep, rec: SweepRecord) -> str:
    env = template_env()
    template = env.get_template("sweep.html.j2")
    candidates = {c.name: c for c in sweep.candidates}
    parents = parent_scores(sweep, rec)
    best = next((r for r in rec.ranking if r.name == rec.winner), None)
    beaten_by = [(p, v["objective"]) for p, v in parents.items() if best is not None and v["objective"] > best.objective]
    return template.render(
        parents=parents, beaten_by=beaten_by, best=best,
        rec=rec, csp=CSP, css=static_text("report.css"), generated=time.time(),
        benchmarks=[(b, _display(b)) for b in rec.benchmarks], plot=_plot(rec, sweep, parents),
        recipes=[(c.name, c.label(), c.recipe_text()) for c in sweep.candidates],
        n_docs_total={b: sum(v.values()) for b, v in rec.n_docs.items()}, candidates=candidates, level=sweep.base.stats.level,
    )


def write_report(sweep: Sweep, rec: SweepRecord) -> Path:
    """reports/sweeps/<sweep>-<strategy>.html, written atomically."""
    folder = inside(Path(sweep.base.output.reports), "sweeps")
    folder.mkdir(parents=True, exist_ok=True)
    path = inside(folder, f"{rec.sweep}-{rec.strategy}.html")
    atomic_write_text(path, render(sweep, rec))
    return path
