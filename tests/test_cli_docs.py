"""The README's command table is true to the code: every option it names exists on that command,
every command's --help has an example, and typer's usage errors are one `error:` line, exit 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

README = Path(__file__).resolve().parent.parent / "README.md"


def _commands():
    from evalsuite.cli.main import command

    return command()


def _walk(group, path=()):
    import typer._click.core as core  # noqa: F401  (typer's own click)

    for name, cmd in getattr(group, "commands", {}).items():
        if getattr(cmd, "commands", None):
            yield from _walk(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


def _readme_rows() -> list[str]:
    text = README.read_text(encoding="utf-8")
    table = text.split("## Commands", 1)[1].lstrip("\n").split("\n\n", 1)[0]
    return [line for line in table.splitlines() if line.startswith("| `evalsuite")]


def test_readme_command_table_options_exist():
    root = _commands()
    commands = dict(_walk(root))
    rows = _readme_rows()
    assert len(rows) >= 14
    checked = 0
    for row in rows:
        for usage in re.findall(r"`(evalsuite [^`]+)`", row.split(" | ")[0]):
            words = usage.split()[1:]
            name = words[0]
            subs = [w for w in words[1:] if re.fullmatch(r"[a-z]+(/[a-z]+)*", w)][:1]
            keys = [(name, s) for s in subs[0].split("/")] if subs and (name, subs[0].split("/")[0]) in commands else [(name,)]
            for key in keys:
                assert key in commands, f"README names `{' '.join(key)}`, which is not a command"
                opts = _options(commands[key])
                for opt in re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", usage):
                    assert opt in opts, f"README: `{usage}` — {opt} is not an option of evalsuite {' '.join(key)} ({sorted(opts)})"
                    checked += 1
    assert checked >= 30


def test_promised_statistics_options_exist():
    commands = dict(_walk(_commands()))
    for name in ("compare", "report", "regress"):
        assert {"--boot", "--seed", "--alpha"} <= _options(commands[(name,)]), name
    assert {"--boot", "--seed"} <= _options(commands[("verify",)])
    assert "--format" in _options(commands[("compare",)])


def test_every_command_help_has_an_example():
    for path, cmd in _walk(_commands()):
        assert "Example" in (cmd.help or ""), f"evalsuite {' '.join(path)} --help has no example"


@pytest.mark.parametrize("argv, where", [
    (["score", "x", "--format", "xml"], "evalsuite score"),
    (["view", "--port", "99999"], "evalsuite view"),
    (["run", "--bogus"], "evalsuite run"),
    (["fixtures", "build", "--nope"], "evalsuite fixtures build"),
])
def test_usage_errors_are_one_error_line_exit_2(argv, where, capsys):
    from evalsuite.cli.main import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {where}: ") and captured.out == "", captured


def test_docs_cite_only_files_in_the_repo():
    """Paths the docs cite as this repo's (evalsuite/, tests/, bench/, examples/, docs/) exist, and
    no doc points outside the repo (scratch folders of the machine it was written on)."""
    root = README.parent
    cited = 0
    for doc in [README, *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        assert "/work/" not in text, f"{doc.name} cites a path outside the repo"
        for path in re.findall(r"`((?:evalsuite|tests|bench|examples|docs)/[\w./-]+?)(?:::\w+|:\d+[\d-]*)?`", text):
            assert (root / path.rstrip("/")).exists() or "*" in path or "<" in path, f"{doc.name} cites {path}, not in the repo"
            cited += 1
    assert cited >= 20
