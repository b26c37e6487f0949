"""Task indexing at lm-eval start-up: the same jobs with `executor.task_index: full` (the stock
`lm_eval` CLI, which indexes all ~14,700 task configs at every start) and `leaderboard` (evalsuite's
default: `python -m evalsuite.run.lm_eval_main`, indexing the leaderboard folder only).

    python bench/task_index.py [--benchmarks gpqa,musr] [--limit 2] [--rounds 2] [--workers 1]

Each round runs both sides from an empty results folder (models and merge built before timing),
alternating which goes first. Prints wall and CPU seconds (user+sys of all child processes) per
side, their ratios, and checks that every job's numbers and samples are identical between sides.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_side(out: Path, tag: str, mode: str, benches: list[str], limit: int, workers: int) -> tuple[float, float, Path]:
    """One side of one round; results beside the shared fixture models (out/.cache)."""
    from conftest import demo_config

    results = out / f"results-{tag}-{mode}"
    cfg = demo_config(
        out / f"config-{tag}-{mode}", name=f"bench-{mode}", results=results,
        **{"[ifeval, bbh, math_hard, gpqa, musr, mmlu_pro]": f"[{', '.join(benches)}]", "limit: 2": f"limit: {limit}",
           "workers: 2": f"workers: {workers}\n  task_index: {mode}"},
    )
    cmd = [sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "--config", str(cfg), "--quiet", "--no-report"]
    cpu0, t0 = children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0, children_cpu() - cpu0, results


def same_numbers(a: Path, b: Path) -> int:
    from evalsuite.results.store import Store

    sa, sb = Store(a), Store(b)
    ids = sorted(p.name for p in sa.jobs_dir.iterdir() if not p.name.startswith("."))
    for i in ids:
        ra, rb = sa.finished_job(i), sb.finished_job(i)
        assert ra is not None and rb is not None, f"job {i} missing on one side"
        da, db = (json.loads(s.results_path(r).read_text()) for s, r in ((sa, ra), (sb, rb)))
        assert (da["results"], da["n-samples"]) == (db["results"], db["n-samples"]), f"job {i}: numbers differ"
        for fa, fb in zip(ra.samples_files, rb.samples_files, strict=True):
            rows = [[(d["doc_id"], d["resps"], d["filtered_resps"]) for d in map(json.loads, (s.job_dir(i) / f).read_text().splitlines())]
                    for s, f in ((sa, fa), (sb, fb))]
            assert rows[0] == rows[1], f"job {i}: samples differ in {fa}"
    return len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarks", default="gpqa,musr")
    ap.add_argument("--limit", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("/tmp/evalsuite-bench-task-index"))
    args = ap.parse_args()
    benches = args.benchmarks.split(",")

    from rich.console import Console

    from conftest import demo_config
    from evalsuite.config import load_experiment
    from evalsuite.run.runner import resolve_models
    from evalsuite.results.store import Store

    shutil.rmtree(args.out, ignore_errors=True)
    exp = load_experiment(demo_config(args.out / "warm", name="warm", results=args.out / "shared-models"))
    resolve_models(exp, Store(exp.output.results), Console(quiet=True), quiet=True)  # fixtures + merge, untimed

    wall = {"full": [], "leaderboard": []}
    cpu = {"full": [], "leaderboard": []}
    jobs = 0
    for r in range(args.rounds):
        order = ["full", "leaderboard"] if r % 2 == 0 else ["leaderboard", "full"]
        dirs = {}
        for mode in order:
            w, c, dirs[mode] = run_side(args.out, f"r{r}", mode, benches, args.limit, args.workers)
            wall[mode].append(w)
            cpu[mode].append(c)
        jobs = same_numbers(dirs["full"], dirs["leaderboard"])
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    print(json.dumps({
        "jobs_per_side": jobs,
        "rounds": args.rounds,
        "wall_s": {k: [round(x, 1) for x in v] for k, v in wall.items()},
        "cpu_s": {k: [round(x, 1) for x in v] for k, v in cpu.items()},
        "wall_ratio_leaderboard_over_full": round(med(wall["leaderboard"]) / med(wall["full"]), 3),
        "cpu_ratio_leaderboard_over_full": round(med(cpu["leaderboard"]) / med(cpu["full"]), 3),
        "numbers_identical": True,
    }, indent=2))


if __name__ == "__main__":
    main()
