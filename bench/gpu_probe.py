"""A probe of real throughput: a random-init Gemma-2 (no download) through evalsuite's
`hf-leaderboard` lm-eval model on a request mix shaped like the six leaderboard benchmarks,
measuring loglikelihood and generation time per document and extrapolating the whole study per
model (the suite's document counts, tasks/leaderboard_v2.yaml).

    python bench/gpu_probe.py                  # on a GPU: the 9B shape (Gemmaslerp2-9B's) in bf16
    python bench/gpu_probe.py --shape tiny     # anywhere: the tiny fixture shape (what the tests run)
    python bench/gpu_probe.py --json out.json  # the figures as JSON too

Per benchmark: `docs` documents are timed (each: its answer choices as loglikelihood requests on a
prompt of the benchmark's typical length, or one greedy generation of its full generation budget:
a random model never emits a stop sequence, so generation figures are the worst case). Prompt
lengths are estimates in tokens of the leaderboard's few-shot prompts (below), not measured on the
real data (this repo holds only fixture rows); choice counts and document counts are the suite's.
The extrapolation is lm-eval's batched time per document x documents, with `--batch-size`
requests per forward; it leaves out model load and lm-eval's start-up (docs/performance.md has
those).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Gemma-2 9B (Gemmaslerp2-9B's config.json) and the tiny fixture shape (evalsuite/fixtures/tiny.py)
SHAPES = {
    "9b": dict(hidden_size=3584, intermediate_size=14336, num_hidden_layers=42, num_attention_heads=16,
               num_key_value_heads=8, head_dim=256, vocab_size=256000),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=6, num_attention_heads=2,
                 num_key_value_heads=1, head_dim=32, vocab_size=None),  # None: the fixture tokenizer's
}

# benchmark -> (prompt tokens, estimate; generation budget in tokens, 0 = multiple choice)
SHAPE_OF_REQUESTS = {
    "ifeval": (80, 1280),      # 0-shot instruction; max_gen_toks 1280 (lm-eval's ifeval.yaml)
    "bbh": (700, 0),           # 3-shot chain-free prompts; choices per subtask from the suite
    "math_hard": (900, 1024),  # 4-shot; max_gen_toks 1024, stops at "Problem:" on a real model
    "gpqa": (250, 0),          # 0-shot, 4 choices
    "musr": (1100, 0),         # long narratives, 2-5 choices
    "mmlu_pro": (1500, 0),     # 5-shot, 10 choices
}


def build(shape: str, device: str, dtype: str):
    """(lm-eval model, tokenizer) for a random-init Gemma-2 of `shape` on `device`."""
    import torch
    from transformers import AutoTokenizer, Gemma2Config, Gemma2ForCausalLM

    from evalsuite.fixtures.tiny import build_tiny_gemma2
    from evalsuite.run.leaderboard_lm import LeaderboardHFLM

    tok_dir = build_tiny_gemma2(Path(tempfile.mkdtemp(prefix="gpu-probe-")) / "tok", seed=0)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    dims = dict(SHAPES[shape])
    dims["vocab_size"] = dims["vocab_size"] or len(tok)
    config = Gemma2Config(**dims, query_pre_attn_scalar=dims["head_dim"], max_position_embeddings=8192,
                          sliding_window=4096, pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=True)
    torch_dtype = getattr(torch, dtype)
    with torch.device(device):
        model = Gemma2ForCausalLM(config).to(torch_dtype).eval()
    lm = LeaderboardHFLM(pretrained=model, tokenizer=tok, dtype=dtype, device=device, batch_size=ARGS.batch_size)
    return lm, tok


def text_of(tok, n_tokens: int, rng: random.Random) -> str:
    ids = [rng.randrange(10, len(tok)) for _ in range(n_tokens)]
    return tok.decode(ids)


def probe(lm, tok, suite, docs: int, max_gen: int | None, rng: random.Random, prompt_scale: float = 1.0) -> dict:
    from lm_eval.api.instance import Instance

    out = {}
    for bench in suite.benchmarks:
        prompt, gen = SHAPE_OF_REQUESTS[bench.id]
        prompt = max(8, round(prompt * prompt_scale))
        n_docs = sum(bench.sizes.values())
        if gen:
            budget = min(gen, max_gen) if max_gen else gen
            reqs = [Instance(request_type="generate_until", doc={}, idx=0,
                             arguments=(text_of(tok, prompt, rng), {"until": ["<never>"], "max_gen_toks": budget, "do_sample": False}))
                    for _ in range(docs)]
            t = time.perf_counter()
            lm.generate_until(reqs)
            per_doc = (time.perf_counter() - t) / docs
            per_doc_full = per_doc * gen / budget  # decode time grows ~linearly with the tokens made
            out[bench.id] = dict(kind="generate", prompt_tokens=prompt, gen_tokens=budget, docs_timed=docs,
                                 s_per_doc=per_doc, tokens_per_s=budget / per_doc,
                                 study_s=per_doc_full * n_docs, documents=n_docs)
        else:
            choices = statistics.mean(bench.choices.values()) if bench.choices else 4
            k = max(2, round(choices)) if bench.id != "mmlu_pro" else 10
            reqs = []
            for _ in range(docs):
                ctx = text_of(tok, prompt, rng)
                reqs += [Instance(request_type="loglikelihood", doc={}, idx=i, arguments=(ctx, " " + text_of(tok, 3, rng)))
                         for i in range(k)]
            t = time.perf_counter()
            lm.loglikelihood(reqs)
            per_doc = (time.perf_counter() - t) / docs
            out[bench.id] = dict(kind="loglikelihood", prompt_tokens=prompt, choices=k, docs_timed=docs,
                                 s_per_doc=per_doc, study_s=per_doc * n_docs, documents=n_docs)
    return out


def main(argv=None) -> int:
    global ARGS
    import torch

    from evalsuite.suite import load_suite

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    cuda = torch.cuda.is_available()
    p.add_argument("--shape", choices=sorted(SHAPES), default="9b" if cuda else "tiny")
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--docs", type=int, default=4, help="documents timed per benchmark")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-gen", type=int, default=None, help="cap the generation budget timed (extrapolated to the full one)")
    p.add_argument("--prompt-scale", type=float, default=1.0, help="shrink the prompts (the tests' quick run); the figures then are not the study's")
    p.add_argument("--json", type=Path, default=None)
    ARGS = p.parse_args(argv)
    rng = random.Random(0)
    t = time.perf_counter()
    lm, tok = build(ARGS.shape, ARGS.device, ARGS.dtype)
    built = time.perf_counter() - t
    figures = probe(lm, tok, load_suite(), ARGS.docs, ARGS.max_gen, rng, ARGS.prompt_scale)
    total = sum(f["study_s"] for f in figures.values())
    device = torch.cuda.get_device_name(0) if ARGS.device.startswith("cuda") else "cpu"
    print(f"gpu_probe: Gemma-2 {ARGS.shape} shape, {ARGS.dtype}, {device}, batch {ARGS.batch_size}, model built in {built:.1f} s")
    print(f"{'benchmark':<10} {'kind':<14} {'prompt':>6} {'k/gen':>6} {'s/doc':>9} {'docs':>6} {'study':>10}")
    for bench, f in figures.items():
        print(f"{bench:<10} {f['kind']:<14} {f['prompt_tokens']:>6} {f.get('choices', f.get('gen_tokens')):>6} "
              f"{f['s_per_doc']:>9.4f} {f['documents']:>6} {f['study_s'] / 3600:>9.2f}h")
    print(f"whole study, one model: {total / 3600:.2f} h (extrapolated; model load and lm-eval start-up not included)")
    if ARGS.json:
        ARGS.json.write_text(json.dumps(dict(shape=ARGS.shape, dtype=ARGS.dtype, device=device, batch_size=ARGS.batch_size,
                                             benchmarks=figures, study_s=total), indent=1))
    return 0


ARGS = None

if __name__ == "__main__":
    sys.exit(main())
