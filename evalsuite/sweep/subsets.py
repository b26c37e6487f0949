"""Which documents each round evaluates: a seeded, stratified random subset of every leaf task.

Each leaf task is a stratum. Its documents are put in one seeded random order (a function of the
seed and the task name only); after round r a candidate has seen the first ceil(share_r x n) of
them (at least one more each round). The subset rounds are incremental: a round evaluates only
the documents new to it, through lm-eval's `--samples` (task -> document indices), never
`--limit` (the first documents are not a random sample). A task with fewer documents than rounds
repeats its first document in a round that has nothing new (lm-eval reads an empty list as "all
documents"). The last round is an ordinary job on every document (no `--samples`): a finalist's
scores are lm-eval's own numbers, and its job is the one `evalsuite run` or `strategy: full`
would make (shared with them), at the price of answering the subsets' documents once more.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Optional


def order(task: str, n: int, seed: int) -> list[int]:
    """The task's documents in the sweep's seeded random order."""
    ids = list(range(n))
    random.Random(f"evalsuite-sweep:{seed}:{task}").shuffle(ids)
    return ids


def cumulative_counts(n: int, shares: Sequence[float]) -> list[int]:
    """Documents seen after each round (the shares), then n after the last (full) round."""
    counts: list[int] = []
    for share in shares:
        prev = counts[-1] if counts else 0
        counts.append(min(n, max(prev + 1, math.ceil(share * n))))
    counts.append(n)
    return counts


def round_samples(n_docs: Mapping[str, int], shares: Sequence[float], seed: int, round_index: int) -> Optional[dict[str, list[int]]]:
    """`--samples` for round `round_index` (0-based): the documents new in that round, per task,
    sorted (lm-eval maps the k-th evaluated document to the k-th index given, so the list must be
    in dataset order); None for the last round (len(shares)): every document."""
    if round_index >= len(shares):
        return None
    out: dict[str, list[int]] = {}
    for task, n in n_docs.items():
        ids = order(task, n, seed)
        counts = cumulative_counts(n, shares)
        start = counts[round_index - 1] if round_index > 0 else 0
        new = ids[start:counts[round_index]]
        out[task] = sorted(new) if new else [ids[0]]
    return out
