"""What the real study needs from the hub and the disk, checked before the first model loads (in
`run`'s start-up and in `doctor`): every hub model present at its revision in the HF cache or
readable on the hub (gated repos included), every leaderboard details repo of a `published:` model
readable, free disk for the parents' downloads, the merge and the outputs, and (on CUDA) GPU memory
for the largest model. Each failure is one line with its fix (`Check`).

Online a model's size comes from the hub's file listing (`model_info(files_metadata=True)`), offline
from its cached snapshot; a model the cache holds needs no more room.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal, Optional

from huggingface_hub import HfApi, constants
from pydantic import BaseModel

from evalsuite.config import Experiment, ModelSpec
from evalsuite.errors import UserError
from evalsuite.hub import HUB_ID_AT, cached_snapshot, env_offline, hub_problem, offline_snapshot
from evalsuite.models.model_files import DTYPE_BYTES, folder_headers, numel

GIB = 1024**3
WEIGHTS = (".safetensors",)  # what a merge and lm-eval read of a model (safetensors only by default)


class Check(BaseModel):
    """One check of `evalsuite doctor` or of the start-up check: ok / warn / fail, and the fix."""

    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str
    fix: str = ""



def _offline(exp: Experiment) -> bool:
    return exp.offline or env_offline()


def _weights_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.name.endswith(WEIGHTS))


def _hub_models(exp: Experiment) -> list[ModelSpec]:
    """The experiment's models that come from the hub: loaded ones and a recipe's hub parents are
    the same specs here (a recipe's parents are the experiment's parents)."""
    return [m for m in [exp.candidate, *exp.parents] if m.hub and m.hub not in exp.local_models]


def model_check(spec: ModelSpec, offline: bool) -> tuple[Check, int]:
    """(the check, bytes still to download) of one hub model at its revision."""
    name = f"model {spec.display_name}"
    where = f"{spec.hub}@{spec.revision}" if spec.revision else spec.hub
    snap = cached_snapshot(spec.hub, spec.revision)
    if snap is not None and _weights_size(snap):
        return Check(name=name, status="ok", detail=f"{where}: in the HF cache ({_weights_size(snap) / GIB:.1f} GiB)"), 0
    if offline:
        return Check(name=name, status="fail", detail=f"{where}: not in the HF cache and the run is offline",
                     fix=f"hf download {spec.hub}" + (f" --revision {spec.revision}" if spec.revision else "")
                     + " (online), or map it with local_models:"), 0
    try:
        info = HfApi().model_info(spec.hub, revision=spec.revision, files_metadata=True, timeout=30)
        HfApi().auth_check(spec.hub, repo_type="model")  # a gated repo's info is public, its files are not
    except Exception as exc:  # gated, not found, no such revision, network
        detail, fix = hub_problem(exc, spec.hub, "model", spec.revision)
        return Check(name=name, status="fail", detail=detail, fix=fix), 0
    size = sum(s.size or 0 for s in info.siblings or [] if s.rfilename.endswith(WEIGHTS))
    stored = getattr(info, "safetensors", None)  # the hub's own count of the weights, by dtype
    if stored is not None and getattr(stored, "parameters", None):
        _HUB_PARAMS[(spec.hub, spec.revision)] = {str(k): int(v) for k, v in stored.parameters.items()}
    return Check(name=name, status="ok", detail=f"{spec.hub}@{(info.sha or '?')[:12]}: on the hub, {size / GIB:.1f} GiB to download"), size


def details_check(spec: ModelSpec, offline: bool) -> Optional[Check]:
    """A `published:` model's details repo (gated on the hub): readable with this token?"""
    m = HUB_ID_AT.match(spec.published or "")
    if m is None or Path(spec.published).exists():
        return None
    name = f"details {spec.display_name}"
    repo = m["repo"]
    if offline:
        try:
            ok = offline_snapshot(repo, m["rev"], "dataset") is not None
        except UserError as exc:  # several commits cached, none named
            return Check(name=name, status="fail", detail=str(exc), fix="name the commit: published: REPO@COMMIT")
        return Check(name=name, status="ok" if ok else "fail", detail=f"{repo}: {'in' if ok else 'not in'} the HF cache (offline)",
                     fix="" if ok else "run once online (the import downloads it), or give a local folder")
    try:
        HfApi().auth_check(repo, repo_type="dataset")
    except Exception as exc:
        detail, fix = hub_problem(exc, repo, "dataset", m["rev"])
        return Check(name=name, status="fail", detail=detail, fix=fix)
    return Check(name=name, status="ok", detail=f"{repo}: readable")


def _free_at(path: Path) -> tuple[Path, int, int]:
    probe = Path(path).resolve()
    while not probe.exists():
        probe = probe.parent
    st = probe.stat()
    return probe, st.st_dev, shutil.disk_usage(probe).free


def disk_check(exp: Experiment, downloads: int) -> Check:
    """Free disk for the parents' downloads (HF cache) + the merge (results/merged: one parent's
    size, twice while a rebuild swaps the new merge in) + the outputs (~50 MiB of samples a job)."""
    sizes = []
    for m in [exp.candidate, *exp.parents]:
        folder = m.path or exp.local_models.get(m.hub or "") or (cached_snapshot(m.hub, m.revision) if m.hub else None)
        if folder and Path(folder).is_dir():
            sizes.append(_weights_size(Path(folder)))
    merge = 2 * max(sizes + [downloads // max(1, len(_hub_models(exp)))], default=0) if exp.candidate.recipe else 0
    per_job = (1 if exp.limit else 50) * 1024**2  # lm-eval's samples files, ~50 MiB a full benchmark
    outputs = per_job * len([exp.candidate, *exp.parents]) * len(exp.benchmarks)
    cache_at, cache_dev, cache_free = _free_at(Path(constants.HF_HUB_CACHE))
    results_at, results_dev, results_free = _free_at(Path(exp.output.results))
    need = {results_at: merge + outputs}
    if cache_dev == results_dev:
        need = {results_at: merge + outputs + downloads}
    else:
        need[cache_at] = downloads
    free = {results_at: results_free, cache_at: cache_free}
    # downloads and the merge are known sizes: not fitting them refuses the run before anything is
    # written. The outputs are a guess (finished jobs write nothing, --limit writes kilobytes): a
    # shortfall there only warns; a write that does run out stops with one line, losing nothing.
    known = dict(need)
    known[results_at] -= outputs
    short = [(p, n) for p, n in known.items() if n > 0 and n * 1.05 > free[p]]
    tight = [(p, n) for p, n in need.items() if n * 1.05 > free[p]]
    detail = "; ".join(f"{p}: {free[p] / GIB:.1f} GiB free, needs ~{n / GIB:.1f} GiB" for p, n in need.items())
    detail += f" (downloads {downloads / GIB:.1f}, merge {merge / GIB:.1f}, outputs {outputs / GIB:.2f} GiB)"
    for status, found in (("fail", short), ("warn", tight)):
        if found:
            p, n = found[0]
            return Check(name="disk for the study", status=status, detail=detail,
                         fix=f"free ~{(n * 1.05 - free[p]) / GIB:.1f} GiB at {p}, or move output.results / HF_HOME")
    return Check(name="disk for the study", status="ok", detail=detail)


_HUB_PARAMS: dict[tuple[Optional[str], Optional[str]], dict[str, int]] = {}  # (hub id, revision) -> dtype -> count
LOAD_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}  # a config's dtype -> bytes a parameter


def _stored_params(folder: Path) -> dict[str, int]:
    """dtype -> parameter count of the weights transformers would load from a folder, from the
    safetensors headers alone (models.model_files: no tensor is read); {} when unreadable (the
    model checks say why)."""
    out: dict[str, int] = {}
    try:
        headers = folder_headers(Path(folder), "model")
    except (OSError, UserError):
        return out
    for header in headers.values():
        for t in header.values():
            out[t.dtype] = out.get(t.dtype, 0) + numel(t.shape)
    return out


def _model_params(exp: Experiment, spec: ModelSpec) -> dict[str, int]:
    folder = spec.path or exp.local_models.get(spec.hub or "") or (cached_snapshot(spec.hub, spec.revision) if spec.hub else None)
    if folder and Path(folder).is_dir():
        found = _stored_params(Path(folder))
        if found:
            return found
    return _HUB_PARAMS.get((spec.hub, spec.revision), {})


def _gpu_free(device: str) -> Optional[tuple[str, int, int]]:
    """(GPU name, free bytes, total bytes) of the GPU the jobs will use, None without CUDA."""
    if device == "cpu" or device.startswith("mps"):
        return None
    import torch  # here, not at the top: seconds to import (5.3 s cold on the CI machine); only CUDA needs it

    if not torch.cuda.is_available():
        return None
    index = int(device.split(":", 1)[1]) if device.startswith("cuda:") else 0
    free, total = torch.cuda.mem_get_info(index)
    return f"GPU {index} ({torch.cuda.get_device_name(index)})", int(free), int(total)


def gpu_check(exp: Experiment) -> Optional[Check]:
    """GPU memory for the largest model in the dtype it is loaded in (each job holds one model on
    one GPU): its weights plus 20% for activations and the KV cache at the smallest batch. None
    where the jobs run on the CPU (or no model's size is known yet)."""
    gpu = _gpu_free(exp.device)
    if gpu is None:
        return None
    name, free, total = gpu
    need, biggest = 0, ""
    for spec in [exp.candidate, *exp.parents]:
        if spec.published:
            continue  # imported, not run
        params = _model_params(exp, spec)
        if not params and spec.recipe:  # a merge is as large as its largest parent
            params = max((_model_params(exp, p) for p in exp.parents), key=lambda d: sum(d.values()), default={})
        weights = sum(n * (LOAD_BYTES[spec.dtype] if spec.dtype in LOAD_BYTES else DTYPE_BYTES.get(dt, 2)) for dt, n in params.items())
        if weights > need:
            need, biggest = weights, spec.display_name
    if not need:
        return None
    detail = f"{name}: {free / GIB:.1f} of {total / GIB:.1f} GiB free; {biggest} needs ~{need * 1.2 / GIB:.1f} GiB (weights {need / GIB:.1f} GiB + 20%)"
    if need * 1.2 > free:
        return Check(name="GPU memory", status="fail", detail=detail,
                     fix="free the GPU (another process holds it), use a larger one, or a smaller dtype")
    return Check(name="GPU memory", status="ok", detail=detail)


def study_checks(exp: Experiment) -> list[Check]:
    """The hub models, the details repos, the disk and the GPU's memory, in that order."""
    offline = _offline(exp)
    checks, downloads = [], 0
    for spec in _hub_models(exp):
        check, size = model_check(spec, offline)
        checks.append(check)
        downloads += size
    for spec in [exp.candidate, *exp.parents]:
        if spec.published:
            c = details_check(spec, offline)
            if c is not None:
                checks.append(c)
    checks.append(disk_check(exp, downloads))
    gpu = gpu_check(exp)
    if gpu is not None:
        checks.append(gpu)
    return checks


def check_study(exp: Experiment) -> None:
    """`run`'s start-up: the first failing check as a one-line UserError (and how many more)."""
    failed = [c for c in study_checks(exp) if c.status == "fail"]
    if failed:
        c = failed[0]
        more = f" (+{len(failed) - 1} more; run `evalsuite doctor`)" if len(failed) > 1 else ""
        raise UserError(f"{c.name}: {c.detail}: {c.fix}{more}")
