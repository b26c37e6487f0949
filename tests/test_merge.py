"""The merge stage: real mergekit merges of tiny Gemma-2 parents, checked against a SLERP computed
here in float64 (not by mergekit), plus reuse, corruption, preflight errors and loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from evalsuite.cli.main import main
from evalsuite.errors import UserError
from evalsuite.fixtures.tiny import build_tiny_gemma2
from evalsuite.models.merge import MARKER, PLAN_FILE, build_merge, plan_merge

SEED_RECIPE = Path(__file__).resolve().parents[1] / "examples" / "gemmaslerp2-9b.mergekit.yml"
BASE_ID, OTHER_ID = "sam-paech/Delirium-v1", "DreadPoor/Emu_Eggs-9B-Model_Stock"
SELF_ATTN = [0, 0.5, 0.3, 0.7, 1]
MLP = [1, 0.5, 0.7, 0.3, 0]


@pytest.fixture(scope="module")
def parents(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """The demo's 6-layer parents, plus a 42-layer pair (the seed model's depth)."""
    root = tmp_path_factory.mktemp("parents")
    return {
        "a": tiny_models["parent_a"],
        "b": tiny_models["parent_b"],
        "a42": build_tiny_gemma2(root / "a42", seed=3, num_layers=42, hidden_size=32, intermediate_size=64),
        "b42": build_tiny_gemma2(root / "b42", seed=4, num_layers=42, hidden_size=32, intermediate_size=64),
    }


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


def _recipe(tmp_path: Path, body: str, name: str = "recipe.yml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def filter_recipe(a: Path, b: Path) -> str:
    return f"""\
models:
  - model: {a}
  - model: {b}
merge_method: slerp
base_model: {a}
dtype: bfloat16
parameters:
  t:
    - filter: self_attn
      value: {SELF_ATTN}
    - filter: mlp
      value: {MLP}
    - value: 0.5
"""


# --- the independent reference -------------------------------------------------------------------


def tensors(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            out.update({k: st.get_tensor(k) for k in st.keys()})
    return out


def ref_slerp(t: float, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Textbook SLERP of two whole tensors as single vectors, in float64.

    Returns (result, scale) where scale = |ca*a| + |cb*b| elementwise: the size of the two terms
    the result is the sum of.
    """
    x, y = a.double().flatten(), b.double().flatten()
    nx, ny = x.norm(), y.norm()
    nx = nx if nx > 1e-8 else torch.tensor(1.0, dtype=torch.float64)
    ny = ny if ny > 1e-8 else torch.tensor(1.0, dtype=torch.float64)
    dot = float(torch.clamp((x / nx) @ (y / ny), -1, 1))
    if abs(dot) > 0.9995:
        ca, cb = 1 - t, t
    else:
        theta = np.arccos(dot)
        ca, cb = np.sin((1 - t) * theta) / np.sin(theta), np.sin(t * theta) / np.sin(theta)
    return (ca * x + cb * y).reshape(a.shape), (abs(ca) * x.abs() + abs(cb) * y.abs()).reshape(a.shape)


def within_one_bf16_ulp(merged: torch.Tensor, exact: torch.Tensor, scale: torch.Tensor) -> tuple[bool, int]:
    """|merged - exact| <= one bf16 ulp of the exact value.

    mergekit 0.1.5 computes in float32, so where the two terms nearly cancel (|exact| far below
    the terms' size) its absolute error is a few float32 ulps of the *terms* (seen: <= 8), which
    can exceed the bf16 ulp of the tiny result. Those elements (~5 per million here) are held to
    2^-20 x the terms' size (16 float32 ulps) instead; a t off by even 1e-4 misses both bounds.
    """
    m = merged.double()
    mag = torch.maximum(exact.abs(), torch.full_like(exact, 2.0**-126))
    ulp = torch.exp2(torch.floor(torch.log2(mag)) - 7)  # bf16 keeps 8 significant bits
    err = (m - exact).abs()
    strict = err <= ulp
    return bool((strict | (err <= scale * 2.0**-20)).all()), int((~strict).sum())


def expected_t(name: str, layers: int, rules: dict[str, list[float]] | None, fallback: float | None, anchors=None):
    """t from the recipe semantics, computed with numpy.interp (not mergekit's code)."""
    layer = int(name.split(".")[2]) if name.startswith("model.layers.") else None
    pos = 0.0 if layer is None else layer / (layers - 1)
    if rules is None:
        return float(np.interp(pos, np.linspace(0, 1, len(anchors)), anchors))
    for key, anchors in rules.items():
        if key in name:
            return float(np.interp(pos, np.linspace(0, 1, len(anchors)), anchors))
    return fallback


def check_against_reference(out: Path, a: Path, b: Path, t_of) -> dict[str, float]:
    merged, pa, pb = tensors(out), tensors(a), tensors(b)
    assert set(merged) == set(pa) and "lm_head.weight" not in merged
    used, loose, total = {}, 0, 0
    for name, m in merged.items():
        t = used[name] = t_of(name)
        base = pa[name].to(torch.bfloat16)
        other = pb[name].to(torch.bfloat16)
        assert m.dtype == torch.bfloat16
        if t == 0:
            assert torch.equal(m, base), f"{name}: t = 0 must be the base, bit for bit"
        else:
            ok, n_loose = within_one_bf16_ulp(m, *ref_slerp(t, base, other))
            assert ok, name
            loose, total = loose + n_loose, total + m.numel()
    assert total and loose / total < 1e-4, f"{loose} of {total} elements off by more than 1 bf16 ulp"
    return used


# --- plan ----------------------------------------------------------------------------------------


def test_seed_recipe_plan_is_the_v_curve(parents, tmp_path, capsys):
    local = {BASE_ID: parents["a42"], OTHER_ID: parents["b42"]}
    plan = plan_merge(SEED_RECIPE, local_models=local)
    anchors = [0, 0.5, 1, 0.5, 0]
    assert plan.num_layers == 42 and plan.base_model == BASE_ID
    for tp in plan.tensors:
        assert tp.t == pytest.approx(expected_t(tp.name, 42, None, None, anchors), abs=1e-12), tp.name
    by_layer = {tp.layer: tp.t for tp in plan.tensors}
    assert by_layer[0] == 0 and by_layer[41] == 0
    assert by_layer[20] == by_layer[21] == pytest.approx(0.97561, abs=1e-5)
    assert plan.t_of("model.embed_tokens.weight") == 0 and plan.t_of("model.norm.weight") == 0

    assert main(["merge", str(SEED_RECIPE), str(tmp_path / "out"), "--plan-only",
                 "--local-model", f"{BASE_ID}={parents['a42']}", "--local-model", f"{OTHER_ID}={parents['b42']}"]) == 0
    table = capsys.readouterr().out
    assert "42 layers" in table and "20      0.488        0.9756" in table
    assert not (tmp_path / "out").exists()


def test_mergekit_s_torch_dtype_notice_is_dropped_and_nothing_else(parents):
    """mergekit 0.1.5 sets `config.torch_dtype` while planning and merging; transformers 5 warns
    "`torch_dtype` is deprecated" (once per process), which reached the user of every merge. It is
    dropped during mergekit's calls; the same notice from anything else still passes."""
    import logging

    from transformers import Gemma2Config
    from transformers.utils import logging as hf_logging  # noqa: F401  (defines Logger.warning_once)

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("transformers.configuration_utils")
    logger.addHandler(handler)
    try:
        logging.Logger.warning_once.cache_clear()  # a notice already given in this process is not given again
        plan_merge(SEED_RECIPE, local_models={BASE_ID: parents["a42"], OTHER_ID: parents["b42"]})
        assert seen == []
        logging.Logger.warning_once.cache_clear()
        Gemma2Config().torch_dtype = "float32"  # not mergekit: shown
        assert seen == ["`torch_dtype` is deprecated! Use `dtype` instead!"]
    finally:
        logger.removeHandler(handler)


def test_seed_recipe_merges_unchanged_through_local_mapping(parents, tmp_path):
    local = {BASE_ID: parents["a42"], OTHER_ID: parents["b42"]}
    res = build_merge(SEED_RECIPE, tmp_path / "seed", local_models=local, progress=False)
    assert (res.path / "mergekit_config.yml").read_text() == SEED_RECIPE.read_text()  # verbatim
    used = check_against_reference(res.path, parents["a42"], parents["b42"],
                                   lambda n: expected_t(n, 42, None, None, [0, 0.5, 1, 0.5, 0]))
    assert used["model.layers.0.mlp.up_proj.weight"] == 0 and used["model.layers.41.mlp.up_proj.weight"] == 0
    assert used["model.embed_tokens.weight"] == 0 and used["model.norm.weight"] == 0
    record = json.loads((res.path / MARKER).read_text())
    assert record["fingerprint"] == res.fingerprint and record["inputs"]["mergekit"] == "0.1.5"
    assert set(record["inputs"]["parents"]) == {BASE_ID, OTHER_ID}


def test_filter_recipe_each_tensor_gets_its_t(parents, tmp_path):
    a, b = parents["a"], parents["b"]
    recipe = _recipe(tmp_path, filter_recipe(a, b))
    rules = {"self_attn": SELF_ATTN, "mlp": MLP}
    res = build_merge(recipe, tmp_path / "out", shard_size="100KB", progress=False)
    used = check_against_reference(res.path, a, b, lambda n: expected_t(n, 6, rules, 0.5))
    # the rules really differ per tensor: attention, MLP and the four layernorms (fallback)
    assert used["model.layers.2.self_attn.q_proj.weight"] == pytest.approx(0.38)
    assert used["model.layers.2.mlp.down_proj.weight"] == pytest.approx(0.62)
    assert used["model.layers.2.pre_feedforward_layernorm.weight"] == 0.5
    assert used["model.embed_tokens.weight"] == 0.5
    # the plan on disk says the same, with the rule that decided
    plan = json.loads((res.path / PLAN_FILE).read_text())
    for tp in plan["tensors"]:
        assert tp["t"] == pytest.approx(used[tp["name"]], abs=1e-12)
        want_rule = "self_attn" if "self_attn" in tp["name"] else "mlp" if ".mlp." in tp["name"] else "fallback"
        assert tp["rule"] == want_rule, tp["name"]
    # sharded output with an index
    index = json.loads((res.path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1


def test_merged_model_loads_and_generates(parents, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    res = build_merge(_recipe(tmp_path, filter_recipe(parents["a"], parents["b"])), tmp_path / "m",
                      shard_size="100KB", progress=False)
    tok = AutoTokenizer.from_pretrained(res.path)
    base_tok = AutoTokenizer.from_pretrained(parents["a"])
    assert tok.get_vocab() == base_tok.get_vocab() and tok.chat_template == base_tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(res.path)
    assert model.config.model_type == "gemma2" and str(model.config.dtype).endswith("bfloat16")
    ids = tok("The answer is", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 5

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(res.path), device="cpu", dtype="float32", batch_size=1)
    request = Instance(request_type="loglikelihood", doc={}, arguments=("The answer is", " (A)"), idx=0)
    [(logprob, _greedy)] = lm.loglikelihood([request])
    assert np.isfinite(logprob)


# --- build once, rebuild when broken -------------------------------------------------------------


def test_same_merge_twice_runs_once_and_a_flipped_byte_rebuilds(parents, tmp_path):
    recipe = _recipe(tmp_path, filter_recipe(parents["a"], parents["b"]))
    out = tmp_path / "out"
    first = build_merge(recipe, out, shard_size="100KB", progress=False)
    shard = sorted(out.glob("model-*.safetensors"))[1]
    stamp = shard.stat().st_mtime_ns
    second = build_merge(recipe, out, shard_size="100KB", progress=False)
    assert not first.reused and second.reused and second.fingerprint == first.fingerprint
    assert shard.stat().st_mtime_ns == stamp  # nothing was rewritten

    good = shard.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    third = build_merge(recipe, out, shard_size="100KB", progress=False)
    assert not third.reused and shard.read_bytes() == good  # rebuilt, bit-identical to the first

    (out / MARKER).unlink()  # a folder without its completion record (half-written) is rebuilt
    assert not build_merge(recipe, out, shard_size="100KB", progress=False).reused
    assert build_merge(recipe, out, shard_size="100KB", progress=False).reused
    assert not build_merge(recipe, out, shard_size="100KB", progress=False, force=True).reused
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []  # no temp left


def test_changed_recipe_changes_fingerprint_and_foreign_folder_is_kept(parents, tmp_path):
    a, b = parents["a"], parents["b"]
    r1 = _recipe(tmp_path, filter_recipe(a, b), "r1.yml")
    r2 = _recipe(tmp_path, filter_recipe(a, b).replace("value: 0.5", "value: 0.25"), "r2.yml")
    out = tmp_path / "out"
    f1 = build_merge(r1, out, progress=False).fingerprint
    res2 = build_merge(r2, out, progress=False)
    assert res2.fingerprint != f1 and not res2.reused
    assert res2.plan.t_of("model.layers.0.input_layernorm.weight") == 0.25

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a merge output"):
        build_merge(r1, foreign, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"


# --- preflight: one line, exit 2, nothing written ------------------------------------------------


def _odd_parent(case: str, parents, root: Path) -> Path:
    """A parent that differs from the tiny Gemma-2 ones in exactly one way."""
    if case == "shape":
        return build_tiny_gemma2(root / "wide", seed=5, intermediate_size=96)
    if case == "layers":
        return build_tiny_gemma2(root / "short", seed=5, num_layers=4)
    if case == "tokenizer":  # same weights, two token ids swapped
        odd = root / "swapped"
        shutil.copytree(parents["b"], odd)
        tok = json.loads((odd / "tokenizer.json").read_text())
        vocab = tok["model"]["vocab"]
        vocab["the"], vocab["answer"] = vocab["answer"], vocab["the"]
        (odd / "tokenizer.json").write_text(json.dumps(tok))
        return odd
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=1536, hidden_size=64, intermediate_size=128, num_hidden_layers=6,
                      num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(root / "llama")
    return root / "llama"


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown_method", "merge_method: unknown method 'slurp'"),
        ("no_base", "base_model: missing (slerp needs a base model)"),
        ("t_range", "parameters.t: t = 1.2 is outside [0, 1]"),
        ("missing_parent", "parent folder does not exist"),
        ("shape", "shape mismatch: tensor model.layers.0.mlp.down_proj.weight is [64, 128] in "),
        ("architecture", "architecture mismatch:"),
        ("layers", "layer count mismatch: "),
        ("tokenizer", "tokenizer mismatch: token "),
    ],
)
def test_bad_recipes_fail_in_one_line_with_exit_2(case, message, parents, tmp_path, capsys):
    a, b = parents["a"], parents["b"]
    body = filter_recipe(a, b)
    if case == "unknown_method":
        body = body.replace("merge_method: slerp", "merge_method: slurp")
    elif case == "no_base":
        body = body.replace(f"base_model: {a}\n", "")
    elif case == "t_range":
        body = body.replace(f"value: {MLP}", "value: [1, 1.2, 0]")
    elif case == "missing_parent":
        body = body.replace(f"model: {b}", f"model: {tmp_path / 'nowhere'}")
    else:
        body = body.replace(f"model: {b}", f"model: {_odd_parent(case, parents, tmp_path)}")
    recipe = _recipe(tmp_path, body)
    out = tmp_path / "merged" / "out"
    capsys.readouterr()  # drop what building the odd parents printed
    assert main(["merge", str(recipe), str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert not out.exists() and not out.parent.exists()


def test_hub_id_without_cache_or_mapping_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(UserError, match="sam-paech/Delirium-v1: no such folder, and not in the Hugging Face cache"):
        plan_merge(SEED_RECIPE)


def test_shard_size_is_bytes_and_a_bad_one_is_a_user_error(parents, tmp_path, capsys):
    from evalsuite.models.merge import parse_size

    assert parse_size("5GB") == 5 * 10**9 and parse_size("500MB") == 5 * 10**8 and parse_size("2GiB") == 2**31
    recipe = _recipe(tmp_path, filter_recipe(parents["a"], parents["b"]))
    assert main(["merge", str(recipe), str(tmp_path / "out"), "--shard-size", "5B"]) == 2
    assert "shard size '5B': expected bytes like 5GB" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
