"""Runner overhead: the demo's jobs run by `evalsuite run` versus the same jobs run by bare
`lm_eval` (each job's recorded command.sh), side by side in one process, plus the cost of
re-running a finished experiment.

    python bench/overhead.py [--benchmarks gpqa,musr] [--limit 2] [--harness leaderboard|upstream] [--out DIR]

Both sides run one lm-eval process at a time with the demo's settings (threads: 1): one per job
with `--harness upstream`, one per model with `leaderboard` (the default; its jobs share one
command.sh, run once). Prints a JSON summary:
wall seconds of each side, their ratio (goal <= 1.03), and the re-run time as a fraction of the
first run (goal <= 5%, and no lm_eval process started).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarks", default="gpqa,musr")
    ap.add_argument("--limit", type=int, default=2)
    ap.add_argument("--harness", choices=["leaderboard", "upstream"], default="leaderboard")
    ap.add_argument("--out", type=Path, default=Path("/tmp/evalsuite-bench-overhead"))
    args = ap.parse_args()
    from conftest import demo_config  # the same config copy the tests use

    shutil.rmtree(args.out, ignore_errors=True)
    benches = args.benchmarks.split(",")
    cfg = demo_config(
        args.out, name="bench",
        **{"[ifeval, bbh, math_hard, gpqa, musr, mmlu_pro]": f"[{', '.join(benches)}]", "limit: 2": f"limit: {args.limit}", "workers: 2": "workers: 1",
           "harness: leaderboard": f"harness: {args.harness}"},
    )
    evalsuite = [sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "--config", str(cfg), "--quiet"]

    # Both sides need the tiny models and the merge: build them first, outside the timing.
    from rich.console import Console

    from evalsuite.config import load_experiment
    from evalsuite.run.runner import resolve_models
    from evalsuite.results.store import Store

    exp = load_experiment(cfg)
    resolve_models(exp, Store(exp.output.results), Console(quiet=True), quiet=True)

    t0 = time.perf_counter()
    subprocess.run(evalsuite, check=True, capture_output=True)
    first = time.perf_counter() - t0

    store = Store(args.out / "results")
    rec = store.read_experiment("bench")
    job_ids = [j for per in rec.jobs.values() for j in per.values()]
    processes = {}  # one record per lm-eval process (the jobs of a shared process have the same command)
    for j in job_ids:
        r = store.finished_job(j)
        processes.setdefault(r.process or r.job_id, r)
    jobs_wall = sum(r.duration_s for r in processes.values())

    bare_dir = args.out / "bare"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    t0 = time.perf_counter()
    for key, r in processes.items():
        subprocess.run(["sh", str(store.job_dir(r.job_id) / "command.sh"), str(bare_dir / key)], check=True, capture_output=True, env=env)
    bare = time.perf_counter() - t0

    t0 = time.perf_counter()
    subprocess.run(evalsuite, check=True, capture_output=True)
    rerun = time.perf_counter() - t0

    print(json.dumps({
        "jobs": len(job_ids),
        "harness": args.harness,
        "lm_eval_processes": len(processes),
        "evalsuite_first_run_s": round(first, 2),
        "of_which_lm_eval_jobs_s": round(jobs_wall, 2),
        "bare_lm_eval_s": round(bare, 2),
        "ratio_evalsuite_over_bare": round(first / bare, 3),
        "rerun_s": round(rerun, 2),
        "rerun_fraction_of_first": round(rerun / first, 3),
        "note": "models and merge built before timing; evalsuite's first run also writes the report and history",
    }, indent=2))


if __name__ == "__main__":
    main()
