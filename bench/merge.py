"""Time `evalsuite merge` against bare `mergekit-yaml` on the same recipe and parents.

Builds two synthetic ~300M-parameter Gemma-2 parents (random weights, float32 on disk), writes
the seed recipe (`examples/gemmaslerp2-9b.mergekit.yml`) with its hub ids replaced by the two
local folders, then runs each tool as a child process, alternating, and reads each child's own
peak RSS from `os.wait4`. Reports median wall times, their ratio and both peak RSS figures.

    python bench/merge.py [--workdir /tmp/evalsuite-bench-merge] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "gemmaslerp2-9b.mergekit.yml"
SHAPE = dict(num_layers=18, hidden_size=1024, intermediate_size=4096, num_heads=8)


def build_parents(work: Path) -> tuple[Path, Path]:
    """Two random ~300M-parameter Gemma-2 parents (rebuilt only when the shape asked changes)."""
    import json

    from evalsuite.fixtures.tiny import build_tiny_gemma2

    stamp = work / "parents.json"
    want = json.dumps({"shape": SHAPE, "seeds": [101, 202]}, sort_keys=True)
    paths = (work / "parent_a", work / "parent_b")
    if not (stamp.is_file() and stamp.read_text() == want and all((p / "config.json").is_file() for p in paths)):
        for path, seed in zip(paths, (101, 202)):
            print(f"building {path} ...", flush=True)
            build_tiny_gemma2(path, seed=seed, **SHAPE)
        stamp.write_text(want)
    return paths


def n_params(folder: Path) -> int:
    """Parameter count from the safetensors headers (no torch import: see `main`)."""
    from evalsuite.models.model_files import numel, read_header

    return sum(numel(t.shape) for f in folder.glob("*.safetensors") for t in read_header(f, "bench").values())


def run(cmd: list[str], log: Path, env: dict[str, str]) -> tuple[float, int, int, float]:
    """(wall s, peak RSS MiB of the child, exit code, CPU s), from the child's own rusage."""
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss // 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/evalsuite-bench-merge"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work: Path = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.build_only:
        build_parents(work)
        return 0
    bindir = Path(sys.executable).parent
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", EVALSUITE_CACHE=str(work / "cache"))

    # Build the parents in a child: Linux reports a child's peak RSS as at least this process's
    # own peak (it is inherited through fork/exec), so this process must stay small.
    subprocess.run([sys.executable, __file__, "--build-only", "--workdir", str(work)], check=True, env=env)
    a, b = work / "parent_a", work / "parent_b"
    recipe = work / "recipe.yml"
    text = SEED.read_text().replace("sam-paech/Delirium-v1", str(a)).replace("DreadPoor/Emu_Eggs-9B-Model_Stock", str(b))
    recipe.write_text(text)
    print(f"parents: {n_params(a) / 1e6:.0f}M parameters each (float32 on disk), recipe {recipe}")

    mk_out, ev_out = work / "out_mergekit", work / "out_evalsuite"
    tools = {
        "mergekit-yaml": [str(bindir / "mergekit-yaml"), str(recipe), str(mk_out)],
        "evalsuite merge --force": [str(bindir / "evalsuite"), "merge", str(recipe), str(ev_out), "--force"],
    }
    # Warm-up, reported but not in the medians: mergekit fills the page cache; evalsuite's first
    # run also hashes both parents (cached per path/size/mtime, as every later run finds them).
    shutil.rmtree(work / "cache", ignore_errors=True)
    first = {}
    for name, cmd in tools.items():
        shutil.rmtree(mk_out, ignore_errors=True)
        shutil.rmtree(ev_out, ignore_errors=True)
        first[name] = run(cmd, work / "warmup.log", env)
        print(f"warm-up {name}: {first[name][0]:.2f}s wall, {first[name][3]:.2f}s CPU, peak RSS {first[name][1]} MiB, rc {first[name][2]}")
        if first[name][2]:
            print((work / "warmup.log").read_text()[-3000:])
            return 1
    results: dict[str, list[tuple[float, int, float]]] = {k: [] for k in tools}
    for i in range(args.rounds):
        for name, cmd in tools.items():
            shutil.rmtree(mk_out, ignore_errors=True)
            wall, rss, rc, cpu = run(cmd, work / f"{name.split()[0]}-{i}.log", env)
            if rc:
                print(f"{name} failed (rc {rc}); see {work}")
                return 1
            results[name].append((wall, rss, cpu))
            print(f"round {i + 1} {name}: {wall:.2f}s wall, {cpu:.2f}s CPU, peak RSS {rss} MiB", flush=True)
    reuse_wall, reuse_rss, _, reuse_cpu = run(tools["evalsuite merge --force"][:-1], work / "reuse.log", env)

    med = {k: statistics.median(w for w, _, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c for _, _, c in v) for k, v in results.items()}
    peak = {k: max(r for _, r, _ in v) for k, v in results.items()}
    mk, ev = "mergekit-yaml", "evalsuite merge --force"
    print(f"\nload average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work inflates wall time)")
    print(f"{'tool':<26}{'median wall':>12}{'median CPU':>12}{'peak RSS':>12}")
    for k in tools:
        print(f"{k:<26}{med[k]:>11.2f}s{cpu[k]:>11.2f}s{peak[k]:>8} MiB")
    print(f"{'evalsuite merge (reuse)':<26}{reuse_wall:>11.2f}s{reuse_cpu:>11.2f}s{reuse_rss:>8} MiB")
    fw, fr, _, fc = first[ev]
    print(f"{'evalsuite, first run':<26}{fw:>11.2f}s{fc:>11.2f}s{fr:>8} MiB   (also hashes both parents)")
    print(f"wall ratio evalsuite / mergekit: {med[ev] / med[mk]:.3f}  (goal <= 1.1)")
    print(f"CPU ratio  evalsuite / mergekit: {cpu[ev] / cpu[mk]:.3f}")
    print(f"peak RSS  evalsuite / mergekit: {peak[ev] / peak[mk]:.3f}  (goal <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
