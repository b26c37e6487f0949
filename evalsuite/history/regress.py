"""The regression gate: compare a recorded run with a baseline run, benchmark by benchmark.

1. Comparability first. Per model matched between the runs (the candidate with the candidate,
   other models by name) and per benchmark of both: every field of the job identity except the
   model itself (lm-eval version, task files hash, data identity, dtype, device, chat template,
   few-shot-as-multiturn, batch size, limit, seeds, backend) and lm-eval's per-task `task_hashes`
   must be equal, and no benchmark of the baseline may be missing. Any difference: not
   comparable (exit 2), unless drift is allowed (then the differences are warnings).
2. Per benchmark: `delta` = current - baseline (normalized points, from the history). With
   per-sample logs of both runs on the same documents, the paired statistics come from
   `evalsuite.compare` (McNemar exact p, paired-bootstrap interval of the normalized delta) and
   Holm's correction runs over every paired benchmark of the gate. A regression is a drop larger
   than the tolerance that compare's verdict also calls `worse` (Holm p < alpha, interval below
   0); an improvement likewise; else unchanged. Without paired logs the tolerance alone decides.
3. Exit codes: 0 no regression, 1 regression, 2 error or not comparable.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, Field

from evalsuite.compare import compare_models
from evalsuite.config import StatsSettings
from evalsuite.errors import UserError
from evalsuite.history.runs import JobEntry, RunInfo, get_run, latest_run, machines, resolve_run
from evalsuite.results.samples import read_benchmark_samples
from evalsuite.results.store import Store
from evalsuite.stats import holm, verdict
from evalsuite.suite import load_suite

DEFAULT_TOLERANCE = 1.0

Status = Literal["regression", "improvement", "unchanged"]


class Difference(BaseModel):
    """One reason the two runs are not comparable."""

    model: str
    benchmark: str
    field: str
    baseline: str
    current: str

    def line(self) -> str:
        return f"{self.model} / {self.benchmark}: {self.field} differs: baseline {self.baseline}, current {self.current}"


class BenchmarkResult(BaseModel):
    model: str  # the model's name in the current run
    benchmark: str
    display: str
    baseline: float
    current: float
    delta: float
    baseline_stderr: Optional[float] = None
    current_stderr: Optional[float] = None
    paired: bool = False  # paired per-document statistics were available
    n_docs: int = 0
    only_current: int = 0  # discordant documents: right now, wrong in the baseline
    only_baseline: int = 0
    p_value: Optional[float] = None
    p_holm: Optional[float] = None
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    status: Status = "unchanged"
    reason: str = ""


class RegressReport(BaseModel):
    experiment: str
    baseline_run: str
    current_run: str
    tolerance: float
    alpha: float
    allow_drift: bool
    differences: list[Difference] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    results: list[BenchmarkResult] = Field(default_factory=list)

    @property
    def comparable(self) -> bool:
        return not self.differences

    @property
    def regressions(self) -> list[BenchmarkResult]:
        return [r for r in self.results if r.status == "regression"]

    @property
    def exit_code(self) -> int:
        if self.differences and not self.allow_drift:
            return 2
        return 1 if self.regressions else 0


# ---------------------------------------------------------------------------------------------
# comparability


def match_models(base: RunInfo, cur: RunInfo) -> list[tuple[str, str]]:
    """(baseline name, current name): the candidates with each other, the rest by name."""
    pairs = []
    if base.candidate and cur.candidate:
        pairs.append((base.candidate, cur.candidate))
    cur_names = {m.name for m in cur.models if m.role != "candidate"}
    pairs += [(m.name, m.name) for m in base.models if m.role != "candidate" and m.name in cur_names]
    return pairs


def _show(v: object) -> str:
    return "(none)" if v is None else str(v)


def job_differences(model: str, benchmark: str, base: JobEntry, cur: JobEntry) -> list[Difference]:
    """Every number-changing difference between two jobs of the same benchmark (model aside)."""
    out = []
    for key in sorted((set(base.identity) | set(cur.identity)) - {"model"}):
        a, b = base.identity.get(key), cur.identity.get(key)
        if a != b:
            out.append(Difference(model=model, benchmark=benchmark, field=key, baseline=_show(a), current=_show(b)))
    if base.lm_eval_version != cur.lm_eval_version and base.identity.get("lm_eval") == cur.identity.get("lm_eval"):
        out.append(Difference(model=model, benchmark=benchmark, field="lm_eval_version (results file)",
                              baseline=_show(base.lm_eval_version), current=_show(cur.lm_eval_version)))
    for task in sorted(set(base.task_hashes) | set(cur.task_hashes)):
        a, b = base.task_hashes.get(task), cur.task_hashes.get(task)
        if a != b:
            out.append(Difference(model=model, benchmark=benchmark, field=f"task hash of {task}",
                                  baseline=_show(a and a[:12]), current=_show(b and b[:12])))
    return out


def comparability(base: RunInfo, cur: RunInfo) -> tuple[list[tuple[str, str, str]], list[Difference]]:
    """(model pairs x benchmarks to compare, differences). A baseline benchmark or model the
    current run lacks is a difference too."""
    cells: list[tuple[str, str, str]] = []
    diffs: list[Difference] = []
    pairs = match_models(base, cur)
    matched = {b for b, _ in pairs}
    for m in base.models:
        if m.name not in matched:
            diffs.append(Difference(model=m.name, benchmark="*", field="model", baseline="evaluated", current="absent"))
    for base_name, cur_name in pairs:
        label = cur_name if base_name == cur_name else f"{cur_name} (baseline: {base_name})"
        for bj in base.jobs:
            if bj.model != base_name:
                continue
            cj = cur.job(cur_name, bj.benchmark)
            if cj is None:
                diffs.append(Difference(model=label, benchmark=bj.benchmark, field="benchmark", baseline="evaluated", current="absent"))
                continue
            diffs += job_differences(label, bj.benchmark, bj, cj)
            cells.append((base_name, cur_name, bj.benchmark))
    return cells, diffs


# ---------------------------------------------------------------------------------------------
# the gate


def _samples(results_root: Path, job: JobEntry) -> Optional[tuple[list[Path], dict[Path, str]]]:
    """The job's per-sample logs and their recorded sha256 (checked while they are read, in the
    same pass), or None when its folder or record is gone or unreadable."""
    store = Store(results_root)
    if not job.samples_files:
        return None
    try:
        rec = store.job_record(job.job_id)
    except (OSError, ValueError, UserError):
        return None
    if rec.job_id != job.job_id or not rec.sha256:
        return None
    folder = store.job_dir(job.job_id)
    return [folder / f for f in rec.samples_files], {folder / rel: h for rel, h in rec.sha256.items()}


def regress(
    results_root: Path,
    baseline: str,
    current: Optional[str] = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    stats: StatsSettings = StatsSettings(),
    allow_drift: bool = False,
) -> RegressReport:
    """Compare run `current` (default: the latest run of the baseline's experiment) with
    `baseline` (a baseline name or run id). Raises UserError for unknown runs or bad numbers."""
    if not tolerance >= 0:
        raise UserError(f"--tolerance must be >= 0 normalized points, got {tolerance}")
    results_root = Path(results_root)
    base = resolve_run(results_root, baseline)
    cur = get_run(results_root, current) if current else latest_run(results_root, experiment=base.experiment)
    report = RegressReport(experiment=cur.experiment, baseline_run=base.run_id, current_run=cur.run_id,
                           tolerance=tolerance, alpha=stats.alpha, allow_drift=allow_drift)
    if base.experiment != cur.experiment:
        report.notes.append(f"runs of different experiments: baseline {base.experiment}, current {cur.experiment}")
    if base.run_id == cur.run_id:
        report.notes.append("the current run is the baseline run itself")
    identities = {(m.name, r.run_id): m.identity for r in (base, cur) for m in r.models}
    for b, c in match_models(base, cur):
        if identities[(b, base.run_id)] != identities[(c, cur.run_id)]:
            report.notes.append(f"{c}: model changed ({identities[(b, base.run_id)]} -> {identities[(c, cur.run_id)]})")
    # the machine is not identity (the same job on another GPU is the same job), but a gate that
    # compares numbers says where each run's numbers came from, and says so when that differs
    seen = {which: machines(results_root, run) for which, run in (("baseline", base), ("current", cur))}
    if seen["baseline"] == seen["current"]:
        report.notes.append(f"machine (both runs): {'; '.join(seen['current']) or 'not recorded'}")
    else:
        report.notes.append("machine differs: " + ", ".join(
            f"{which} {'; '.join(found) or 'not recorded'}" for which, found in seen.items())
            + " (not a drift: kernels can round differently)")
    cells, report.differences = comparability(base, cur)
    if report.differences and not allow_drift:
        return report
    report.results = _compare_cells(results_root, base, cur, cells, tolerance, stats, report.notes)
    return report


def _compare_cells(results_root: Path, base: RunInfo, cur: RunInfo, cells: list[tuple[str, str, str]], tolerance: float,
                   stats: StatsSettings, notes: list[str]) -> list[BenchmarkResult]:
    alpha = stats.alpha

    suite = load_suite()
    results: list[BenchmarkResult] = []
    by_pair: dict[tuple[str, str], list[BenchmarkResult]] = {}
    for base_name, cur_name, bench_id in cells:
        bs, cs = base.main_scores(base_name).get(bench_id), cur.main_scores(cur_name).get(bench_id)
        if bs is None or cs is None:
            notes.append(f"{cur_name} / {bench_id}: no score recorded in the {'baseline' if bs is None else 'current'} run")
            continue
        r = BenchmarkResult(model=cur_name, benchmark=bench_id, display=bs.display, baseline=bs.value, current=cs.value,
                            delta=cs.value - bs.value, baseline_stderr=bs.stderr, current_stderr=cs.stderr)
        results.append(r)
        by_pair.setdefault((base_name, cur_name), []).append(r)

    # paired statistics, one compare call per model pair (all its benchmarks at once)
    for (base_name, cur_name), rows in by_pair.items():
        docs: dict[str, dict] = {"current": {}, "baseline": {}}
        for r in rows:
            bj, cj = base.job(base_name, r.benchmark), cur.job(cur_name, r.benchmark)
            assert bj is not None and cj is not None
            bf, cf = _samples(results_root, bj), _samples(results_root, cj)
            if bf is None or cf is None:
                r.reason = "per-sample logs of a run missing or damaged: tolerance only"
                continue
            bench = suite.get(r.benchmark)
            try:
                pair = read_benchmark_samples(bench, *bf), read_benchmark_samples(bench, *cf)
            except UserError as exc:  # incomplete or unreadable logs: the tolerance still applies
                r.reason = f"per-sample logs unusable ({exc}): tolerance only"
                continue
            docs["baseline"][r.benchmark], docs["current"][r.benchmark] = pair
        if not docs["current"]:
            continue
        comparison = compare_models(docs, "current", ["baseline"], suite=suite, stats=stats)
        found = {row.score_id: row for row in comparison.rows}
        for r in rows:
            row = found.get(r.benchmark)
            if r.benchmark in docs["current"] and row is None:
                r.reason = "no documents in common: tolerance only"
            if row is None:
                continue
            r.paired, r.n_docs, r.p_value = True, row.n_docs, row.p_value
            r.only_current, r.only_baseline = row.only_candidate, row.only_parent
            r.ci_low, r.ci_high = row.ci_low, row.ci_high

    # Holm over every paired benchmark of the gate, then the verdicts
    paired = [r for r in results if r.paired]
    for r, p in zip(paired, holm([r.p_value for r in paired])):  # type: ignore[misc]
        r.p_holm = p
    for r in results:
        drop, rise = r.delta < -tolerance, r.delta > tolerance
        if not r.paired:
            r.status = "regression" if drop else "improvement" if rise else "unchanged"
            r.reason = r.reason or "tolerance only"
            continue
        v = verdict(r.p_holm, r.ci_low, r.ci_high, alpha)  # type: ignore[arg-type]
        if drop and v == "worse":
            r.status, r.reason = "regression", f"drop of {-r.delta:.2f} > {tolerance:g} points, Holm p = {r.p_holm:.3g} < {alpha:g}"
        elif rise and v == "better":
            r.status, r.reason = "improvement", f"gain of {r.delta:.2f} > {tolerance:g} points, Holm p = {r.p_holm:.3g} < {alpha:g}"
        elif drop or rise:
            r.status, r.reason = "unchanged", f"change of {r.delta:+.2f} points is not significant (Holm p = {r.p_holm:.3g})"
        else:
            r.status, r.reason = "unchanged", f"change of {r.delta:+.2f} points is within the tolerance of {tolerance:g}"
    return results


# ---------------------------------------------------------------------------------------------
# output


def render_table(report: RegressReport):
    """A rich Table: one row per (model, benchmark)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{report.experiment}: run {report.current_run} vs baseline {report.baseline_run}")
    for col, justify in [("model", "left"), ("benchmark", "left"), ("baseline", "right"), ("current", "right"), ("delta", "right"),
                         ("docs", "right"), ("right now/before", "right"), ("p (Holm)", "right"), ("verdict", "left")]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    style = {"regression": "bold red", "improvement": "green", "unchanged": ""}
    for r in report.results:
        table.add_row(
            escape(r.model), escape(r.display), f"{r.baseline:.2f}", f"{r.current:.2f}", f"{r.delta:+.2f}",
            str(r.n_docs) if r.paired else "—", f"{r.only_current}/{r.only_baseline}" if r.paired else "—",
            "—" if r.p_holm is None else f"{r.p_holm:.3g}", f"[{style[r.status]}]{r.status}[/]" if style[r.status] else r.status,
        )
    return table


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _XML_BAD.sub("?", text)


def junit_xml(report: RegressReport) -> str:
    """JUnit XML: one test case per (model, benchmark), a <failure> per regression; when the runs
    are not comparable, one `comparability` test case with an <error> listing the differences."""
    blocked = bool(report.differences) and not report.allow_drift
    cases = []
    for r in report.results:
        case = ET.Element("testcase", classname=_clean(f"{report.experiment}.{r.model}"), name=_clean(r.display), time="0")
        detail = (f"baseline {r.baseline:.4f} (run {report.baseline_run}), current {r.current:.4f} (run {report.current_run}), "
                  f"delta {r.delta:+.4f}; {r.reason}")
        if r.status == "regression":
            fail = ET.SubElement(case, "failure", message=_clean(f"{r.display} regressed by {-r.delta:.2f} points"), type="regression")
            fail.text = _clean(detail)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = _clean(f"{r.status}: {detail}")
        cases.append(case)
    if report.differences:
        case = ET.Element("testcase", classname=_clean(report.experiment), name="comparability", time="0")
        text = "\n".join(d.line() for d in report.differences)
        if blocked:
            err = ET.SubElement(case, "error", message=_clean(f"runs not comparable: {len(report.differences)} differences"), type="drift")
            err.text = _clean(text)
        else:
            out = ET.SubElement(case, "system-err")
            out.text = _clean("drift allowed (--allow-drift):\n" + text)
        cases.append(case)
    failures = sum(r.status == "regression" for r in report.results)
    errors = int(blocked)
    suites = ET.Element("testsuites", name="evalsuite regress", tests=str(len(cases)), failures=str(failures), errors=str(errors))
    suite = ET.SubElement(suites, "testsuite", name=_clean(f"evalsuite.regress.{report.experiment}"), tests=str(len(cases)),
                          failures=str(failures), errors=str(errors), skipped="0",
                          timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))
    props = ET.SubElement(suite, "properties")
    for k, v in [("baseline_run", report.baseline_run), ("current_run", report.current_run),
                 ("tolerance", f"{report.tolerance:g}"), ("alpha", f"{report.alpha:g}")]:
        ET.SubElement(props, "property", name=k, value=_clean(v))
    suite.extend(cases)
    if report.notes:
        ET.SubElement(suite, "system-out").text = _clean("\n".join(report.notes))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
