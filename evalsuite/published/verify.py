"""A local run of one model checked against its published per-sample details (`evalsuite verify`).

The two sides (the local run's jobs; the reference, a details repo or folder) are loaded by
`evalsuite.published.sides`, each benchmark is checked document by document by
`evalsuite.published.checks`; `verify_sides` gathers the benchmarks' checks into one
`Verification`, which passes when every benchmark passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from pydantic import BaseModel, Field

from evalsuite.config import StatsSettings
from evalsuite.errors import UserError
from evalsuite.published.checks import BenchmarkCheck, Tolerance, check_benchmark
from evalsuite.published.sides import Side
from evalsuite.suite import Suite, load_suite


class Verification(BaseModel):
    model: str
    experiment: str
    local: str  # where the local run's jobs are
    reference: str  # what the reference was read from
    reference_import: Optional[dict] = None  # import_details: identity, run, lm-eval, recorded vs re-scored verdicts
    local_environment: dict = Field(default_factory=dict)  # versions, attention, hub kernels, CUDA/cuDNN/GPU, dtype
    reference_environment: dict = Field(default_factory=dict)
    limit: Optional[int] = None
    tolerance: str
    n_boot: int
    seed: int
    level: float
    benchmarks: list[BenchmarkCheck]
    passed: bool
    reasons: list[str]  # "<benchmark>: <reason>" / "<benchmark>: <task>: <reason>", in order
    notes: list[str] = Field(default_factory=list)  # "<benchmark>: ..." differences within the tolerance


def verify_sides(model: str, experiment: str, local: Side, ref: Side, *, benchmarks: Sequence[str], suite: Optional[Suite] = None,
                 tolerance: Tolerance = "se", stats: StatsSettings = StatsSettings(),
                 limit: Optional[int] = None) -> Verification:
    suite = suite or load_suite()
    checks = [check_benchmark(b, local, ref, tolerance, stats) for b in suite.benchmarks
              if b.id in benchmarks and b.id in local.docs]
    if not any(c.tasks for c in checks):
        raise UserError(f"{ref.where}: the reference holds none of the tasks of {model}'s run ({', '.join(c.benchmark for c in checks)})")
    reasons = [f"{c.benchmark}: {r}" for c in checks for r in c.reasons]
    notes = [f"{c.benchmark}: {n}" for c in checks for n in c.notes]
    return Verification(model=model, experiment=experiment, local=local.where, reference=ref.where,
                        reference_import=ref.imported, limit=limit,
                        local_environment=local.environment, reference_environment=ref.environment,
                        tolerance="se" if tolerance == "se" else f"{float(tolerance):g} points", n_boot=stats.n_boot, seed=stats.seed,
                        level=stats.level, benchmarks=checks, passed=not reasons, reasons=reasons, notes=notes)
