"""Benchmark: `evalsuite import` on a full-size details folder (21,606 documents, MMLU-PRO ~300 MB).

    python bench/import_details.py                 # build (cached) under /tmp, then measure
    python bench/import_details.py --dir D

The folder is laid out as a leaderboard details repo (`<org>__<model>/samples_<task>_<date>.jsonl`
+ `results_<date>.json`). Documents must be in the tasks' real (processed) schemas, since the
import re-scores every record with lm-eval's own `process_results`: they come from one genuine
run of the tiny fixture model on the fixture mirror (all six benchmarks, limit 2; run once, cached),
repeated up to the full task sizes of the suite file, with prompts of realistic length
(bench/report.py's PROMPT_CHARS), random log-likelihoods for multiple choice and random text for
generations. Recorded metric values are the template's (so agreement is not 100%: it is not
what is measured). The measured step is `evalsuite import` in a child process, under
`/usr/bin/time -v` when available (peak RSS), else resource.getrusage of the child.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from report import PROMPT_CHARS, WORDS  # noqa: E402

DATE = "2026-01-01T00-00-00.000000"
ORG_MODEL = "bench-org__bench-model"


def template_run(base: Path) -> Path:
    """One genuine run (six benchmarks, limit 2) -> its results folder (cached)."""
    results = base / "template" / "results"
    if (base / "template" / ".complete").exists():
        return results
    shutil.rmtree(base / "template", ignore_errors=True)
    demo = REPO / "examples" / "demo.yaml"
    data = yaml.safe_load(demo.read_text())
    data["data"]["mirror"] = str((demo.parent / data["data"]["mirror"]).resolve())
    data.update(name="bench-import", parents=[], candidate={"fixture": "candidate"}, limit=2)
    data["output"] = {"results": str(results), "reports": str(base / "template" / "reports")}
    cfg = base / "template" / "exp.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    subprocess.run([sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "--config", str(cfg), "--quiet", "--no-report"], check=True)
    (base / "template" / ".complete").write_text("1")
    return results


def _text(rnd: random.Random, n: int) -> str:
    out, size = [], 0
    while size < n:
        w = rnd.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n]


def build(base: Path) -> Path:
    """The full-size details folder (cached)."""
    from evalsuite.suite import load_suite

    folder = base / "details" / ORG_MODEL
    if (base / "details" / ".complete").exists():
        return folder.parent
    results = template_run(base)
    shutil.rmtree(base / "details", ignore_errors=True)
    folder.mkdir(parents=True)
    suite = load_suite()
    whole = json.loads(next(results.rglob("process_results_*.json")).read_text())
    rnd = random.Random(0)
    for bench in suite.benchmarks:
        for task in bench.leaf_tasks:
            src = next(results.rglob(f"samples_{task}_*.jsonl"))
            templates = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
            n = bench.full_size(task) or len(templates)
            with (folder / f"samples_{task}_{DATE}.jsonl").open("w", encoding="utf-8") as fh:
                for doc_id in range(n):
                    rec = dict(templates[doc_id % len(templates)])
                    rec["doc_id"] = doc_id
                    prompt = _text(rnd, PROMPT_CHARS[bench.id])
                    args = rec["arguments"]
                    rec["arguments"] = {k: {**v, "arg_0": prompt} for k, v in args.items()}
                    if bench.id in ("ifeval", "math_hard"):
                        out = _text(rnd, 1200 if bench.id == "ifeval" else 600)
                        rec["resps"], rec["filtered_resps"] = [[out]], [out]
                    else:
                        lls = [f"{-1.0 - 5 * rnd.random()}" for _ in rec["filtered_resps"]]
                        rec["resps"] = [[[ll, "False"]] for ll in lls]
                        rec["filtered_resps"] = [[ll, "False"] for ll in lls]
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            whole["n-samples"][task] = {"original": n, "effective": n}
    whole["config"]["limit"] = None
    (folder / f"results_{DATE}.json").write_text(json.dumps(whole, indent=2))
    (base / "details" / ".complete").write_text("1")
    return folder.parent


def measure(details: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "evalsuite.cli.main", "import", str(details), "--name", "bench", "--format", "json"]
    timev = Path("/usr/bin/time")
    t0 = time.perf_counter()
    if timev.exists():
        proc = subprocess.run([str(timev), "-v", *cmd], cwd=out, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak_kib = next((float(l.split(":")[1]) for l in proc.stderr.splitlines() if "Maximum resident set size" in l), float("nan"))
    else:
        proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak_kib = float(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    if proc.returncode != 0:
        raise SystemExit(f"evalsuite import failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    size = sum(p.stat().st_size for p in details.rglob("*") if p.is_file())
    mmlu = sum(p.stat().st_size for p in details.rglob("samples_leaderboard_mmlu_pro_*"))
    docs = sum(1 for p in details.rglob("samples_*.jsonl") for _ in p.open("rb"))
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(peak_kib / 1024, 1), "documents": docs,
            "input_mib": round(size / 2**20, 1), "mmlu_pro_mib": round(mmlu / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/evalsuite-bench-import"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    details = build(args.dir)
    print(f"details folder: {details} ({time.perf_counter() - t0:.0f} s to build or find)", file=sys.stderr)
    print(json.dumps(measure(details, args.dir / "work")))


if __name__ == "__main__":
    main()
