"""Benchmark: where an lm-eval child's start-up goes, and fresh vs warm starts.

    python bench/child_startup.py [--dir D] [--rounds 3]

Prepares a small real job (the demo's tiny candidate on GPQA, 2 documents per task: 6
loglikelihood documents, so the process is nearly all start-up) with `evalsuite run`, then takes the
lm-eval command evalsuite ran (arguments and environment from its `job.json`) and

1. profiles one fresh child (`python -m cProfile -m evalsuite.run.lm_eval_main ARGS`) and prints
   the breakdown: imports, task index, model load, requests, all of `simple_evaluate`;
2. times `--rounds` children started fresh (a new interpreter each) against the same children
   forked from one warm zygote (evalsuite/run/warm.py), alternated, and checks that every child's
   numbers and samples are identical.

Wall times on the shared 2-core machine are noisy: compare the two columns of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def prepare(folder: Path) -> tuple[list[str], dict[str, str]]:
    """A finished GPQA job of the tiny candidate; its lm-eval arguments and environment."""
    import yaml

    from conftest import nightly_config
    from evalsuite.cli.main import main

    config = nightly_config(folder / "exp.yaml", folder / "results")
    data = yaml.safe_load(config.read_text())
    data.update(benchmarks=["gpqa"])
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["run", "--all", "--config", str(config), "--quiet", "--no-report"]) == 0
    (job,) = [p for p in (folder / "results" / "jobs").iterdir() if not p.name.startswith(".")]
    rec = json.loads((job / "job.json").read_text())
    args = [a for a in rec["command"][3:]]  # after `python -m evalsuite.run.lm_eval_cli`
    env = {**os.environ, **rec["env"], "PYTHONUNBUFFERED": "1"}
    datasets = next((folder / "results" / "datasets").iterdir())
    env["HF_DATASETS_CACHE"] = str(datasets)
    return args, env


def with_output(args: list[str], out: Path) -> list[str]:
    return [str(out) if a == "OUTPUT_PATH" else a for a in args]


def numbers(out: Path) -> tuple:
    (results,) = list(out.rglob("results_*.json"))
    data = json.loads(results.read_text())
    samples = []
    for f in sorted(out.rglob("samples_*.jsonl")):
        samples.append([(r["doc_id"], r["resps"], r["filtered_resps"]) for r in map(json.loads, f.read_text().splitlines())])
    return data["results"], data["n-samples"], samples


PHASES = [  # (label, function name in the profile); cumulative seconds, nested phases not subtracted
    ("imports (all, wherever they happen)", "_find_and_load"),
    ("lm-eval task index", "lm_eval/tasks/manager.py:__init__"),
    ("model loaded (incl. its modeling import)", "lm_eval/models/huggingface.py:__init__"),
    ("requests run and scored", "lm_eval/evaluator.py:evaluate"),
    ("all of lm-eval's simple_evaluate", "simple_evaluate"),
]


def profile(args: list[str], env: dict[str, str], folder: Path) -> None:
    prof = folder / "child.prof"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "evalsuite.run.lm_eval_main",
                    *with_output(args, folder / "profiled")], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    stats = pstats.Stats(str(prof)).stats
    total = max(v[3] for v in stats.values())
    print(f"\nfresh child, profiled: {wall:.2f} s wall, {total:.2f} s in the profile")
    for label, name in PHASES:
        path, _, func = name.rpartition(":") if ":" in name else ("", "", name)
        best = max((v[3] for (file, _, fn), v in stats.items() if fn == func and file.endswith(path)), default=0.0)
        print(f"  {label:45s} {best:6.2f} s")


def timed_rounds(args: list[str], env: dict[str, str], folder: Path, rounds: int) -> None:
    from evalsuite.run.warm import modeling_module
    from evalsuite.run.warm_pool import WarmPool

    preload = [m for m in [modeling_module("gemma2")] if m]
    pool = WarmPool()
    fresh_t, warm_t, reference = [], [], None
    try:
        t0 = time.perf_counter()
        pool.start(["run", "--help"], env, folder / "zygote.log", folder, preload)[0].wait()
        zygote_s = time.perf_counter() - t0
        for i in range(rounds):
            out = folder / f"fresh{i}"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "evalsuite.run.lm_eval_main", *with_output(args, out)], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            fresh_t.append(time.perf_counter() - t0)
            reference = reference or numbers(out)
            assert numbers(out) == reference
            out = folder / f"warm{i}"
            t0 = time.perf_counter()
            child, why = pool.start(with_output(args, out), env, folder / f"warm{i}.log", folder, preload)
            assert child is not None, why
            assert child.wait() == 0, (folder / f"warm{i}.log").read_text()[-2000:]
            warm_t.append(time.perf_counter() - t0)
            assert numbers(out) == reference, "a warm child's numbers differ"
    finally:
        pool.close()
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    print(f"\n{rounds} children each, alternated (numbers and samples identical in all {2 * rounds}):")
    print(f"  fresh  median {med(fresh_t):6.2f} s   ({', '.join(f'{x:.2f}' for x in fresh_t)})")
    print(f"  warm   median {med(warm_t):6.2f} s   ({', '.join(f'{x:.2f}' for x in warm_t)})")
    print(f"  warm / fresh {med(warm_t) / med(fresh_t):.3f};  the zygote's own start (paid once): {zygote_s:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/evalsuite-bench-startup"))
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    args, env = prepare(a.dir)
    profile(args, env, a.dir)
    timed_rounds(args, env, a.dir, a.rounds)


if __name__ == "__main__":
    main()
