"""Benchmark: how often a re-run of a finished demo opens each stored file (strace).

    python bench/open_counts.py [--dir D] [--benchmarks bbh,gpqa] [--rerun-only]

Runs the offline demo once into D (unless --rerun-only: D holds a finished demo made by this
script or bench/read_counts.py), then re-runs it under `strace -f -e trace=open,openat` and
counts the read-only opens of every file under D/results: job records (`job.json`), lm-eval's
results files (`results_*.json`), samples files (`samples_*.jsonl`), experiment records and the
rest. Every open is counted, whatever it was for (hash, parse, a few records re-read), in this
process and its children. Prints per kind: files, opens in all, the most opens of one file and
that file. Needs strace (Linux).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from read_counts import demo_config  # noqa: E402

_OPEN = re.compile(r'open(?:at)?\((?:[^,]+, )?"(?P<path>[^"]+)", (?P<flags>[A-Z_|]+)')
_TMP = re.compile(r"/\.tmp-(?P<job>.+?)-\d+/")


def kind_of(path: str) -> str:
    name = Path(path).name
    if name == "job.json":
        return "job.json"
    if name.startswith("results_") and name.endswith(".json"):
        return "results"
    if name.startswith("samples_") and name.endswith(".jsonl"):
        return "samples"
    if "/experiments/" in path:
        return "experiment"
    return "other"


def tally(trace: Path, root: Path) -> dict:
    opens: Counter = Counter()
    prefix = str(root.resolve()) + "/"
    for line in trace.read_text(errors="replace").splitlines():
        m = _OPEN.search(line)
        if not m or "= -1" in line:
            continue
        path, flags = m["path"], m["flags"]
        if not path.startswith(prefix) or not flags.startswith("O_RDONLY") or "O_DIRECTORY" in flags:
            continue
        opens[_TMP.sub(lambda g: f"/{g['job']}/", path)] += 1
    out: dict = {}
    for path, n in opens.items():
        k = out.setdefault(kind_of(path), dict(files=0, opens=0, max=0, most_opened=""))
        k["files"] += 1
        k["opens"] += n
        if n > k["max"]:
            k["max"], k["most_opened"] = n, path[len(prefix):]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/evalsuite-bench-opens"))
    ap.add_argument("--benchmarks", default=None, help="comma-separated (default: all six)")
    ap.add_argument("--rerun-only", action="store_true", help="only re-run the finished demo in --dir")
    args = ap.parse_args()
    if shutil.which("strace") is None:
        sys.exit("open_counts: strace is not installed")
    config = args.dir / "demo.yaml"
    cmd = [sys.executable, "-c", "import sys; from evalsuite.cli.main import main; sys.exit(main(sys.argv[1:]))", "run", "--all", "--config", str(config), "--quiet"]
    if not args.rerun_only:
        shutil.rmtree(args.dir, ignore_errors=True)
        demo_config(args.dir, args.benchmarks)
        subprocess.run(cmd, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace"
        subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", str(trace), *cmd], check=True)
        print(json.dumps(tally(trace, args.dir / "results"), indent=1))


if __name__ == "__main__":
    main()
