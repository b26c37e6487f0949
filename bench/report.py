"""Benchmark: compare + report on synthetic full-size logs (three models, ~21.6k documents each).

    python bench/report.py                      # generate (cached) under /tmp, then measure
    python bench/report.py --dir D --boot 2000  # another folder / bootstrap size

Synthetic data only: the task names, document counts, choice counts and record layout are those
of lm-eval 0.4.13's leaderboard tasks (samples_<task>_<date>.jsonl with doc, per-choice prompts,
log-likelihoods, hashes and metric values; results_<date>.json with n-samples and task_hashes).
Per-document correctness is drawn around the published raw scores of Gemmaslerp2-9B and its
parents, correlated between models. The measured step (load results and samples, paired
statistics, render HTML + Markdown) runs in a child process so its peak RSS is its own.
Goal: <= 10 s and <= 1 GB peak.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from evalsuite.schema import ExperimentRecord, JobRecord
from evalsuite.fsio import atomic_write_text, file_sha256
from evalsuite.results.store import Store
from evalsuite.suite import load_suite

DATE = "2026-01-01T00-00-00.000000"
MODELS = [  # name, hub id, role, chat template, raw accuracies near the published rows
    ("Gemmaslerp2-9B", "allknowingroger/Gemmaslerp2-9B", "candidate", False,
     dict(ifeval=0.73, bbh=0.598, math_hard=0.21, gpqa=0.352, musr=0.477, mmlu_pro=0.424)),
    ("Delirium-v1", "sam-paech/Delirium-v1", "parent", False,
     dict(ifeval=0.72, bbh=0.596, math_hard=0.21, gpqa=0.343, musr=0.451, mmlu_pro=0.419)),
    ("Emu_Eggs-9B-Model_Stock", "DreadPoor/Emu_Eggs-9B-Model_Stock", "parent", True,
     dict(ifeval=0.76, bbh=0.605, math_hard=0.21, gpqa=0.333, musr=0.407, mmlu_pro=0.423)),
]
# rough real prompt lengths (characters) of each benchmark's context, few-shot included
PROMPT_CHARS = dict(ifeval=250, bbh=2000, math_hard=2500, gpqa=900, musr=4500, mmlu_pro=3500)
WORDS = "the of a model merge layer token answer question choice sample value parent weight prompt".split()


def _text(rng: np.random.Generator, n: int) -> str:
    words = rng.choice(WORDS, size=max(1, n // 6))
    return " ".join(words.tolist())[:n]


def _sha(x: str) -> str:
    return hashlib.sha256(x.encode()).hexdigest()


def generate(root: Path, seed: int = 0) -> None:
    """Write a results folder with one experiment `bench` of three models x six benchmarks."""
    suite = load_suite()
    store = Store(root)
    rng = np.random.default_rng(seed)
    shared: dict[str, np.ndarray] = {}  # task -> per-doc latent shared by all models
    jobs: dict[str, dict[str, str]] = {}
    for name, hub, role, chat, acc in MODELS:
        jobs[name] = {}
        for bench in suite.benchmarks:
            job_id = f"{name}--{bench.id}--bench"
            out = store.jobs_dir / job_id / "output" / hub.replace("/", "__")
            out.mkdir(parents=True, exist_ok=True)
            results: dict = {}
            n_samples: dict = {}
            configs: dict = {}
            samples_files: list[str] = []
            for task in bench.leaf_tasks:
                n = bench.full_size(task) or 100
                k = bench.choice_count(task) or (10 if bench.id == "mmlu_pro" else 4)
                u = shared.setdefault(task, rng.random(n))
                own = rng.random(n)
                mix = rng.random(n) < 0.75  # 75% of documents share the latent across models
                latent = np.where(mix, u, own)
                p = acc[bench.id]
                if bench.baseline == "1/k":
                    p = min(0.95, p + 0.25 / k)
                lines = []
                stats: dict[str, list] = {}
                for doc_id in range(n):
                    ok = bool(latent[doc_id] < p)
                    doc = {"question": f"{task} #{doc_id}: " + WORDS[doc_id % len(WORDS)] * 8, "answer": str(doc_id % k)}
                    prompt = _text(rng, PROMPT_CHARS[bench.id])
                    rec: dict = {"doc_id": doc_id, "doc": doc, "target": doc["answer"]}
                    if bench.id in ("ifeval", "math_hard"):
                        rec["arguments"] = {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": ["Problem:"], "do_sample": False}}}
                        output = _text(rng, 1200 if bench.id == "ifeval" else 600)
                        rec["resps"] = [[output]]
                        rec["filtered_resps"] = [output]
                    else:
                        gold = doc_id % k
                        pick = gold if ok else (gold + 1) % k
                        lls = [f"{-5.0 - float(rng.random()):.6f}" for _ in range(k)]
                        lls[pick] = "-1.000000"
                        rec["arguments"] = {f"gen_args_{i}": {"arg_0": prompt, "arg_1": f" ({chr(65 + i)})"} for i in range(k)}
                        rec["resps"] = [[[ll, "False"]] for ll in lls]
                        rec["filtered_resps"] = [[ll, "False"] for ll in lls]
                    metric_names = [m.split(",")[0] for m in bench.metrics]
                    for e in bench.extra_scores:
                        metric_names += [m.split(",")[0] for m in e.metrics]
                    rec.update(filter="none", metrics=metric_names, doc_hash=_sha(json.dumps(doc)), prompt_hash=_sha(prompt),
                               target_hash=_sha(doc["answer"]))
                    if bench.id == "ifeval":
                        n_inst = 1 + doc_id % 3
                        inst = [ok or bool(rng.random() < 0.5) for _ in range(n_inst)]
                        if ok:
                            inst = [True] * n_inst
                        elif all(inst):
                            inst[0] = False
                        values = {"prompt_level_strict_acc": ok, "inst_level_strict_acc": inst,
                                  "prompt_level_loose_acc": ok, "inst_level_loose_acc": inst}
                    else:
                        values = {m: float(ok) for m in metric_names}
                        if "exact_match_original" in values:
                            values["exact_match_original"] = float(ok and rng.random() < 0.8)
                    rec.update(values)
                    for m, v in values.items():
                        stats.setdefault(m, []).extend(v if isinstance(v, list) else [v])
                    lines.append(json.dumps(rec, ensure_ascii=False))
                fname = f"samples_{task}_{DATE}.jsonl"
                (out / fname).write_text("\n".join(lines) + "\n")
                samples_files.append(str((out / fname).relative_to(store.jobs_dir / job_id)))
                entry = {"alias": task}
                for m, vs in stats.items():
                    arr = np.asarray(vs, dtype=float)
                    entry[f"{m},none"] = float(arr.mean())
                    entry[f"{m}_stderr,none"] = float(arr.std(ddof=1) / np.sqrt(len(arr))) if "inst" not in m else "N/A"
                results[task] = entry
                n_samples[task] = {"original": n, "effective": n}
                if bench.id == "bbh":
                    configs[task] = {"task": task, "doc_to_choice": [str(i) for i in range(k)]}
            data = {
                "results": results,
                "groups": {bench.group: {"alias": bench.group}} if len(bench.leaf_tasks) > 1 else {},
                "group_subtasks": {bench.group: list(bench.leaf_tasks)} if len(bench.leaf_tasks) > 1 else {},
                "configs": configs,
                "n-samples": n_samples,
                "config": {"model": "hf", "model_args": f"pretrained={hub},dtype=bfloat16", "batch_size": "auto"},
                "lm_eval_version": "0.4.13",
                "transformers_version": "synthetic",
                "pretty_env_info": "synthetic benchmark data (bench/report.py)",
                "task_hashes": {t: _sha(t) for t in bench.leaf_tasks},
                "model_name": hub,
                "chat_template": "synthetic" if chat else None,
                "total_evaluation_time_seconds": "1.0",
            }
            (out / f"results_{DATE}.json").write_text(json.dumps(data, indent=1))
            folder = store.jobs_dir / job_id
            results_file = str((out / f"results_{DATE}.json").relative_to(folder))
            digests = {rel: file_sha256(folder / rel) for rel in [results_file, *samples_files]}
            record = JobRecord(job_id=job_id, model=name, role=role, benchmark=bench.id, task=bench.group, identity={"bench": True},
                               command=["lm_eval", "synthetic"], env={}, results_file=results_file,
                               samples_files=samples_files, sha256=digests, started=0.0, finished=60.0)
            atomic_write_text(store.jobs_dir / job_id / "job.json", record.model_dump_json(indent=2))
            jobs[name][bench.id] = job_id
    models = [dict(name=n, role=r, pretrained=h, revision="0" * 40, identity=f"hub:{h}@{'0' * 40}", dtype="bfloat16", device="cuda",
                   chat_template=c, multiturn=c, trust_remote_code=False, local_path=None) for n, h, r, c, _ in MODELS]
    store.write_experiment(ExperimentRecord(experiment="bench", finished=time.time(), models=models, jobs=jobs))
    (root / ".complete").write_text("1")


def _peak_rss_kib() -> float:
    """Peak resident memory of this process image: VmHWM (ru_maxrss would carry the parent's peak
    over fork + exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(root: Path, reports: Path, n_boot: int) -> dict:
    """The measured step: load, compare, render (what `evalsuite report` does)."""
    from evalsuite.config import StatsSettings
    from evalsuite.report.build import build_report

    t0 = time.perf_counter()  # after imports: the parent also times the whole child process
    paths = build_report(root, "bench", reports, stats=StatsSettings(n_boot=n_boot), published=Path(__file__).resolve().parent.parent / "examples" / "published_scores.csv")
    wall = time.perf_counter() - t0
    peak_mib = _peak_rss_kib() / 1024
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(peak_mib, 1), "html_bytes": paths.html.stat().st_size, "html": str(paths.html)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/evalsuite-bench-report"))
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    results, reports = args.dir / "results", args.dir / "reports"
    if args.measure_only:
        print(json.dumps(measure(results, reports, args.boot)))
        return
    if not (results / ".complete").exists():
        t0 = time.perf_counter()
        generate(results)
        print(f"generated synthetic logs in {time.perf_counter() - t0:.1f} s under {results}", file=sys.stderr)
    size = sum(f.stat().st_size for f in results.rglob("*.jsonl"))
    docs = sum(1 for f in results.rglob("*.jsonl") for _ in f.open("rb"))
    print(f"samples: {docs} documents over 3 models, {size / 2**20:.0f} MiB of samples files", file=sys.stderr)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--dir", str(args.dir), "--boot", str(args.boot), "--measure-only"],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout)
    result["process_wall_s"] = round(time.perf_counter() - t0, 2)  # interpreter start and imports included
    print(json.dumps(result))


if __name__ == "__main__":
    main()
