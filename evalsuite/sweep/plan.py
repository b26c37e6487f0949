"""`evalsuite plan` for a sweep file: the parents' plan, then each round's requests per candidate.

A round's requests are known before anything runs: its documents are the seeded subset
`subsets.round_samples` gives (the same indices the sweep hands lm-eval as `--samples`), and each
document's requests are counted by lm-eval's own task code (`evalsuite.run.plan.requests_per_document`).
The last round (and `strategy: full`) is an ordinary job on every document (the experiment's limit
applies). How many candidates survive a subset round is decided by the paired tests, so the totals
of a halving sweep are a range: at most every candidate in every round, at least every candidate
in round 1 and the best alone on the full set (one survivor goes straight to the last round).
"""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel

from evalsuite.run.plan import KINDS, Plan, Throughput, make_plan, requests_per_document
from evalsuite.results.store import Store
from evalsuite.sweep import record as records
from evalsuite.sweep import subsets
from evalsuite.sweep.config import Strategy, Sweep
from evalsuite.sweep.runner import plan_digest


class RoundPlan(BaseModel):
    round: int  # 1-based
    share: float  # of each task's documents seen after the round (1.0: every document)
    documents: int  # documents new to a candidate in this round (all benchmarks)
    loglikelihood: int  # requests per candidate in this round
    generation: int
    candidates_at_most: int
    candidates_at_least: int


class SweepPlan(BaseModel):
    sweep: str
    strategy: Strategy
    candidates: int
    parents: Plan  # the parents' experiment: run (or reused) once, every document
    rounds: list[RoundPlan]
    requests_at_most: dict[str, int]  # kind -> the candidates' requests, every round, every candidate
    requests_at_least: dict[str, int]
    processes_at_most: int  # lm-eval processes for the candidates (one per candidate and round)
    processes_at_least: int
    stored_rounds: int  # candidate rounds already stored in this strategy's record (reused)
    stored_requests: int
    seconds_at_most: Optional[float]  # the candidates' lm-eval time (one after another) at the plan's throughput
    seconds_at_least: Optional[float]
    throughput: Throughput


def round_requests(per_doc: dict[str, dict[int, tuple[int, int]]], samples: dict[str, list[int]]) -> tuple[int, int, int]:
    """(documents, loglikelihood, generation) of one benchmark's `--samples` (task -> document
    indices; a repeated index is evaluated, and counted, again)."""
    docs = ll = gen = 0
    for task, indices in samples.items():
        for i in indices:
            a, b = per_doc[task][i]
            docs, ll, gen = docs + 1, ll + a, gen + b
    return docs, ll, gen


def make_sweep_plan(sweep: Sweep, strategy: Optional[Strategy] = None, ll_per_s: Optional[float] = None,
                    gen_per_s: Optional[float] = None) -> SweepPlan:
    strategy = strategy or sweep.settings.strategy
    base = sweep.base
    parents = make_plan(base, ll_per_s, gen_per_s)
    shares = list(sweep.settings.rounds) if strategy == "halving" else []
    every = requests_per_document(base, None) if shares else {}
    limited = requests_per_document(base, base.limit) if (not shares or base.limit is not None) else every
    n = len(sweep.candidates)
    rounds: list[RoundPlan] = []
    for r in range(len(shares) + 1):
        docs = ll = gen = 0
        for bench in base.benchmarks:
            if r < len(shares):
                n_docs = {task: len(d) for task, d in every[bench].items()}
                samples = subsets.round_samples(n_docs, shares, sweep.settings.seed, r)
                d, a, g = round_requests(every[bench], samples or {})
            else:
                per = limited[bench]
                d = sum(len(t) for t in per.values())
                a = sum(x for t in per.values() for x, _ in t.values())
                g = sum(y for t in per.values() for _, y in t.values())
            docs, ll, gen = docs + d, ll + a, gen + g
        last = r == len(shares)
        rounds.append(RoundPlan(round=r + 1, share=1.0 if last else shares[r], documents=docs, loglikelihood=ll, generation=gen,
                                candidates_at_most=n, candidates_at_least=n if r == 0 else (1 if last else 0)))
    most = {k: sum(getattr(rp, k) * rp.candidates_at_most for rp in rounds) for k in KINDS}
    least = {k: sum(getattr(rp, k) * rp.candidates_at_least for rp in rounds) for k in KINDS}

    stored_rounds = stored_requests = 0
    store = Store(base.output.results)
    old = records.read_record(store, sweep.name, strategy) if store.root.is_dir() else None
    if old is not None and old.plan == plan_digest(sweep, strategy):  # another plan's rounds are not reused
        for c in old.candidates:
            for cr in c.rounds:
                if all(store.finished_job(j) is not None for j in cr.jobs.values()):
                    stored_rounds += 1
                    stored_requests += cr.requests

    def seconds(req: dict[str, int]) -> Optional[float]:
        total = 0.0
        for k in KINDS:
            rate = getattr(parents.throughput, k)
            if req[k]:
                if rate is None:
                    return None
                total += req[k] / rate
        return total  # one candidate at a time (one merge on disk at a time)

    return SweepPlan(sweep=sweep.name, strategy=strategy, candidates=n, parents=parents, rounds=rounds,
                     requests_at_most=most, requests_at_least=least,
                     processes_at_most=n * len(rounds), processes_at_least=n + (1 if shares else 0),
                     stored_rounds=stored_rounds, stored_requests=stored_requests,
                     seconds_at_most=seconds(most), seconds_at_least=seconds(least), throughput=parents.throughput)
