"""Tiny Gemma-2 fixtures: deterministic bytes, real transformers loading and generation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite.fixtures.tiny import DEMO_SEEDS, MARKER, build_demo_models, build_tiny_gemma2

PROMPTS = [
    "Write a 300+ word summary of the wikipedia page. Do not use any commas.",
    "Problem:\nFind the domain of the expression $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.\n\nSolution:",
    "Q: not ( True ) and ( False ) is\nA: Let's think step by step.",
]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def loaded(tiny_models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_models["parent_a"]
    return AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)


def test_build_is_byte_for_byte_deterministic(tmp_path, tiny_models):
    # Rebuild parent_a in a fresh process (new hash seeds, new torch state) and compare every file.
    again = tmp_path / "again"
    code = (
        "import sys; from pathlib import Path; from evalsuite.fixtures.tiny import build_tiny_gemma2;"
        f" build_tiny_gemma2(Path(sys.argv[1]), seed={DEMO_SEEDS['parent_a']})"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONHASHSEED="123")
    built = subprocess.run([sys.executable, "-c", code, str(again)], check=True, env=env, capture_output=True, text=True)
    assert "Writing model shards" not in built.stderr  # transformers' bar: a fixture build is quiet
    ref = _files(tiny_models["parent_a"])
    new = _files(again)
    assert sorted(ref) == sorted(new)
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", MARKER} <= set(ref)
    for name in ref:
        assert ref[name] == new[name], f"{name} differs between two builds"


def test_checkpoint_layout_like_gemma2(tiny_models):
    from safetensors import safe_open

    path = tiny_models["parent_a"]
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["model_type"] == "gemma2" and cfg["architectures"] == ["Gemma2ForCausalLM"]
    assert cfg["tie_word_embeddings"] is True
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
        assert f.get_tensor("model.embed_tokens.weight").shape == (cfg["vocab_size"], cfg["hidden_size"])
    assert "model.embed_tokens.weight" in keys and not any("lm_head" in k for k in keys)
    assert 1000 <= cfg["vocab_size"] <= 2048
    tok_cfg = json.loads((path / "tokenizer_config.json").read_text())
    assert tok_cfg["add_bos_token"] is True and "<start_of_turn>" in tok_cfg["chat_template"]


def test_loads_with_transformers_and_tokenizes_like_gemma(loaded):
    tok, model = loaded
    assert type(model).__name__ == "Gemma2ForCausalLM"
    assert len(tok) == model.config.vocab_size
    for name, tid in {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}.items():
        assert tok.convert_tokens_to_ids(name) == tid
    text = "Find $\\boxed{42}$ (A) True, café 😀"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.unk_token_id not in ids  # byte fallback covers every character
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_chat_template_renders_gemma_turns(loaded):
    tok, _ = loaded
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Q?"}]
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert text == ("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
                    "<start_of_turn>user\nQ?<end_of_turn>\n<start_of_turn>model\n")
    ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert ids.count(tok.bos_token_id) == 1
    assert tok.convert_tokens_to_ids("<start_of_turn>") in ids


@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize("name", sorted(DEMO_SEEDS))
def test_greedy_generation_is_varied_text(tiny_models, name, chat):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models[name])
    model = AutoModelForCausalLM.from_pretrained(tiny_models[name])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: more threads only add sync overhead (10x slower on 2 busy cores)
    try:
        _check_generations(tok, model, chat)
    finally:
        torch.set_num_threads(threads)


def _check_generations(tok, model, chat: bool) -> None:
    import torch

    for prompt in PROMPTS:
        if chat:
            enc = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)
        else:
            enc = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=48, do_sample=False)
        new = out[0, enc["input_ids"].shape[1]:].tolist()
        text = tok.decode(new, skip_special_tokens=True)
        assert text.strip(), f"empty/whitespace-only generation for {prompt!r}"
        assert len(set(new)) >= 8, f"generation repeats a few tokens: {text!r}"


def test_two_seeds_differ(tiny_models):
    a, b = (_files(tiny_models[n]) for n in ("parent_a", "parent_b"))
    assert a["model.safetensors"] != b["model.safetensors"]
    assert a["tokenizer.json"] == b["tokenizer.json"]  # same tokenizer, so they can be merged
    assert a["config.json"] == b["config.json"]


def test_demo_models_reused_not_rebuilt(tiny_models):
    root = tiny_models["parent_a"].parent
    stamps = {n: (p / "model.safetensors").stat().st_mtime_ns for n, p in tiny_models.items()}
    again = build_demo_models(root)
    assert again == tiny_models
    assert {n: (p / "model.safetensors").stat().st_mtime_ns for n, p in again.items()} == stamps


def test_half_built_or_stale_folder_is_rebuilt(tmp_path, tiny_models):
    root = tmp_path / "fx"
    # parent_a: a half-built folder (no marker); parent_b: a complete copy whose weights were damaged;
    # candidate: a complete copy from another builder version.
    (root / "parent_a").mkdir(parents=True)
    (root / "parent_a" / "config.json").write_text("{}")
    shutil.copytree(tiny_models["parent_b"], root / "parent_b")
    (root / "parent_b" / "model.safetensors").write_bytes(b"broken")
    shutil.copytree(tiny_models["candidate"], root / "candidate")
    meta = json.loads((root / "candidate" / MARKER).read_text())
    meta["builder_version"] = -1
    (root / "candidate" / MARKER).write_text(json.dumps(meta))

    built = build_demo_models(root)
    for name, path in built.items():
        assert _files(path) == _files(tiny_models[name]), name
    assert sorted(p.name for p in root.iterdir()) == ["candidate", "parent_a", "parent_b"]  # no temp left


def test_failed_build_leaves_no_folder(tmp_path):
    with pytest.raises(Exception):
        build_tiny_gemma2(tmp_path / "bad", seed=1, intermediate_size=-1)  # fails inside the build
    assert list(tmp_path.iterdir()) == []


def test_cli_builds_and_prints_paths(tmp_path, tiny_models):
    out = tmp_path / "cli"
    shutil.copytree(tiny_models["parent_a"].parent, out)  # reuse: the CLI must not rebuild
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "evalsuite.cli.main", "fixtures", "build", "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split("\t") for line in proc.stdout.strip().splitlines())
    assert set(lines) == set(DEMO_SEEDS)
    assert all(Path(p).is_dir() and Path(p).parent == out.resolve() for p in lines.values())
