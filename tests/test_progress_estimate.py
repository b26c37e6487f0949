"""`evalsuite run`'s time-left estimate (evalsuite.run.events.ProgressEvents), fed lm-eval progress-bar lines
on a fake clock as the executor feeds them: the CPU's cores shared by processes that run at once,
pending processes queued on the workers (issue #23: the estimate within ±50% of the true time
left; `bench/progress_replay.py` replays a real run's logs through it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from evalsuite.run import events as runner_events


def bar(kind: str, done: int, total: int, elapsed: float) -> str:
    m, s = divmod(int(elapsed), 60)
    return f"Running {kind} requests: {100 * done // total}%|##| {done}/{total} [{m:02d}:{s:02d}<00:00, 1.00it/s]"


class Clock:
    def __init__(self, monkeypatch):
        self.now = 1000.0
        monkeypatch.setattr(runner_events, "time", SimpleNamespace(time=lambda: self.now))


def events(n: int, workers: int, *, device: str = "cpu", threads=None):
    procs = [SimpleNamespace(process_id=f"p{i}", label=f"m{i}",
                             first=SimpleNamespace(model=SimpleNamespace(name=f"m{i}", device=device),
                                                   settings=SimpleNamespace(batch_size=1, threads=threads)),
                             jobs=[]) for i in range(n)]
    ev = runner_events.ProgressEvents(None, 0, 1, SimpleNamespace(done={}, failed=[]), procs, workers)
    return ev, procs


def run_whole(ev, proc, clock, start: float, *, startup=10.0, ll=40.0, gen=60.0, tail=5.0):
    """A process that starts at `start` and runs loglikelihood (100 requests) then generation (10)
    at even pace; ends after `tail`. Leaves the clock at its end."""
    clock.now = start
    ev.running[proc.process_id] = child = runner_events.ChildProgress(proc)
    for i in range(1, 101):
        clock.now = start + startup + ll * i / 100
        child.see(bar("loglikelihood", i, 100, ll * i / 100))
    for i in range(1, 11):
        clock.now = start + startup + ll + gen * i / 10
        child.see(bar("generate_until", i, 10, gen * i / 10))
    clock.now = start + startup + ll + gen + tail
    ev._end(proc)


def test_cpu_processes_share_the_cores(monkeypatch):
    """On the CPU with torch's default threads (all cores), two processes at once each run at half
    speed: with two measured that way, the third one, alone, is expected twice as fast; with one
    thread a process (the demo's `threads: 1`) there is nothing to share."""
    import os

    cores = os.cpu_count() or 1
    for threads in (None, 1):
        clock = Clock(monkeypatch)
        ev, procs = events(3, workers=2, threads=threads)
        run_whole(ev, procs[0], clock, 0.0)  # both from 0 to 115 s, side by side
        run_whole(ev, procs[1], clock, 0.0)
        left, _, _ = ev.estimate()  # at 115 s: the third, not started yet
        slow = max(1.0, 2 * (threads or cores) / cores)
        assert left == pytest.approx(115.0 / slow, abs=0.5), (threads, left)
        if threads is None:
            assert left == pytest.approx(57.5, abs=0.5)


def test_finish_time_queues_pending_work_on_free_workers(monkeypatch):
    ev, _ = events(3, workers=2, device="cuda")
    assert ev._finish_time([50.0, 20.0], [30.0]) == pytest.approx(50.0)  # the third on the worker free at 20
    ev, _ = events(3, workers=2, threads=None)
    ev.share = 1.0  # CPU, every core a process: two at once run at half speed
    assert ev._finish_time([50.0, 50.0], [50.0]) == pytest.approx(150.0)  # 100 s together, then 50 s alone
