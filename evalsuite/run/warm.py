"""Warm starts for lm-eval children: a zygote process with torch and transformers imported that
forks one child per lm-eval process.

A fresh `python -m evalsuite.run.lm_eval_main ARGS` spends most of its start-up importing torch,
transformers and the model's modeling code (about 4 s of the ~9 s a small tiny-model process takes
on the 2-core CI machine; `bench/child_startup.py`). The zygote pays those imports once; each lm-eval
process is then a `fork()` of it that runs `evalsuite.run.lm_eval_main.main()` -- lm-eval's own CLI,
unchanged -- with the process's arguments, environment and log file, exactly as the fresh child
would. `command.sh` keeps the stock command, and tests/test_run_e2e.py runs it and gets the stored
numbers.

What keeps a forked child identical to a fresh one:
- The zygote is started with the child's environment, less the variables that only say where a
  process reads and writes (`LATE_BOUND`: the datasets cache, NLTK data, the visible GPUs, the
  crash-point and counter variables). A zygote serves only children whose environment equals its
  own outside `LATE_BOUND`; each child gets its whole environment before lm-eval starts.
- The late-bound variables are read by code the zygote must not run: after its imports it checks
  that `datasets` and `nltk` are not imported and CUDA is not initialized, and that its imports
  started no thread (a fork copies only the calling thread) beyond NumPy's and SciPy's OpenBLAS
  pools, which OpenBLAS itself stops around fork() and restarts. Otherwise it refuses and the
  executor starts a fresh process (and says so in the job's log).
- The child reseeds Python's and NumPy's global generators from the OS, as a fresh interpreter
  starts; lm-eval seeds them itself anyway (`--seed`).

The zygote ends when its parent closes the request pipe (the parent exited or was killed) and
takes its running children with it (SIGKILL), as a fresh child dies with its parent.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

RUN_PID_ENV = "EVALSUITE_RUN_PID"  # the `evalsuite` process that started an lm-eval child (evalsuite.faults)
CHILD_LOG_ENV = "EVALSUITE_CHILD_LOG"  # a file that counts lm-eval processes (tests/conftest.py)

# Environment variables a zygote may differ in from its children: none of them is read by what the
# zygote imports (checked by `_refusal`), so each child sets them before lm-eval starts.
LATE_BOUND = (
    "HF_DATASETS_CACHE",  # read when `datasets` is imported (the zygote never imports it)
    "NLTK_DATA",  # read when `nltk` is imported (IFEval's task code, in the child)
    "CUDA_VISIBLE_DEVICES",  # read when CUDA initializes (in the child)
    "EVALSUITE_KILL_AT",  # evalsuite.faults reads it at each checkpoint
    RUN_PID_ENV,  # the `evalsuite run` process, for the crash points
    "EVALSUITE_FULL_TASK_INDEX",  # read by lm_eval_main.main()
    CHILD_LOG_ENV,  # the tests' counter of lm-eval processes
    "PYTEST_CURRENT_TEST",  # pytest's name of the running test
)
# Imported by the zygote: what a child spends its start-up on and reads no late-bound variable.
PRELOAD = ("torch", "transformers", "transformers.models.auto.modeling_auto", "lm_eval.models.huggingface", "evalsuite.run.leaderboard_lm")
NOT_PRELOADED = ("datasets", "nltk")  # read HF_DATASETS_CACHE / NLTK_DATA when imported
BLAS_FIRST = ("numpy", "scipy.linalg")  # OpenBLAS thread pools, fork-safe by OpenBLAS's own design


def modeling_module(model_type: str) -> Optional[str]:
    """transformers' modeling module for a config's `model_type` (e.g. gemma2), if it has one."""
    import importlib.util

    name = f"transformers.models.{model_type.replace('-', '_')}.modeling_{model_type.replace('-', '_')}"
    try:
        return name if importlib.util.find_spec(name) is not None else None
    except (ImportError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------
# the zygote (python -m evalsuite.run.warm MODULE...)


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies, so no orphan keeps writing."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _threads() -> int:
    try:
        with open("/proc/self/status") as fh:
            return int(next(line.split()[1] for line in fh if line.startswith("Threads:")))
    except (OSError, StopIteration, ValueError):
        return 1 if threading.active_count() == 1 else 2


def _refusal(allowed_threads: int = 1) -> Optional[str]:
    loaded = [m for m in NOT_PRELOADED if m in sys.modules]
    if loaded:
        return f"imported {', '.join(loaded)}"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA initialized"
    n = _threads()
    if n != allowed_threads:
        return f"{n - allowed_threads} thread(s) started by its imports (a fork copies one)"
    return None


def _reply(msg: dict) -> None:
    os.write(1, (json.dumps(msg) + "\n").encode())


def _child(req: dict) -> None:
    """In the forked child: become `python -m evalsuite.run.lm_eval_main ARGS` and exit."""
    code = 1
    die_with_parent()  # the zygote
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.environ.clear()
        os.environ.update(req["env"])
        os.chdir(req["cwd"])
        import random

        random.seed()
        np = sys.modules.get("numpy")
        if np is not None:
            np.random.seed()
        sys.argv = ["lm_eval_main", *req["args"]]
        from evalsuite.run.lm_eval_main import main

        try:
            code = main() or 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _load(names: list[str]) -> None:
    import importlib

    for name in names:
        if name not in sys.modules:
            importlib.import_module(name)


def serve(preload: list[str]) -> int:
    """The zygote's loop: a JSON request per line on stdin, fork a child for each; replies on stdout
    ({"id", "pid"} when forked, {"id", "returncode"} when it ended, {"id", "refused"})."""
    # NumPy and SciPy first: each bundles an OpenBLAS that may start a thread pool when loaded
    # (OMP_NUM_THREADS unset), which OpenBLAS shuts down around fork() itself (pthread_atfork) and
    # restarts in the child. Any other thread started by the imports refuses the zygote.
    for name in BLAS_FIRST:
        try:
            _load([name])
        except ImportError:
            pass
    allowed = _threads()
    _load(preload)
    why = _refusal(allowed)
    _reply({"refused": why} if why else {"ready": os.getpid()})
    children: dict[int, int] = {}  # pid -> request id
    buf = b""
    open_ = why is None
    while open_ or children:
        if open_:
            ready, _, _ = select.select([0], [], [], 0.1)
            if ready:
                chunk = os.read(0, 65536)
                if not chunk:  # the parent is gone: so are its lm-eval processes
                    open_ = False
                    for pid in children:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                buf += chunk
                while b"\n" in buf and open_:
                    line, buf = buf.split(b"\n", 1)
                    req = json.loads(line)
                    try:  # the model's modeling code, which a fresh child would import itself
                        _load(req.get("preload", []))
                    except ImportError:
                        pass
                    why = why or _refusal(allowed)
                    if why:
                        _reply({"id": req["id"], "refused": why})
                        continue
                    pid = os.fork()
                    if pid == 0:
                        _child(req)
                    children[pid] = req["id"]
                    _reply({"id": req["id"], "pid": pid})
        else:
            select.select([], [], [], 0.05)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            rid = children.pop(pid, None)
            if rid is not None and open_:
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                _reply({"id": rid, "returncode": code})
    return 0


# ------------------------------------------------------------------------------------------------
# the parent's side


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


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
