"""What a run's executor reports, shown and kept: `RunOutcome` (what one `evalsuite run` did) and
`ProgressEvents`, the executor's events -> the live progress display (with its time-left estimate,
read from each lm-eval child's own progress bars) and the outcome.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, SkipValidation
from rich.progress import Progress

from evalsuite.run.jobs import Job, Process
from evalsuite.schema import JobRecord, ModelRef
from evalsuite.results.store import Store
from evalsuite.study import Study


class RunOutcome(BaseModel):
    """What one `evalsuite run` did, and the study of its experiment record (evalsuite.study)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    experiment: str
    models: list[ModelRef]
    done: dict[str, dict[str, JobRecord]]  # model -> benchmark -> record
    reused: int = 0
    failed: list[str] = []  # one line per failed job, with its log path
    study: SkipValidation[Optional[Study]] = Field(default=None, exclude=True)  # set once the experiment record is written

    @property
    def ok(self) -> bool:
        return not self.failed

    def result_files(self, store: Store) -> list[Path]:
        return [store.results_path(r) for per in self.done.values() for r in per.values()]


_TQDM = re.compile(r"Running (loglikelihood|generate_until|loglikelihood_rolling) requests:\s*(\d+)%\|[^|]*\|\s*(\d+)/(\d+)\s*\[([0-9:]+)<")


def clock_seconds(clock: str) -> float:
    """Seconds of a tqdm clock ("MM:SS" or "H:MM:SS")."""
    out = 0.0
    for part in clock.split(":"):
        out = out * 60 + float(part)
    return out


def _clock(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _interpolate(history: list[tuple[int, float]], done: int) -> float:
    """Seconds a bar history took to reach `done` requests (piecewise linear)."""
    prev = history[0]
    for point in history[1:]:
        if point[0] >= done:
            span = point[0] - prev[0]
            return prev[1] + (point[1] - prev[1]) * ((done - prev[0]) / span if span else 1.0)
        prev = point
    return history[-1][1]


class ChildProgress:
    """One running lm-eval process as its own progress bars tell it."""

    def __init__(self, process: Process):
        self.process, self.started = process, time.time()
        self.first_request: Optional[float] = None  # when its first request phase began (start-up before)
        self.phases: dict[str, tuple[int, int, float, float]] = {}  # phase -> (done, total, elapsed s, seen at)
        self.ended: Optional[float] = None
        self.history: dict[str, list[tuple[int, float]]] = {}  # phase -> (requests done, seconds) as the bar moved
        self.line = "starting"

    def see(self, line: str) -> None:
        m = _TQDM.search(line)
        if m is None:
            self.line = line
            return
        kind = "generation" if m.group(1) == "generate_until" else "loglikelihood"
        done, total, elapsed = int(m.group(3)), int(m.group(4)), clock_seconds(m.group(5))
        now = time.time()
        if self.first_request is None:
            self.first_request = now - elapsed
        self.phases[kind] = (done, total, elapsed, now)
        hist = self.history.setdefault(kind, [(0, 0.0)])
        if done > hist[-1][0]:
            hist.append((done, elapsed))
        self.line = f"{kind} {done}/{total} ({100 * done // max(total, 1)}%)"

    def complete(self, kind: str) -> bool:
        d, t, _, _ = self.phases.get(kind, (0, 1, 0.0, 0.0))
        return d >= t


class ProgressEvents:
    """Executor events -> live progress display and the outcome.

    The estimate is made of requests, read from each child's own progress bars (lm-eval's tqdm
    lines in its log). lm-eval sends the longest requests first, so a phase's early pace
    overstates its cost: once one process has finished a phase (loglikelihood, generation), that
    phase's measured duration is what the others are expected to take (every model runs the same
    requests); before that, the pace so far. Processes not started yet cost one start-up plus each
    phase, and are queued on the workers as the executor will. No figure until a request has been
    timed in every phase seen: never a guess shown as one."""

    def __init__(self, progress: Progress, overall, current, outcome: RunOutcome, processes: list[Process] = (), workers: int = 1):
        self.progress, self.overall, self.current, self.outcome = progress, overall, current, outcome
        self.running: dict[str, ChildProgress] = {}
        self.finished_children: list[ChildProgress] = []
        self.total_processes, self.workers = len(processes), max(1, workers)
        size = processes[0].first.settings.batch_size if processes else 1
        self.batch = size if isinstance(size, int) and size > 0 else 1  # "auto": unknown, counted as 1
        self.ended_count = 0
        # on the CPU, processes running at once share the cores: each runs at 1/slowdown(k) of its
        # speed alone (torch takes every core unless `threads` is set); on GPUs each has its own
        first = processes[0].first if processes else None
        cpu = str(getattr(getattr(first, "model", None), "device", "cpu")).startswith("cpu")
        cores = os.cpu_count() or 1
        threads = getattr(getattr(first, "settings", None), "threads", None) or cores
        self.share = threads / cores if cpu else 0.0

    def slowdown(self, k: float) -> float:
        """How much slower a process runs with k processes (itself included) running at once."""
        return max(1.0, k * self.share)

    def _crowd(self, child: ChildProgress, now: float) -> float:
        """The average number of processes that ran beside `child` (itself included) over its life."""
        end = child.ended or now
        life = end - child.started
        if life <= 0:
            return 1.0
        beside = sum(max(0.0, min(end, o.ended or now) - max(child.started, o.started)) for o in self._children() if o is not child)
        return 1.0 + beside / life

    def _children(self) -> list[ChildProgress]:
        return [*self.finished_children, *self.running.values()]

    def _phase_seconds(self, kind: str) -> Optional[float]:
        """A whole phase's duration: measured where a process completed it, else from the pace so
        far (seconds per request x requests) of those in it; None before its first request."""
        whole = [el for c in self._children() if c.complete(kind) for d, t, el, _ in [c.phases[kind]]]
        if whole:
            return sum(whole) / len(whole)
        # lm-eval answers a batch at once and then ticks its bar once per request: a bar at 1/16 has
        # a whole batch done (up to batch_size requests), not one
        pace = [(el / min(t, -(-d // self.batch) * self.batch)) * t
                for c in self._children() if kind in c.phases for d, t, el, _ in [c.phases[kind]] if d]
        return sum(pace) / len(pace) if pace else None

    def _reference(self, kind: str) -> Optional[list[tuple[int, float]]]:
        """The bar history of the latest process that completed `kind` (None: none has)."""
        for c in reversed(self._children()):
            if c.complete(kind) and len(c.history.get(kind, ())) > 1:
                return c.history[kind]
        return None

    def _startup(self) -> Optional[float]:
        starts = [c.first_request - c.started for c in self._children() if c.first_request is not None]
        return sum(starts) / len(starts) if starts else None

    def estimate(self) -> tuple[Optional[float], int, int]:
        """(seconds left, requests done, requests in all) over every lm-eval process of the run."""
        children = self._children()
        kinds = sorted({k for c in children for k in c.phases})
        totals = {k: max(c.phases[k][1] for c in children if k in c.phases) for k in kinds}
        durations = {k: self._phase_seconds(k) for k in kinds}
        startup = self._startup()
        tails = [c.ended - c.started - (c.first_request - c.started) - sum(el for _, _, el, _ in c.phases.values())
                 for c in self.finished_children if c.ended is not None and c.first_request is not None]
        tail = max(0.0, sum(tails) / len(tails)) if tails else 0.0  # between and after phases: building, scoring, writing
        pending = max(0, self.total_processes - self.ended_count - len(self.running))
        done = sum(c.phases.get(k, (0,))[0] for c in children for k in kinds)
        whole = sum(totals.values()) * (len(children) + pending)
        known = bool(kinds) and startup is not None and all(v is not None for v in durations.values())
        # a generation phase not reached by any process yet: its cost is unknown
        if "generation" not in kinds and not self.finished_children:
            known = False
        if not known:
            return None, done, whole
        now = time.time()
        # the measured durations are seconds under the crowd the measured processes had: work in
        # seconds alone is duration / slowdown(that crowd)
        measured = self.finished_children or list(self.running.values())
        ref_slow = self.slowdown(sum(self._crowd(c, now) for c in measured) / len(measured))
        left = []
        for c in self.running.values():
            rest = 0.0 if c.first_request is not None else max(0.0, startup - (now - c.started))
            pace = 1.0  # this process's speed against the reference, carried to its later phases
            for k in kinds:
                d, t, el, seen = c.phases.get(k, (0, totals[k], 0.0, now))
                if d >= t:
                    continue
                spent = el + (now - seen) if k in c.phases else 0.0
                ref = self._reference(k)
                if ref is not None and d > 0:
                    # where the finished process was at this many requests, and how much slower or
                    # faster this one is going: lm-eval's order (longest first) is the same in both
                    at = _interpolate(ref, d)
                    pace = min(5.0, max(0.2, spent / at)) if at > 0 else 1.0
                    rest += max(0.0, ref[-1][1] - at) * pace
                else:
                    rest += max(durations[k] * 0.05, durations[k] - spent) if k in c.phases else durations[k] * pace
            left.append((rest + max(0.0, tail - (now - c.phases[kinds[-1]][3]) if c.complete(kinds[-1]) else tail)) / ref_slow)
        one = (startup + sum(durations.values()) + tail) / ref_slow
        return self._finish_time(left, [one] * pending), done, whole

    def _finish_time(self, running: list[float], pending: list[float]) -> float:
        """When the last process ends: `running` and `pending` in seconds of work alone; the pending
        ones start on the first worker free, as the executor starts them; while k run at once each
        goes at 1/slowdown(k)."""
        active, queue, clock = list(running), list(pending), 0.0
        while len(active) < self.workers and queue:
            active.append(queue.pop(0))
        while active:
            step = min(active)
            clock += step * self.slowdown(len(active))
            active = [w - step for w in active if w - step > 1e-9]
            while len(active) < self.workers and queue:
                active.append(queue.pop(0))
        return clock

    def _show(self) -> None:
        lines = [f"{c.process.first.model.name} │ {c.line[:44]}" for c in self.running.values()]
        self.progress.update(self.current, description="\n".join(lines) or "idle", visible=True)
        jobs = sum(len(per) for per in self.outcome.done.values())
        left, done, whole = self.estimate()
        req = f"requests {done:,}/{whole:,}" if whole else "requests: starting"
        failed = f", {len(self.outcome.failed)} failed" if self.outcome.failed else ""
        self.progress.update(
            self.overall, description=f"jobs {jobs}/{next(t.total for t in self.progress.tasks if t.id == self.overall):g}{failed} · lm-eval {len(self.running)} running · {req}",
            eta=f"~{_clock(left)} left" if left is not None else "left: timing",
        )

    def started(self, process: Process) -> None:
        self.running[process.process_id] = ChildProgress(process)
        self.progress.console.print(f"[bold]lm-eval[/] started {process.label} ({len(self.running) + self.ended_count} of {self.total_processes})")
        self._show()

    def output(self, process: Process, line: str) -> None:
        child = self.running.get(process.process_id)
        if child is not None:
            child.see(line)
            self._show()

    def finished(self, job: Job, record: JobRecord) -> None:
        self.outcome.done[job.model.name][job.benchmark] = record
        self.progress.advance(self.overall)
        self._show()

    def _end(self, process: Process) -> Optional[ChildProgress]:
        child = self.running.pop(process.process_id, None)
        self.ended_count += 1
        if child is not None:
            child.ended = time.time()
            # its last bar lines may have come after the last look at its log: a finished process
            # has sent every request of the phases it began
            child.phases = {k: (t, t, el, seen) for k, (d, t, el, seen) in child.phases.items()}
            self.finished_children.append(child)
        return child

    def ended(self, process: Process) -> None:
        child = self._end(process)
        took = f" in {_clock(time.time() - child.started)}" if child else ""
        self.progress.console.print(f"[bold]lm-eval[/] finished {process.label}{took}")
        self._show()

    def failed(self, process: Process, message: str) -> None:
        self._end(process)
        self.outcome.failed.append(message)
        self.progress.console.print(f"[red]failed:[/] {message}")
        self.progress.advance(self.overall, len([j for j in process.jobs if j.job_id not in process.done]))
        self._show()
