"""`evalsuite plan`: the jobs, lm-eval processes, requests, disk and time of a run, before it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.errors import UserError


def plan(
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file."),
    ll_per_s: Optional[float] = typer.Option(None, "--ll-per-s", min=0.000001, help="Loglikelihood requests per second (default: measured from this results folder's logs)."),
    gen_per_s: Optional[float] = typer.Option(None, "--gen-per-s", min=0.000001, help="Generation requests per second (default: measured likewise)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table (fits the terminal) or json (the same totals for scripts)."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="For a sweep file: halving or full (default: the file's)."),
) -> None:
    """What `evalsuite run --all` would do, without running, merging or writing anything.

    Jobs and lm-eval processes, the requests lm-eval builds per benchmark (loglikelihood and
    generation, counted by lm-eval's own task code on the experiment's data and limit), what the
    last run already finished, the disk a merge and its outputs need, and the lm-eval time at a
    throughput you give or one measured from the logs of processes this results folder ran.
    For a sweep file: the parents' plan, then each round's documents and requests per candidate
    (a halving sweep's totals are a range: survivors are decided by the paired tests).

    Examples:

      evalsuite plan --config examples/demo.yaml

      evalsuite plan --ll-per-s 40 --gen-per-s 0.5        # the real study at a throughput you know

      evalsuite plan --config examples/demo.yaml --format json

      evalsuite plan --config examples/demo-sweep.yaml                # a sweep: requests per round
    """
    if fmt not in ("table", "json"):
        raise UserError(f"--format {fmt!r}: table or json")
    if strategy not in (None, "halving", "full"):
        raise UserError(f"--strategy {strategy!r}: halving or full")
    from evalsuite.cli.run import is_sweep_file
    from evalsuite.report.tables import out_console
    from evalsuite.config import load_experiment
    from evalsuite.run.plan import make_plan

    if is_sweep_file(config):
        from evalsuite.sweep import load_sweep
        from evalsuite.sweep.plan import make_sweep_plan

        sp = make_sweep_plan(load_sweep(config), strategy, ll_per_s, gen_per_s)  # type: ignore[arg-type]
        if fmt == "json":
            typer.echo(sp.model_dump_json(indent=1))
            return
        _render_sweep(sp, config)
        return
    if strategy is not None:
        raise UserError(f"--strategy: {config} is an experiment, not a sweep file")
    exp = load_experiment(config)
    p = make_plan(exp, ll_per_s, gen_per_s)
    if fmt == "json":
        typer.echo(p.model_dump_json(indent=1))
        return
    console = out_console()
    _render(p, console)
    console.print(f"next: evalsuite run --all --config {config}", markup=False, highlight=False)


def _render(p, console) -> None:
    """A plan's tables and lines (an experiment's, or a sweep's parents')."""
    from evalsuite.report.tables import Grid, fit

    g = Grid(title=f"{p.experiment}: requests per model ({p.harness} harness{'' if p.limit is None else f', limit {p.limit:g}'})",
             key="benchmark", columns=["documents", "loglikelihood", "generation"])
    for b in p.benchmarks:
        g.add(b.display, [f"{b.documents:,}", f"{b.loglikelihood:,}", f"{b.generation:,}"])
    m = Grid(title="models", key="model", columns=["role", "finished (last run)", "to run"], left={"finished (last run)", "to run"})
    for mp in p.models:
        m.add(mp.model, [mp.role, ", ".join(mp.finished) or "—", ", ".join(mp.to_run) or "—"])
    console.print(fit(g, console.width))
    console.print(fit(m, console.width))
    say = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731
    say(f"jobs: {p.jobs_to_run} of {p.jobs} to run, in {p.processes} lm-eval process(es), {p.workers} at a time")
    say(f"requests to run: {p.requests['loglikelihood']:,} loglikelihood, {p.requests['generation']:,} generation")
    for what, size in p.disk.items():
        say(f"disk, {what}: {_size(size)}")
    for note in p.disk_notes:
        say(f"  {note}")
    rates = ", ".join(f"{k} {v:.3g}/s" for k in ("loglikelihood", "generation") if (v := getattr(p.throughput, k)) is not None)
    say(f"throughput: {rates or 'unknown'} ({p.throughput.source})")
    if p.seconds is None:
        say("time: no estimate (no throughput for every kind of request to run)")
    else:
        say(f"time: about {_clock(p.seconds)} of lm-eval requests (model loading and start-up not included)")


def _render_sweep(sp, config: Path) -> None:
    from evalsuite.report.tables import Grid, fit, out_console

    console = out_console()
    say = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731
    say(f"parents ({sp.sweep}: run or reused once, every document):")
    _render(sp.parents, console)
    g = Grid(title=f"{sp.sweep}: {sp.candidates} candidates, {sp.strategy}: requests per candidate and round",
             key="round", columns=["share", "documents", "loglikelihood", "generation", "candidates"])
    for rp in sp.rounds:
        who = str(rp.candidates_at_most) if rp.candidates_at_most == rp.candidates_at_least else f"{rp.candidates_at_least}-{rp.candidates_at_most}"
        g.add(str(rp.round), [f"{rp.share:.1%}", f"{rp.documents:,}", f"{rp.loglikelihood:,}", f"{rp.generation:,}", who])
    console.print(fit(g, console.width))

    def span(lo, hi, fmt=lambda v: f"{v:,}") -> str:
        return fmt(hi) if lo == hi else f"{fmt(lo)} to {fmt(hi)}"

    for k in ("loglikelihood", "generation"):
        say(f"candidates' {k} requests: {span(sp.requests_at_least[k], sp.requests_at_most[k])}")
    say(f"candidates' lm-eval processes: {span(sp.processes_at_least, sp.processes_at_most)} (one per candidate and round, one merge at a time)")
    if sp.stored_rounds:
        say(f"stored already: {sp.stored_rounds} candidate round(s), {sp.stored_requests:,} requests (reused)")
    if sp.seconds_at_most is None or sp.seconds_at_least is None:
        say("candidates' time: no estimate (no throughput for every kind of request to run)")
    else:
        say(f"candidates' time: about {span(sp.seconds_at_least, sp.seconds_at_most, _clock)} of lm-eval requests "
            "(merges, model loading and start-up not included)")
    say(f"next: evalsuite sweep --config {config}" + (f" --strategy {sp.strategy}" if sp.strategy == "full" else ""))


def _size(n: Optional[int]) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _clock(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
