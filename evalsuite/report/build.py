"""Assemble a report: stored results -> scores, paired statistics, plots, sample browser,
provenance -> one self-contained HTML file, a Markdown summary and a JSON sidecar (for `view`)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shlex
import time
from importlib.resources import files
from pathlib import Path
from typing import Any, Optional

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel

from evalsuite.compare import Comparison
from evalsuite.config import StatsSettings
from evalsuite.errors import UserError
from evalsuite.faults import checkpoint
from evalsuite.models.merge_plan import MergePlan
from evalsuite.paths import inside
from evalsuite.published.contents import PublishedRow
from evalsuite.report import plots
from evalsuite.report.published import match_published, read_published
from evalsuite.report.samples import disagreements
from evalsuite.report.scores import table_columns
from evalsuite.fsio import atomic_write_text, sweep_stale
from evalsuite.study import Study, compare_study, read_study
from evalsuite.suite import Suite, load_suite

SIDECAR_SCHEMA = 1
HEATMAP_BENCHMARKS = ("bbh", "musr", "math_hard", "gpqa")  # benchmarks with subtasks


class ReportPaths(BaseModel):
    html: Path
    markdown: Path
    sidecar: Path


def template_env():
    env = Environment(
        loader=PackageLoader("evalsuite.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), disabled_extensions=("md.j2",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda v, d=2: "—" if v is None else f"{v:.{d}f}"
    env.filters["signed"] = lambda v, d=2: "—" if v is None else f"{v:+.{d}f}"
    env.filters["pval"] = lambda p: "—" if p is None else ("<0.0001" if p < 1e-4 else f"{p:.4f}")
    env.filters["md"] = lambda s: str(s).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    env.filters["when"] = lambda ts: dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else "—"
    env.filters["duration"] = _duration
    return env


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def static_text(name: str) -> str:
    return (files("evalsuite.report") / "templates" / name).read_text(encoding="utf-8")


def script_hash(script: str) -> str:
    """CSP source for an inline script: only this exact static script may run in the report."""
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


# ---------------------------------------------------------------------------------------------
# context


def _headline(study: Study, comparison: Comparison, suite: Suite, published: list[PublishedRow]) -> dict[str, Any]:
    columns = table_columns(suite)
    rows = []
    by_parent = {p: {r.display: r for r in comparison.for_parent(p)} for p in comparison.parents}
    averages = {a.parent: a for a in comparison.averages}
    for model in study.models:
        name = model.name
        scores = study.scores.get(name)
        pub = match_published(published, model.model_dump(mode="json")) if published else None
        cells = []
        for col in columns:
            iv = comparison.intervals.get(name, {}).get(col)
            cmp = None
            if name in by_parent:
                r = by_parent[name].get(col)
                if r is not None:
                    cmp = dict(delta=r.delta, low=r.ci_low, high=r.ci_high, verdict=r.verdict, p_holm=r.p_holm)
                elif col == suite.average and name in averages:
                    a = averages[name]
                    cmp = dict(delta=a.delta, low=a.ci_low, high=a.ci_high, verdict=None, p_holm=None)
            cells.append(dict(
                column=col,
                value=scores.value(col) if scores else None,
                low=iv.low if iv else None,
                high=iv.high if iv else None,
                published=pub.values.get(col) if pub else None,
                compare=cmp,
            ))
        rows.append(dict(name=name, role=model.role, cells=cells, published_model=pub.model if pub else None,
                         from_details=bool(model.published)))
    return dict(columns=columns, rows=rows, has_published=any(r["published_model"] for r in rows))


def _plots(study: Study, comparison: Comparison, suite: Suite, headline: dict, merge: Optional[dict]) -> list[dict]:
    values = {r["name"]: {c["column"]: c["value"] for c in r["cells"]} for r in headline["rows"]}
    cols = [b.display for b in suite.benchmarks if any(v.get(b.display) is not None for v in values.values())]
    ivs = {r["name"]: {c["column"]: (c["low"], c["high"]) for c in r["cells"] if c["low"] is not None} for r in headline["rows"]}
    pubs = {r["name"]: {c["column"]: c["published"] for c in r["cells"] if c["published"] is not None} for r in headline["rows"]}
    out = [dict(id="bars", title="Normalized scores per benchmark",
                caption="Bars: reproduced leaderboard-normalized scores; whiskers: 95% bootstrap intervals"
                        + ("; black ticks: published values." if any(pubs.values()) else "."),
                uri=plots.grouped_bars(cols, values, ivs, pubs))]
    rows, labels = [], []
    for bench in suite.benchmarks:
        if bench.id in HEATMAP_BENCHMARKS:
            for t in bench.leaf_tasks:
                rows.append(t)
                labels.append(f"{bench.display} · {bench.short_name(t)}")
    deltas = {p: {} for p in comparison.parents}
    for r in comparison.rows:
        if r.score_id in HEATMAP_BENCHMARKS:
            deltas[r.parent].update(r.subtask_delta)
    if comparison.parents and any(deltas.values()):
        keep = [i for i, t in enumerate(rows) if any(t in d for d in deltas.values())]
        lab = {rows[i]: labels[i] for i in keep}
        out.append(dict(id="heatmap", title="Subtask deltas (candidate − parent)",
                        caption="Leaderboard-normalized points per subtask on the documents both models answered; blue: the candidate scores higher.",
                        uri=plots.delta_heatmap([lab[rows[i]] for i in keep], comparison.parents,
                                                {p: {lab[t]: v for t, v in d.items() if t in lab} for p, d in deltas.items()})))
    if merge and merge.get("rows"):
        out.append(dict(id="merge", title="Merge plan: t per layer", caption="Interpolation weight t per layer for each filter class of the recipe (0 = base model).",
                        uri=plots.merge_plan(merge["rows"], merge["title"])))
    return out


def _merge_info(study: Study) -> Optional[dict]:
    cand = study.record.candidate
    folder = Path(cand.local_path) if cand.local_path else None
    if folder is None or not folder.is_dir():
        return None
    info: dict[str, Any] = dict(rows=None, title=None, method=None, parents=None, plan_error=None, fingerprint=None, recipe=None)
    plan_file, marker, recipe = folder / "merge_plan.json", folder / "evalsuite_merge.json", folder / "mergekit_config.yml"
    if plan_file.is_file():
        try:
            plan = MergePlan.model_validate_json(plan_file.read_text())
            info["rows"] = plan.rows()
            info["title"] = f"{plan.method}, base {plan.base_model}, {plan.num_layers} layers"
            info["method"] = plan.method
            info["parents"] = [p.model_dump(mode="json") for p in plan.parents]
        except (OSError, ValueError, ImportError):
            info["plan_error"] = f"{plan_file} could not be read"
    if marker.is_file():
        try:
            info["fingerprint"] = json.loads(marker.read_text()).get("fingerprint")
        except (OSError, ValueError):
            pass
    if recipe.is_file():
        info["recipe"] = recipe.read_text(errors="replace")
    return info if any(v is not None for v in info.values()) else None


def _whole(v: Any) -> Any:
    """2.0 -> 2 (lm-eval writes --limit as a float); anything else as it is."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _provenance(study: Study) -> dict[str, Any]:
    jobs, envs = [], {}
    for model in study.models:
        name = model.name
        for bench_id, run in study.runs.get(name, {}).items():
            job, res = run.record, run.meta
            cfg, hashes, env = res.config, res.task_hashes, res.pretty_env_info
            if env:
                envs.setdefault(env, []).append(f"{name} · {bench_id}")
            jobs.append(dict(
                model=name, benchmark=bench_id, job_id=job.job_id, duration=job.duration_s,
                lm_eval_time=res.total_evaluation_time_seconds,
                lm_eval=res.lm_eval_version, transformers=res.transformers_version,
                batch_size=cfg.get("batch_size"), batch_sizes=job.batch_sizes or cfg.get("batch_sizes"), device=cfg.get("device"),
                limit=_whole(cfg.get("limit")), process=job.process, fewshot_as_multiturn=res.fewshot_as_multiturn,
                chat_template_sha=res.chat_template_sha, command=shlex.join(job.command),
                task_hashes=sorted(hashes.items()), identity=json.dumps(job.identity, sort_keys=True),
                numeric_env=(job.identity or {}).get("numeric_env"), machine=getattr(job, "machine", None),
            ))
    # jobs that shared one lm-eval process share its time: each is charged its share, and the total
    # counts each process once (not the process's whole time once per job)
    per_process: dict[str, list[dict]] = {}
    for j in jobs:
        per_process.setdefault(j.pop("process") or j["job_id"], []).append(j)
    total = 0.0
    for group in per_process.values():
        whole = max(j["duration"] for j in group)
        total += whole
        for j in group:
            j["duration"] = whole / len(group)
            j["shared"] = len(group) if len(group) > 1 else None
    return dict(jobs=jobs, envs=[dict(text=k, jobs=v) for k, v in envs.items()], total_time=total,
                processes=len(per_process), shared=any(len(g) > 1 for g in per_process.values()))


def build_context(study: Study, comparison: Comparison, suite: Suite, published: list[PublishedRow],
                  per_pair: int = 80, now: Optional[float] = None) -> dict[str, Any]:
    headline = _headline(study, comparison, suite, published)
    merge = _merge_info(study)
    script = static_text("browser.js.j2")  # verbatim (no templating); .j2 so package-data ships it
    sections = disagreements(study, suite, per_pair)
    return dict(
        experiment=study.experiment,
        generated=now or time.time(),
        finished=study.finished,
        candidate=study.candidate,
        parents=study.parents,
        models=study.models,
        headline=headline,
        comparison=comparison,
        verdict_rows={p: comparison.for_parent(p) for p in comparison.parents},
        averages={a.parent: a for a in comparison.averages},
        plots=_plots(study, comparison, suite, headline, merge),
        merge=merge,
        provenance=_provenance(study),
        browser=sections,
        browser_tasks=[(t, f"{s.display} · {_short(suite, s.benchmark, t)}") for s in sections for t in dict.fromkeys(d.task for d in s.items)],
        per_pair=per_pair,
        css=static_text("report.css"),
        script=script,
        csp=f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{script_hash(script)}'; base-uri 'none'; form-action 'none'",
    )


def _short(suite: Suite, bench_id: str, task: str) -> str:
    return suite.get(bench_id).short_name(task)


# ---------------------------------------------------------------------------------------------
# writing


def sidecar(ctx: dict[str, Any], html_name: str, md_name: str) -> dict[str, Any]:
    """What `evalsuite view` lists for a report (no need to parse the HTML)."""
    h = ctx["headline"]
    return dict(
        schema_version=SIDECAR_SCHEMA,
        experiment=ctx["experiment"],
        generated=ctx["generated"],
        finished=ctx["finished"],
        candidate=ctx["candidate"],
        parents=ctx["parents"],
        html=html_name,
        markdown=md_name,
        columns=h["columns"],
        headline={r["name"]: {c["column"]: c["value"] for c in r["cells"]} for r in h["rows"]},
        verdicts={p: {r.display: r.verdict for r in rows} for p, rows in ctx["verdict_rows"].items()},
    )


def render(ctx: dict[str, Any]) -> tuple[str, str]:
    env = template_env()
    return env.get_template("report.html.j2").render(**ctx), env.get_template("summary.md.j2").render(**ctx)


def report_name(experiment: str, when: float) -> str:
    return f"{experiment}-{dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime('%Y%m%d-%H%M%S')}"


def build_report(
    results_dir: Path,
    experiment: str,
    reports_dir: Path,
    *,
    out: Optional[Path] = None,
    published: Optional[Path] = None,
    stats: StatsSettings = StatsSettings(),
    per_pair: int = 80,
    suite: Optional[Suite] = None,
    study: Optional[Study] = None,
) -> ReportPaths:
    """Read an experiment's stored results (or take its `study`, e.g. the one `evalsuite run` just
    made) and write `<name>.html`, `<name>.md`, `<name>.json`.

    Files are written atomically, the sidecar last (a report is listed once it is complete)."""
    suite = suite or (study.suite if study is not None else load_suite())
    study = study or read_study(Path(results_dir), experiment, suite)
    if not study.scores.get(study.candidate):
        raise UserError(f"{results_dir}: experiment {experiment!r} has no finished job of the candidate {study.candidate}")
    comparison = compare_study(study, suite=suite, stats=stats)
    rows = read_published(Path(published), suite) if published else []
    now = time.time()
    ctx = build_context(study, comparison, suite, rows, per_pair=per_pair, now=now)
    html_text, md_text = render(ctx)
    html = Path(out) if out else inside(Path(reports_dir), f"{report_name(experiment, now)}.html")  # --out: the user's choice
    html.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(html.parent)  # temp files of a report writer that was killed
    md, side = html.with_suffix(".md"), html.with_suffix(".json")
    atomic_write_text(html, html_text)
    atomic_write_text(md, md_text)
    checkpoint("report.write")
    atomic_write_text(side, json.dumps(sidecar(ctx, html.name, md.name), indent=1))
    return ReportPaths(html=html, markdown=md, sidecar=side)


def report_experiment(exp, *, out: Optional[Path] = None, published: Optional[Path] = None, **kwargs) -> ReportPaths:
    """`build_report` for a loaded `Experiment` (its results and reports folders, its statistics
    settings): the hook for writing a report at the end of `evalsuite run`."""
    kwargs.setdefault("stats", exp.stats)
    return build_report(Path(exp.output.results), exp.name, Path(exp.output.reports), out=out, published=published, **kwargs)
