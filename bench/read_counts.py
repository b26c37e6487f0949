"""Benchmark: stored-file reads and wall time of `evalsuite run` on the offline demo, first run
and re-run (everything reused), in this process.

    python bench/read_counts.py [--dir D] [--benchmarks bbh,gpqa]
    python bench/read_counts.py --dir D --rerun-only   # the re-run of the demo finished in D

Prints, per run, the wall time and the counts of tests/read_counter.py: results-file JSON parses
and samples-file sha256 passes (each a full read of a file that is ~300 MB for MMLU-PRO at full
size), in all and for the most-read file. The second run's wall time as a share of the first's is
the re-run cost.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from read_counter import count_reads  # noqa: E402


def demo_config(dest: Path, benchmarks: str | None) -> Path:
    text = (REPO / "examples" / "demo.yaml").read_text()
    text = text.replace("recipe: demo.mergekit.yml", f"recipe: {REPO / 'examples' / 'demo.mergekit.yml'}")
    text = text.replace("mirror: demo_mirror", f"mirror: {REPO / 'examples' / 'demo_mirror'}")
    text = text.replace("results: ../results", f"results: {dest / 'results'}")
    text = text.replace("reports: ../reports", f"reports: {dest / 'reports'}")
    if benchmarks:
        text = text.replace("benchmarks: [ifeval, bbh, math_hard, gpqa, musr, mmlu_pro]", f"benchmarks: [{benchmarks}]")
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "demo.yaml"
    path.write_text(text)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/evalsuite-bench-reads"))
    ap.add_argument("--benchmarks", default=None, help="comma-separated (default: all six)")
    ap.add_argument("--rerun-only", action="store_true", help="only re-run the finished demo already in --dir")
    args = ap.parse_args()
    if args.rerun_only:
        config = args.dir / "demo.yaml"
    else:
        shutil.rmtree(args.dir, ignore_errors=True)
        config = demo_config(args.dir, args.benchmarks)
    from evalsuite.cli.main import main as cli

    out = {}
    for label in ("rerun",) if args.rerun_only else ("first", "rerun"):
        t0 = time.perf_counter()
        with count_reads() as counts:
            rc = cli(["run", "--all", "--config", str(config), "--quiet"])
        out[label] = dict(rc=rc, wall_s=round(time.perf_counter() - t0, 2), **counts.summary())
    if "first" in out:
        out["rerun_share"] = round(out["rerun"]["wall_s"] / out["first"]["wall_s"], 4)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
