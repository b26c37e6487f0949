"""The real study's checks before the first model load (evalsuite.preflight, in `run`'s start-up and
`doctor`), against the simulated hub: hub models at their revisions, gated model and details repos,
disk for parents + merge + outputs; each failure one line with its fix."""

from __future__ import annotations

import shutil

import pytest
import yaml

from evalsuite.config import load_experiment
from evalsuite.errors import UserError
from evalsuite import preflight
from hub_server import folder_files, use_in_process

MODEL = "evalsuite-test/tiny-gemma2"


def _exp(tmp_path, **over):
    cfg = {"name": "pre", "candidate": {"hub": MODEL}, "benchmarks": ["mmlu_pro"], "device": "cpu",
           "output": {"results": str(tmp_path / "results"), "reports": str(tmp_path / "reports")}, **over}
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(cfg))
    return load_experiment(tmp_path / "e.yaml")


@pytest.fixture
def hub(sim_hub, tiny_models):
    repo = sim_hub.repo(MODEL)
    repo.add_commit(folder_files(tiny_models["candidate"]))
    gated = sim_hub.repo("evalsuite-test/gated-model", gated=True)
    gated.add_commit(folder_files(tiny_models["parent_a"]))
    details = sim_hub.repo("open-llm-leaderboard/x__y-details", "dataset", gated=True)
    details.add_commit({"README.md": b"---\n---\n"})
    return sim_hub


def test_models_gated_repos_and_revisions_one_line_each(hub, tmp_path, monkeypatch):
    use_in_process(monkeypatch, hub, tmp_path / "hf", offline=False)
    exp = _exp(tmp_path, parents=[{"hub": "evalsuite-test/gated-model"}, {"hub": "evalsuite-test/missing"},
                                  {"hub": MODEL, "name": "pinned", "revision": "0" * 40},
                                  {"name": "pub", "published": "open-llm-leaderboard/x__y-details"}])
    by_name = {c.name: c for c in preflight.study_checks(exp)}
    ok = by_name[f"model {MODEL.split('/')[1]}"]
    assert ok.status == "ok" and "on the hub" in ok.detail and "GiB to download" in ok.detail, ok
    gated = by_name["model gated-model"]
    assert (gated.status, gated.detail) == ("fail", "evalsuite-test/gated-model is gated and no Hugging Face token is set")
    assert gated.fix == "accept its terms at https://huggingface.co/evalsuite-test/gated-model and log in (`hf auth login` or HF_TOKEN)"
    assert by_name["model missing"].detail == "evalsuite-test/missing not found on the hub (or private)"
    assert by_name["model pinned"].detail == f"{MODEL} has no revision '{'0' * 40}' on the hub"
    assert by_name["details pub"].detail == "open-llm-leaderboard/x__y-details is gated and no Hugging Face token is set"
    # run's start-up: the first failure, one line, with its fix and how many more
    with pytest.raises(UserError) as err:
        preflight.check_study(exp)
    assert str(err.value) == ("model gated-model: evalsuite-test/gated-model is gated and no Hugging Face token is set: accept its terms at "
                              "https://huggingface.co/evalsuite-test/gated-model and log in (`hf auth login` or HF_TOKEN) (+3 more; run `evalsuite doctor`)")
    assert "\n" not in str(err.value)
    # a granted token reads the gated repos; the hub gave only metadata (no model file downloaded)
    hub.repos[("model", "evalsuite-test/gated-model")].granted.add("hf_ok")
    use_in_process(monkeypatch, hub, tmp_path / "hf", offline=False, token="hf_ok")
    assert preflight.model_check(exp.parents[0], offline=False)[0].status == "ok"
    assert not [r for r in hub.requests if "/resolve/" in r[1]]


def test_offline_models_from_the_cache_only(hub, tmp_path, monkeypatch):
    from huggingface_hub import snapshot_download

    use_in_process(monkeypatch, hub, tmp_path / "hf", offline=False)
    snapshot_download(MODEL)
    use_in_process(monkeypatch, hub, tmp_path / "hf", offline=True)
    exp = _exp(tmp_path, offline=True, parents=[{"hub": "evalsuite-test/gated-model"}])
    asked = len(hub.requests)
    checks = {c.name: c for c in preflight.study_checks(exp)}
    assert checks["model tiny-gemma2"].status == "ok" and "in the HF cache" in checks["model tiny-gemma2"].detail
    assert checks["model gated-model"].status == "fail"
    assert checks["model gated-model"].fix == "hf download evalsuite-test/gated-model (online), or map it with local_models:"
    assert len(hub.requests) == asked


def test_disk_for_parents_merge_and_outputs(hub, tmp_path, monkeypatch):
    use_in_process(monkeypatch, hub, tmp_path / "hf", offline=False)
    exp = _exp(tmp_path)
    size = sum(len(b) for p, b in hub.repos[("model", MODEL)].commits[hub.repos[("model", MODEL)].branches["main"]].items()
               if p.endswith(".safetensors"))
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=size // 2))
    (disk,) = [c for c in preflight.study_checks(exp) if c.name == "disk for the study"]
    assert disk.status == "fail" and "free" in disk.fix and f"downloads {size / 1024**3:.1f}" in disk.detail
    # room for the downloads but not for the guessed outputs: a warning, the run goes on (a write
    # that does run out stops on its own, see test_disk_full)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=size * 4))
    (disk,) = [c for c in preflight.study_checks(exp) if c.name == "disk for the study"]
    assert disk.status == "warn" and "outputs" in disk.detail
    preflight.check_study(exp)  # no error
    monkeypatch.setattr(shutil, "disk_usage", real)
    (disk,) = [c for c in preflight.study_checks(exp) if c.name == "disk for the study"]
    assert disk.status == "ok"


def test_parents_downloaded_with_the_files_a_merge_and_lm_eval_need(hub, tiny_models, tmp_path, monkeypatch):
    from evalsuite.models.merge_recipe import hub_snapshot

    files = folder_files(tiny_models["parent_b"])
    files.update({"pytorch_model.bin": b"x" * 1000, "model-q4.gguf": b"y" * 1000, "onnx/model.onnx": b"z"})
    sha = hub.repo("evalsuite-test/parent").add_commit(files)
    use_in_process(monkeypatch, hub, tmp_path / "hf", offline=False)
    folder = hub_snapshot("evalsuite-test/parent", sha)
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert got == sorted(n for n in files if not n.endswith((".bin", ".gguf", ".onnx")))
    assert "model.safetensors" in got and "tokenizer.json" in got and "config.json" in got
    assert not [r for r in hub.requests if r[1].endswith((".bin", ".gguf", ".onnx"))]


def test_gpu_memory_for_the_largest_model_in_its_dtype(tiny_models, tmp_path, monkeypatch):
    """On CUDA: the largest model's weights in the dtype it is loaded in, +20%, against the GPU's
    free memory (torch.cuda.mem_get_info; faked here, no GPU on this machine)."""
    import math

    from safetensors import safe_open

    exp = _exp(tmp_path, candidate={"path": str(tiny_models["candidate"]), "dtype": "float32"},
               parents=[{"path": str(tiny_models["parent_a"])}], device="cuda")
    counted = 0  # independent count: safetensors' own reader
    for f in tiny_models["candidate"].glob("*.safetensors"):
        with safe_open(str(f), framework="pt") as st:
            counted += sum(math.prod(st.get_slice(k).get_shape()) for k in st.keys())
    assert sum(preflight._stored_params(tiny_models["candidate"]).values()) == counted
    need = counted * 4 * 1.2  # float32, +20%
    monkeypatch.setattr(preflight, "_gpu_free", lambda device: ("GPU 0 (fake)", int(need * 0.9), 80 * 1024**3))
    check = preflight.gpu_check(exp)
    assert check.status == "fail"
    assert f"weights {counted * 4 / 1024**3:.1f} GiB" in check.detail and check.fix
    with pytest.raises(UserError, match=r"^GPU memory: GPU 0 \(fake\)"):
        preflight.check_study(exp)
    monkeypatch.setattr(preflight, "_gpu_free", lambda device: ("GPU 0 (fake)", int(need * 1.1), 80 * 1024**3))
    assert preflight.gpu_check(exp).status == "ok"
    monkeypatch.setattr(preflight, "_gpu_free", lambda device: None)  # the CPU: no check
    assert preflight.gpu_check(exp) is None


def test_a_details_repo_fetched_by_commit_is_found_offline_and_two_commits_need_a_pin(sim_hub, tmp_path, monkeypatch):
    """A details repo downloaded by commit (as `import` and `run` fetch it) leaves no refs/main:
    offline, its one cached commit is the one read; with two cached, the check names both."""
    from evalsuite.hub import offline_snapshot, snapshot

    repo_id = "open-llm-leaderboard/x__y-details"
    repo = sim_hub.repo(repo_id, "dataset")
    first = repo.add_commit({"x__y/results_2024-01-01T00-00-00.000000.json": b"{}"})
    second = repo.add_commit({"x__y/results_2024-02-01T00-00-00.000000.json": b"{}"})
    use_in_process(monkeypatch, sim_hub, tmp_path / "hf", offline=False)
    snapshot(repo_id, first, repo_type="dataset", local_only=False)
    use_in_process(monkeypatch, sim_hub, tmp_path / "hf", offline=True)
    assert offline_snapshot(repo_id, None, "dataset").name == first
    exp = _exp(tmp_path, candidate={"published": repo_id})
    (check,) = [c for c in preflight.study_checks(exp) if c.name.startswith("details")]
    assert check.status == "ok"
    use_in_process(monkeypatch, sim_hub, tmp_path / "hf", offline=False)
    snapshot(repo_id, second, repo_type="dataset", local_only=False)
    use_in_process(monkeypatch, sim_hub, tmp_path / "hf", offline=True)
    with pytest.raises(UserError, match="holds 2 commits of it; name the one to read") as refused:
        offline_snapshot(repo_id, None, "dataset")
    assert f"{repo_id}@{first}" in str(refused.value) and f"{repo_id}@{second}" in str(refused.value)
    (check,) = [c for c in preflight.study_checks(exp) if c.name.startswith("details")]
    assert check.status == "fail" and "REPO@COMMIT" in check.fix
