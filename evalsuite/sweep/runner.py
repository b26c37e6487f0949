"""Run a sweep: the parents once, then the candidates round by round, one merge at a time.

    parents (one experiment, every document) -> documents per task (their results' n-samples)
    for each round: for each surviving candidate: disk check -> merge (mergekit) -> its jobs on
        the round's new documents (an ordinary experiment whose candidate runs on `--samples`;
        the parents' jobs are reused) -> merged folder deleted unless `keep`
      -> objective on every document seen so far -> paired tests against the best -> drops
    -> ranking -> the winner's paired verdicts against each parent and the runner-up

`strategy: full` is one round on every document: each candidate's jobs are the same jobs
`evalsuite run` would make for it. Every step is stored before the next starts; a killed sweep
started again reuses the stored jobs (without merging again) and decides the same way.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Optional

from rich.console import Console

from evalsuite.compare import compare_models
from evalsuite.config import Experiment, ModelSpec
from evalsuite.errors import UserError
from evalsuite.faults import checkpoint
from evalsuite.fsio import atomic_write_text
from evalsuite.models.load import resolve_model
from evalsuite.models.merge import merge_fingerprint
from evalsuite.paths import inside
from evalsuite.published import importer
from evalsuite.results.samples import TaskDocs, read_benchmark_samples
from evalsuite.results.store import JobRecord, Store
from evalsuite.run.events import RunOutcome
from evalsuite.run.runner import check_data, merge_inputs, merged_dir, plan_jobs, run_experiment
from evalsuite.stats import bootstrap_score, interval, seeded_rng
from evalsuite.suite import Benchmark, load_suite
from evalsuite.sweep import record as records
from evalsuite.sweep import select, subsets
from evalsuite.sweep.config import Candidate, Strategy, Sweep
from evalsuite.sweep.record import CandidateRecord, CandidateRound, Ranked, RoundRecord, SweepRecord, Verdict


class SweepFailed(Exception):
    """A job failed: the sweep stops (what is stored stays; running it again resumes)."""


def plan_digest(sweep: Sweep, strategy: Strategy) -> str:
    s = sweep.settings
    blob = {
        "candidates": [c.model_dump(mode="json") for c in sweep.candidates],
        "benchmarks": sweep.base.benchmarks, "strategy": strategy, "rounds": s.rounds, "seed": s.seed,
        "alpha": s.alpha, "objective": s.objective, "n_resamples": s.n_resamples, "merged": s.merged.model_dump(),
        "harness": sweep.base.harness,
    }
    return "sha256:" + hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _benches(sweep: Sweep) -> list[Benchmark]:
    suite = load_suite()
    ids = sweep.base.benchmarks if sweep.settings.objective == "average" else [sweep.settings.objective]
    return [b for b in suite.benchmarks if b.id in ids]


def n_docs_of(outcome: RunOutcome, benchmarks: list[str]) -> dict[str, dict[str, int]]:
    """Documents per leaf task, from the parents' results (lm-eval's n-samples, as the run's study
    parsed them); the parents must agree."""
    suite = load_suite()
    out: dict[str, dict[str, int]] = {}
    for model, per in outcome.study.runs.items():
        for bench in benchmarks:
            original = per[bench].parsed.n_original
            counts = {t: original[t] for t in suite.get(bench).leaf_tasks}
            if bench in out and out[bench] != counts:
                raise UserError(f"{bench}: the parents were evaluated on different documents ({model}: {counts} vs {out[bench]})")
            out[bench] = counts
    return out


def count_requests(path: Path) -> tuple[int, int]:
    """(lm-eval requests, documents) in one samples file: each record's `arguments` are its
    requests (one per choice for log-likelihood tasks, one for generation); a document logged
    under several filters counts once."""
    seen: set[int] = set()
    requests = 0
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec["doc_id"] in seen:
                continue
            seen.add(rec["doc_id"])
            requests += len(rec["arguments"])
    return requests, len(seen)


def _job_samples(store: Store, rec: JobRecord) -> list[Path]:
    return [store.job_dir(rec.job_id) / f for f in rec.samples_files]


def union(parts: list[dict[str, TaskDocs]]) -> dict[str, TaskDocs]:
    """One model's documents of one benchmark from several jobs (rounds): per task, every document
    once (a repeated one keeps its first answer), in doc_id order."""
    import numpy as np

    out: dict[str, TaskDocs] = {}
    for task in parts[0]:
        docs = [p[task] for p in parts]
        ids = np.concatenate([d.doc_ids for d in docs])
        hashes = np.concatenate([d.doc_hash for d in docs])
        _, first = np.unique(ids, return_index=True)  # sorted ids, first occurrence
        values = {}
        for m in docs[0].values:
            num = np.concatenate([d.values[m][0] for d in docs])
            den = np.concatenate([d.values[m][1] for d in docs])
            values[m] = (num[first], den[first])
        out[task] = TaskDocs(task, ids[first], hashes[first], values)
    return out


class _Driver:
    def __init__(self, sweep: Sweep, strategy: Strategy, console: Console, quiet: bool):
        self.sweep, self.strategy, self.console, self.quiet = sweep, strategy, console, quiet
        self.store = Store(Path(sweep.base.output.results))
        self.folder = records.sweep_dir(self.store, sweep.name)
        self.benches = _benches(sweep)  # what the objective averages
        self.all_benches = [b for b in load_suite().benchmarks if b.id in sweep.base.benchmarks]
        self.shares = list(sweep.settings.rounds) if strategy == "halving" else []
        self.docs_cache: dict[tuple[str, str], dict[str, TaskDocs]] = {}  # (job id, bench) -> docs

    # -- state ----------------------------------------------------------------------------------
    def start(self) -> SweepRecord:
        digest = plan_digest(self.sweep, self.strategy)
        old = records.read_record(self.store, self.sweep.name, self.strategy)
        s = self.sweep.settings
        rec = SweepRecord(sweep=self.sweep.name, strategy=self.strategy, plan=digest, benchmarks=self.sweep.base.benchmarks,
                          config_file=str(self.sweep.source_file) if self.sweep.source_file else None,
                          objective=s.objective, shares=[*self.shares, 1.0], alpha=s.alpha, started=time.time())
        if old is not None and old.plan == digest:
            rec.candidates = old.candidates  # the finished rounds (their jobs are checked again)
            rec.started = old.started
        known = {c.name for c in rec.candidates}
        for c in self.sweep.candidates:
            if c.name not in known:
                rec.candidates.append(CandidateRecord(name=c.name, params=c.params, label=c.label(), recipe_file=f"recipes/{c.name}.yml"))
        for c in self.sweep.candidates:  # every recipe, as evaluated, beside the record
            path = inside(self.folder / "recipes", f"{c.name}.yml")
            if not path.is_file() or path.read_text() != c.recipe_text():
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(path, c.recipe_text())
        records.write_record(self.store, rec)
        return rec

    # -- steps ----------------------------------------------------------------------------------
    def run_parents(self, rec: SweepRecord) -> RunOutcome:
        outcome = run_experiment(self.sweep.base, console=self.console, quiet=self.quiet, importer=importer)
        if not outcome.ok:
            raise SweepFailed("; ".join(outcome.failed))
        rec.parents = {m: {b: r.job_id for b, r in per.items()} for m, per in outcome.done.items()}
        rec.n_docs = n_docs_of(outcome, self.sweep.base.benchmarks)
        self.parent_outcome = outcome
        return outcome

    def candidate_experiment(self, cand: Candidate, round_index: int, rec: SweepRecord) -> Experiment:
        base = self.sweep.base
        m = self.sweep.settings.merged
        spec = ModelSpec(name=cand.name, recipe=self.folder / "recipes" / f"{cand.name}.yml", dtype=m.dtype,
                         chat_template=m.chat_template, fewshot_as_multiturn=m.fewshot_as_multiturn)
        samples = None  # the last round (and strategy full): every document, an ordinary job
        if round_index < len(self.shares):
            samples = {b: subsets.round_samples(rec.n_docs[b], self.shares, self.sweep.settings.seed, round_index) for b in base.benchmarks}
        # the parents ride along (their jobs are reused, never run on a subset): the merge resolves
        # the recipe's parents from them (fixtures, pinned hub revisions) as for `evalsuite run`
        return base.derive(name=f"{self.sweep.name}.{cand.name}.r{round_index + 1}", candidate=spec,
                           parents=[base.candidate, *base.parents], samples=samples)

    def stored_round(self, crec: CandidateRecord, round_index: int) -> Optional[dict[str, JobRecord]]:
        for r in crec.rounds:
            if r.round == round_index + 1:
                jobs = {b: self.store.finished_job(j) for b, j in r.jobs.items()}
                if all(v is not None for v in jobs.values()) and set(jobs) == set(self.sweep.base.benchmarks):
                    return jobs  # type: ignore[return-value]
        return None

    def check_disk(self, cand: Candidate) -> None:
        """A merge needs about one parent's weights on disk: refuse one that cannot fit."""
        need = 0
        for ref in self.parent_outcome.models:
            folder = ref.local_path or (Path(ref.pretrained) if Path(ref.pretrained).is_dir() else None)
            if folder is not None and Path(folder).is_dir():
                need = max(need, sum(p.stat().st_size for p in Path(folder).glob("*.safetensors")))
        free = shutil.disk_usage(self.store.root).free
        if need and free < need * 1.05:
            raise UserError(f"not enough disk to merge {cand.name}: about {need / 2**30:.1f} GiB needed, "
                            f"{free / 2**30:.1f} GiB free under {self.store.root} (free space, or set keep: false)")

    def stored_unrecorded(self, exp: Experiment) -> Optional[tuple[dict[str, JobRecord], str]]:
        """The round's jobs if they are stored though the record lacks them (a lost record, another
        strategy's shared last round), found by the merge fingerprint without merging."""
        local, revisions = merge_inputs(exp)
        fingerprint = merge_fingerprint(Path(exp.candidate.recipe), local_models=local, revisions=revisions)
        ref = resolve_model(exp.candidate, exp, "candidate", merged=(merged_dir(self.store, exp), fingerprint))
        found = {j.benchmark: self.store.finished_job(j.job_id) for j in plan_jobs(exp, [ref], check_data(exp), None, None)}
        return (found, fingerprint) if all(v is not None for v in found.values()) else None  # type: ignore[return-value]

    def evaluate(self, cand: Candidate, round_index: int, rec: SweepRecord) -> dict[str, JobRecord]:
        """The candidate's jobs of one round: recorded, or stored already, or merged and run now."""
        crec = rec.candidate(cand.name)
        jobs = self.stored_round(crec, round_index)
        if jobs is not None:
            return jobs
        exp = self.candidate_experiment(cand, round_index, rec)
        merged = inside(inside(self.store.root, "merged"), cand.name)
        stored = self.stored_unrecorded(exp)
        if stored is not None:
            jobs, crec.fingerprint = stored
            if (self.folder / "plans" / f"{cand.name}.json").is_file():
                crec.plan_file = f"plans/{cand.name}.json"
        else:
            self.check_disk(cand)
            outcome = run_experiment(exp, console=self.console, quiet=self.quiet, importer=importer)
            if not outcome.ok:
                raise SweepFailed("; ".join(outcome.failed))
            jobs = outcome.done[cand.name]
            ref = next(r for r in outcome.models if r.name == cand.name)
            crec.fingerprint = ref.identity.removeprefix("merge:")
            plan = merged / "merge_plan.json"
            if plan.is_file():
                crec.plan_file = f"plans/{cand.name}.json"
                target = inside(self.folder / "plans", f"{cand.name}.json")
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(target, plan.read_text())
        requests = documents = 0
        for job in jobs.values():
            for f in _job_samples(self.store, job):
                r, d = count_requests(f)
                requests += r
                documents += d
        crec.rounds = [r for r in crec.rounds if r.round != round_index + 1]
        crec.rounds.append(CandidateRound(round=round_index + 1, experiment=exp.name, jobs={b: j.job_id for b, j in jobs.items()},
                                          requests=requests, documents=documents))
        records.write_record(self.store, rec)
        if not self.sweep.settings.keep and merged.is_dir() and not merged.is_symlink():
            shutil.rmtree(merged)  # 18 GB at 9B bf16; merged again (same fingerprint) if it survives
        checkpoint("sweep.candidate")
        return jobs

    def docs_of(self, jobs_by_round: dict[int, dict[str, JobRecord]]) -> dict[str, dict[str, TaskDocs]]:
        """benchmark -> task -> the documents answered in these rounds' jobs (round index -> jobs;
        read once per job); after the last round, its job alone (it answered every document)."""
        final = len(self.shares)
        rounds = [jobs_by_round[final]] if final in jobs_by_round else [jobs_by_round[k] for k in sorted(jobs_by_round)]
        out = {}
        for bench in self.all_benches:
            parts = []
            for jobs in rounds:
                job = jobs[bench.id]
                key = (job.job_id, bench.id)
                if key not in self.docs_cache:
                    files = _job_samples(self.store, job)
                    self.docs_cache[key] = read_benchmark_samples(bench, files)
                parts.append(self.docs_cache[key])
            out[bench.id] = union(parts)
        return out


def run_sweep(sweep: Sweep, *, strategy: Optional[Strategy] = None, console: Optional[Console] = None, quiet: bool = False) -> SweepRecord:
    """Run (or resume) the sweep and return its finished record (also written to the store)."""
    strategy = strategy or sweep.settings.strategy
    console = console or Console(stderr=True, quiet=quiet)
    d = _Driver(sweep, strategy, console, quiet)
    rec = d.start()
    d.run_parents(rec)
    records.write_record(d.store, rec)
    s = sweep.settings
    alive = [c.name for c in sweep.candidates]
    by_name = {c.name: c for c in sweep.candidates}
    jobs: dict[str, dict[int, dict[str, JobRecord]]] = {c: {} for c in alive}  # candidate -> round index -> jobs
    dropped_in: dict[str, int] = {}
    rec.rounds = []
    n_rounds = len(d.shares) + 1
    r = 0
    while r < n_rounds:
        share = 1.0 if r == n_rounds - 1 else d.shares[r]
        console.print(f"[bold]sweep[/] {sweep.name}: round {r + 1}/{n_rounds}, {len(alive)} candidate(s) on {share:.1%} of the documents")
        for name in alive:
            jobs[name][r] = d.evaluate(by_name[name], r, rec)
        docs = {name: d.docs_of(jobs[name]) for name in alive}
        round_rec = RoundRecord(round=r + 1, share=share, alive=list(alive))
        if r < n_rounds - 1:
            best, scores, decisions = select.decide(d.benches, alive, docs, alpha=s.alpha, n_resamples=s.n_resamples, seed=s.seed, round_index=r)
            round_rec.best, round_rec.scores, round_rec.decisions = best, scores, decisions
            for dec in decisions:
                if dec.dropped:
                    dropped_in[dec.candidate] = r + 1
            alive = [c for c in alive if c not in dropped_in]
        else:
            round_rec.scores = {c: select.objective(d.benches, docs[c]) for c in alive}
            round_rec.best = max(alive, key=lambda c: (round_rec.scores[c], -alive.index(c)))
        rec.rounds.append(round_rec)
        records.write_record(d.store, rec)
        # one survivor: nothing left to decide on subsets, straight to the full set
        r = n_rounds - 1 if len(alive) == 1 and r < n_rounds - 1 else r + 1
    _rank(d, rec, jobs, dropped_in)
    _verdicts(d, rec, jobs)
    rec.requests = sum(cr.requests for c in rec.candidates if c.name in jobs for cr in c.rounds if cr.round - 1 in jobs[c.name])
    rec.status, rec.finished = "finished", time.time()
    records.write_record(d.store, rec)
    return rec


def _rank(d: _Driver, rec: SweepRecord, jobs, dropped_in: dict[str, int]) -> None:
    """Finalists by their full-set objective, then the dropped, later rounds first, each by the
    objective it had when dropped; ties keep the config's order."""
    final = rec.rounds[-1].round
    entries = []
    for order, name in enumerate(jobs):
        docs = d.docs_of(jobs[name])
        out_after = dropped_in.get(name, final + 1)  # the round it was dropped in (finalists: after the last)
        obj = select.objective(d.benches, docs)
        scores = {b.id: select.benchmark_score(b, docs[b.id]) for b in d.all_benches}
        intervals = {}
        st = d.sweep.base.stats
        for b in d.all_benches:  # each score's bootstrap interval (the experiment's `stats`) on its own documents
            _, draws = bootstrap_score(b, list(b.metrics), [docs[b.id]], st.n_boot, seeded_rng(st.seed, "sweep", name, b.id))
            intervals[b.id] = interval(draws[:, 0], st.level)
        n = sum(len(td) for per in docs.values() for td in per.values())
        entries.append(((-out_after, -obj, order), name, obj, scores, intervals, n))
    entries.sort(key=lambda e: e[0])
    rec.ranking = [Ranked(name=name, rank=i + 1, dropped_in_round=dropped_in.get(name), objective=obj, scores=scores,
                          intervals=intervals, documents=n, label=rec.candidate(name).label)
                   for i, (_, name, obj, scores, intervals, n) in enumerate(entries)]
    rec.winner = rec.ranking[0].name
    rec.runner_up = rec.ranking[1].name if len(rec.ranking) > 1 else None


def _verdicts(d: _Driver, rec: SweepRecord, jobs) -> None:
    """The winner against each parent and the runner-up: evalsuite.compare's paired bootstrap and
    McNemar (Holm per opponent) on the documents both answered."""
    suite = load_suite()
    docs = {name: d.docs_of(jobs[name]) for name in [rec.winner, *([rec.runner_up] if rec.runner_up else [])]}
    for parent, per in d.parent_outcome.done.items():
        docs[parent] = d.docs_of({len(d.shares): per})
    others = [*d.parent_outcome.done, *([rec.runner_up] if rec.runner_up else [])]
    cmp = compare_models(docs, rec.winner, others, suite=suite, stats=d.sweep.base.stats)
    rec.verdicts = [Verdict(other=r.parent, benchmark=r.display, delta=r.delta, ci_low=r.ci_low, ci_high=r.ci_high,
                            p_holm=r.p_holm, verdict=r.verdict, n_docs=r.n_docs) for r in cmp.rows if r.score_id in suite.ids]
