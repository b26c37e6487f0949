"""Environment checks for an experiment: each check says ok / warn / fail, and how to fix a failure."""

from __future__ import annotations

import os
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

from huggingface_hub import HfApi, get_token

from evalsuite.config import Experiment
from evalsuite.data.hub_data import hub_snapshots
from evalsuite.data.nltk_data import punkt_status
from evalsuite.data.tasks import HUB_DATASETS, mirror_problems
from evalsuite.errors import UserError
from evalsuite.hub import env_offline, hub_problem
from evalsuite.lm_eval_api import package_version
from evalsuite.preflight import Check, study_checks
from evalsuite.run.jobs import NUMERIC_PACKAGES, hub_kernels, machine_info

REQUIRED = {"lm_eval": "0.4.13", "mergekit": "0.1.5"}
PACKAGES = ["torch", "transformers", "accelerate", "datasets", "lm_eval", "mergekit", "langdetect", "math-verify", "nltk"]


def _packages() -> list[Check]:
    out = []
    for pkg in PACKAGES:
        try:
            v = version(pkg)
        except PackageNotFoundError:
            out.append(Check(name=f"package {pkg}", status="fail", detail="not installed", fix="pip install -e . (after torch)"))
            continue
        want = REQUIRED.get(pkg)
        if want and v != want:
            out.append(Check(name=f"package {pkg}", status="warn", detail=f"{v} (tested with {want})", fix=f"pip install {pkg}=={want}"))
        else:
            out.append(Check(name=f"package {pkg}", status="ok", detail=v))
    return out


def _device(exp: Experiment) -> Check:
    import torch  # here, not at the top: seconds to import (5.3 s cold on the CI machine); `numeric_environment` alone does not need it

    cuda = torch.cuda.is_available()
    if exp.device.startswith("cuda") and not cuda:
        return Check(name="torch device", status="fail", detail=f"config asks for {exp.device}, torch {torch.__version__} sees no GPU", fix="set device: cpu, or install a CUDA build of torch")
    detail = f"cuda ({torch.cuda.get_device_name(0)})" if cuda else f"cpu only (torch {torch.__version__})"
    return Check(name="torch device", status="ok", detail=detail)


def _offline(exp: Experiment) -> Check:
    names = ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"]
    set_ = {n: os.environ.get(n) for n in names if os.environ.get(n)}
    if exp.offline or exp.use_mirror:
        return Check(name="offline variables", status="ok", detail="evalsuite sets HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 for every job")
    if set_:
        return Check(name="offline variables", status="warn", detail=f"{set_} but the config reads from the hub", fix="set offline: true or unset them")
    return Check(name="offline variables", status="ok", detail="online (hub)")


def _data(exp: Experiment) -> list[Check]:
    out = []
    for b in exp.benchmarks:
        repo = HUB_DATASETS[b]
        if exp.use_mirror:
            problems = mirror_problems(Path(exp.data.mirror), [b])
            if problems:
                out.append(Check(name=f"data {b}", status="fail", detail=problems[0], fix=f"hf download --repo-type dataset {repo} --local-dir {Path(exp.data.mirror) / repo}"))
            else:
                out.append(Check(name=f"data {b}", status="ok", detail=f"mirror {Path(exp.data.mirror) / repo}"))
        else:
            out.append(_hub_dataset(b, repo, exp))
    return out


def _hub_dataset(bench: str, repo: str, exp: Experiment) -> Check:
    gated = bench == "gpqa"
    if exp.offline or env_offline():
        try:  # the snapshot of the commit the job's data identity will name, checked as run checks it
            folder = hub_snapshots([bench], exp.data.revisions, offline=True)[bench]
        except UserError as exc:
            what, _, fix = str(exc).rpartition(": ")
            return Check(name=f"data {bench}", status="fail", detail=what, fix=fix)
        return Check(name=f"data {bench}", status="ok", detail=f"{repo}@{folder.name[:12]}: in the HF hub cache (offline)")
    try:
        info = HfApi().dataset_info(repo, revision=exp.data.revisions.get(bench), timeout=10)
    except Exception as exc:  # network, auth, gated
        fix = "accept the dataset's terms on the hub and `hf auth login`" if gated else "check network access to the hub, or use a local mirror"
        return Check(name=f"data {bench}", status="fail", detail=f"{repo}: {str(exc).splitlines()[0][:100]}", fix=fix)
    if gated and not get_token():
        return Check(name=f"data {bench}", status="fail", detail=f"{repo} is gated and no HF token is set", fix="accept the terms on the hub and `hf auth login`")
    try:  # a gated repo's info is public, its files are not: may this token read them?
        HfApi().auth_check(repo, repo_type="dataset")
    except Exception as exc:
        detail, fix = hub_problem(exc, repo, "dataset", exp.data.revisions.get(bench))
        return Check(name=f"data {bench}", status="fail", detail=detail, fix=fix)
    return Check(name=f"data {bench}", status="ok", detail=f"{repo}@{(info.sha or '?')[:12]} reachable")


def _nltk(exp: Experiment) -> Optional[Check]:
    if "ifeval" not in exp.benchmarks:
        return None
    data_dir = Path(exp.output.results) / "nltk_data"
    st = punkt_status(data_dir)
    if st.kind in {"nltk", "installed_package"}:
        return Check(name="NLTK punkt_tab", status="ok", detail=f"{st.kind}: {st.detail}")
    if st.kind == "standin":
        return Check(name="NLTK punkt_tab", status="warn", detail=f"only a stand-in: {st.detail}; IFEval scores may differ", fix="python -m nltk.downloader punkt_tab (needs network)")
    return Check(name="NLTK punkt_tab", status="warn", detail=f"missing: {st.detail}; `evalsuite run` installs it before IFEval", fix="python -m nltk.downloader punkt_tab")


def _disk(exp: Experiment) -> Check:
    """Free disk where merged models and results go, against the models' sizes on disk."""
    results = Path(exp.output.results)
    probe = results if results.exists() else results.parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = 0
    for m in exp.models:
        folder = m.path or (exp.local_models.get(m.hub) if m.hub else None)
        if folder and Path(folder).is_dir():
            need += sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors"))
    if exp.candidate.recipe is not None:  # the merge writes about one parent's size
        need += max((sum(p.stat().st_size for p in Path(f).rglob("*.safetensors")) for f in exp.local_models.values()), default=0)
    gib = 1024**3
    status = "ok" if free > need * 1.1 else "fail"
    return Check(name="free disk", status=status, detail=f"{free / gib:.1f} GiB free at {probe}; local models need ~{need / gib:.1f} GiB", fix="" if status == "ok" else "free space or move output.results")


# What the leaderboard ran (a public Nov 2024 results file records transformers_version 4.45.2;
# /work/shared/reference/leaderboard_harness.md): its transformers had no hub kernels.
LEADERBOARD_ENV = {"transformers": "4.45.2", "hub_kernels": "off"}


def numeric_environment(exp: Experiment) -> list[Check]:
    """The numeric environment every job's identity holds (torch, transformers, tokenizers and
    kernels versions, hub kernels; evalsuite.run.jobs.numeric_env) and the machine's CUDA, cuDNN
    and GPU, each against what the leaderboard ran where that is known (docs/fidelity.md)."""
    out = []
    for pkg in NUMERIC_PACKAGES:
        v = package_version(pkg)
        want = LEADERBOARD_ENV.get(pkg)
        if want and v != want:
            why = " (mergekit 0.1.5 requires transformers >= 5)" if pkg == "transformers" else ""
            out.append(Check(name=f"numeric env {pkg}", status="warn", detail=f"{v}; the leaderboard ran {want}{why}",
                             fix="measured equal on a tiny Gemma-2 (docs/fidelity.md); a different version is a new job"))
        else:
            out.append(Check(name=f"numeric env {pkg}", status="ok", detail=v + (" (as the leaderboard)" if want else "")))
    env_value = "NO" if exp.harness == "leaderboard" else os.environ.get("USE_HUB_KERNELS")
    kernels = hub_kernels(env_value)
    how = "harness leaderboard sets USE_HUB_KERNELS=NO" if exp.harness == "leaderboard" else f"USE_HUB_KERNELS={env_value or 'unset'}"
    if kernels != LEADERBOARD_ENV["hub_kernels"]:
        out.append(Check(name="numeric env hub kernels", status="warn",
                         detail=f"on ({how}); the leaderboard had none: on CUDA, Gemma-2's GELU and RoPE come from the Hub",
                         fix="export USE_HUB_KERNELS=NO, or use harness: leaderboard"))
    else:
        out.append(Check(name="numeric env hub kernels", status="ok", detail=f"off ({how}), as the leaderboard"))
    m = machine_info()
    out.append(Check(name="machine", status="ok",
                     detail=f"CUDA {m['cuda'] or '-'}, cuDNN {m['cudnn'] or '-'}, GPU {m['gpu'] or 'none'} (recorded with every job, not identity)"))
    return out


def run_checks(exp: Experiment) -> list[Check]:
    checks = _packages() + [_device(exp), _offline(exp)] + _data(exp)
    checks += numeric_environment(exp)
    nltk = _nltk(exp)
    if nltk:
        checks.append(nltk)
    checks.append(_disk(exp))
    return checks + study_checks(exp)  # hub models, details repos, disk for the study
