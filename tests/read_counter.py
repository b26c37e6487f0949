"""Count how often one process reads the stored lm-eval files (tests and bench/read_counts.py).

Every open of a `results_*.json` or `samples_*.jsonl` file is recorded with what it was for,
from the functions on the stack: `hash` (only hashed: `fsio.file_sha256`), `parse+hash` (a
samples file parsed with its digest checked in the same pass: `read_samples(..., sha256=...)`),
`parse` (read to be decoded), `records` (a few full records re-read by offset: `samples.read_records`, the report's
sample browser), `copy` (`shutil.copyfile`); opens of job records (`job.json`) are counted too (kind `job`).
Writes are not counted. A results file is decoded
as JSON at every `parse` open. Paths are
keyed by job: a job's temp folder (`jobs/.tmp-<job>-<pid>`) counts as the job folder.
"""

from __future__ import annotations

import builtins
import io
import re
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

_NAME = re.compile(r"^(results|samples)_.+\.jsonl?$")
_TMP = re.compile(r"/\.tmp-(?P<job>.+?)-\d+/")


def _purpose(frame) -> str:
    f = frame
    while f is not None:
        name = f.f_code.co_name
        if name == "file_sha256":
            return "hash"
        if name == "read_samples":
            return "parse+hash" if f.f_locals.get("sha256") else "parse"
        if name in ("_read_lines", "read_records"):  # a few records re-read by offset (samples.read_records)
            return "records"
        if name == "copyfile":
            return "copy"
        f = f.f_back
    return "parse"


class ReadCounts:
    def __init__(self) -> None:
        self.opens: Counter = Counter()  # (kind, key, purpose) -> count

    def record(self, path, frame) -> None:
        p = str(path)
        name = Path(p).name
        if name == "job.json":
            kind = "job"
        elif not _NAME.match(name) or name.startswith("process_results_"):
            return
        else:
            kind = "results" if name.startswith("results_") else "samples"
        self.opens[(kind, _TMP.sub(lambda m: f"/{m['job']}/", p), _purpose(frame))] += 1

    def per_file(self, kind: str, purposes: tuple[str, ...]) -> Counter:
        out: Counter = Counter()
        for (k, key, purpose), n in self.opens.items():
            if k == kind and purpose in purposes:
                out[key] += n
        return out

    def summary(self) -> dict:
        parses = self.per_file("results", ("parse",))
        hashes = self.per_file("samples", ("hash", "parse+hash"))
        reads = self.per_file("samples", ("hash", "parse+hash", "parse"))
        opens = {kind: self.per_file(kind, ("hash", "parse+hash", "parse", "records", "copy")) for kind in ("job", "results", "samples")}
        results_files = {k for (kind, k, _) in self.opens if kind == "results"}
        samples_files = {k for (kind, k, _) in self.opens if kind == "samples"}
        return dict(
            results_files=len(results_files), results_parses=sum(parses.values()),
            results_parses_max=max(parses.values(), default=0),
            results_hashes=sum(self.per_file("results", ("hash",)).values()),
            samples_files=len(samples_files), samples_hashes=sum(hashes.values()),
            samples_hashes_max=max(hashes.values(), default=0),
            samples_full_reads=sum(reads.values()), samples_full_reads_max=max(reads.values(), default=0),
            opens_max={kind: max(c.values(), default=0) for kind, c in opens.items()},
        )


@contextmanager
def count_reads():
    """Record the opens of lm-eval's results and samples files made in this process."""
    counts = ReadCounts()
    real_open, real_io_open = builtins.open, io.open

    def counting_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, Path)) and not any(c in mode for c in "wax+"):  # reads only
            counts.record(file, sys._getframe(1))
        return real_open(file, mode, *args, **kwargs)

    builtins.open = counting_open
    io.open = counting_open
    try:
        yield counts
    finally:
        builtins.open, io.open = real_open, real_io_open
