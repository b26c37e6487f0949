"""Tables that fit the terminal without cutting what identifies a row.

A `Grid` is a table as data: a title, a header for the row names, value columns and rows. `fit`
turns it into rich renderables for a given width, trying three layouts in turn and keeping the
first whose *minimum* width fits:

1. wide: one row per entity (as the data is given); headers may wrap at spaces, cells never do;
2. transposed: one column per entity, one row per value column (few entities, many values);
3. stacked: one small two-column table per entity, titled by its name (always fits unless a name
   alone is wider than the terminal, in which case rich folds it rather than cutting it).

No layout ever truncates a cell: names, recipes and verdicts are printed whole. `to_json` and
`to_csv` give the same grid to scripts (`--format json|csv`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import textwrap
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from rich.console import Console, Group
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text


@dataclass
class Grid:
    title: str
    key: str  # header of the row names ("model", "candidate", "benchmark")
    columns: list[str]  # value columns' headers
    rows: list[tuple[str, list[str]]] = field(default_factory=list)  # (row name, rendered cells)
    right: Optional[set[str]] = None  # columns right-justified (default: all but `left`)
    left: set[str] = field(default_factory=set)  # columns left-justified (text: recipes, verdicts)
    styles: dict[tuple[int, str], str] = field(default_factory=dict)  # (row index, column) -> rich style
    data: list[dict[str, Any]] = field(default_factory=list)  # machine-readable rows (json/csv); default: the cells
    caption: Optional[str] = None
    wrap_key: bool = False  # row names may wrap at spaces (benchmark names); model names never do

    def add(self, name: str, cells: Sequence[Any], data: Optional[dict[str, Any]] = None) -> None:
        self.rows.append((str(name), [str(c) for c in cells]))
        if data is not None:
            self.data.append(data)

    def _justify(self, col: str) -> str:
        if col in self.left:
            return "left"
        return "right" if self.right is None or col in self.right else "left"

    # -- layouts: each returns (renderable, the fewest columns it needs without cutting a cell) --

    def wide(self, edge: bool = True) -> tuple[Table, int]:
        cols = [(self.key, "left", self.wrap_key, [n for n, _ in self.rows])]
        for j, c in enumerate(self.columns):
            values = [cells[j] for _, cells in self.rows]
            cols.append((_wrappable(c, values), self._justify(c), False, values))
        return _table(self, cols, edge, [[n, *cells] for n, cells in self.rows], [None, *self.columns])

    def transposed(self, edge: bool = True) -> tuple[Table, int]:
        cols = [("", "left", True, list(self.columns))]
        cols += [(n, "right", False, list(cells)) for n, cells in self.rows]
        body = [[c, *(cells[j] for _, cells in self.rows)] for j, c in enumerate(self.columns)]
        return _table(self, cols, edge, body, None)

    def stacked(self) -> Group:
        parts: list[Any] = [Text(self.title, style="italic", justify="center")] if self.title else []
        for i, (name, cells) in enumerate(self.rows):
            t = Table(title=Text(f"{self.key}: {name}"), show_header=False, title_justify="left")
            t.add_column(no_wrap=True)
            t.add_column(overflow="fold")
            for c, v in zip(self.columns, cells):
                t.add_row(Text(c), Text(v, style=self.styles.get((i, c)) or ""))
            parts.append(t)
        if self.caption:
            parts.append(Text(self.caption, style="dim"))
        return Group(*parts)

    # -- scripts --------------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        if self.data:
            return self.data
        return [{self.key: name, **dict(zip(self.columns, cells))} for name, cells in self.rows]


def _wrappable(header: str, cells: Sequence[str] = ()) -> str:
    """A header broken into lines no wider than its column's cells (or its longest word):
    snake_case metric names become words first. Headers wrap; names and values do not."""
    text = header.replace("_", " ")
    words = text.split() or [""]
    width = max([cell_len(w) for w in words] + [cell_len(line) for c in cells for line in _lines(c)])
    return "\n".join(textwrap.fill(line, width=width, break_long_words=False) for line in text.split("\n"))


def _lines(text: str) -> list[str]:
    return text.split("\n") if text else [""]


def _need(header: str, cells: Sequence[str], wraps: bool) -> int:
    """A column's fewest characters: its longest word (where it may wrap) or line."""
    pieces: list[str] = []
    for cell in [header, *cells]:
        pieces += [w for line in _lines(cell) for w in line.split()] if wraps else _lines(cell)
    return max([cell_len(p) for p in pieces] or [0])


def _table(grid: Grid, cols, edge: bool, body, styled_cols) -> tuple[Table, int]:
    t = Table(title=grid.title, caption=grid.caption, show_edge=edge)
    for header, justify, wraps, _ in cols:
        t.add_column(header, justify=justify, no_wrap=not wraps, overflow="fold")
    for i, row in enumerate(body):
        cells = []
        for j, v in enumerate(row):
            style = grid.styles.get((i, styled_cols[j])) if styled_cols and styled_cols[j] else None
            cells.append(Text(v, style=style or ""))
        t.add_row(*cells)
    widths = [_need(h, c, w) for h, _, w, c in cols]
    return t, sum(w + 2 for w in widths) + len(widths) - 1 + (2 if edge else 0)


def fit(grid: Grid, width: int):
    """The first layout of `grid` that needs no more than `width` columns: wide, wide without the
    outer edge, transposed (likewise), else stacked. No cell is ever cut."""
    for layout, edge in ((grid.wide, True), (grid.wide, False), (grid.transposed, True), (grid.transposed, False)):
        table, need = layout(edge)
        if need <= width:
            return table
    return grid.stacked()


def terminal_width(console: Optional[Console] = None, default: int = 160) -> int:
    """The width to lay tables out for: the terminal's, else $COLUMNS, else `default` (a log)."""
    console = console or Console()
    if console.is_terminal:
        return console.width
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        return default


def out_console(console: Optional[Console] = None) -> Console:
    """A stdout console as wide as `terminal_width` (a pipe gets $COLUMNS or 160)."""
    probe = Console()
    return Console(width=None if probe.is_terminal else terminal_width(probe))


def print_grids(grids: Sequence[Grid], console: Optional[Console] = None, notes: Sequence[str] = ()) -> None:
    console = console or out_console()
    for g in grids:
        console.print(fit(g, console.width))
    for line in notes:
        console.print(line, markup=False, highlight=False, overflow="fold")


def to_json(grids: Sequence[Grid], extra: Optional[dict[str, Any]] = None) -> str:
    """One JSON object: each grid's title and rows (its `data`, else its cells by header)."""
    out: dict[str, Any] = dict(extra or {})
    out["tables"] = [{"title": g.title, "rows": g.records()} for g in grids]
    return json.dumps(out, indent=1, default=str)


def to_csv(grids: Sequence[Grid]) -> str:
    """CSV: one block per grid (a `# title` line, a header row, its rows), blank line between."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for n, g in enumerate(grids):
        if n:
            buf.write("\n")
        rows = g.records()
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        buf.write(f"# {g.title}\n")
        w.writerow(keys)
        for r in rows:
            w.writerow(["" if r.get(k) is None else (json.dumps(r[k]) if isinstance(r.get(k), (dict, list)) else r[k]) for k in keys])
    return buf.getvalue()
