"""Jobs: one (model x benchmark) evaluation, its identity, and the lm-eval command that runs it.

A job id is a hash of everything that can change a number: the model's content identity, the
lm-eval version, the content of the installed leaderboard task files (and any override files), the
data identity, the harness profile and the settings (dtype, device type, chat template,
few-shot-as-multiturn, batch size, limit, seeds). Paths and log levels stay out, so the same job in
two experiments, or two results folders, has the same id.

A `Process` is one lm-eval process running one or more jobs of one model. With `harness: upstream`
each job is its own process. With `harness: leaderboard` one process runs all of a model's
benchmarks in the `leaderboard` group's order, as the leaderboard ran them: lm-eval batches the
requests of all tasks together, so which benchmarks share the process is part of each job's
identity (`process`). Results are still stored per model x benchmark.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

from pydantic import BaseModel

from evalsuite.config import Backend
from evalsuite.data import gpqa_order
from evalsuite.hub import env_offline
from evalsuite.lm_eval_api import lm_eval_version, package_version, task_files_hash
from evalsuite.schema import Harness, ModelRef, StartMode, TaskIndex
from evalsuite.results.store import job_id_of
from evalsuite.suite import load_suite

SEEDS = "0,1234,1234,1234"  # lm-eval's defaults (random, numpy, torch, fewshot), made explicit
LEADERBOARD_GROUP = "leaderboard"
LEADERBOARD_MODEL = "hf-leaderboard"  # evalsuite/run/leaderboard_lm.py registers it with lm-eval
CLI_MODULE = "evalsuite.run.lm_eval_cli"  # lm-eval's CLI + the registered hf-leaderboard model


class JobSettings(BaseModel):
    batch_size: Union[int, str]
    limit: Optional[int] = None
    offline: bool = False
    threads: Optional[int] = None
    backend: Backend = Backend()
    task_index: TaskIndex = "leaderboard"  # how the child starts (see run/lm_eval_main.py); not identity
    start: StartMode = "warm"  # forked from a warm zygote or a fresh interpreter (run/warm.py); not identity
    harness: Harness = "upstream"  # identity

    def env(self) -> dict[str, str]:
        """The environment these settings give every lm-eval process (a job adds its NLTK data)."""
        env = {"TOKENIZERS_PARALLELISM": "false"}
        if self.offline:
            env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        if self.harness == "leaderboard":  # the leaderboard's transformers (~4.45) had no hub kernels
            env["USE_HUB_KERNELS"] = "NO"
        return env


class Job(BaseModel):
    model: ModelRef
    benchmark: str  # suite id, e.g. "bbh"
    task: str  # lm-eval group/task name, e.g. "leaderboard_bbh"
    settings: JobSettings
    data_id: str
    include_path: Optional[Path] = None
    nltk_data: Optional[Path] = None
    process: tuple[str, ...] = ()  # harness leaderboard: the benchmarks run in the same lm-eval process
    # lm-eval's `--samples`: leaf task -> the document indices to evaluate (a sweep's seeded subset;
    # evalsuite.sweep). None: every document (or the first `limit`).
    samples: Optional[dict[str, list[int]]] = None

    @property
    def identity(self) -> dict:
        return {
            "model": self.model.identity,
            "task": self.task,
            "lm_eval": lm_eval_version(),
            "task_files": task_files_hash(),  # overrides only repoint data: covered by "data"
            "data": self.data_id,
            "dtype": self.model.dtype,
            "device": self.model.device.split(":")[0],
            "chat_template": self.model.chat_template,
            "fewshot_as_multiturn": self.model.multiturn,
            "batch_size": self.settings.batch_size,
            "limit": self.settings.limit,
            "seeds": SEEDS,
            "backend": self._backend_identity(),
            "harness": self.settings.harness,
            **({"process": list(self.process), "harness_code": harness_code_hash()} if self.settings.harness == "leaderboard" else {}),
            **({"threads": self.settings.threads} if self.settings.threads else {}),
            **({"samples": samples_digest(self.samples)} if self.samples is not None else {}),
            # MATH's exact_match is Math-Verify's verdict: its version can flip answers (docs/fidelity.md)
            **({"math_verify": package_version("math-verify")} if self.benchmark == "math_hard" else {}),
            # the model's own code instead of transformers' implementation can change a number
            **({"trust_remote_code": True} if self.model.trust_remote_code else {}),
            # the numeric environment: library versions, attention, hub kernels (docs/fidelity.md)
            "numeric_env": numeric_env(self.model, self.env()),
        }

    def _backend_identity(self) -> Union[str, dict]:
        b = self.settings.backend
        if b.name == "hf" and b.num_processes == 1 and not b.parallelize:
            return "hf"  # the plain case keeps short, stable ids
        keep = {"hf": ("num_processes", "parallelize"), "vllm": ("tensor_parallel_size", "data_parallel_size", "max_model_len")}
        return {"name": b.name, **{k: getattr(b, k) for k in keep[b.name]}}

    @property
    def job_id(self) -> str:
        return job_id_of(self.model.name, self.benchmark, self.identity)

    # -- the command -------------------------------------------------------------------------
    def model_args(self) -> str:
        m, b = self.model, self.settings.backend
        parts = [f"pretrained={m.pretrained}"]
        if m.revision:
            parts.append(f"revision={m.revision}")
        parts.append(f"dtype={m.dtype}")
        if m.trust_remote_code:
            parts.append("trust_remote_code=True")
        if b.name == "hf" and b.parallelize:
            parts.append("parallelize=True")
        if b.name == "vllm":
            parts += [
                f"tensor_parallel_size={b.tensor_parallel_size}",
                f"data_parallel_size={b.data_parallel_size}",
                f"gpu_memory_utilization={b.gpu_memory_utilization}",
            ]
            if b.max_model_len:
                parts.append(f"max_model_len={b.max_model_len}")
        return ",".join(parts)

    @property
    def lm_eval_model(self) -> str:
        """`--model`: lm-eval's own backend, or evalsuite's registered `hf-leaderboard` (the fork's
        model-side rules; evalsuite/run/leaderboard_lm.py)."""
        if self.settings.harness == "leaderboard":
            return LEADERBOARD_MODEL
        return self.settings.backend.name

    def launcher(self) -> list[str]:
        """The program before lm-eval's arguments: `lm_eval` (or lm-eval's CLI with evalsuite's model
        registered, for harness leaderboard), under `accelerate launch` for hf data parallel over
        several GPUs (one process per GPU, as lm-eval documents)."""
        b = self.settings.backend
        module = CLI_MODULE if self.settings.harness == "leaderboard" else "lm_eval"
        if b.name == "hf" and b.num_processes > 1:
            return ["accelerate", "launch", "--multi_gpu", "--num_processes", str(b.num_processes), "-m", module]
        return ["python", "-m", module] if module == CLI_MODULE else ["lm_eval"]

    def lm_eval_args(self, output_path: Union[Path, str], tasks: Optional[str] = None,
                     samples: Optional[dict[str, list[int]]] = None) -> list[str]:
        """Arguments after `lm_eval`, exactly the leaderboard's settings plus sample logging.
        `tasks`: the process's task list (default: this job's own task); `samples`: the process's
        `--samples` (default: this job's own)."""
        args = [
            "run",
            "--model", self.lm_eval_model,
            "--model_args", self.model_args(),
            "--tasks", tasks or self.task,
            "--batch_size", str(self.settings.batch_size),
            *(["--device", self.model.device] if self.settings.backend.name == "hf" and self.settings.backend.num_processes == 1 else []),
            "--seed", SEEDS,
            "--log_samples",
            "--output_path", str(output_path),
        ]
        if self.model.chat_template:
            args.append("--apply_chat_template")
        if self.model.multiturn:
            args.append("--fewshot_as_multiturn")
        if self.settings.limit is not None:
            args += ["--limit", str(self.settings.limit)]
        samples = samples if samples is not None else self.samples
        if samples is not None:
            args += ["--samples", json.dumps(samples, sort_keys=True, separators=(",", ":"))]
        if self.include_path is not None:
            args += ["--include_path", str(self.include_path)]
        return args

    def env(self) -> dict[str, str]:
        """Environment variables evalsuite sets for the job (recorded with the command)."""
        env = self.settings.env()
        if self.nltk_data is not None:  # before OMP_NUM_THREADS, as records have always listed them
            threads = env.pop("OMP_NUM_THREADS", None)
            env["NLTK_DATA"] = str(self.nltk_data)
            if threads is not None:
                env["OMP_NUM_THREADS"] = threads
        return env

    def shell_script(self) -> str:
        """A runnable script with the bare lm_eval command that reproduces this job."""
        return Process(jobs=[self]).shell_script()


class Process(BaseModel):
    """One lm-eval process: jobs of one model with the same settings (see the module docstring)."""

    jobs: list[Job]
    done: list[str] = []  # ids of its jobs stored already (a shared process recomputes them, not stores)
    datasets_cache: Optional[Path] = None  # HF_DATASETS_CACHE for a mirror's data identity (a path)

    @property
    def first(self) -> Job:
        return self.jobs[0]

    @property
    def process_id(self) -> str:
        """The id of what this process computes (its request cache lives under it): a lone job's
        own id, else a hash of its jobs' ids."""
        if len(self.jobs) == 1:
            return self.first.job_id
        blob = json.dumps(sorted(j.job_id for j in self.jobs)).encode()
        return f"{self.first.model.name}--{len(self.jobs)}-benchmarks--{hashlib.sha256(blob).hexdigest()[:16]}"

    @property
    def tasks(self) -> str:
        """lm-eval's `--tasks`: the `leaderboard` group itself when the process runs all of it (what
        the leaderboard ran), else the benchmarks' groups in the leaderboard group's order."""
        if len(self.jobs) == 1:
            return self.first.task
        if len(self.jobs) == len(load_suite().benchmarks):
            return LEADERBOARD_GROUP
        return ",".join(j.task for j in self.jobs)

    @property
    def label(self) -> str:
        return f"{self.first.model.name} · {'+'.join(j.benchmark for j in self.jobs)}"

    def launcher(self) -> list[str]:
        return self.first.launcher()

    def lm_eval_args(self, output_path: Union[Path, str]) -> list[str]:
        samples = None
        if any(j.samples is not None for j in self.jobs):  # a sweep's subsets: one --samples for all tasks
            samples = {t: ix for j in self.jobs for t, ix in (j.samples or {}).items()}
        return self.first.lm_eval_args(output_path, tasks=self.tasks, samples=samples)

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for job in self.jobs:  # NLTK_DATA comes with the IFEval job
            env.update(job.env())
        return env

    def shell_script(self) -> str:
        """A runnable script with the bare lm_eval command that reproduces these jobs. A mirror is
        read through a fresh `datasets` cache: datasets caches a local folder by its base name, and
        with `harness: upstream` GPQA's shuffled choices come from whatever run filled the cache."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env().items()))
        launcher = self.launcher()
        if launcher[:1] == ["python"]:  # the interpreter that ran the job: a bare `python` may be another one
            launcher = [sys.executable, *launcher[1:]]
        cmd = shlex.join([*launcher, *self.lm_eval_args("OUTPUT_PATH")]).replace("OUTPUT_PATH", '"${1:-./lm_eval_rerun}"')
        what = ", ".join(f"{j.job_id}" for j in self.jobs)
        return (
            "#!/bin/sh\n"
            f"# Reproduces evalsuite job(s) {what}: {self.first.model.name} on {self.tasks}.\n"
            "# Usage: sh command.sh [OUTPUT_DIR]   (lm-eval writes results_*.json under OUTPUT_DIR)\n"
            f"# Model identity: {self.first.model.identity}; harness: {self.first.settings.harness}\n"
            "set -e\n"
            f"export {env}\n"
            + ('export HF_DATASETS_CACHE="$(mktemp -d)"\ntrap \'rm -rf "$HF_DATASETS_CACHE"\' EXIT\n' + f"{cmd}\n"
               if self.datasets_cache is not None else f"exec {cmd}\n")
        )


NUMERIC_PACKAGES = ("torch", "transformers", "tokenizers", "kernels")


def numeric_env(model: ModelRef, job_env: dict[str, str]) -> dict[str, str]:
    """What in the installed software can change a number: torch, transformers, tokenizers and
    kernels versions, the attention implementation transformers picks for the model, and whether
    transformers replaces layers by hub kernels (`USE_HUB_KERNELS`, the job's own setting first,
    else the environment evalsuite runs in; transformers' default is on when `kernels` is
    installed). Part of every job's identity: an upgrade is a new job, never a reused number."""
    out = {name: package_version(name) for name in NUMERIC_PACKAGES}
    offline = job_env.get("HF_HUB_OFFLINE") == "1" or env_offline()
    out["attn_implementation"] = attention_implementation(model.local_path or model.pretrained, model.revision, offline=offline)
    out["hub_kernels"] = hub_kernels(job_env.get("USE_HUB_KERNELS", os.environ.get("USE_HUB_KERNELS")))
    return out


def hub_kernels(value: Optional[str]) -> str:
    """transformers' reading of USE_HUB_KERNELS (default YES): "on" or "off" ("off" as well when
    the `kernels` package is not installed: nothing to load)."""
    if package_version("kernels") == "not installed":
        return "off"
    return "off" if value is not None and value.strip().upper() in {"0", "NO", "FALSE", "OFF", "N"} else "on"


_ATTENTION: dict[tuple[str, Optional[str]], str] = {}


def attention_implementation(pretrained: Union[str, Path], revision: Optional[str] = None, *, offline: bool = True) -> str:
    """The attention implementation transformers uses for the model when none is asked (evalsuite
    and lm-eval ask for none): the config's own choice, else `sdpa` where the architecture's class
    supports it, else `eager` (transformers 5 declares Gemma-2 without SDPA; 4.45 swapped SDPA for
    eager). A hub model's config.json comes from the HF cache, else (online) from the hub — the
    same answer before and after the weights are downloaded, so a job's identity does not change
    with the cache (`offline`: the cache only). "unknown" only when no config.json can be had (not remembered: asked again)."""
    key = (str(pretrained), revision)
    if key not in _ATTENTION:
        found = _attention_implementation(pretrained, revision, offline)
        if found == "unknown":
            return found
        _ATTENTION[key] = found
    return _ATTENTION[key]


def _attention_implementation(pretrained: Union[str, Path], revision: Optional[str], offline: bool) -> str:
    config = _model_config(pretrained, revision, offline)
    if config is None:
        return "unknown"
    chosen = config.get("_attn_implementation") or config.get("attn_implementation")
    if isinstance(chosen, str) and chosen:
        return chosen
    archs = config.get("architectures") or []
    try:
        import transformers  # here: seconds to import, and only the model's class is looked up

        cls = getattr(transformers, archs[0])
    except (ImportError, AttributeError, IndexError, TypeError):
        return "unknown"
    return "sdpa" if getattr(cls, "_supports_sdpa", False) else "eager"


def _model_config(pretrained: Union[str, Path], revision: Optional[str], offline: bool = True) -> Optional[dict]:
    path = Path(str(pretrained)).expanduser() / "config.json"
    try:
        if not path.is_file():
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(str(pretrained), "config.json", revision=revision)
            if not isinstance(cached, str):
                if offline or Path(str(pretrained)).expanduser().exists():
                    return None
                from huggingface_hub import hf_hub_download

                try:  # one small file; the weights come later (a failure here fails there, loudly)
                    cached = hf_hub_download(str(pretrained), "config.json", revision=revision)
                except Exception:
                    return None
            path = Path(cached)
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def machine_info() -> dict[str, Optional[str]]:
    """Recorded with every job and shown where numbers are compared, not identity (the same job
    on another GPU is the same job; docs/fidelity.md): CUDA and cuDNN versions, the GPU's name."""
    try:
        import torch  # here: seconds to import (5.3 s cold on the CI machine)
    except ImportError:
        return {"cuda": None, "cudnn": None, "gpu": None}
    cudnn = None
    try:
        v = torch.backends.cudnn.version() if torch.cuda.is_available() else None
        cudnn = str(v) if v else None
    except Exception:  # noqa: BLE001 - a broken CUDA install reads as no cuDNN
        cudnn = None
    gpu = None
    try:
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        gpu = None
    return {"cuda": torch.version.cuda, "cudnn": cudnn, "gpu": gpu}


def samples_digest(samples: dict[str, list[int]]) -> str:
    """Identity of a `--samples` subset (task -> sorted indices), short and order-free."""
    blob = json.dumps({t: sorted(ix) for t, ix in samples.items()}, sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]


# gpqa_order.py names its own module in the helper it generates; it was written at evalsuite/run/.
# A location is not behaviour: hashed as it read there, the move to data/ kept every job id.
_GPQA_ORDER_AT_FIRST = ((b"evalsuite/data/gpqa_order", b"evalsuite/run/gpqa_order"), (b"evalsuite.data.gpqa_order", b"evalsuite.run.gpqa_order"))


@lru_cache(maxsize=1)
def harness_code_hash() -> str:
    """Content hash of evalsuite's code that `harness: leaderboard` runs inside lm-eval (the
    registered model and GPQA's order): a change to it is a new job."""
    h = hashlib.sha256()
    h.update(b"leaderboard_lm.py\0" + (Path(__file__).parent / "leaderboard_lm.py").read_bytes() + b"\0")
    order = Path(gpqa_order.__file__).read_bytes()
    for now, first in _GPQA_ORDER_AT_FIRST:
        order = order.replace(now, first)
    h.update(b"gpqa_order.py\0" + order + b"\0")
    return h.hexdigest()[:16]
