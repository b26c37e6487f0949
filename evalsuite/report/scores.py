"""Renderings of leaderboard scores: the terminal table (rich), the `Grid` the CLI lays out to
fit the terminal, plain text for logs, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Optional

from evalsuite.report.tables import Grid
from evalsuite.schema import ModelScores
from evalsuite.suite import Suite, load_suite


def table_columns(suite: Optional[Suite] = None) -> list[str]:
    """Leaderboard column order: Average, then each benchmark (extra scores after their own)."""
    suite = suite or load_suite()
    return [suite.average, *suite.columns]


def render_table(scores: Sequence[ModelScores], suite: Optional[Suite] = None, title: Optional[str] = None):
    """A rich Table, two decimals; '—' where a benchmark was not run."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("Model", overflow="fold")
    cols = table_columns(suite)
    for c in cols:
        table.add_column(c, justify="right")
    for s in scores:
        cells = [s.model]
        for c in cols:
            v = s.value(c)
            inc = s.incomplete.get(c)
            cells.append(f"{inc.present}/{inc.tasks} tasks" if inc is not None else "—" if v is None else f"{v:.2f}")
        table.add_row(*cells)
    return table


def score_grid(scores: Sequence[ModelScores], suite: Optional[Suite] = None, title: Optional[str] = None):
    """`render_table`'s content as an `evalsuite.report.tables.Grid`: laid out to fit the terminal
    (model names never cut) or written as json/csv (unrounded values)."""
    cols = table_columns(suite)
    grid = Grid(title=title or "Open LLM Leaderboard v2 (normalized)", key="Model", columns=cols)
    for s in scores:
        vals = [s.value(c) for c in cols]
        cells = [f"{s.incomplete[c].present}/{s.incomplete[c].tasks} tasks" if c in s.incomplete
                 else "—" if v is None else f"{v:.2f}" for c, v in zip(cols, vals)]
        grid.add(s.model, cells, {"model": s.model, **dict(zip(cols, vals))})
    return grid


def note_lines(scores: Sequence[ModelScores]) -> list[str]:
    """The notes to print under a table: `note: <model>: <note>`, one line each."""
    return [f"note: {s.model}: {n}" for s in scores for n in s.notes]


def table_text(scores: Sequence[ModelScores], suite: Optional[Suite] = None, width: int = 200) -> str:
    """`render_table` as plain text (for logs and reports), its notes below it."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(render_table(scores, suite))
    for line in note_lines(scores):
        console.print(line, markup=False, highlight=False, overflow="fold")
    return console.export_text()


def to_json(scores: Sequence[ModelScores]) -> str:
    return json.dumps([s.to_json_dict() for s in scores], indent=2)


def to_csv(scores: Sequence[ModelScores], suite: Optional[Suite] = None) -> str:
    """Same columns as the table, unrounded values, empty cell where absent."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = table_columns(suite)
    writer.writerow(["Model", *cols])
    for s in scores:
        writer.writerow([s.model, *("" if (v := s.value(c)) is None else repr(v) for c in cols)])
    return buf.getvalue()
