"""The `harness:` profiles and data exactly as named (docs/fidelity.md), on the tiny models with the
real lm-eval 0.4.13:

- the token ids a chat-template tiny Gemma-2 gets from lm-eval 0.4.13's HFLM (`upstream`) and from
  evalsuite's `hf-leaderboard` model (the fork's BOS and max-length rules);
- one lm-eval process per model with `harness: leaderboard` (3 model loads for the reference study
  instead of 18), the co-batched benchmarks part of each job's identity;
- GPQA's shuffled choices the same on a cold `datasets` cache and on one filled by a bare
  `lm_eval` run with another seed, and equal to the demo's `--tasks leaderboard` process;
- a mirror changed in a new folder with the same base names is read as changed;
- hub datasets identified by their commit (pinned, or read from the HF cache offline).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, demo_config
from evalsuite.cli.main import main
from evalsuite.errors import UserError
from evalsuite.results.store import Store

MIRROR = REPO / "examples" / "demo_mirror"


# --- the fork's BOS and max-length rules ------------------------------------------------------------


@pytest.fixture(scope="module")
def two_models(tiny_models):
    from lm_eval.models.huggingface import HFLM

    from evalsuite.run.leaderboard_lm import LeaderboardHFLM

    path = str(tiny_models["parent_b"])
    common = dict(device="cpu", dtype="float32", batch_size=1)
    return HFLM(pretrained=path, **common), LeaderboardHFLM(pretrained=path, **common)


def test_chat_template_prompt_gets_two_bos_only_in_the_leaderboard_profile(two_models):
    upstream, leaderboard = two_models
    bos = upstream.tokenizer.bos_token_id
    chat = upstream.apply_chat_template([{"role": "user", "content": "Q: is 2 even?\nA:"}])
    assert chat.startswith("<bos>")  # the Gemma template starts with {{ bos_token }}
    plain = "Q: is 2 even?\nA:"

    def leading_bos(ids: list[int]) -> int:
        return next(i for i, t in enumerate(ids) if t != bos)

    # lm-eval 0.4.13 drops the tokenizer's BOS when the text already has one; the fork adds it anyway
    assert leading_bos(upstream.tok_encode(chat)) == 1
    assert leading_bos(leaderboard.tok_encode(chat)) == 2
    assert leaderboard.tok_encode(chat)[1:] == upstream.tok_encode(chat)
    # without a chat template both give one BOS (Gemma: the fork forces add_bos_token)
    assert leading_bos(upstream.tok_encode(plain)) == leading_bos(leaderboard.tok_encode(plain)) == 1
    assert leaderboard.add_bos_token is True
    # generation prompts go through tok_batch_encode: the same rule
    (up_ids,), _ = upstream.tok_batch_encode([chat])
    (lb_ids,), _ = leaderboard.tok_batch_encode([chat])
    assert leading_bos(up_ids.tolist()) == 1 and leading_bos(lb_ids.tolist()) == 2
    # continuations are encoded without specials in both (explicit add_special_tokens=False)
    assert leaderboard.tok_encode(" True", add_special_tokens=False) == upstream.tok_encode(" True", add_special_tokens=False)


def test_max_length_is_capped_at_4096_only_in_the_leaderboard_profile(two_models):
    upstream, leaderboard = two_models
    assert upstream.model.config.max_position_embeddings == 8192
    assert upstream.max_length == 8192
    assert leaderboard.max_length == 4096


def test_log_softmax_in_the_model_dtype_only_in_the_leaderboard_profile(two_models):
    import torch

    upstream, leaderboard = two_models
    assert upstream.softmax_dtype is None and leaderboard.softmax_dtype == torch.float32  # the dtype= model arg


def test_harness_is_part_of_the_job_identity_and_picks_the_model_class():
    from evalsuite.schema import ModelRef
    from evalsuite.run.jobs import Job, JobSettings

    ref = ModelRef(name="m", role="parent", pretrained="/m", identity="sha256:x", dtype="float32", device="cpu")
    up = Job(model=ref, benchmark="bbh", task="leaderboard_bbh", settings=JobSettings(batch_size=8), data_id="d")
    lb = Job(model=ref, benchmark="bbh", task="leaderboard_bbh", settings=JobSettings(batch_size=8, harness="leaderboard"), data_id="d", process=("bbh",))
    lb2 = lb.model_copy(update={"process": ("bbh", "gpqa")})
    assert len({up.job_id, lb.job_id, lb2.job_id}) == 3  # which benchmarks share the batches counts too
    assert "--model hf" in " ".join(up.lm_eval_args("/o")) and up.launcher() == ["lm_eval"]
    assert "--model hf-leaderboard" in " ".join(lb.lm_eval_args("/o"))
    assert lb.launcher() == ["python", "-m", "evalsuite.run.lm_eval_cli"]


def _study_processes(harness: str):
    from evalsuite.config import load_experiment
    from evalsuite.schema import ModelRef
    from evalsuite.run.runner import plan_jobs, plan_processes

    exp = load_experiment(REPO / "evalsuite.yaml", overrides={"harness": harness})
    refs = [
        ModelRef(name=m.display_name, role="candidate" if m is exp.candidate else "parent", pretrained=f"/m/{m.display_name}",
                 identity=f"sha256:{m.display_name}", dtype="bfloat16", device="cuda", chat_template=m.chat_template, multiturn=m.multiturn)
        for m in exp.models
    ]
    data_ids = {b: f"hub:repo-of-{b}@{'0' * 40}" for b in exp.benchmarks}
    return plan_processes(plan_jobs(exp, refs, data_ids, None, None), set(), None)


def test_reference_study_is_three_lm_eval_processes_in_the_leaderboard_profile():
    leaderboard, upstream = _study_processes("leaderboard"), _study_processes("upstream")
    assert len(upstream) == 18 and all(len(p.jobs) == 1 for p in upstream)
    assert len(leaderboard) == 3 and all(len(p.jobs) == 6 for p in leaderboard)
    for p in leaderboard:  # the leaderboard's own command: the whole group in one process
        args = p.lm_eval_args("/o")
        assert args[args.index("--tasks") + 1] == "leaderboard" and args[args.index("--model") + 1] == "hf-leaderboard"
        assert [j.benchmark for j in p.jobs] == ["mmlu_pro", "bbh", "gpqa", "math_hard", "ifeval", "musr"]  # leaderboard.yaml's order
    emu = next(p for p in leaderboard if p.first.model.name == "Emu_Eggs-9B-Model_Stock")
    assert "--apply_chat_template" in emu.lm_eval_args("/o") and "--fewshot_as_multiturn" in emu.lm_eval_args("/o")
    assert all("--apply_chat_template" not in p.lm_eval_args("/o") for p in leaderboard if p is not emu)


def test_demo_runs_one_lm_eval_process_per_model(demo_run):
    """`harness: leaderboard` (the default): the demo's 18 jobs come from 3 lm-eval processes, each
    of one model over all six benchmarks; every job is still stored and verified on its own."""
    store = demo_run.store
    record = store.read_experiment(demo_run.exp.name)
    for model, per in record.jobs.items():
        recs = [store.finished_job(j) for j in per.values()]
        assert {r.process for r in recs} != {None} and len({r.process for r in recs}) == 1, model
        assert all(r.identity["harness"] == "leaderboard" and len(r.identity["process"]) == 6 for r in recs)
        assert all(r.command[r.command.index("--tasks") + 1] == "leaderboard" for r in recs)
        for r in recs:  # a job's results file holds its own benchmark only; the process's whole file beside it
            data = json.loads(store.results_path(r).read_text())
            from evalsuite.suite import load_suite

            bench = load_suite().get(r.benchmark)
            assert set(data["n-samples"]) == set(bench.leaf_tasks)
            (whole,) = r.process_files
            assert len(json.loads((store.job_dir(r.job_id) / whole).read_text())["n-samples"]) == 39
            assert {Path(f).name.split("_2")[0] for f in r.samples_files} == {f"samples_{t}" for t in bench.leaf_tasks}
    assert len({store.finished_job(j).process for per in record.jobs.values() for j in per.values()}) == 3


# --- GPQA's choice order and the datasets cache ---------------------------------------------------


def _overrides(tmp_path: Path, harness: str) -> Path:
    from evalsuite.data.hub_data import hub_commits, hub_identity
    from evalsuite.data.overrides import override_yamls, write_task_overrides

    return write_task_overrides(MIRROR, ["gpqa"], tmp_path / f"tasks-{harness}", harness=harness)


def _lm_eval(module: str, model: Path, out: Path, cache: Path, include: Path, seed: str = "0,1234,1234,1234") -> None:
    """A bare lm-eval run of GPQA: module `lm_eval` is the stock CLI and model; evalsuite's
    `evalsuite.run.lm_eval_main` runs `hf-leaderboard`."""
    lm = "hf" if module == "lm_eval" else "hf-leaderboard"
    argv = [sys.executable, "-m", module, "run", "--model", lm, "--model_args", f"pretrained={model},dtype=float32",
            "--tasks", "leaderboard_gpqa", "--batch_size", "8", "--device", "cpu", "--seed", seed, "--log_samples",
            "--output_path", str(out), "--limit", "2", "--include_path", str(include)]
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def _docs(out: Path) -> dict[str, list]:
    """GPQA task -> [(doc_id, choice1..4, answer)] of the samples files under `out`."""
    found = {}
    for f in sorted(out.rglob("samples_leaderboard_gpqa_*.jsonl")):
        task = f.name[len("samples_"):-len(".jsonl")].rsplit("_", 1)[0]
        rows = [json.loads(line) for line in f.read_text().splitlines()]
        found[task] = sorted((r["doc_id"], *(r["doc"][k] for k in ("choice1", "choice2", "choice3", "choice4", "answer"))) for r in rows)
    return found


FORK_GPQA = REPO / "tests" / "fixtures_score" / "fork_gpqa"  # a real run of the fork: see its README


def test_gpqa_choice_order_is_the_forks_whatever_the_datasets_cache(tiny_models, demo_run, tmp_path):
    model = tiny_models["candidate"]
    stock, ours = _overrides(tmp_path, "upstream"), _overrides(tmp_path, "leaderboard")
    warm = tmp_path / "warm-cache"

    def on_the_warm_cache():
        # a bare lm_eval run with another seed fills the cache with its own shuffled rows ...
        _lm_eval("lm_eval", model, tmp_path / "seed7", warm, stock, seed="7,1234,1234,1234")
        # ... which the stock task code hands back on the next run, whatever its seed (the bug)
        _lm_eval("lm_eval", model, tmp_path / "stock-warm", warm, stock)
        # harness leaderboard on that warm cache
        _lm_eval("evalsuite.run.lm_eval_main", model, tmp_path / "ours-warm", warm, ours)

    # ... and on a cold one, at the same time (its own cache; one core each)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(on_the_warm_cache),
                pool.submit(_lm_eval, "evalsuite.run.lm_eval_main", model, tmp_path / "ours-cold", tmp_path / "cold-cache", ours)]
        for run in runs:
            run.result()
    other_seed = _docs(tmp_path / "seed7")
    assert _docs(tmp_path / "stock-warm") == other_seed
    cold = _docs(tmp_path / "ours-cold")
    assert set(cold) == {"leaderboard_gpqa_diamond", "leaderboard_gpqa_extended", "leaderboard_gpqa_main"}
    assert _docs(tmp_path / "ours-warm") == cold
    assert other_seed != cold, "another seed must shuffle differently (else this test shows nothing)"
    # the order of the demo's whole-leaderboard process (`--tasks leaderboard`, harness leaderboard)
    record = demo_run.store.read_experiment(demo_run.exp.name)
    assert _docs(demo_run.store.job_dir(record.jobs["tiny-merge"]["gpqa"])) == cold
    # and of the fork the leaderboard ran, on a cold cache, alone and in the whole group
    for run in ("tasks_gpqa", "tasks_leaderboard"):
        assert _docs(FORK_GPQA / run) == cold, run
    # the fork ran the same tiny model (same weights): the same prompts and the same loglikelihoods.
    # Bit for bit on the CPU the fixture was made on; torch's float32 kernels differ in the last bits
    # by CPU (AVX2 against AVX-512, `ATEN_CPU_CAPABILITY`), so: within 4 float32 ulps, same choice.
    fork, got = _requests(FORK_GPQA / "tasks_gpqa"), _requests(tmp_path / "ours-cold")
    assert set(fork) == set(got) and len(fork) == 6
    for key, (prompt_hash, lls) in fork.items():
        assert got[key][0] == prompt_hash, key
        ours_lls = np.array(got[key][1], dtype=np.float32)
        np.testing.assert_array_max_ulp(np.array(lls, dtype=np.float32), ours_lls, maxulp=4)
        assert int(np.argmax(ours_lls)) == int(np.argmax(lls)), key


def _requests(out: Path) -> dict:
    """(task, doc_id) -> (prompt_hash, each choice's loglikelihood) of GPQA samples under `out`."""
    found = {}
    for f in sorted(out.rglob("samples_leaderboard_gpqa_*.jsonl")):
        task = f.name[len("samples_"):-len(".jsonl")].rsplit("_", 1)[0]
        for r in map(json.loads, f.read_text().splitlines()):
            found[(task, r["doc_id"])] = (r["prompt_hash"], [float(x[0][0]) for x in r["resps"]])
    return found


@pytest.mark.slow
def test_a_mirror_changed_in_a_new_folder_is_read_as_changed(tmp_path):
    """Two mirrors with the same folder names but different rows, run one after the other into one
    results folder: the second run reads its own rows (datasets keys a local folder's cache by its
    base name; evalsuite gives each mirror content its own cache)."""
    first, second = tmp_path / "a" / "demo_mirror", tmp_path / "b" / "demo_mirror"
    shutil.copytree(MIRROR, first)
    shutil.copytree(MIRROR, second)
    import csv

    f = second / "TAUR-Lab" / "MuSR" / "murder_mystery.csv"  # the split murder_mysteries
    with f.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    rows[0]["question"] = "Who CHANGED the mirror?"
    with f.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    # the bug: one datasets cache serves the second folder the first one's rows
    probe = ("import datasets, sys\nfor d in sys.argv[1:]:\n"
             "    print(datasets.load_dataset(d + '/TAUR-Lab/MuSR', split='murder_mysteries')[0]['question'])")
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "shared-cache"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", probe, str(first), str(second)], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] != "Who CHANGED the mirror?", "datasets read the change: this test would show nothing"
    questions = {}
    for mirror in (first, second):
        cfg = demo_config(mirror.parent / "cfg", name="mirror-" + mirror.parent.name, results=tmp_path / "results",
                          **{"[ifeval, bbh, math_hard, gpqa, musr, mmlu_pro]": "[musr]",
                             f"mirror: {MIRROR}": f"mirror: {mirror}",
                             "parents:\n  - fixture: parent_a\n  - fixture: parent_b\n    chat_template: true": "parents: []\n#"})
        cfg.write_text(cfg.read_text().replace(f"  name: tiny-merge\n  recipe: {REPO / 'examples' / 'demo.mergekit.yml'}\n", "  fixture: candidate\n"))
        assert main(["run", "--all", "--config", str(cfg), "--quiet", "--no-report"]) == 0
        store = Store(tmp_path / "results")
        rec = store.finished_job(store.read_experiment("mirror-" + mirror.parent.name).jobs["tiny-candidate"]["musr"])
        (samples,) = [s for s in rec.samples_files if "murder_mysteries" in s]
        rows = [json.loads(line) for line in (store.job_dir(rec.job_id) / samples).read_text().splitlines()]
        questions[mirror.parent.name] = next(r["doc"]["question"] for r in rows if r["doc_id"] == 0)
    assert questions["b"] == "Who CHANGED the mirror?" != questions["a"]


# --- hub datasets: identified by their commit ------------------------------------------------------


def _hub_cache(root: Path, repo: str, sha: str) -> None:
    folder = root / f"datasets--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(sha)
    (folder / "snapshots" / sha).mkdir(parents=True)
    (folder / "snapshots" / sha / "README.md").write_text("---\n---\n")


def test_hub_data_identity_is_the_dataset_commit(tmp_path, monkeypatch):
    from evalsuite.data.hub_data import hub_commits, hub_identity
    from evalsuite.data.overrides import override_yamls, write_task_overrides

    cache = tmp_path / "hub"
    _hub_cache(cache, "TAUR-Lab/MuSR", "a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    got = hub_commits(["musr", "gpqa"], {"gpqa": "b" * 40}, offline=True)
    assert got == {"musr": "a" * 40, "gpqa": "b" * 40}
    assert hub_identity("musr", got["musr"]) == f"hub:TAUR-Lab/MuSR@{'a' * 40}"
    with pytest.raises(UserError, match=r"TIGER-Lab/MMLU-Pro.*pin it with data: \{revisions: \{mmlu_pro: SHA\}\}"):
        hub_commits(["mmlu_pro"], {}, offline=True)
    # lm-eval reads exactly that commit: each task override passes it to datasets.load_dataset
    files = override_yamls(None, ["musr"], got)
    import yaml

    body = yaml.safe_load(files["leaderboard_musr_murder_mysteries.yaml"].split("\n", 1)[1])
    assert body["dataset_kwargs"] == {"revision": "a" * 40} and "dataset_path" not in body


@pytest.mark.parametrize("body, message", [
    ("data:\n  revisions: {gpqa: main}\n", "e.yaml:3: data: revisions.gpqa: 'main' is not a 40-hex-digit commit sha"),
    ("data:\n  revisions: {arc: " + "a" * 40 + "}\n", "e.yaml:3: data: revisions: unknown benchmark 'arc' (known: ifeval, bbh, math_hard, gpqa, musr, mmlu_pro)"),
    ("data:\n  source: mirror\n  mirror: .\n  revisions: {gpqa: " + "a" * 40 + "}\n", "e.yaml:3: data: revisions pin hub datasets (source: hub); a mirror is identified by its content"),
    ("harness: fork\n", "e.yaml:3: harness: Input should be 'leaderboard' or 'upstream'"),
    ("backend: {name: vllm}\n", "e.yaml: (top level): harness: leaderboard reproduces the fork's hf model; with backend vllm use harness: upstream"),
])
def test_bad_harness_and_data_settings_one_line_exit_2(tmp_path, capsys, body, message):
    cfg = tmp_path / "e.yaml"
    cfg.write_text("name: e\ncandidate: {hub: org/m}\n" + body)
    assert main(["run", "--all", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path}/{message}" and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.yaml"]  # nothing written


# --- BBH snarks' prompt and MATH's scorers ---------------------------------------------------------


def _first_prompt(tmp_path: Path, harness: str, task: str) -> str:
    """The first request's context lm-eval 0.4.13 builds for `task` from the demo mirror."""
    from lm_eval.tasks import TaskManager

    from evalsuite.data.hub_data import hub_commits, hub_identity
    from evalsuite.data.overrides import override_yamls, write_task_overrides
    from evalsuite.run.lm_eval_main import leaderboard_dir

    include = tmp_path / f"bbh-{harness}"
    if not include.is_dir():
        write_task_overrides(MIRROR, ["bbh"], include, harness=harness)
    manager = TaskManager(include_path=[str(leaderboard_dir()), str(include)], include_defaults=False)  # as lm_eval_main indexes
    t = manager.load([task])["tasks"][task]
    t.build_all_requests(limit=1, rank=0, world_size=1)
    return t.instances[0].args[0]


def test_bbh_snarks_prompt_has_the_forks_newline_only_in_the_leaderboard_profile(tmp_path):
    upstream = _first_prompt(tmp_path, "upstream", "leaderboard_bbh_snarks")
    leaderboard = _first_prompt(tmp_path, "leaderboard", "leaderboard_bbh_snarks")
    assert "witty remarks.Q: " in upstream  # lm-eval 0.4.13: the description runs into the first shot
    assert leaderboard == upstream.replace("witty remarks.Q: ", "witty remarks.\nQ: ", 1)  # the fork
    # the other 23 BBH prompts are the same on both sides (their descriptions run into Q: in the fork too)
    assert _first_prompt(tmp_path, "leaderboard", "leaderboard_bbh_navigate") == _first_prompt(tmp_path, "upstream", "leaderboard_bbh_navigate")


def test_math_jobs_name_the_math_verify_version_and_need_a_working_original_parser(monkeypatch):
    from importlib.metadata import version

    from evalsuite.schema import ModelRef
    from evalsuite.run import runner
    from evalsuite.run.jobs import Job, JobSettings

    ref = ModelRef(name="m", role="parent", pretrained="/m", identity="sha256:x", dtype="float32", device="cpu")
    math = Job(model=ref, benchmark="math_hard", task="leaderboard_math_hard", settings=JobSettings(batch_size=8), data_id="d")
    bbh = Job(model=ref, benchmark="bbh", task="leaderboard_bbh", settings=JobSettings(batch_size=8), data_id="d")
    assert math.identity["math_verify"] == version("math-verify") and "math_verify" not in bbh.identity
    runner.check_math_parsers()  # this environment's sympy/ANTLR pair works
    import sympy.parsing.latex as latex

    def broken(_):
        raise ImportError("LaTeX parsing requires the antlr4 Python package, version 4.11")

    monkeypatch.setattr(latex, "parse_latex", broken)
    with pytest.raises(UserError, match=r"MATH's original parser cannot run here .*antlr4-python3-runtime==4.11"):
        runner.check_math_parsers()


def test_a_non_gemma_model_gets_no_bos_in_the_leaderboard_profile(tiny_models, tmp_path):
    """The fork's add_bos_token defaults to False and is passed to every causal encoding: models
    other than Gemma got no BOS without a chat template; lm-eval 0.4.13 keeps the tokenizer's."""
    from lm_eval.models.huggingface import HFLM
    from transformers import LlamaConfig, LlamaForCausalLM

    from evalsuite.run.leaderboard_lm import LeaderboardHFLM

    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    for f in tiny_models["parent_a"].iterdir():  # the same tokenizer (it adds BOS by default)
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(f, folder / f.name)
    vocab = json.loads((tiny_models["parent_a"] / "config.json").read_text())["vocab_size"]
    config = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, max_position_embeddings=2048, bos_token_id=2, eos_token_id=1, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(folder)
    common = dict(device="cpu", dtype="float32", batch_size=1)
    upstream, leaderboard = HFLM(pretrained=str(folder), **common), LeaderboardHFLM(pretrained=str(folder), **common)
    plain = "Q: is 2 even?\nA:"
    assert upstream.tok_encode(plain)[0] == 2 and leaderboard.tok_encode(plain)[0] != 2
    assert leaderboard.tok_encode(plain) == upstream.tok_encode(plain)[1:]
    assert leaderboard.max_length == 2048 == upstream.max_length  # under the cap: the model's own


def test_published_parents_leave_one_lm_eval_process_for_the_reference_study():
    """evalsuite-published.yaml: both parents from the leaderboard's details, so the GPU runs one
    process (the candidate's six benchmarks) instead of three (18 jobs in upstream terms)."""
    from evalsuite.config import load_experiment
    from evalsuite.schema import ModelRef
    from evalsuite.run.runner import evaluated_jobs, plan_processes

    exp = load_experiment(REPO / "evalsuite-published.yaml")
    refs = [ModelRef(name=m.display_name, role="parent", pretrained=m.published or m.hub, identity=f"x:{m.display_name}", dtype="bfloat16",
                     device="cuda", published=m.published) for m in exp.models]
    assert [r.name for r in refs if r.published] == ["Delirium-v1", "Emu_Eggs-9B-Model_Stock"]
    data_ids = {b: f"hub:repo-of-{b}@{'0' * 40}" for b in exp.benchmarks}
    (only,) = plan_processes(evaluated_jobs(exp, refs, data_ids, None, None), set(), None)
    assert only.first.model.name == "Gemmaslerp2-9B" and len(only.jobs) == 6
