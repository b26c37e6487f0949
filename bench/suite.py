"""Benchmark: the test suite against the offline demo, back to back on this machine.

    python bench/suite.py [--dir D] [--skip-suite] [PYTEST_ARGS...]

1. the offline demo (README command 1, after set-up): `evalsuite run --all --config
   examples/demo.yaml` in a fresh copy of the repository's examples (fresh results folder);
2. the README's test command (`python -m pytest -q -p no:cacheprovider`, plus PYTEST_ARGS such as
   `--durations=30`), whose end-of-run line counts the lm-eval processes the suite started.

Prints both wall times, their ratio (the goal: the suite at most 6x the demo) and the counts
(tests/conftest.py writes them to D/counts.json). Wall times on the shared 2-core machine are noisy:
quote the ratio of one run.
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


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("w") as fh:
        code = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    took = time.perf_counter() - t0
    if code != 0:
        sys.exit(f"{' '.join(cmd)} exited {code}; see {log}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/evalsuite-bench-suite"))
    ap.add_argument("--skip-suite", action="store_true", help="time the demo only")
    args, pytest_args = ap.parse_known_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    (args.dir / "work").mkdir(parents=True)
    shutil.copytree(REPO / "examples", args.dir / "work" / "examples")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    evalsuite = str(Path(sys.executable).parent / "evalsuite")
    demo = timed([evalsuite, "run", "--all", "--config", "examples/demo.yaml", "--quiet"], args.dir / "work", env, args.dir / "demo.log")
    print(f"offline demo: {demo:.1f} s")
    if args.skip_suite:
        return
    counts = args.dir / "counts.json"
    suite = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args], REPO,
                  {**env, "EVALSUITE_TEST_COUNTS": str(counts)}, args.dir / "suite.log")
    tail = [line for line in (args.dir / "suite.log").read_text().splitlines() if line.strip()][-1]
    print(f"test suite:   {suite:.1f} s  ({tail})")
    print(f"suite / demo: {suite / demo:.2f}")
    if counts.exists():
        print(f"lm-eval processes: {json.loads(counts.read_text())}")


if __name__ == "__main__":
    main()
