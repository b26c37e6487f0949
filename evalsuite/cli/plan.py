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
) -> None:
    """What `evalsuite run --all` would do, without running, merging or writing anything.

    Jobs and lm-eval processes, the requests lm-eval builds per benchmark (loglikelihood and
    generation, counted by lm-eval's own task code on the experiment's data and limit), what the
    last run already finished, the disk a merge and its outputs need, and the lm-eval time at a
    throughput you give or one measured from the logs of processes this results folder ran.

    Examples:

      evalsuite plan --config examples/demo.yaml

      evalsuite plan --ll-per-s 40 --gen-per-s 0.5        # the real study at a throughput you know

      evalsuite plan --config examples/demo.yaml --format json
    """
    if fmt not in ("table", "json"):
        raise UserError(f"--format {fmt!r}: table or json")
    from evalsuite.cli.run import refuse_sweep_file
    from evalsuite.config import load_experiment
    from evalsuite.plan import make_plan

    refuse_sweep_file(config)
    exp = load_experiment(config)
    p = make_plan(exp, ll_per_s, gen_per_s)
    if fmt == "json":
        typer.echo(p.model_dump_json(indent=1))
        return
    from evalsuite.report.tables import Grid, out_console

    console = out_console()
    g = Grid(title=f"{p.experiment}: requests per model ({p.harness} harness{'' if p.limit is None else f', limit {p.limit:g}'})",
             key="benchmark", columns=["documents", "loglikelihood", "generation"])
    for b in p.benchmarks:
        g.add(b.display, [f"{b.documents:,}", f"{b.loglikelihood:,}", f"{b.generation:,}"])
    m = Grid(title="models", key="model", columns=["role", "finished (last run)", "to run"], left={"finished (last run)", "to run"})
    for mp in p.models:
        m.add(mp.model, [mp.role, ", ".join(mp.finished) or "—", ", ".join(mp.to_run) or "—"])
    from evalsuite.report.tables import fit

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
    say(f"next: evalsuite run --all --config {config}")


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
