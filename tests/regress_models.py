"""A tiny fixture model fine-tuned (CPU, seconds) to answer the fixture BBH documents correctly.

`train_good_model` reads lm-eval's own requests from a finished BBH job's samples_*.jsonl (the
exact contexts and continuations lm-eval scored) and trains the model so the gold continuation
gets the highest length-normalized log-likelihood, the quantity behind acc_norm. It gives the
regression gate a real model that is truly better than the untrained one. The fine-tuned copy
makes every attention layer local (sliding window 16), so training needs only the last 96 tokens
of each context yet matches lm-eval's whole-context scores exactly; about 50 s on one CPU thread.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Doc:
    """One multiple-choice document as lm-eval asked it: a context, its continuations, the gold."""

    context: str
    continuations: list[str]
    gold: int


def read_docs(samples_files: list[Path]) -> list[Doc]:
    """The documents of lm-eval samples files, in file then doc_id order."""
    docs = []
    for path in sorted(samples_files):
        for line in path.read_text().splitlines():
            s = json.loads(line)
            args = [s["arguments"][k] for k in sorted(s["arguments"], key=lambda k: int(k.rsplit("_", 1)[1]))]
            contexts = {a["arg_0"] for a in args}
            assert len(contexts) == 1, f"{path.name}: choices of doc {s['doc_id']} differ in context"
            continuations = [a["arg_1"] for a in args]
            golds = [i for i, c in enumerate(continuations) if c.strip() == str(s["target"]).strip()]
            assert len(golds) == 1, f"{path.name}: no single gold choice for doc {s['doc_id']}"
            docs.append(Doc(contexts.pop(), continuations, golds[0]))
    return docs


def _encode(tok, doc: Doc):
    """Split as lm-eval's HF model does (encode context and context+continuation; the continuation
    is the rest), as (prefix shared by every choice, per-choice remainder, scored span in it)."""
    ctx = len(tok(doc.context)["input_ids"])
    wholes = [tok(doc.context + cont)["input_ids"] for cont in doc.continuations]
    p = 0
    while p < ctx - 1 and all(len(w) > p and w[p] == wholes[0][p] for w in wholes):
        p += 1
    return wholes[0][:p], [w[p:] for w in wholes], [(ctx - p, len(w) - p) for w in wholes]


def _normalized_lls(model, encoded, lengths, grad_context: bool):
    """Per-choice sum of continuation log-probabilities divided by the choice's character length.
    The shared prefix runs once (its KV cache repeated per choice); without `grad_context` no
    gradient flows into it (cheap, and enough to learn these few documents)."""
    import torch

    prefix, rests, spans = encoded
    with torch.set_grad_enabled(grad_context and torch.is_grad_enabled()):
        cache = model(input_ids=torch.tensor([prefix]), use_cache=True).past_key_values
    cache.batch_repeat_interleave(len(rests))
    width = max(len(r) for r in rests)
    ids = torch.zeros(len(rests), width, dtype=torch.long)
    mask = torch.zeros(len(rests), len(prefix) + width, dtype=torch.long)
    mask[:, : len(prefix)] = 1
    for i, r in enumerate(rests):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, len(prefix) : len(prefix) + len(r)] = 1
    logits = model(input_ids=ids, attention_mask=mask, cache=cache).logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    out = []
    for i, (start, end) in enumerate(spans):
        targets = ids[i, start:end]
        out.append(logp[i, start - 1 : end - 1].gather(-1, targets[:, None]).sum() / lengths[i])
    return torch.stack(out)


def accuracy(model, tok, docs: list[Doc]) -> float:
    """acc_norm of `model` on `docs`, computed like lm-eval (argmax of ll / character length)."""
    import torch

    right = 0
    with torch.no_grad():
        for doc in docs:
            lengths = [float(len(c.lstrip(" "))) for c in doc.continuations]
            right += int(_normalized_lls(model, _encode(tok, doc), lengths, False).argmax()) == doc.gold
    return right / len(docs)


def train_good_model(base: Path, samples_files: list[Path], dest: Path, *, epochs: int = 30,
                     lr: float = 3e-3, seed: int = 0, grad_context: bool = True, window: int = 16) -> float:
    """Fine-tune the model in folder `base` on the documents of `samples_files` and save it (with
    its tokenizer) to folder `dest`. Returns its acc_norm on them, computed here
    like lm-eval (on the whole contexts)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    docs = read_docs(samples_files)
    tok = AutoTokenizer.from_pretrained(base)
    config = AutoConfig.from_pretrained(base)
    # Every layer local: a position sees only the last layers * window tokens, so training on that
    # tail of each context gives exactly the log-likelihoods lm-eval computes on the whole of it.
    config.layer_types = ["sliding_attention"] * config.num_hidden_layers
    config.sliding_window = window
    model = AutoModelForCausalLM.from_pretrained(base, config=config, dtype=torch.float32)
    reach = config.num_hidden_layers * window
    encoded = [(prefix[-reach:], rests, spans) for prefix, rests, spans in (_encode(tok, d) for d in docs)]
    lengths = [[float(len(c.lstrip(" "))) for c in d.continuations] for d in docs]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for i in torch.randperm(len(docs), generator=order).tolist():
            scores = _normalized_lls(model, encoded[i], lengths[i], grad_context)
            doc = docs[i]
            loss = torch.nn.functional.cross_entropy(scores[None], torch.tensor([doc.gold]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    model.eval()
    after = accuracy(model, tok, docs)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return after
