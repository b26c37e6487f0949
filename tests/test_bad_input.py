"""The bad-input catalogue (docs/bad-input.md): broken model folders, broken dataset mirrors,
results files and CLI arguments, each end to end through `evalsuite.cli.main.main`: exit 2, one
line on stderr starting `error: ` that names the problem, and nothing written (no results or
reports folder, no weight-check cache entry for a folder that failed)."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from evalsuite.cli.main import main
from evalsuite.errors import UserError
from evalsuite.models import check
from evalsuite.models.load import check_weights
from fixtures_score.lm_eval_layout import build_results, counts_to_inputs, write_results

REPO = Path(__file__).resolve().parent.parent
MIRROR = REPO / "examples" / "demo_mirror"
UP = "model.layers.3.mlp.up_proj.weight"
EMBED = "model.embed_tokens.weight"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


def experiment(tmp_path: Path, candidate: dict, *, benchmarks=("gpqa",), mirror: Path = MIRROR,
               **extra) -> Path:
    """An experiment file shaped like examples/demo.yaml, all output under tmp_path."""
    data = {
        "name": "bad-input", "candidate": candidate, "benchmarks": list(benchmarks),
        "device": "cpu", "offline": True, "limit": 2,
        "data": {"source": "mirror", "mirror": str(mirror)},
        "output": {"results": str(tmp_path / "results"), "reports": str(tmp_path / "reports")},
        **extra,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def fails(capsys, tmp_path: Path, argv: list[str], *needles: str) -> str:
    """Run the CLI; assert exit 2, one `error: ` line holding every needle, nothing written."""
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, (n, err)
    assert captured.out == ""
    assert not (tmp_path / "results").exists() and not (tmp_path / "reports").exists()
    assert not (tmp_path / "cache" / check.CACHE_FILE).exists()
    return err.strip()


def run_fails(capsys, tmp_path: Path, candidate: dict, *needles: str, **kw) -> str:
    cfg = experiment(tmp_path, candidate, **kw)
    return fails(capsys, tmp_path, ["run", "--all", "--config", str(cfg), "--quiet"], *needles)


def copy_model(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def edit_tensors(folder: Path, edit, file: str = "model.safetensors") -> Path:
    """Rewrite one safetensors file after `edit(tensors)` changed its dict of tensors."""
    path = folder / file
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})
    return path


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.fixture
def model(tiny_models, tmp_path) -> Path:
    """A private copy of the demo's parent_a, to damage."""
    return copy_model(tiny_models["parent_a"], tmp_path / "model")


@pytest.fixture(scope="module")
def sharded(tiny_models, tmp_path_factory) -> Path:
    """parent_a saved by transformers in several shards with a model.safetensors.index.json."""
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("sharded") / "parent_a-sharded"
    AutoModelForCausalLM.from_pretrained(tiny_models["parent_a"]).save_pretrained(out, max_shard_size="400KB")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_models["parent_a"] / name, out / name)
    assert len(list(out.glob("model-*.safetensors"))) >= 3
    return out


# ---------------------------------------------------------------- good folders pass, scan is cached


def test_demo_models_sharded_saves_and_merges_pass(tiny_models, sharded, tmp_path):
    """The demo's fixture models, a sharded save and a bf16 mergekit merge pass every check, and
    the verdicts are cached per file (the folder's next check reads no tensor)."""
    from evalsuite.models.merge import build_merge

    for name, folder in tiny_models.items():
        check_weights(folder, False, f"parent {name}")
    check_weights(sharded, False, "parent sharded")
    local = {f"evalsuite-fixtures/{n}": p for n, p in tiny_models.items()}
    merged = build_merge(REPO / "examples" / "demo.mergekit.yml", tmp_path / "merged", local_models=local, progress=False)
    check_weights(Path(merged.path), False, "candidate tiny-merge")
    cache = json.loads((tmp_path / "cache" / check.CACHE_FILE).read_text())
    shards = sorted(sharded.glob("*.safetensors"))
    for f in [*(p / "model.safetensors" for p in tiny_models.values()), *shards]:
        assert check._cache_key(f) in cache
    assert set(cache.values()) == {"finite"}


def test_nan_scan_runs_once_per_file_version(model, monkeypatch):
    scanned: list[Path] = []
    real = check.scan_file
    monkeypatch.setattr(check, "scan_file", lambda path, *a: (scanned.append(path), real(path, *a)))
    check_weights(model, False, "candidate m")
    check_weights(model, False, "candidate m")
    assert scanned == [model / "model.safetensors"]
    stat = (model / "model.safetensors").stat()
    os.utime(model / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    check_weights(model, False, "candidate m")  # touched: scanned again
    assert len(scanned) == 2


def test_quantized_model_may_hold_integer_weights(model):
    """Integer weights are normal in a quantized checkpoint (config.json says so)."""
    edit_tensors(model, lambda t: t.update({"model.layers.0.self_attn.q_proj.weight": torch.zeros(64, 32, dtype=torch.uint8)}))
    with pytest.raises(UserError, match="is U8, not floating point"):
        check_weights(model, False, "candidate m")
    edit_json(model / "config.json", lambda c: c.update(quantization_config={"quant_method": "bitsandbytes"}))
    check_weights(model, False, "candidate m")


# ---------------------------------------------------------------- broken model folders, via `run`


def test_model_nan_weights(model, tmp_path, capsys):
    def plant(t):
        t[UP][3, :12] = float("nan")

    f = edit_tensors(model, plant)
    err = run_fails(capsys, tmp_path, {"path": str(model)})
    assert err == f"error: candidate model: {f}: tensor {UP} has 12 NaN values"


def test_model_inf_weights(model, tmp_path, capsys):
    def plant(t):
        t[EMBED][100, :2] = float("inf")
        t[EMBED][7, 5] = -float("inf")

    f = edit_tensors(model, plant)
    run_fails(capsys, tmp_path, {"path": str(model)}, f"{f}: tensor {EMBED} has 3 inf values")


def test_model_integer_weight(model, tmp_path, capsys):
    name = "model.layers.0.self_attn.q_proj.weight"
    f = edit_tensors(model, lambda t: t.update({name: t[name].to(torch.int32)}))
    run_fails(capsys, tmp_path, {"path": str(model)}, f"{f}: tensor {name} is I32, not floating point",
              "no quantization_config")


def test_model_tokenizer_larger_than_embedding(model, tmp_path, capsys):
    edit_tensors(model, lambda t: t.update({EMBED: t[EMBED][:1400].clone()}))
    edit_json(model / "config.json", lambda c: c.update(vocab_size=1400))
    run_fails(capsys, tmp_path, {"path": str(model)},
              f"{model / 'tokenizer.json'}: token ids go up to 1535 but model.safetensors tensor {EMBED} has only 1400 rows")


def test_model_config_vocab_size_differs_from_embedding(model, tmp_path, capsys):
    edit_json(model / "config.json", lambda c: c.update(vocab_size=2048))
    run_fails(capsys, tmp_path, {"path": str(model)},
              f"{model / 'config.json'}: vocab_size 2048 but model.safetensors tensor {EMBED} has 1536 rows")


def test_model_truncated_safetensors(model, tmp_path, capsys):
    f = model / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    run_fails(capsys, tmp_path, {"path": str(model)}, f"candidate model: {f}: truncated: tensor ")


def test_model_zeroed_safetensors_header(model, tmp_path, capsys):
    f = model / "model.safetensors"
    f.write_bytes(b"\0" * 64)
    run_fails(capsys, tmp_path, {"path": str(model)}, f"{f}: invalid safetensors header (not JSON")


def test_model_header_longer_than_file(model, tmp_path, capsys):
    f = model / "model.safetensors"
    f.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    run_fails(capsys, tmp_path, {"path": str(model)}, f"{f}: invalid safetensors header (says 1000000000 header bytes")


def test_model_config_not_json(model, tmp_path, capsys):
    (model / "config.json").write_text('{"model_type": "gemma2",')
    run_fails(capsys, tmp_path, {"path": str(model)}, f"{model / 'config.json'}: not valid JSON")


def test_model_missing_shard(sharded, tmp_path, capsys):
    m = copy_model(sharded, tmp_path / "model")
    shard = sorted(m.glob("model-*.safetensors"))[1]
    shard.unlink()
    n = len(list(sharded.glob("model-*.safetensors")))
    run_fails(capsys, tmp_path, {"path": str(m)},
              f"candidate model: {m / check.INDEX_FILE}: names 1 of {n} shard files that are missing: {shard.name}")


def test_model_index_maps_tensor_to_wrong_shard(sharded, tmp_path, capsys):
    m = copy_model(sharded, tmp_path / "model")
    index = json.loads((m / check.INDEX_FILE).read_text())
    shards = sorted(set(index["weight_map"].values()))
    wrong = next(s for s in shards if s != index["weight_map"][UP])
    index["weight_map"][UP] = wrong
    (m / check.INDEX_FILE).write_text(json.dumps(index))
    run_fails(capsys, tmp_path, {"path": str(m)}, f"maps tensor {UP} to {wrong}, which does not hold it")


def test_model_nan_through_local_models_mapping(model, tmp_path, capsys):
    def plant(t):
        t["model.norm.weight"][0] = float("nan")

    f = edit_tensors(model, plant)
    err = run_fails(capsys, tmp_path, {"hub": "org/broken"}, local_models={"org/broken": str(model)})
    assert err == f"error: candidate broken: {f}: tensor model.norm.weight has 1 NaN value"


def test_model_missing_shard_in_hub_snapshot(sharded, tmp_path, capsys, monkeypatch):
    """A hub id found in the Hugging Face cache is checked like a local folder."""
    import huggingface_hub.constants as hf_constants

    sha = "0123456789abcdef0123456789abcdef01234567"
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--org--sharded"
    snap = copy_model(sharded, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    shard = sorted(snap.glob("model-*.safetensors"))[-1]
    shard.unlink()
    run_fails(capsys, tmp_path, {"hub": "org/sharded"}, f"candidate sharded: {snap / check.INDEX_FILE}: names 1 of ", shard.name)


# ---------------------------------------------------------------- broken dataset mirrors, via `run`


def broken_mirror(tmp_path: Path) -> Path:
    return Path(shutil.copytree(MIRROR, tmp_path / "mirror"))


def retype_column(f: Path, column: str, convert) -> None:
    """Rewrite one parquet column with `convert(values)` (same rows, another type)."""
    table = pq.read_table(f)
    new = convert(table.column(column).to_pylist())
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, new), f)


def test_mirror_missing_split(tiny_models, tmp_path, capsys):
    m = broken_mirror(tmp_path)
    readme = m / "TAUR-Lab/MuSR/README.md"
    readme.write_text(readme.read_text().replace("split: team_allocation", "split: teams"))
    run_fails(capsys, tmp_path, {"path": str(tiny_models["parent_a"])},
              f"data.mirror {m}: musr: TAUR-Lab/MuSR config 'default': no 'team_allocation' split (has: ",
              benchmarks=["musr"], mirror=m)


def test_mirror_list_column_holds_strings(tiny_models, tmp_path, capsys):
    m = broken_mirror(tmp_path)
    f = m / "TIGER-Lab/MMLU-Pro/data/test-00000-of-00001.parquet"
    retype_column(f, "options", lambda values: pa.array([" | ".join(o) for o in values]))
    run_fails(capsys, tmp_path, {"path": str(tiny_models["parent_a"])},
              f"mmlu_pro: {f}: column 'options' holds string values, lm-eval needs list",
              benchmarks=["mmlu_pro"], mirror=m)


def test_mirror_string_column_holds_integers(tiny_models, tmp_path, capsys):
    m = broken_mirror(tmp_path)
    f = m / "SaylorTwift/bbh/object_counting/test-00000-of-00001.parquet"
    retype_column(f, "target", lambda values: pa.array([int(v) for v in values], pa.int64()))
    run_fails(capsys, tmp_path, {"path": str(tiny_models["parent_a"])},
              f"bbh: {f}: column 'target' holds integer values, lm-eval needs string",
              benchmarks=["bbh"], mirror=m)


def test_mirror_jsonl_list_column_holds_a_string(tiny_models, tmp_path, capsys):
    m = broken_mirror(tmp_path)
    f = m / "wis-k/instruction-following-eval/input_data.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    rows[0]["instruction_id_list"] = ",".join(rows[0]["instruction_id_list"])
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_fails(capsys, tmp_path, {"path": str(tiny_models["parent_a"])},
              f"ifeval: {f}: column 'instruction_id_list' holds string values, lm-eval needs list",
              benchmarks=["ifeval"], mirror=m)


# ---------------------------------------------------------------- results files given to `score`


def full_results() -> dict:
    counts = json.loads((Path(__file__).parent / "fixtures_score" / "published_counts.json").read_text())
    seed = "allknowingroger/Gemmaslerp2-9B"
    values, n = counts_to_inputs(counts["models"][seed], counts["sizes"])
    return build_results(seed, values, n)


def test_results_file_empty(tmp_path, capsys):
    p = tmp_path / "results_2025-01-01T00-00-00.json"
    p.write_text("")  # a write cut short
    fails(capsys, tmp_path, ["score", str(p)], f"{p}: cannot read results JSON")


def test_results_file_nan_metric(tmp_path, capsys):
    data = full_results()
    data["results"]["leaderboard_musr_murder_mysteries"]["acc_norm,none"] = math.nan
    p = write_results(tmp_path / "out", data)
    fails(capsys, tmp_path, ["score", str(p)], str(p), "leaderboard_musr_murder_mysteries", "acc_norm,none")


# ---------------------------------------------------------------- CLI arguments


def good_experiment(tiny_models, tmp_path: Path) -> Path:
    return experiment(tmp_path, {"path": str(tiny_models["parent_a"])})


def test_cli_unknown_benchmark_flag(tiny_models, tmp_path, capsys):
    cfg = good_experiment(tiny_models, tmp_path)
    fails(capsys, tmp_path, ["run", "-b", "arc", "--config", str(cfg)], "error: command line (with ", "benchmarks: unknown benchmark 'arc'")


def test_cli_limit_zero(tiny_models, tmp_path, capsys):
    cfg = good_experiment(tiny_models, tmp_path)
    fails(capsys, tmp_path, ["run", "--all", "--limit", "0", "--config", str(cfg)], "error: command line (with ", "limit: limit must be a positive")


def test_cli_unknown_executor(tiny_models, tmp_path, capsys):
    cfg = good_experiment(tiny_models, tmp_path)
    fails(capsys, tmp_path, ["run", "--all", "--executor", "slurm", "--config", str(cfg)], "error: command line (with ", "executor.name: Input should be 'local' or 'ray'")


@pytest.mark.parametrize("command", ["compare", "report"])
def test_cli_compare_and_report_before_any_run(command, tiny_models, tmp_path, capsys):
    cfg = good_experiment(tiny_models, tmp_path)
    fails(capsys, tmp_path, [command, "--config", str(cfg)], "no finished run of experiment 'bad-input'", "evalsuite run")


def test_cli_regress_unknown_baseline(tmp_path, capsys):
    from evalsuite.history.db import connect

    root = tmp_path / "store"
    connect(root, create=True).close()  # a history with no runs and no baselines
    before = sorted(p.name for p in root.iterdir())
    junit = tmp_path / "junit.xml"
    fails(capsys, tmp_path, ["regress", "--results", str(root), "--baseline", "nightly", "--junit", str(junit)],
          "no run 'nightly' in the history")
    assert sorted(p.name for p in root.iterdir()) == before and not junit.exists()


def test_cli_merge_recipe_file_missing(tmp_path, capsys):
    fails(capsys, tmp_path, ["merge", str(tmp_path / "nope.yml"), str(tmp_path / "out")], "recipe ", "nope.yml: file not found")
    assert not (tmp_path / "out").exists()


def test_cli_view_without_reports(tiny_models, tmp_path, capsys):
    cfg = good_experiment(tiny_models, tmp_path)
    fails(capsys, tmp_path, ["view", "--config", str(cfg)], f"reports folder {tmp_path / 'reports'} does not exist")

