"""Benchmark: `strategy: halving` against `strategy: full` on the demo sweep (8 SLERP candidates of
the tiny parents, MMLU-Pro fixture of 96 questions whose key is parent_b's choice).

    python bench/sweep.py [--dir D]

The parents are evaluated once into a seed folder; halving and full then each run in a fresh
copy of it (parents reused, not counted), so each one's wall time and lm-eval requests are its
candidates' alone. Prints both, their ratio, and whether the winners agree.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def config(dest: Path) -> Path:
    data = yaml.safe_load((REPO / "examples" / "demo-sweep.yaml").read_text())
    data["recipe"] = str(REPO / "examples" / data["recipe"])
    data["data"]["mirror"] = str(REPO / "examples" / data["data"]["mirror"])
    data["output"] = {"results": str(dest / "results"), "reports": str(dest / "reports")}
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "sweep.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return dest / "sweep.yaml"


def sweep(cfg: Path, strategy: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "evalsuite.cli.main", "sweep", "--config", str(cfg), "--strategy", strategy,
                          "--format", "json", "--quiet", "--no-report"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="evalsuite-bench-sweep-"))
    seed = config(root / "seed")
    data = yaml.safe_load(seed.read_text())
    parents_only = dict(data, name="parents", candidate=data["parents"][0], parents=data["parents"][1:])
    for key in ("recipe", "grid", "merged", "strategy", "rounds"):
        parents_only.pop(key)
    (root / "seed" / "parents.yaml").write_text(yaml.safe_dump(parents_only, sort_keys=False))
    subprocess.run([sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "--config", str(root / "seed" / "parents.yaml"),
                    "--quiet", "--no-report"], check=True, capture_output=True)
    rows = {}
    for strategy in ("halving", "full"):
        dest = root / strategy
        shutil.copytree(root / "seed" / "results", dest / "results", symlinks=True)
        rows[strategy] = sweep(config(dest), strategy)
    (h, th), (f, tf) = rows["halving"], rows["full"]
    print(f"halving: {h['requests']} requests, {th:.1f} s, winner {h['winner']}")
    print(f"full:    {f['requests']} requests, {tf:.1f} s, winner {f['winner']}")
    print(f"halving / full: requests {h['requests'] / f['requests']:.1%}, wall time {th / tf:.1%}; "
          f"same winner: {h['winner'] == f['winner']}")


if __name__ == "__main__":
    main()
