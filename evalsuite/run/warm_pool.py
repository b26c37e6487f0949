"""Warm starts, the parent's side: the zygote processes (`python -m evalsuite.run.warm MODULE...`,
evalsuite/run/warm.py) by environment, and the forked lm-eval children they report on
(`WarmChild`, with the part of `subprocess.Popen` the executor uses). `POOL` is the process's one
pool; zygotes end when it closes (atexit) or their parent dies.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from evalsuite.run.warm import LATE_BOUND, PRELOAD


class WarmChild:
    """A forked lm-eval process, with the part of `subprocess.Popen` the executor uses."""

    def __init__(self, zygote: "Zygote", rid: int):
        self._zygote, self._rid = zygote, rid
        self._started = threading.Event()
        self._done = threading.Event()
        self.pid: Optional[int] = None
        self.refused: Optional[str] = None
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        if not self._done.is_set() and not self._zygote.alive:
            self.returncode = -signal.SIGKILL  # the zygote died, and its children with it
            self._done.set()
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("lm_eval", timeout)
            self._done.wait(0.2)
        return self.returncode

    def kill(self) -> None:
        if self.pid is not None and self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Zygote:
    """One zygote process (started with `env`, importing `preload`) and the reader of its replies."""

    def __init__(self, env: dict[str, str], preload: list[str]):
        self._lock = threading.Lock()
        self._next = 0
        self._children: dict[int, WarmChild] = {}
        self.retired = False
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "evalsuite.run.warm", *preload], env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        first = self._proc.stdout.readline()
        hello = json.loads(first) if first else {"refused": "it exited while starting"}
        self.refused: Optional[str] = hello.get("refused")
        self.alive = self.refused is None
        if self.alive:
            threading.Thread(target=self._read, name="evalsuite-zygote", daemon=True).start()
        else:
            self.close()

    def _read(self) -> None:
        try:
            for line in self._proc.stdout:
                msg = json.loads(line)
                with self._lock:
                    child = self._children.get(msg["id"])
                if child is None:
                    continue
                if "pid" in msg:
                    child.pid = msg["pid"]
                    child._started.set()
                    continue
                child.refused = msg.get("refused")
                child.returncode = msg.get("returncode")
                with self._lock:
                    self._children.pop(msg["id"], None)
                    if child.refused:
                        self.refused = child.refused
                    idle = (self.retired or self.refused) and not self._children
                child._started.set()
                child._done.set()
                if idle:
                    self.close()
        except ValueError:  # close() closed the pipe (the zygote retired while idle)
            pass
        self.alive = False
        with self._lock:
            for child in self._children.values():
                child._started.set()

    def start(self, args: list[str], env: dict[str, str], log: Path, cwd: Path, preload: list[str]) -> tuple[Optional[WarmChild], str]:
        with self._lock:
            if not self.alive or self.retired or self.refused:
                return None, f"the warm start was refused ({self.refused})" if self.refused else "the warm start's zygote has ended"
            self._next += 1
            child = WarmChild(self, self._next)
            self._children[child._rid] = child
            req = {"id": child._rid, "args": args, "env": env, "log": str(log), "cwd": str(cwd), "preload": preload}
            try:
                self._proc.stdin.write((json.dumps(req) + "\n").encode())
                self._proc.stdin.flush()
            except OSError:
                self.alive = False
                return None, "the warm start's zygote has ended"
        child._started.wait()
        if child.pid is None:
            return None, f"the warm start was refused ({child.refused})" if child.refused else "the warm start's zygote has ended"
        return child, ""

    def retire(self) -> None:
        """Take no more requests; end once the running children have finished."""
        with self._lock:
            self.retired = True
            idle = not self._children
        if idle:
            self.close()

    def close(self) -> None:
        """End the zygote now, with any child still running (they die with it)."""
        self.alive = False
        self._proc.kill()
        self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


class WarmPool:
    """Zygotes by environment (outside `LATE_BOUND`), started on first use (or ahead of it:
    `prewarm`) and kept for the life of this process, so the runs of one `evalsuite` process (a
    sweep's rounds, the tests) share them. At most `keep` at once (each holds ~0.4 GB of imported
    modules): the least recently used one is retired."""

    def __init__(self, keep: int = 2):
        self.keep = keep
        self._lock = threading.Lock()
        self._zygotes: dict[tuple, Zygote] = {}  # in order of use, the latest last
        self._making: dict[tuple, threading.Lock] = {}
        self.refused: dict[tuple, str] = {}
        atexit.register(self.close)

    @staticmethod
    def key(env: dict[str, str]) -> tuple:
        return tuple(sorted((k, v) for k, v in env.items() if k not in LATE_BOUND))

    def _zygote(self, env: dict[str, str]) -> tuple[Optional[Zygote], str]:
        key = self.key(env)
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:  # one start per environment; a second caller waits for it
            with self._lock:
                zygote = self._zygotes.pop(key, None)
                if zygote is not None and zygote.alive and not zygote.refused:
                    self._zygotes[key] = zygote  # the most recently used
                    return zygote, ""
                if key in self.refused:
                    return None, f"the warm start was refused ({self.refused[key]})"
            zygote = Zygote({k: v for k, v in env.items() if k not in LATE_BOUND}, list(PRELOAD))
            with self._lock:
                if zygote.refused:
                    self.refused[key] = zygote.refused
                    return None, f"the warm start was refused ({zygote.refused})"
                self._zygotes[key] = zygote
                old = list(self._zygotes)[: max(0, len(self._zygotes) - self.keep)]
                retire = [self._zygotes.pop(k) for k in old]
        for z in retire:
            z.retire()
        return zygote, ""

    def prewarm(self, env: dict[str, str]) -> None:
        """Start the zygote for `env` in the background, so that its imports overlap with what the
        caller does before its first lm-eval process (models, merge, data checks)."""
        if hasattr(os, "fork"):
            threading.Thread(target=self._zygote, args=(env,), name="evalsuite-prewarm", daemon=True).start()

    def start(self, args: list[str], env: dict[str, str], log: Path, cwd: Path, preload: list[str]) -> tuple[Optional[WarmChild], str]:
        """Fork `python -m evalsuite.run.lm_eval_main ARGS` with `env`, output appended to `log`,
        the zygote importing `preload` first: (the child, "") or (None, why it must start fresh)."""
        if not hasattr(os, "fork"):
            return None, "no fork() on this system"
        zygote, why = self._zygote(env)
        if zygote is None:
            return None, why
        child, why = zygote.start(args, env, log, cwd, preload)
        if zygote.refused:
            with self._lock:
                self.refused[self.key(env)] = zygote.refused
        return child, why

    def close(self) -> None:
        with self._lock:
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for z in zygotes:
            z.close()


POOL = WarmPool()
