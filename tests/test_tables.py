"""Tables readable at 80 columns: model names, recipes and verdicts whole (evalsuite/report/tables.py).

The goal test renders the demo run's final output and `compare`'s tables from the session's demo
run (no new lm-eval run) with COLUMNS=80, as a piped terminal of that width would get them."""

from __future__ import annotations

import io
import json
import re

from rich.console import Console

from evalsuite.report.tables import Grid, fit, to_csv, to_json

HUB_NAMES = ["allknowingroger/Gemmaslerp2-9B", "sam-paech/Delirium-v1", "DreadPoor/Emu_Eggs-9B-Model_Stock"]
VERDICTS = ("indistinguishable", "better", "worse")


def render(renderable, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def whole(text: str, name: str) -> bool:
    return any(name in line for line in text.splitlines())


def test_long_names_are_never_cut_at_80_columns():
    cols = ["Average", "IFEval", "BBH", "MATH Lvl 5", "MATH Lvl 5 (original parser)", "GPQA", "MuSR", "MMLU-PRO"]
    grid = Grid(title="t", key="Model", columns=cols)
    for i, name in enumerate(HUB_NAMES):
        grid.add(name, [f"{10 * i + j:.2f}" for j in range(len(cols))])
    for width in (60, 80, 120, 200):
        text = render(fit(grid, width), width)
        assert max(len(line) for line in text.splitlines()) <= width
        assert all(whole(text, n) for n in HUB_NAMES), text
        assert "…" not in text
    # a wide terminal gets one row per model
    assert sum(1 for line in render(fit(grid, 200), 200).splitlines() if any(n in line for n in HUB_NAMES)) == 3


def test_verdict_column_is_never_cut():
    grid = Grid(title="deltas", key="Score", columns=["docs", "Δ\n[95% interval]", "p\n(Holm p)", "verdict"], left={"verdict"}, wrap_key=True)
    grid.add("MATH Lvl 5 (original parser)", ["1,324", "-12.34\n[-100.00, +0.00]", "0.0001\n(0.0007)", "indistinguishable"])
    for width in (50, 80):
        text = render(fit(grid, width), width)
        assert whole(text, "indistinguishable") and max(len(line) for line in text.splitlines()) <= width


def test_json_and_csv_carry_the_same_rows():
    grid = Grid(title="t", key="model", columns=["a", "b"])
    grid.add("x/y", ["1.00", "—"], {"model": "x/y", "a": 1.0, "b": None})
    assert json.loads(to_json([grid]))["tables"][0]["rows"] == [{"model": "x/y", "a": 1.0, "b": None}]
    assert to_csv([grid]).splitlines() == ["# t", "model,a,b", "x/y,1.0,"]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_demo_final_output_and_compare_fit_80_columns(demo_run, capsys, monkeypatch):
    from evalsuite.cli.main import main
    from evalsuite.cli.run import print_final
    from evalsuite.study import read_study

    monkeypatch.setenv("COLUMNS", "80")
    study = read_study(demo_run.store.root, demo_run.exp.name)
    names = [m.name for m in study.models]
    print_final(study)
    final = capsys.readouterr().out
    assert max(len(line) for line in _lines(final)) <= 80, final
    assert all(whole(final, n) for n in names) and "…" not in final, final

    assert main(["compare", "--config", str(demo_run.config)]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in _lines(out)) <= 80, out
    assert all(whole(out, n) for n in names) and "…" not in out, out
    # every verdict whole: as many as compared rows
    assert main(["compare", "--config", str(demo_run.config), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["scores"]) == set(names) and data["rows"]
    shown = re.findall(r"\b(indistinguishable|better|worse)\b", out)
    assert sorted(shown) == sorted(r["verdict"] for r in data["rows"]), out
    assert main(["compare", "--config", str(demo_run.config), "--format", "csv"]) == 0
    csv_text = capsys.readouterr().out
    assert csv_text.startswith("# ") and all(n in csv_text for n in names)
