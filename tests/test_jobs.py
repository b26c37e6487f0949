"""Job identity and the lm-eval command; hub ids resolved through an HF cache laid out here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalsuite.config import Experiment, ModelSpec
from evalsuite.errors import UserError
from evalsuite.models.load import folder_identity, resolve_model
from evalsuite.schema import ModelRef
from evalsuite.run.jobs import Job, JobSettings


def ref(**kw) -> ModelRef:
    base = dict(name="m", role="parent", pretrained="/models/m", identity="sha256:abc", dtype="float32", device="cpu")
    base.update(kw)
    return ModelRef(**base)


def job(**kw) -> Job:
    base = dict(model=ref(), benchmark="bbh", task="leaderboard_bbh", settings=JobSettings(batch_size=8), data_id="hub")
    base.update(kw)
    return Job(**base)


def test_job_id_ignores_paths_but_not_settings():
    a = job()
    assert a.job_id == job(model=ref(pretrained="/elsewhere/m")).job_id  # a path cannot change a number
    assert a.job_id == job(include_path=Path("/x/tasks"), nltk_data=Path("/y")).job_id
    assert a.job_id == job(settings=JobSettings(batch_size=8, task_index="full")).job_id  # how lm-eval starts
    changed = [
        job(model=ref(trust_remote_code=True)),  # the model's own code may compute differently
        job(model=ref(identity="sha256:other")),
        job(model=ref(dtype="bfloat16")),
        job(model=ref(chat_template=True, multiturn=True)),
        job(model=ref(device="cuda:0")),
        job(settings=JobSettings(batch_size="auto")),
        job(settings=JobSettings(batch_size=8, limit=5)),
        job(data_id="sha256:mirror"),
        job(benchmark="musr", task="leaderboard_musr"),
    ]
    ids = {a.job_id, *(j.job_id for j in changed)}
    assert len(ids) == len(changed) + 1


def test_command_has_leaderboard_settings():
    j = job(model=ref(chat_template=True, multiturn=True, pretrained="org/name", revision="a" * 40, dtype="bfloat16"),
            settings=JobSettings(batch_size="auto", limit=3, offline=True), include_path=Path("/t"))
    args = j.lm_eval_args("/out")
    s = " ".join(args)
    assert args[0] == "run"
    assert f"--model_args pretrained=org/name,revision={'a' * 40},dtype=bfloat16" in s
    assert "--tasks leaderboard_bbh" in s and "--batch_size auto" in s and "--log_samples" in s
    assert "--apply_chat_template" in args and "--fewshot_as_multiturn" in args
    assert "--seed 0,1234,1234,1234" in s and "--limit 3" in s and "--include_path /t" in s
    assert "trust_remote_code" not in s
    script = j.shell_script()
    assert "export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1" in script
    assert '--output_path "${1:-./lm_eval_rerun}"' in script
    plain = job().lm_eval_args("/o")
    assert "--apply_chat_template" not in plain and "--fewshot_as_multiturn" not in plain


def _fake_hub_cache(cache: Path, repo: str, sha: str, files: dict[str, bytes]) -> Path:
    """Lay out a Hugging Face hub cache entry by hand: blobs, snapshot links, refs/main."""
    root = cache / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / sha
    snap.mkdir(parents=True)
    (root / "blobs").mkdir()
    for name, data in files.items():
        import hashlib

        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / name).symlink_to(Path("../../blobs") / blob.name)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(sha)
    return snap


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_id_resolves_through_cache_with_pinned_revision(hub_cache, tmp_path):
    sha = "1234567890abcdef1234567890abcdef12345678"
    _fake_hub_cache(hub_cache, "org/tiny", sha, {"config.json": b"{}", "model.safetensors": b"\x02" + bytes(7) + b"{}"})  # safetensors, no tensors
    exp = Experiment(name="t", candidate=ModelSpec(hub="org/tiny"), output={"results": str(tmp_path / "r")})
    r = resolve_model(exp.candidate, exp, "candidate")
    assert (r.pretrained, r.revision, r.identity) == ("org/tiny", sha, f"hub:org/tiny@{sha}")
    pinned = resolve_model(ModelSpec(hub="org/tiny", revision=sha), exp, "candidate")
    assert pinned.revision == sha
    with pytest.raises(UserError, match="not in the Hugging Face cache"):
        resolve_model(ModelSpec(hub="org/absent"), exp, "candidate")


def test_pickle_weights_refused_unless_allowed(tmp_path):
    m = tmp_path / "m"
    m.mkdir()
    (m / "config.json").write_text("{}")
    (m / "pytorch_model.bin").write_bytes(b"pickle")
    exp = Experiment(name="t", candidate=ModelSpec(path=m), output={"results": str(tmp_path / "r")})
    with pytest.raises(UserError, match="only pickle weights"):
        resolve_model(exp.candidate, exp, "candidate")
    ok = resolve_model(ModelSpec(path=m, allow_pickle=True), exp, "candidate")
    assert ok.identity.startswith("sha256:")


def test_folder_identity_follows_content(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    m = tmp_path / "m"
    m.mkdir()
    (m / "config.json").write_text(json.dumps({"a": 1}))
    (m / "model.safetensors").write_bytes(b"weights")
    first = folder_identity(m)
    (m / "README.md").write_text("docs do not change numbers")
    assert folder_identity(m) == first
    copy = tmp_path / "copy"
    shutil.copytree(m, copy)
    assert folder_identity(copy) == first  # identity is content, not location
    (m / "model.safetensors").write_bytes(b"weightz")
    assert folder_identity(m) != first


def test_vllm_backend_arguments():
    from evalsuite.config import Backend

    b = Backend(name="vllm", tensor_parallel_size=2, data_parallel_size=4, gpu_memory_utilization=0.8, max_model_len=4096)
    j = job(settings=JobSettings(batch_size="auto", backend=b), model=ref(pretrained="org/m", revision="f" * 40, dtype="bfloat16"))
    args = j.lm_eval_args("/o")
    assert args[args.index("--model") + 1] == "vllm"
    assert args[args.index("--model_args") + 1] == (
        f"pretrained=org/m,revision={'f' * 40},dtype=bfloat16,tensor_parallel_size=2,"
        "data_parallel_size=4,gpu_memory_utilization=0.8,max_model_len=4096"
    )
    assert "--device" not in args and j.launcher() == ["lm_eval"]
    assert j.job_id != job(model=ref(pretrained="org/m", revision="f" * 40, dtype="bfloat16")).job_id
    # memory headroom cannot change a number: same job
    b2 = b.model_copy(update={"gpu_memory_utilization": 0.5})
    assert j.job_id == job(settings=JobSettings(batch_size="auto", backend=b2), model=j.model).job_id


def test_hf_data_parallel_uses_accelerate_launch_and_sharding_uses_parallelize():
    from evalsuite.config import Backend

    dp = job(settings=JobSettings(batch_size=8, backend=Backend(num_processes=4)))
    assert dp.launcher() == ["accelerate", "launch", "--multi_gpu", "--num_processes", "4", "-m", "lm_eval"]
    assert "--device" not in dp.lm_eval_args("/o")  # accelerate places one process per GPU
    assert "exec accelerate launch --multi_gpu --num_processes 4 -m lm_eval run --model hf" in dp.shell_script()
    shard = job(settings=JobSettings(batch_size=8, backend=Backend(parallelize=True)))
    assert shard.model_args().endswith(",parallelize=True") and shard.launcher() == ["lm_eval"]
    assert len({job().job_id, dp.job_id, shard.job_id}) == 3


@pytest.mark.parametrize("bad", [
    {"name": "hf", "tensor_parallel_size": 2},
    {"name": "vllm", "num_processes": 2},
    {"num_processes": 2, "parallelize": True},
    {"name": "vllm", "gpu_memory_utilization": 1.5},
])
def test_backend_validation(bad):
    from pydantic import ValidationError

    from evalsuite.config import Backend

    with pytest.raises(ValidationError):
        Backend(**bad)


def test_folder_identity_inside_a_hidden_cache_folder(tmp_path, monkeypatch):
    """Models kept under e.g. .cache/evalsuite/fixtures are identified by their own files."""
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "hashes"))
    ids = []
    for name, weights in [("a", b"one"), ("b", b"two")]:
        m = tmp_path / ".cache" / "models" / name
        m.mkdir(parents=True)
        (m / "config.json").write_text("{}")
        (m / "model.safetensors").write_bytes(weights)
        (m / ".cache").mkdir()
        (m / ".cache" / "junk").write_text(name)  # hidden content inside the model folder is ignored
        ids.append(folder_identity(m))
    assert ids[0] != ids[1]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no model files"):
        folder_identity(empty)
