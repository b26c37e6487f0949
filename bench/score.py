"""Benchmark: `evalsuite score` over 1,000 lm-eval results files (one full leaderboard run each).

    python bench/score.py                         # generate (cached) under /tmp, then measure
    python bench/score.py --files 200 --repeat 5  # another count / more rounds
    python bench/score.py --template results_X.json   # vary a real results file of your own

The files copy the layout of a REAL lm-eval 0.4.13 `--tasks leaderboard` results file: made once
by `lm_eval run --model dummy --tasks leaderboard` over examples/demo_mirror (as
tests/test_score_lm_eval.py does), or given with --template. Every file keeps all of it (39 leaf
tasks, the five groups, full task configs, versions, n-shot, higher_is_better, environment) and gets
its own model name, task hashes and numbers: per task a correct count drawn around a per-model skill
on the real leaderboard task size, lm-eval's stderr of a mean, size-weighted group values with
lm-eval's pooled stderr. Numbers vary; the layout and size (~140 KB a file) are the real ones.

Measured, each in a fresh child process:
  process  `python -m evalsuite.cli.main score DIR --format json > /dev/null`: wall of the whole
           process (interpreter start, imports, scoring, JSON out); peak RSS from GNU time (%M)
  command  the same command's `evalsuite.cli.main.main([...])` call alone, timed after imports
  api      `evalsuite.score.score_paths([DIR])`, timed after imports
The last two report their own VmHWM (ru_maxrss would carry the parent's peak over fork + exec).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIRROR = REPO / "examples" / "demo_mirror"
DATE = "2026-01-01T00-00-00.000000"
SKIP = {"alias", "name", "sample_len", "sample_count"}


# --- the template: one real lm-eval leaderboard results file --------------------------------------


def make_template(dest: Path) -> Path:
    """Run the real lm-eval CLI once (dummy model, all 39 tasks, the demo mirror's rows) and keep its
    results file as `dest` (about a minute on 2 cores)."""
    from evalsuite.data.overrides import write_task_overrides
    from evalsuite.data.nltk_data import ensure_punkt_tab
    from evalsuite.suite import load_suite

    work = dest.parent / "lm_eval_dummy"
    shutil.rmtree(work, ignore_errors=True)
    include = write_task_overrides(MIRROR, load_suite().ids, work / "tasks")
    ensure_punkt_tab(work / "nltk", offline=True, allow_standin=True)
    lm_eval = shutil.which("lm_eval") or str(Path(sys.executable).parent / "lm_eval")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", NLTK_DATA=str(work / "nltk"),
               HF_HOME=str(work / "hf"), TOKENIZERS_PARALLELISM="false")
    subprocess.run([lm_eval, "run", "--model", "dummy", "--model_args", "pretrained=evalsuite-dummy", "--tasks", "leaderboard",
                    "--include_path", str(include), "--output_path", str(work / "out")], env=env, check=True, capture_output=True)
    (found,) = sorted((work / "out").rglob("results_*.json"))
    text = found.read_text(encoding="utf-8").replace(str(MIRROR.resolve()) + "/", "")  # mirror paths -> hub dataset ids
    dest.write_text(text, encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    return dest


# --- varying it -----------------------------------------------------------------------------------


def _mean_stderr(p: float, n: int):
    """lm-eval's `mean_stderr` of n 0/1 outcomes with mean p ("N/A" for one item)."""
    return math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else "N/A"


def _pooled_stderr(stderrs: list[float], sizes: list[int]) -> float:
    """lm-eval's `pooled_sample_stderr` (group stderr from subtask stderrs and sizes)."""
    var = sum((n - 1) * se**2 * n for n, se in zip(sizes, stderrs)) / (sum(sizes) - len(sizes))
    return math.sqrt(var / sum(sizes))


def _leaves(group: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    out = []
    for t in group_subtasks.get(group, []):
        out += _leaves(t, group_subtasks) if t in group_subtasks else [t]
    return out


def vary(template: dict, i: int, rng, sizes: dict[str, int]) -> dict:
    """A copy of `template` for model number `i`: its own name, hashes and numbers."""
    from evalsuite.suite import load_suite

    data = json.loads(json.dumps(template))
    org, name = f"bench-org-{i % 37:02d}", f"model-{i:04d}-9B"
    skill = float(rng.beta(2.5, 3.0))  # 0..1, most models in the middle
    res, ns = data["results"], data["n-samples"]
    for bench in load_suite().benchmarks:
        for task in bench.leaf_tasks:
            n = sizes[task]
            ns[task] = {"original": n, "effective": n}
            entry = res[task]
            if "sample_len" in entry:
                entry["sample_len"] = n
            base = bench.baseline_for(task)
            p = min(0.98, max(0.0, base + skill * (1 - base) * 0.8 + rng.normal(0, 0.04)))
            for key in [k for k in entry if k not in SKIP and "_stderr," not in k]:
                if key.startswith("inst_level"):  # per instruction: a bit above the prompt level
                    value, se = min(1.0, p + 0.1), "N/A"
                else:
                    value = int(rng.binomial(n, p)) / n
                    se = _mean_stderr(value, n)
                entry[key] = value
                entry[key.replace(",", "_stderr,", 1)] = se
    for group, subtasks in data["group_subtasks"].items():
        leaves, entry = _leaves(group, data["group_subtasks"]), res[group]
        counts = {}
        for key in [k for k in entry if k not in SKIP and "_stderr," not in k]:
            have = [t for t in leaves if key in res[t]]
            n = [sizes[t] for t in have]
            entry[key] = sum(res[t][key] * k for t, k in zip(have, n)) / sum(n)
            ses = [res[t][key.replace(",", "_stderr,", 1)] for t in have]
            entry[key.replace(",", "_stderr,", 1)] = "N/A" if "N/A" in ses else _pooled_stderr(ses, n)
            counts[key] = sum(n)
        entry["sample_len"] = sum(sizes[t] for t in leaves)
        entry["sample_count"] = counts
        if group in data.get("groups", {}):
            data["groups"][group] = {k: v for k, v in entry.items()}
    data["task_hashes"] = {t: hashlib.sha256(f"{name}/{t}".encode()).hexdigest() for t in data["n-samples"]}
    data["config"].update(model="hf", model_args={"pretrained": f"{org}/{name}", "dtype": "bfloat16"}, batch_size="auto",
                          device="cuda:0", model_num_parameters=9_241_705_984, model_dtype="torch.bfloat16")
    data.update(model_source="hf", model_name=f"{org}/{name}", model_name_sanitized=f"{org}__{name}",
                date=1767225600.0 + i, total_evaluation_time_seconds=str(3600 + 7 * i))
    return data


def generate(root: Path, files: int, template_file: Path, seed: int = 0) -> None:
    """`files` results files under root/files/<org>__<model>/results_<date>.json."""
    from evalsuite.suite import load_suite

    import numpy as np

    template = json.loads(template_file.read_text(encoding="utf-8"))
    sizes = {t: b.full_size(t) or template["n-samples"][t]["effective"] for b in load_suite().benchmarks for t in b.leaf_tasks}
    rng = np.random.default_rng(seed)
    out = root / "files"
    shutil.rmtree(out, ignore_errors=True)
    for i in range(files):
        data = vary(template, i, rng, sizes)
        folder = out / data["model_name_sanitized"]
        folder.mkdir(parents=True)
        (folder / f"results_{DATE}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    (root / ".complete").write_text(json.dumps({"files": files, "seed": seed, "template": str(template_file)}))


# --- measuring ------------------------------------------------------------------------------------


def _peak_rss_kib() -> float:
    """VmHWM of this process image (ru_maxrss would carry the parent's peak over fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(kind: str, folder: Path) -> dict:
    """Runs in the child: the timed step, then this process's peak memory."""
    if kind == "command":
        from evalsuite.cli.main import main

        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            t0 = time.perf_counter()
            code = main(["score", str(folder), "--format", "json"])
            wall = time.perf_counter() - t0
        assert code == 0, code
    else:
        from evalsuite.score import score_paths

        t0 = time.perf_counter()
        score_paths([folder])
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "peak_rss_mib": _peak_rss_kib() / 1024}


def run_child(kind: str, folder: Path) -> dict:
    if kind == "process":  # the literal command; GNU time's wait4 gives the child's own peak
        argv = [sys.executable, "-m", "evalsuite.cli.main", "score", str(folder), "--format", "json"]
        gnu_time = shutil.which("time") if Path("/usr/bin/time").exists() else None
        t0 = time.perf_counter()
        with open(os.devnull, "w") as null:
            proc = subprocess.run([gnu_time, "-f", "%M", *argv] if gnu_time else argv, check=True, stdout=null,
                                  stderr=subprocess.PIPE, text=True, cwd=REPO)
        wall = time.perf_counter() - t0
        rss = float(proc.stderr.strip().splitlines()[-1]) / 1024 if gnu_time else float("nan")
        return {"wall_s": wall, "peak_rss_mib": rss}
    out = subprocess.run([sys.executable, __file__, "--measure", kind, str(folder)], check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout)


def _machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} CPUs ({cpu}), {mem / 2**20:.0f} GiB RAM, Python {sys.version.split()[0]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/evalsuite-bench-score"))
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="rounds of each measurement (median and min reported)")
    ap.add_argument("--template", type=Path, default=None, help="a real lm-eval leaderboard results_*.json (default: make one)")
    ap.add_argument("--measure", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]))))
        return
    template = args.template or args.dir / "template.json"
    if not template.is_file():
        args.dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        make_template(template)
        print(f"template: real lm_eval dummy run in {time.perf_counter() - t0:.0f} s -> {template}", file=sys.stderr)
    marker = args.dir / ".complete"
    want = {"files": args.files, "seed": 0, "template": str(template)}
    if not marker.is_file() or json.loads(marker.read_text()) != want:
        t0 = time.perf_counter()
        generate(args.dir, args.files, template)
        print(f"generated {args.files} files in {time.perf_counter() - t0:.0f} s under {args.dir / 'files'}", file=sys.stderr)
    files = sorted((args.dir / "files").rglob("results_*.json"))
    size = sum(f.stat().st_size for f in files)
    print(f"machine: {_machine()}")
    print(f"input: {len(files)} results files, {size / 2**20:.0f} MiB ({size / len(files) / 1024:.0f} KiB each)")
    rows = []
    for kind in ("process", "command", "api"):
        runs = [run_child(kind, args.dir / "files") for _ in range(args.repeat)]
        wall = [r["wall_s"] for r in runs]
        rows.append((kind, statistics.median(wall), min(wall), max(r["peak_rss_mib"] for r in runs)))
    print(f"{'step':<8} {'wall s (median)':>15} {'min':>6} {'ms/file':>8} {'peak RSS MiB':>13}")
    for kind, med, low, rss in rows:
        print(f"{kind:<8} {med:>15.2f} {low:>6.2f} {med / len(files) * 1000:>8.2f} {rss:>13.0f}")

if __name__ == "__main__":
    main()
