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
import ctypes
import importlib
import importlib.util
import json
import os
import random
import select
import signal
import sys
import threading
import traceback
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
        random.seed()
        np = sys.modules.get("numpy")
        if np is not None:
            np.random.seed()
        sys.argv = ["lm_eval_main", *req["args"]]
        from evalsuite.run.lm_eval_main import main  # after the child's environment is set: lm-eval reads it on import

        try:
            code = main() or 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
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


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
