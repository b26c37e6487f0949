"""The per-sample browser's data: documents where the candidate and a parent disagree.

Model outputs are untrusted text: they are only ever passed to the template as plain strings
(jinja2 autoescapes them). Long prompts and outputs are cut, with a note.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Optional

import numpy as np
from pydantic import BaseModel

from evalsuite.results.samples import pair_docs, prompt_of, read_records, record_args
from evalsuite.suite import Suite

if TYPE_CHECKING:
    from evalsuite.study import Study

PROMPT_CHARS = 3000  # the end of the prompt: the question sits after the few-shot examples
OUTPUT_CHARS = 4000


class Side(BaseModel):
    output: str
    prompt: Optional[str] = None  # only when it differs from the candidate's (chat template)


class Disagreement(BaseModel):
    parent: str
    benchmark: str
    bench_display: str
    task: str
    subtask: str
    doc_id: int
    outcome: str  # "candidate" (only the candidate right) or "parent"
    target: str
    prompt: str
    candidate: Side
    parent_side: Side


class BrowserSection(BaseModel):
    benchmark: str
    display: str
    total: int  # disagreements over all parents
    shown: int
    items: list[Disagreement]


def _cut_tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"[… {len(text) - limit:,} earlier characters not shown]\n" + text[-limit:]


def _cut_head(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[… {len(text) - limit:,} more characters not shown]"


def output_of(rec: dict, metric: str) -> str:
    """What the model answered: its generation, or for multiple choice each choice's
    log-likelihood with the one picked (length-normalized for acc_norm, as lm-eval does)."""
    args = record_args(rec)
    resps = rec.get("filtered_resps") or rec.get("resps") or []
    if args and len(args[0]) > 1 and isinstance(args[0][1], dict) or not args:  # generation
        first = resps[0] if resps else ""
        while isinstance(first, list) and first:
            first = first[0]
        return str(first)
    choices = [str(a[1]) if len(a) > 1 else "?" for a in args]
    lls: list[Optional[float]] = []
    for r in resps:
        while isinstance(r, list) and r and isinstance(r[0], list):
            r = r[0]
        try:
            lls.append(float(r[0] if isinstance(r, list) else r))
        except (TypeError, ValueError, IndexError):
            lls.append(None)
    if len(lls) != len(choices) or any(v is None for v in lls):
        return json.dumps(resps, ensure_ascii=False)[:OUTPUT_CHARS]
    scores = [v / max(1, len(c)) for v, c in zip(lls, choices)] if metric.startswith("acc_norm") else lls
    pick = int(np.argmax(scores))
    return "\n".join(f"{'▶' if i == pick else ' '} {c.strip():<24} log-likelihood {v:9.3f}" for i, (c, v) in enumerate(zip(choices, lls)))


def disagreements(study: "Study", suite: Suite, per_pair: int = 80) -> list[BrowserSection]:
    """For each benchmark and parent, up to `per_pair` disagreeing documents (round-robin over
    subtasks, in doc_id order, so every subtask shows up)."""
    cand = study.candidate
    sections: list[BrowserSection] = []
    for bench in suite.benchmarks:
        if bench.id not in study.docs.get(cand, {}):
            continue
        metric = bench.metrics[0]
        total = 0
        items: list[Disagreement] = []
        for parent in study.parents:
            if bench.id not in study.docs.get(parent, {}):
                continue
            queues: list[list[tuple[str, int, int, str]]] = []
            for task in bench.leaf_tasks:
                a = study.docs[cand][bench.id].get(task)
                b = study.docs[parent][bench.id].get(task)
                if a is None or b is None:
                    continue
                ia, ib, _ = pair_docs(a, b)
                ca, cb = a.correct(metric)[ia], b.correct(metric)[ib]
                diff = np.nonzero(ca != cb)[0]
                total += len(diff)
                queues.append([(task, int(ia[k]), int(ib[k]), "candidate" if ca[k] else "parent") for k in diff])
            picked: list[tuple[str, int, int, str]] = []
            depth = 0
            while len(picked) < per_pair and any(depth < len(q) for q in queues):
                for q in queues:
                    if depth < len(q) and len(picked) < per_pair:
                        picked.append(q[depth])
                depth += 1
            by_task: dict[str, list[tuple[int, int, str]]] = {}
            for task, i, j, outcome in picked:
                by_task.setdefault(task, []).append((i, j, outcome))
            for task, entries in by_task.items():
                a = study.docs[cand][bench.id][task]
                b = study.docs[parent][bench.id][task]
                ra = read_records(a, [i for i, _, _ in entries])
                rb = read_records(b, [j for _, j, _ in entries])
                for i, j, outcome in entries:
                    rec_a, rec_b = ra[i], rb[j]
                    pa, pb = prompt_of(rec_a), prompt_of(rec_b)
                    items.append(Disagreement(
                        parent=parent, benchmark=bench.id, bench_display=bench.display, task=task,
                        subtask=bench.short_name(task), doc_id=int(a.doc_ids[i]), outcome=outcome,
                        target=_cut_head(str(rec_a.get("target", "")), 500), prompt=_cut_tail(pa, PROMPT_CHARS),
                        candidate=Side(output=_cut_head(output_of(rec_a, metric), OUTPUT_CHARS)),
                        parent_side=Side(output=_cut_head(output_of(rec_b, metric), OUTPUT_CHARS),
                                         prompt=None if pb == pa else _cut_tail(pb, PROMPT_CHARS)),
                    ))
        items.sort(key=lambda d: (study.parents.index(d.parent), bench.leaf_tasks.index(d.task), d.doc_id))
        sections.append(BrowserSection(benchmark=bench.id, display=bench.display, total=total, shown=len(items), items=items))
    return sections
