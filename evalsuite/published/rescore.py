"""Re-scoring published samples with the installed lm-eval: every per-sample metric recomputed by
the task's own `process_results(doc, results)` from the recorded responses (multiple choice: the
(loglikelihood, is_greedy) pairs; generation: the filtered strings), agreement with the recorded
values counted, and the benchmark aggregated by lm-eval into its results layout. Tasks are built
without their datasets (`evalsuite.lm_eval_api.build_task`).

MATH: files of task version <= 2 (before Math-Verify) carry `exact_match` from the original
parser and no `exact_match_original`; there the recorded `exact_match` is compared with the
recomputed `exact_match_original`, and both parsers' values are stored.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, Field

from evalsuite.data.nltk_data import ensure_punkt_tab
from evalsuite.errors import UserError
from evalsuite.lm_eval_api import aggregate, build_group
from evalsuite.published.source import Selection, records
from evalsuite.lm_eval_api import PER_TASK_KEYS
from evalsuite.results.store import Store
from evalsuite.suite import Benchmark

MATH_OLD_NOTE = "exact_match (original parser, task version <= 2) compared with recomputed exact_match_original"


class TaskAgreement(BaseModel):
    """How the recorded per-sample metric values of one task compare with the recomputed ones."""

    task: str
    records: int = 0
    compared: int = 0  # recorded metric values compared
    agree: int = 0
    filled: list[str] = Field(default_factory=list)  # metrics the records lacked (computed now)
    notes: list[str] = Field(default_factory=list)
    mismatches: list[str] = Field(default_factory=list)  # the first few, "doc 3 acc_norm: 1.0 -> 0.0"

    @property
    def rate(self) -> Optional[float]:
        return self.agree / self.compared if self.compared else None


@contextmanager
def nltk_for_ifeval(store: Store, needed: bool):
    """punkt_tab for IFEval, offline: NLTK_DATA (and nltk's search path, if nltk is loaded) point at
    it while re-scoring, and are put back afterwards (the caller's process keeps its own setup)."""
    if not needed:
        yield
        return
    folder = store.root / "nltk_data"
    status = ensure_punkt_tab(folder, offline=True)
    if status.kind == "missing":
        raise UserError(f"NLTK punkt_tab is needed to re-score IFEval and is not available offline: {status.detail}")
    path = str(status.path.parent.parent.parent) if status.path else str(folder)
    saved_env = os.environ.get("NLTK_DATA")
    os.environ["NLTK_DATA"] = os.pathsep.join([path, *[p for p in (saved_env or "").split(os.pathsep) if p and p != path]])
    saved_path = None
    if "nltk" in sys.modules:
        import nltk  # only when already loaded: nltk reads NLTK_DATA when first imported (and takes ~3 s)

        saved_path = list(nltk.data.path)
        if path not in nltk.data.path:
            nltk.data.path.insert(0, path)
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("NLTK_DATA", None)
        else:
            os.environ["NLTK_DATA"] = saved_env
        if saved_path is not None:
            import nltk

            nltk.data.path[:] = saved_path


def _bool(v: Any) -> Any:
    if isinstance(v, str):
        if v == "True":
            return True
        if v == "False":
            return False
    return v


def results_from_record(rec: dict, output_type: str, path: Path, lineno: int) -> list:
    """What lm-eval passed to process_results, from the record's `filtered_resps` (either form)."""
    fr = rec["filtered_resps"]
    if output_type in ("multiple_choice", "loglikelihood"):
        out = []
        for item in fr:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise UserError(f"{path}: line {lineno}: filtered_resps is not (loglikelihood, is_greedy) pairs")
            try:
                ll = float(item[0])
            except (TypeError, ValueError):
                raise UserError(f"{path}: line {lineno}: loglikelihood {item[0]!r} is not a number") from None
            greedy = _bool(item[1])
            if not isinstance(greedy, bool):
                raise UserError(f"{path}: line {lineno}: is_greedy {item[1]!r} is not a boolean")
            out.append((ll, greedy))
        return out
    if not all(isinstance(x, str) for x in fr):
        raise UserError(f"{path}: line {lineno}: filtered_resps of a generation task are not strings")
    return list(fr)


def _json_value(v: Any) -> Any:
    from lm_eval.utils import handle_non_serializable

    return json.loads(json.dumps(v, default=handle_non_serializable))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (bool, int, float)) and isinstance(b, (bool, int, float)):
        return float(a) == float(b)
    return a == b


def tracker_record(rec: dict, metrics: dict) -> dict:
    """The record as lm-eval's EvaluationTracker writes it, with the recomputed metric values."""
    from lm_eval.utils import hash_string, handle_non_serializable, sanitize_list

    args = rec["arguments"]
    if isinstance(args, list):  # the in-memory form: one (prompt, continuation/gen kwargs) per request
        args = {f"gen_args_{i}": {f"arg_{j}": a for j, a in enumerate(arg)} for i, arg in enumerate(args)}
    first_prompt = args.get("gen_args_0", {}).get("arg_0", "") if isinstance(args, dict) else ""
    target = rec.get("target", "")
    out = {
        "doc_id": rec["doc_id"],
        "doc": rec["doc"],
        "target": str(target),
        "arguments": args,
        "resps": sanitize_list(rec["resps"]),
        "filtered_resps": sanitize_list(rec["filtered_resps"]),
        "filter": rec.get("filter", "none"),
        "metrics": list(metrics),
        "doc_hash": rec.get("doc_hash") or hash_string(json.dumps(rec["doc"], indent=2, default=handle_non_serializable, ensure_ascii=False)),
        "prompt_hash": rec.get("prompt_hash") or hash_string(first_prompt),
        "target_hash": rec.get("target_hash") or hash_string(str(target)),
    }
    out.update(metrics)
    return out


def first_doc(path: Path) -> dict:
    for _, rec in records(path):
        return rec["doc"]
    raise UserError(f"{path}: no records")  # excluded by validate


def recorded_math_verify(sel: Selection, task: str) -> bool:
    """Did the source's own task code score `exact_match` with Math-Verify? lm-eval keeps the
    source text of `process_results` in `configs.<task>`: the HF fork's `main` (task version 2.0,
    the leaderboard's Feb 2025 re-scoring) calls `verify(`, the original parser `is_equiv(`."""
    cfg = (sel.raw.get("configs") or {}).get(task) if isinstance(sel.raw.get("configs"), dict) else None
    return isinstance(cfg, dict) and "verify(" in str(cfg.get("process_results", ""))


def rescore_task(task, name: str, path: Path, out_path: Path, math_verify_recorded: bool = False) -> tuple[dict, TaskAgreement]:
    """Re-score one samples file with the task's process_results; write the re-scored records
    (EvaluationTracker form) to out_path. Returns lm-eval's raw_metrics and the agreement.
    `math_verify_recorded`: a MATH file without `exact_match_original` whose `exact_match` is
    Math-Verify's (the fork's main), not the original parser's."""
    from lm_eval.utils import handle_non_serializable

    raw: dict[tuple[str, str], list] = defaultdict(list)
    agr = TaskAgreement(task=name)
    filled: set[str] = set()
    old_math = False
    with out_path.open("w", encoding="utf-8") as out:
        for lineno, rec in records(path):
            results = results_from_record(rec, task.OUTPUT_TYPE, path, lineno)
            try:
                metrics = task.process_results(rec["doc"], results)
            except Exception as exc:  # the records do not fit the installed task (another dataset?)
                raise UserError(f"{path}: line {lineno}: lm-eval's {name}.process_results failed on this record "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
            filt = str(rec.get("filter", "none"))
            agr.records += 1
            for metric, value in metrics.items():
                raw[(metric, filt)].append(value)
                recorded_key = metric
                if metric == "exact_match_original" and metric not in rec and "exact_match" in rec and not math_verify_recorded:
                    recorded_key, old_math = "exact_match", True  # the original parser's value (version <= 2)
                elif metric == "exact_match" and "exact_match_original" not in rec and "exact_match_original" in metrics and not math_verify_recorded:
                    filled.add(metric)  # Math-Verify's verdict did not exist yet
                    continue
                if recorded_key not in rec:
                    filled.add(metric)
                    continue
                agr.compared += 1
                new = _json_value(value)
                if _same(rec[recorded_key], new):
                    agr.agree += 1
                elif len(agr.mismatches) < 5:
                    agr.mismatches.append(f"doc {rec['doc_id']} {metric}: recorded {rec[recorded_key]!r}, recomputed {new!r}")
            out.write(json.dumps(tracker_record(rec, metrics), default=handle_non_serializable, ensure_ascii=False) + "\n")
    agr.filled = sorted(filled)
    if old_math:
        agr.notes.append(MATH_OLD_NOTE)
    return raw, agr


def sanitize_model_name(name: str) -> str:
    """lm-eval's EvaluationTracker folder name for a model."""
    return re.sub(r"[\"<>:/\|\\?\*\[\]]+", "__", name)


def benchmark_results(sel: Selection, bench: Benchmark, tm, tasks: dict, raw_metrics: dict, name: str, meta: dict) -> dict:
    """lm-eval's results JSON for one benchmark, aggregated by lm-eval from the recomputed values."""
    acc = {t: {"task": tasks[t], "raw_metrics": raw_metrics[t], "logged_samples": []} for t in bench.leaf_tasks}
    groups = {}
    if bench.group not in bench.leaf_tasks:
        g = build_group(tm, bench.group, tasks)
        if g is not None:
            groups[g.name] = g
    res = aggregate(acc, groups, bootstrap_iters=100000)
    src = sel.raw
    for t in bench.leaf_tasks:  # the dataset's size is the source's: lm-eval saw only one document here
        original = (src.get("n-samples", {}).get(t) or {}).get("original")
        if original is not None:
            res["n-samples"][t]["original"] = original
    mine = {bench.group, *bench.leaf_tasks}
    out: dict[str, Any] = {k: res[k] for k in ("results", "groups", "group_subtasks", "configs", "versions") if k in res}
    shots = src.get("n-shot") if isinstance(src.get("n-shot"), dict) else {}
    out["n-shot"] = {t: shots.get(t, res["n-shot"].get(t)) for t in sorted(res["n-shot"]) if t in mine}
    out["higher_is_better"] = res["higher_is_better"]
    out["n-samples"] = res["n-samples"]
    for k, v in src.items():
        if k in out or k == "samples":
            continue
        out[k] = {t: x for t, x in v.items() if t in mine} if k in PER_TASK_KEYS and isinstance(v, dict) else v
    out["model_name"] = name
    out["model_name_sanitized"] = sanitize_model_name(name)
    out["evalsuite_import"] = meta
    return out
