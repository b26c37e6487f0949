"""Report figures (matplotlib, no pyplot state): each returns an SVG as a `data:` URI for an <img>;
the history's trend plot (`trend_figure`, `trend_png`) returns a Figure or PNG bytes.

An SVG shown through <img> never runs script, and the data URI keeps the report one offline file.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # no display, ever

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from evalsuite.errors import UserError  # noqa: E402
from evalsuite.history.db import db_path  # noqa: E402
from evalsuite.history.runs import list_runs  # noqa: E402
from evalsuite.suite import load_suite  # noqa: E402

COLORS = ["#1f5fa8", "#e08a1e", "#3a9a5b", "#b04a9c", "#7a7a7a", "#c23b3b"]
_RC = {"svg.fonttype": "none", "svg.hashsalt": "evalsuite", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


def _uri(fig: Figure) -> str:
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def grouped_bars(columns: Sequence[str], values: Mapping[str, Mapping[str, Optional[float]]],
                 intervals: Mapping[str, Mapping[str, tuple[float, float]]],
                 published: Mapping[str, Mapping[str, float]]) -> str:
    """Bars per benchmark, one per model, 95% interval whiskers; published values as black ticks."""
    with matplotlib.rc_context(_RC):
        models = list(values)
        fig = Figure(figsize=(max(6.0, 1.25 * len(columns) + 1.5), 3.4))
        ax = fig.subplots()
        width = 0.8 / max(1, len(models))
        for j, model in enumerate(models):
            xs, ys, lo, hi = [], [], [], []
            for i, col in enumerate(columns):
                v = values[model].get(col)
                if v is None:
                    continue
                x = i - 0.4 + width * (j + 0.5)
                xs.append(x)
                ys.append(v)
                a, b = intervals.get(model, {}).get(col, (v, v))
                lo.append(max(0.0, v - a))
                hi.append(max(0.0, b - v))
                pub = published.get(model, {}).get(col)
                if pub is not None:
                    ax.plot([x - width / 2, x + width / 2], [pub, pub], color="black", lw=1.6,
                            label="published" if not any(h.get_label() == "published" for h in ax.lines) else None)
            ax.bar(xs, ys, width=width * 0.92, color=COLORS[j % len(COLORS)], label=model, yerr=[lo, hi],
                   error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333"})
        ax.set_xticks(range(len(columns)), [c.replace(" (", "\n(") for c in columns])
        ax.set_ylabel("normalized score (0–100)")
        ax.grid(axis="y", color="#ddd", lw=0.6)
        ax.set_axisbelow(True)
        ax.legend(frameon=False, fontsize=8, ncols=min(4, len(models) + 1), loc="upper center", bbox_to_anchor=(0.5, 1.18))
        return _uri(fig)


def delta_heatmap(rows: Sequence[str], parents: Sequence[str], deltas: Mapping[str, Mapping[str, float]]) -> str:
    """Subtasks x parents: candidate − parent, normalized points per subtask (blue = candidate ahead)."""
    with matplotlib.rc_context(_RC):
        data = np.array([[deltas.get(p, {}).get(r, np.nan) for p in parents] for r in rows], dtype=float)
        finite = data[np.isfinite(data)]
        span = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
        fig = Figure(figsize=(2.2 + 1.5 * len(parents), 0.6 + 0.23 * len(rows)))
        ax = fig.subplots()
        im = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", vmin=-span, vmax=span, aspect="auto")
        ax.set_yticks(range(len(rows)), rows, fontsize=7.5)
        ax.set_xticks(range(len(parents)), [f"vs {p}" for p in parents], fontsize=8)
        ax.xaxis.tick_top()
        for i in range(len(rows)):
            for j in range(len(parents)):
                v = data[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(v) > 0.6 * span else "#222")
        ax.spines[:].set_visible(False)
        cbar = fig.colorbar(im, ax=ax, fraction=0.08, pad=0.03)
        cbar.set_label("candidate − parent (normalized points)", fontsize=8)
        return _uri(fig)


def merge_plan(rows: Sequence[tuple[str, Optional[float], Mapping[str, tuple[float, float]]]], title: str) -> str:
    """t per layer for each filter class of the recipe (the `MergePlan.rows()` view)."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.0, 2.8))
        ax = fig.subplots()
        rules: dict[str, tuple[list[int], list[float]]] = {}
        for label, _, cells in rows:
            if not label.isdigit():
                continue
            for rule, (lo, hi) in cells.items():
                xs, ys = rules.setdefault(rule, ([], []))
                xs.append(int(label))
                ys.append((lo + hi) / 2)
        for j, (rule, (xs, ys)) in enumerate(rules.items()):
            ax.plot(xs, ys, marker="o", ms=2.5, lw=1.2, color=COLORS[j % len(COLORS)], label=rule)
        ax.set_xlabel("layer")
        ax.set_ylabel("t (0 = base model)")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(color="#ddd", lw=0.6)
        ax.set_title(title, fontsize=9)
        ax.legend(frameon=False, fontsize=8, loc="best")
        return _uri(fig)


def sweep_lines(labels: Sequence[str], series: Mapping[str, Sequence[float]], lows: Mapping[str, Sequence[Optional[float]]],
                highs: Mapping[str, Sequence[Optional[float]]], finalists: Sequence[bool], winner: Optional[int],
                references: Optional[Mapping[str, float]] = None) -> str:
    """A sweep: each benchmark's normalized score against the candidates (the swept parameter, in
    the config's order); whiskers: 95% intervals; hollow markers: dropped before the full set."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(max(6.0, 0.7 * len(labels) + 2.5), 3.6))
        ax = fig.subplots()
        xs = list(range(len(labels)))
        for k, (name, ys) in enumerate(series.items()):
            color = COLORS[k % len(COLORS)]
            ax.plot(xs, ys, color=color, linewidth=1.2, label=name)
            lo, hi = lows.get(name), highs.get(name)
            if lo is not None and hi is not None:
                for x, y, a, b in zip(xs, ys, lo, hi):
                    if a is not None and b is not None:
                        ax.plot([x, x], [a, b], color=color, linewidth=0.8, alpha=0.6)
            for x, y, kept in zip(xs, ys, finalists):
                ax.plot([x], [y], marker="o", color=color, markerfacecolor=color if kept else "white", markersize=5)
        if winner is not None:
            ax.axvline(winner, color="#444", linewidth=0.8, linestyle="--")
        for k, (name, value) in enumerate((references or {}).items()):  # the parents, for reference
            ax.axhline(value, color=["#777", "#aaa", "#555"][k % 3], linewidth=1.0, linestyle=":", label=name)
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("normalized score")
        ax.legend(fontsize=7, frameon=False)
        return _uri(fig)


def trend_figure(results_root: Path, experiment: str, *, model: Optional[str] = None) -> Figure:
    """A matplotlib Figure: each benchmark's normalized score over the experiment's recorded runs
    (one panel per benchmark, one line per model, error bars = standard errors)."""
    runs = list_runs(results_root, experiment=experiment, model=model)
    if not runs:
        raise UserError(f"{db_path(results_root)}: no recorded run of experiment {experiment!r}")
    suite = load_suite()
    benches = [b for b in suite.benchmarks if any(s.benchmark == b.id for r in runs for s in r.scores)]
    cols = min(3, len(benches))
    rows = math.ceil(len(benches) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    labels = [time.strftime("%m-%d %H:%M", time.localtime(r.created)) for r in runs]
    for k, bench in enumerate(benches):
        ax = fig.add_subplot(rows, cols, k + 1)
        names = list(dict.fromkeys(m.name for r in runs for m in r.models if model is None or m.name == model))
        for name in names:
            xs, ys, es = [], [], []
            for i, r in enumerate(runs):
                s = r.main_scores(name).get(bench.id)
                if s is not None:
                    xs.append(i)
                    ys.append(s.value)
                    es.append(s.stderr or 0.0)
            if xs:
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=name)
        ax.set_title(bench.display)
        ax.set_ylabel("normalized score")
        ax.set_xticks(range(len(runs)), labels, rotation=45, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle(f"{experiment}: scores per recorded run")
    return fig


def trend_png(results_root: Path, experiment: str, *, model: Optional[str] = None, dpi: int = 100) -> bytes:
    """`trend_figure` rendered to PNG bytes (for embedding in reports)."""
    buf = io.BytesIO()
    trend_figure(results_root, experiment, model=model).savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
