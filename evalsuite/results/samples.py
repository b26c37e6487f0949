"""lm-eval samples files: one model's per-document metric values of one leaf task (`TaskDocs`),
read in one pass over memory-mapped windows (prompts and outputs are not decoded), checked against
the sha256 the run recorded in the same pass; full records re-read from their line on demand,
through the handle the parse opened (kept while the TaskDocs lives, at most KEEP_OPEN at a time),
so a file is opened once for all of it. Documents of two models pair on (doc_id, doc_hash)."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import weakref
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from evalsuite.errors import UserError
from evalsuite.suite import Benchmark
from evalsuite.textio import decode

SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")
_HEAD = re.compile(rb'\{"doc_id": (-?\d+),')  # used with match(buf, start): anchored at the line
_TAIL = b'"filter": '
KEEP_OPEN = 256  # samples files whose parse handle is kept for later record reads (bounds open fds)
_kept: list[int] = [0]


@dataclass
class TaskDocs:
    """One model's per-document metric values for one lm-eval leaf task.

    `values[metric] = (numerator, denominator)` per document: a scalar metric v is (v, 1); a list
    metric (IFEval's `inst_level_strict_acc`, one entry per instruction) is (sum, len), so the raw
    task value of any subset is sum(num) / sum(den) — lm-eval's mean, and its flattened
    instruction-level mean for IFEval.
    """

    task: str
    doc_ids: np.ndarray  # int64, ascending
    doc_hash: np.ndarray  # str, aligned with doc_ids
    values: dict[str, tuple[np.ndarray, np.ndarray]]
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # byte offset of each line
    path: Optional[Path] = None
    handle: Optional[Any] = field(default=None, repr=False, compare=False)  # the parse's open file, if kept

    def keep(self, fh) -> None:
        """Keep `fh` (the file this was parsed from) for read_records; closed when self is collected."""
        if _kept[0] >= KEEP_OPEN:
            fh.close()
            return
        _kept[0] += 1
        self.handle = fh
        weakref.finalize(self, _release, fh)

    def __len__(self) -> int:
        return len(self.doc_ids)

    def raw(self, metric: str, idx: Optional[np.ndarray] = None) -> float:
        """The raw task value (lm-eval's mean) of all documents, or of those at `idx`."""
        num, den = self.values[metric]
        if idx is not None:
            num, den = num[idx], den[idx]
        total = float(den.sum())
        return float(num.sum()) / total if total else 0.0

    def correct(self, metric: str) -> np.ndarray:
        """Per-document correctness (bool) of a 0/1 metric."""
        num, den = self.values[metric]
        return num >= 0.5 * den

    @classmethod
    def from_values(cls, task: str, values: Mapping[str, Sequence], doc_ids: Optional[Sequence[int]] = None,
                    doc_hash: Optional[Sequence[str]] = None) -> "TaskDocs":
        """Build from plain per-document values (numbers, bools, or lists for list metrics)."""
        first = next(iter(values.values()))
        n = len(first)
        ids = np.arange(n, dtype=np.int64) if doc_ids is None else np.asarray(doc_ids, dtype=np.int64)
        hashes = np.array([f"{task}:{i}" for i in ids] if doc_hash is None else list(doc_hash), dtype=str)
        vals = {m: _num_den(list(v)) for m, v in values.items()}
        order = np.argsort(ids, kind="stable")
        return cls(task, ids[order], hashes[order], {m: (a[order], b[order]) for m, (a, b) in vals.items()})


def _release(fh) -> None:
    fh.close()
    _kept[0] -= 1


def _num_den(column: list) -> tuple[np.ndarray, np.ndarray]:
    num = np.empty(len(column), dtype=np.float64)
    den = np.ones(len(column), dtype=np.float64)
    for i, v in enumerate(column):
        if isinstance(v, (list, tuple)):
            num[i] = float(sum(bool(x) if isinstance(x, bool) else float(x) for x in v))
            den[i] = float(len(v))
        else:
            num[i] = float(v)
    return num, den


def pair_docs(a: TaskDocs, b: TaskDocs) -> tuple[np.ndarray, np.ndarray, int]:
    """Indices (into a, into b) of documents both answered, and how many ids had other content."""
    _, ia, ib = np.intersect1d(a.doc_ids, b.doc_ids, assume_unique=True, return_indices=True)
    same = a.doc_hash[ia] == b.doc_hash[ib]
    return ia[same], ib[same], int((~same).sum())



def task_of_samples_file(path: Path) -> Optional[str]:
    m = SAMPLES_NAME.match(Path(path).name)
    return m.group("task") if m else None


def _parse_line(buf: bytes, start: int, end: int) -> tuple[int, dict]:
    """(doc_id, the small trailing fields) of the line buf[start:end], without decoding prompts
    and outputs.

    lm-eval writes `doc_id` first and `filter, metrics, doc_hash, ..., <metric values>` last; the
    last `"filter": ` is the top-level key (JSON strings escape quotes, and nothing after it holds
    objects). Anything unexpected falls back to a full parse."""
    head = _HEAD.match(buf, start, end)
    cut = buf.rfind(_TAIL, start, end)
    if head is not None and cut > start:
        try:
            tail = json.loads(b"{" + buf[cut:end])
            if isinstance(tail, dict) and "doc_hash" in tail:
                return int(head.group(1)), tail
        except ValueError:
            pass
    rec = json.loads(buf[start:end])
    return int(rec["doc_id"]), rec


def _lines(fh, digest=None, window: int = 1 << 26):
    """(file offset, buffer, start, end) of each non-empty line. The file is mapped a window at a
    time (no copies of long prompts; resident memory bounded by the window and longest line).
    `digest` (a hashlib object), if given, is fed every byte of the file once, in order."""
    size = os.fstat(fh.fileno()).st_size
    gran = mmap.ALLOCATIONGRANULARITY
    start = 0  # file offset of the next line
    while start < size:
        base = start - start % gran
        length = min(size - base, window)
        with mmap.mmap(fh.fileno(), length, access=mmap.ACCESS_READ, offset=base) as mm:
            first = start - base
            pos = first
            while True:
                nl = mm.find(b"\n", pos)
                if nl < 0:
                    if base + length >= size:  # last line, no final newline
                        if mm[pos:length].strip():
                            yield base + pos, mm, pos, length
                        pos = length
                    elif pos == first:  # a line longer than the window
                        window *= 2
                    break
                if nl - pos > 1 or mm[pos:nl].strip():
                    yield base + pos, mm, pos, nl
                pos = nl + 1
            if digest is not None and pos > first:
                with memoryview(mm) as view, view[first:pos] as part:  # no copy of the window
                    digest.update(part)
            start = base + pos


def read_samples(path: Path, metrics: Sequence[str], task: Optional[str] = None, sha256: Optional[str] = None) -> TaskDocs:
    """One `samples_<task>_<date>.jsonl` -> TaskDocs for the given metric keys (`name,filter`).

    `sha256`: the digest the run recorded for the file; checked in the same pass (UserError if the
    file changed since)."""
    path = Path(path)
    task = task or task_of_samples_file(path) or path.stem
    wanted = [(m, *m.split(",", 1)) if "," in m else (m, m, "none") for m in metrics]
    ids: list[int] = []
    hashes: list[str] = []
    offsets: list[int] = []
    cols: dict[str, list] = {m: [] for m in metrics}
    seen: set[int] = set()
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read samples file ({exc.strerror})") from exc
    digest = hashlib.sha256() if sha256 else None
    try:
        for lineno, (start, buf, a, b) in enumerate(_lines(fh, digest), 1):
            try:
                doc_id, rec = _parse_line(buf, a, b)
            except (ValueError, KeyError, TypeError) as exc:
                if isinstance(exc, UnicodeDecodeError):  # the one rule's message (evalsuite/textio.py)
                    decode(bytes(buf[a:b]), path, offset=start, line=lineno)
                raise UserError(f"{path}: record {lineno}: not an lm-eval samples record ({str(exc).splitlines()[0]})") from exc
            filt = rec.get("filter", "none")
            row = {}
            for key, name, want_filter in wanted:
                if want_filter == filt:
                    if name not in rec:
                        raise UserError(f"{path}: record {lineno}: metric {name!r} missing from the sample")
                    row[key] = rec[name]
            if not row:
                continue  # a record of another filter
            if len(row) != len(wanted):
                raise UserError(f"{path}: record {lineno}: metrics {list(metrics)} come from different filters")
            if doc_id in seen:
                raise UserError(f"{path}: record {lineno}: doc_id {doc_id} appears twice")
            seen.add(doc_id)
            ids.append(doc_id)
            hashes.append(str(rec.get("doc_hash", "")))
            offsets.append(start)
            for key in metrics:
                cols[key].append(row[key])
        if digest is not None and digest.hexdigest() != sha256:
            raise UserError(f"{path}: changed since the run recorded it (sha256 differs); rerun `evalsuite run`")
    except BaseException:
        fh.close()
        raise
    docs = TaskDocs.from_values(task, cols, ids, hashes) if ids else TaskDocs(
        task, np.zeros(0, np.int64), np.zeros(0, str), {m: (np.zeros(0), np.zeros(0)) for m in metrics})
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    docs.offsets = np.asarray(offsets, dtype=np.int64)[order] if ids else np.zeros(0, np.int64)
    docs.path = path
    docs.keep(fh)
    return docs


def read_records(docs: TaskDocs, positions: Sequence[int]) -> dict[int, dict]:
    """Full samples records at the given positions (indices into docs), re-read from their lines
    through the handle the parse kept (else one new open of the file)."""
    out: dict[int, dict] = {}
    if docs.path is None:
        return out
    fh = docs.handle if docs.handle is not None and not docs.handle.closed else None
    with (nullcontext(fh) if fh is not None else Path(docs.path).open("rb")) as fh:
        for i in sorted(positions):
            fh.seek(int(docs.offsets[i]))
            out[i] = json.loads(fh.readline())
    return out


def metrics_needed(bench: Benchmark) -> list[str]:
    """Every metric key a benchmark's scores use (main first, then extra scores)."""
    keys = list(bench.metrics)
    for e in bench.extra_scores:
        keys += [m for m in e.metrics if m not in keys]
    return keys


def read_benchmark_samples(bench: Benchmark, files: Sequence[Path], sha256: Optional[Mapping[Path, str]] = None) -> dict[str, TaskDocs]:
    """Samples files of one job -> leaf task -> TaskDocs (files of other tasks are ignored).
    `sha256` maps files to the digests the run recorded (checked while reading)."""
    by_task: dict[str, Path] = {}
    for f in files:
        t = task_of_samples_file(Path(f))
        if t in bench.leaf_tasks:
            if t in by_task:
                raise UserError(f"{f}: a second samples file for task {t} (also {by_task[t]})")
            by_task[t] = Path(f)
    missing = [t for t in bench.leaf_tasks if t not in by_task]
    if missing:
        where = Path(files[0]).parent if files else "the job folder"
        raise UserError(f"{where}: no samples file for task {missing[0]} ({bench.display}); rerun with sample logging")
    metrics = metrics_needed(bench)
    sha256 = sha256 or {}
    return {t: read_samples(by_task[t], metrics, t, sha256.get(by_task[t])) for t in bench.leaf_tasks}


# ---------------------------------------------------------------------------------------------
# one sample record's fields (the per-sample browser and verify read them)


def record_args(rec: dict) -> list[list[Any]]:
    """A sample record's request arguments, one list per request (prompt, then continuation or
    generation kwargs)."""
    args = rec.get("arguments")
    if isinstance(args, dict):  # lm-eval 0.4 logs {"gen_args_0": {"arg_0": ..., "arg_1": ...}, ...}
        return [list(v.values()) if isinstance(v, dict) else [v] for v in args.values()]
    if isinstance(args, list):
        return [a if isinstance(a, list) else [a] for a in args]
    return []


def prompt_of(rec: dict) -> str:
    args = record_args(rec)
    return str(args[0][0]) if args and args[0] else ""
