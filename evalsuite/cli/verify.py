"""`evalsuite verify`: a local run of one model against its published per-sample details."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.options import stats_options
from evalsuite.config import StatsSettings
from evalsuite.errors import UserError


class Format(str, Enum):
    table = "table"
    json = "json"


@stats_options("n_boot", "seed")
def verify(
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file."),
    model: str = typer.Option(..., "--model", "-m", help="The model to check (its name in the experiment)."),
    against: Optional[str] = typer.Option(None, "--against", help="Published details: a details repo id or a local folder (default: open-llm-leaderboard/<org>__<name>-details from the model's hub id)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="First run the model locally on N documents per task, then check only those."),
    tolerance: str = typer.Option("se", "--tolerance", help="Allowed |score difference|: se (the benchmark's standard error) or points, e.g. 0.5."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json (same content)."),
    stats: StatsSettings = StatsSettings(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display for the --limit run."),
) -> None:
    """Check a local run of MODEL against its published details, document by document.

    Per leaf task, documents paired by doc_id: identical documents (doc_hash) and
    prompts (prompt_hash; the first difference shown as a diff); multiple choice:
    the largest |Δ log-likelihood| and the share of identical picks; generation:
    identical outputs and verdicts. Per benchmark: local − reference normalized
    score with a paired bootstrap interval.

    Per benchmark, per-document agreement must also hold (docs/published.md):
    identical picks and outputs on at least 90% of documents, median |Δ
    log-likelihood| at most 0.02 nats; numerical noise (batch size, bf16,
    threads) stays within these, another model does not.

    Exit 0 when all pass; 1 when prompts differ, agreement fails or a score
    difference is outside the tolerance (reasons listed); 2 for bad input.

    Examples:

      evalsuite verify --model gemma-2-9b-it            # repo from the hub id

      evalsuite verify --model tiny-merge --against details/

      evalsuite verify --model gemma-2-9b-it --limit 5  # run 5 docs/task, check
    """
    from evalsuite.config import load_experiment
    from evalsuite.published.checks import parse_tolerance
    from evalsuite.published.sides import check_source, find_model, reference_side, side_from_runs, stored_runs
    from evalsuite.published.verify import verify_sides
    from evalsuite.results.store import Store
    from evalsuite.suite import load_suite

    tol = parse_tolerance(tolerance)
    if limit is not None and limit <= 0:
        raise UserError(f"--limit {limit}: give a positive number of documents per task")
    exp = load_experiment(config)
    spec = find_model(exp, model)
    if against is None and not spec.hub:
        raise UserError(f"model {model} has no hub id: say what to check it against with --against REPO_OR_FOLDER")
    if against is not None and not against.strip():
        raise UserError("--against: empty")
    check_source(against, spec)  # before the --limit run writes anything
    suite = load_suite()
    store = Store(Path(exp.output.results))
    experiment = exp.name
    if limit is not None:
        experiment, study = _limited_run(exp, config, model, limit, quiet)
    else:
        study = stored_runs(store, exp.name, model)
    jobs = study.runs[model]
    local = side_from_runs(jobs, model, suite, where=f"{store.root} (experiment {experiment})", scores=study.scores.get(model))
    ref = reference_side(against, spec, store, suite, list(jobs))
    result = verify_sides(model, experiment, local, ref, benchmarks=list(jobs), suite=suite, tolerance=tol,
                          stats=stats.over(exp.stats), limit=limit)
    if fmt is Format.json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        from rich.console import Console

        out = Console(width=None if Console().is_terminal else 160)
        for item in render(result):
            out.print(item)
    if not result.passed:
        raise typer.Exit(1)


def _limited_run(exp, config: Path, model: str, limit: int, quiet: bool):
    """Run only `model` (see sides.limit_overrides) with `limit` documents per task."""
    from rich.console import Console

    from evalsuite.config import load_experiment
    from evalsuite.published import importer
    from evalsuite.published.sides import limit_overrides
    from evalsuite.run.runner import merged_dir, run_experiment
    from evalsuite.results.store import Store

    store = Store(Path(exp.output.results))
    merged = merged_dir(store, exp) if exp.candidate.recipe is not None else None
    overrides, how = limit_overrides(exp, model, limit, merged)
    run_exp = load_experiment(config, overrides)
    console = Console(stderr=True, quiet=quiet)
    console.print(f"verify: running {how} with limit {limit} (experiment {run_exp.name})")
    outcome = run_experiment(run_exp, console=console, quiet=quiet, importer=importer)
    if not outcome.ok:
        for line in outcome.failed:
            typer.echo(f"failed: {line}", err=True)
        raise typer.Exit(1)
    if not outcome.done.get(model):
        raise UserError(f"the --limit run of {model} stored no jobs")
    return run_exp.name, outcome.study


def _pct(n, paired: int) -> str:
    if n is None:
        return "—"
    if not paired:
        return "0/0"
    return f"{n}/{paired} ({100 * n / paired:.0f}%)"


def render(result) -> list:
    """Rich renderables: the tasks table, the benchmarks table, prompt diffs and the verdict."""
    from rich.table import Table
    from rich.text import Text

    title = f"{result.model}: local run ({result.experiment}) vs reference {result.reference}"
    tasks = Table(title=title + (f", limit {result.limit}" if result.limit else ""))
    tasks.add_column("Task", no_wrap=True)
    for h in ("paired docs", "same doc", "same prompt", "max |Δ ll|", "same pick", "same output", "same verdict"):
        tasks.add_column(h, justify="right")
    tasks.add_column("")
    for b in result.benchmarks:
        for t in b.tasks:
            extra = f" (+{t.not_in_reference} not in ref.)" if t.not_in_reference else ""
            tasks.add_row(
                t.task, f"{t.paired}{extra}", _pct(t.docs_identical, t.paired), _pct(t.prompts_identical, t.paired),
                "—" if t.max_abs_dll is None else f"{t.max_abs_dll:.3g}", _pct(t.picks_identical, t.paired),
                _pct(t.outputs_identical, t.paired), _pct(t.verdicts_identical, t.paired),
                "[green]ok[/]" if t.passed else "[red]differs[/]",
            )
    benches = Table(title=f"local − reference, leaderboard-normalized, paired docs; {int(result.level * 100)}% bootstrap interval; tolerance {result.tolerance}")
    for h in ("Benchmark", "docs", "local", "reference", "Δ", "interval", "tolerance", ""):
        benches.add_column(h, justify="left" if h in ("Benchmark", "") else "right")
    for b in result.benchmarks:
        if b.delta is None:
            benches.add_row(b.display, str(b.paired), "—", "—", "—", "—", "—", "[red]fail[/]")
            continue
        benches.add_row(b.display, str(b.paired), f"{b.local:.2f}", f"{b.reference:.2f}", f"{b.delta:+.2f}",
                        f"[{b.ci_low:+.2f}, {b.ci_high:+.2f}]", f"±{b.tolerance:.2f} {b.tolerance_kind}",
                        "[green]pass[/]" if b.passed else "[red]fail[/]")
    out: list = [tasks, benches]
    for b in result.benchmarks:
        for t in b.tasks:
            if t.doc_mismatch:
                more = t.paired - t.docs_identical - len(t.doc_mismatch)
                out.append(Text(f"{t.task}: doc_hash differs on {t.paired - t.docs_identical} document(s): doc_id "
                                + ", ".join(map(str, t.doc_mismatch)) + (f" and {more} more" if more > 0 else ""), style="yellow"))
            if t.prompt_diff is not None:
                out.append(Text(f"{t.task}: first differing prompt, doc_id {t.prompt_diff_doc}:", style="bold"))
                out.append(Text(t.prompt_diff))
    imp = result.reference_import
    if imp:
        out.append(Text(f"reference imported as {imp['name']} ({imp['identity']}, run {imp['run']}), re-scored by lm-eval "
                        f"{imp['lm_eval']}: {imp['verdicts_agree']}/{imp['verdicts_compared']} recorded verdicts agree", style="dim"))
    for side, env in (("local", result.local_environment), ("reference", result.reference_environment)):
        if env:
            out.append(Text(f"{side} environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), style="dim"))
    picks = sorted({t.pick_rule for b in result.benchmarks for t in b.tasks if t.pick_rule})
    if picks:
        out.append(Text("picks recomputed from the records' log-likelihoods: " + "; ".join(picks), style="dim"))
    if result.notes:
        out.append(Text("per-document differences (agreement thresholds: docs/published.md):", style="yellow"))
        for n in result.notes:
            out.append(Text(f"  {n}", style="yellow"))
    if result.passed:
        out.append(Text("verify: pass", style="green bold"))
    else:
        out.append(Text("verify: FAIL", style="red bold"))
        for r in result.reasons:
            out.append(Text(f"  {r}", style="red"))
    return out
