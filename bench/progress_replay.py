"""Replay a finished run's lm-eval logs through `evalsuite run`'s progress estimate and compare it
with the true time left (issue 23's goal: within ±50% after the first minute).

    python bench/progress_replay.py RESULTS_DIR [--every 10] [--workers 2]

Each process's start and end come from its jobs' `job.json`; each progress-bar line of its
`lm_eval.log` is placed at its phase's start (the timestamped log line just before the bar
began) plus the bar's own elapsed time. The estimator (`evalsuite.run.events.ProgressEvents`) is fed these
lines in time order with its clock set to the replayed time, and sampled every `--every` seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from evalsuite.run.events import clock_seconds

STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}):(\d{2}:\d{2}:\d{2}) ")
BAR = re.compile(r"Running (loglikelihood|generate_until|loglikelihood_rolling) requests:\s*\d+%\|[^|]*\|\s*\d+/\d+\s*\[([0-9:]+)<")



def processes(results: Path) -> list[dict]:
    """One entry per lm-eval process: start, end, [(time, line)] of its bars."""
    seen: dict[str, dict] = {}
    for job in sorted((results / "jobs").glob("*/job.json")):
        rec = json.loads(job.read_text())
        key = rec.get("process") or rec["job_id"]
        if key in seen:
            continue
        lines, stamp, phase_start = [], None, {}
        for raw in (job.parent / "lm_eval.log").read_text(errors="replace").replace("\r", "\n").splitlines():
            m = STAMP.match(raw)
            if m:
                stamp = datetime.strptime(f"{m.group(1)} {m.group(2)}", "%Y-%m-%d %H:%M:%S").timestamp()
                continue
            b = BAR.search(raw)
            if b and stamp is not None:
                start = phase_start.setdefault(b.group(1), stamp)
                lines.append((start + clock_seconds(b.group(2)), raw.strip()))
        ident = rec.get("identity") or {}
        seen[key] = dict(name=rec["model"], start=rec["started"], end=rec["finished"], lines=sorted(lines), process=key,
                         device=ident.get("device", "cpu"), threads=ident.get("threads"))
    return sorted(seen.values(), key=lambda p: p["start"])


def replay(results: Path, every: float, workers: int, batch: int) -> list[tuple[float, float | None, float]]:
    from evalsuite.run import events as runner_events

    procs = processes(results)
    t0, t_end = procs[0]["start"], max(p["end"] for p in procs)
    now = [t0]
    runner_events.time = SimpleNamespace(time=lambda: now[0])  # the estimator's clock: the replayed time

    class Bar:  # the parts of rich's Progress the events touch
        console = SimpleNamespace(print=lambda *a, **k: None)
        tasks = [SimpleNamespace(id=0, total=18)]

        def update(self, *a, **k): ...
        def advance(self, *a, **k): ...

    fake = [SimpleNamespace(process_id=p["process"], label=p["name"],
                            first=SimpleNamespace(model=SimpleNamespace(name=p["name"], device=p["device"]),
                                                  settings=SimpleNamespace(batch_size=batch, threads=p["threads"])),
                            jobs=[]) for p in procs]  # device and threads as the run had them (the CPU's crowding)
    events = runner_events.ProgressEvents(Bar(), 0, 1, SimpleNamespace(done={}, failed=[]), fake, workers)
    timeline = [(p["start"], "start", i, None) for i, p in enumerate(procs)] + [(p["end"], "end", i, None) for i, p in enumerate(procs)]
    timeline += [(t, "line", i, line) for i, p in enumerate(procs) for t, line in p["lines"]]
    timeline.sort(key=lambda e: (e[0], {"start": 0, "line": 1, "end": 2}[e[1]]))
    samples, next_sample, k = [], t0 + every, 0
    while next_sample < t_end:
        while k < len(timeline) and timeline[k][0] <= next_sample:
            t, kind, i, line = timeline[k]
            now[0] = t
            if kind == "start":
                events.running[fake[i].process_id] = runner_events.ChildProgress(fake[i])
            elif kind == "end":
                events._end(fake[i])
            else:
                events.running[fake[i].process_id].see(line)
            k += 1
        now[0] = next_sample
        left, _, _ = events.estimate()
        samples.append((next_sample - t0, left, t_end - next_sample))
        next_sample += every
    return samples


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    a = ap.parse_args()
    rows = replay(a.results, a.every, a.workers, a.batch)
    within = [r for r in rows if r[0] >= 60 and r[1] is not None]
    for since, left, true in rows:
        ratio = f"{left / true:.2f}" if left is not None and true > 0 else "-"
        print(f"t={since:6.0f}s  estimate {'timing' if left is None else f'{left:6.0f}s'}  true {true:6.0f}s  ratio {ratio}")
    ok = [r for r in within if 0.5 <= r[1] / r[2] <= 1.5]
    print(f"after the first minute: {len(ok)}/{len(within)} estimates within ±50% of the true time left "
          f"({sum(1 for r in rows if r[0] >= 60 and r[1] is None)} samples still timing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
