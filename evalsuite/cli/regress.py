"""`evalsuite regress`: the regression gate of a recorded run against a baseline (exit 0/1/2)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.options import RESULTS_HELP, experiment_for, results_root, stats_options
from evalsuite.config import StatsSettings


def check_regress_options(tolerance: float, junit: Optional[Path]) -> None:
    """Option ranges and the --junit target, refused in one line before the gate runs."""
    import math

    from evalsuite.errors import UserError

    if not math.isfinite(tolerance) or tolerance < 0:
        raise UserError(f"--tolerance {tolerance}: normalized points, 0 or more")
    if junit is not None:
        if junit.is_dir():
            raise UserError(f"--junit {junit}: is a folder (give a file name)")
        up = next((p for p in [junit.parent, *junit.parent.parents] if p.exists() or p.is_symlink()), None)
        if up is not None and not up.is_dir():
            raise UserError(f"--junit {junit}: {up} is a file, not a folder")


@stats_options("n_boot", "seed", "alpha", alpha={"max": 0.5})
def regress(
    baseline: str = typer.Option(..., "--baseline", "-b", help="Baseline name (evalsuite baseline set) or run id."),
    current: Optional[str] = typer.Option(None, "--current", help="Run id to check; default: the latest run of the baseline's experiment."),
    tolerance: float = typer.Option(1.0, "--tolerance", help="Drops up to this many normalized points never fail."),
    stats: StatsSettings = StatsSettings(),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write a JUnit XML file (one test case per benchmark)."),
    allow_drift: bool = typer.Option(False, "--allow-drift", help="Compare even if settings, task hashes or data differ (warn only)."),
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file (for its results folder)."),
) -> None:
    """Fail when a benchmark dropped by more than --tolerance points and the drop is significant.

    Exit codes: 0 no regression, 1 regression, 2 error or runs not comparable (lm-eval version, task hashes, data or number-changing settings differ).

    Examples:

      evalsuite regress --baseline nightly --junit regress.xml

      evalsuite regress --baseline 20261126T181502Z-3fa9c1 --tolerance 0.5

      evalsuite regress --baseline nightly --boot 5000 --seed 1 --alpha 0.01
    """
    from rich.console import Console

    from evalsuite.history.regress import junit_xml, regress as run_gate, render_table
    from evalsuite.fsio import atomic_write_text

    check_regress_options(tolerance, junit)  # before anything is read or written
    exp = experiment_for(results, config)
    settings = stats.over(exp.stats) if exp is not None else stats
    report = run_gate(results_root(results, config, exp), baseline, current, tolerance=tolerance, stats=settings, allow_drift=allow_drift)

    def err(line: str) -> None:
        typer.echo(line, err=True)  # plain lines: never wrapped, greppable in CI logs

    for note in report.notes:
        err(f"note: {note}")
    kind = "warning" if allow_drift else "error"
    for d in report.differences:
        err(f"{kind}: not comparable: {d.line()}")
    if report.results:
        out = Console()
        if not out.is_terminal:
            out = Console(width=160)
        out.print(render_table(report))
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(junit, junit_xml(report))
    code = report.exit_code
    if code == 2:
        err(f"regress: runs {report.baseline_run} and {report.current_run} are not comparable "
            f"({len(report.differences)} differences; --allow-drift to compare anyway)")
    elif code == 1:
        names = ", ".join(f"{r.model}/{r.benchmark}" for r in report.regressions)
        err(f"regress: REGRESSION in {names}")
    else:
        err("regress: no regression")
    raise typer.Exit(code)
