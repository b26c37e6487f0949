"""Property-based tests (Hypothesis) over evalsuite's readers (issue #22): random mutations of a
valid experiment config, mergekit recipe, details records and lm-eval results file — truncation,
a stray byte (encodings), values of the wrong type, extra keys, deleted keys — must end in
success with the right numbers or in ONE `error:` line with exit code 2: never a traceback, never
a changed input. Everything runs in-process (the CLI's `main`, or the reader the CLI calls and
whose UserError `main` turns into exit 2); no lm-eval process starts.

Settings (docs/bad-input.md, "Property-based tests"): `max_examples` per test as in SETTINGS,
`deadline=None` (the shared machine is noisy), derandomize=True (the same examples every run, so
CI is reproducible; set EVALSUITE_HYPOTHESIS_RANDOM=1 to explore new ones)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from evalsuite.cli.main import main  # noqa: E402
from evalsuite.errors import UserError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DETAILS = REPO / "tests" / "fixtures_import" / "hf-fork-main-math" / "tiny-org__candidate"
RECIPE = REPO / "examples" / "demo.mergekit.yml"
MIRROR = REPO / "examples" / "demo_mirror"

SETTINGS = dict(deadline=None, derandomize=not os.environ.get("EVALSUITE_HYPOTHESIS_RANDOM"),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# ------------------------------------------------------------------------------ mutations

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def _paths(node: Any, here: tuple = ()) -> list[tuple]:
    out = [here]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, here + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, here + (i,))
    return out


def _set(node: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    node = copy.deepcopy(node)
    parent = node
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return node


def _delete(node: Any, path: tuple) -> Any:
    if not path:
        return node
    node = copy.deepcopy(node)
    parent = node
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return node


@st.composite
def structural(draw, data: Any):
    """`data` with one structural change: a value of the wrong type, an extra key, a deleted key."""
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    kind = draw(st.sampled_from(["wrong type", "extra key", "delete"]))
    if kind == "wrong type":
        return kind, _set(data, path, draw(values))
    if kind == "delete":
        return kind, _delete(data, path)
    target = path
    node = data
    for key in path:
        node = node[key]
    if not isinstance(node, dict):
        return kind, data
    return kind, _set(data, target + (draw(st.text(min_size=1, max_size=10)),), draw(values))


@st.composite
def byte_level(draw, raw: bytes):
    """`raw` cut short, or with one byte replaced (any byte: encodings), or with one inserted."""
    kind = draw(st.sampled_from(["truncate", "replace byte", "insert byte"]))
    at = draw(st.integers(0, max(0, len(raw) - 1)))
    if kind == "truncate":
        return kind, raw[:at]
    byte = bytes([draw(st.integers(0, 255))])
    if kind == "replace byte":
        return kind, raw[:at] + byte + raw[at + 1:]
    return kind, raw[:at] + byte + raw[at:]


def cli(argv: list[str]) -> tuple[int, str, str]:
    """`main(argv)` with its output captured; any exception but SystemExit escapes (a traceback)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def one_line_refusal(code: int, err: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err


def reader(call) -> tuple[int, str, Any]:
    """A reader called as the CLI calls it: (0, '', value), or (2, 'error: ...', None) for a
    UserError (what `main` prints). Any other exception escapes and fails the test."""
    try:
        return 0, "", call()
    except UserError as exc:
        return 2, f"error: {exc}", None


# -------------------------------------------------------------------------------- configs


def _config_data(dest: Path) -> dict:
    return {
        "name": "prop",
        "candidate": {"fixture": "candidate", "dtype": "float32"},
        "parents": [{"fixture": "parent_a"}, {"fixture": "parent_b", "chat_template": True}],
        "benchmarks": ["bbh", "gpqa"],
        "batch_size": 8,
        "limit": 2,
        "device": "cpu",
        "data": {"source": "mirror", "mirror": str(MIRROR)},
        "output": {"results": str(dest / "results"), "reports": str(dest / "reports")},
    }


def _check_config(path: Path, raw: bytes) -> None:
    from evalsuite.config import load_experiment

    path.write_bytes(raw)
    code, err, exp = reader(lambda: load_experiment(path))
    if code == 2:
        one_line_refusal(code, err)
    else:  # accepted: what the file says, read right
        data = yaml.safe_load(raw.decode("utf-8-sig"))
        assert exp.name == data["name"] and exp.benchmarks == data.get("benchmarks", exp.benchmarks)
        assert exp.limit == data.get("limit")
    assert path.read_bytes() == raw  # the input is never changed
    assert not (path.parent / "results").exists()


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_config_mutations_load_or_refuse_in_one_line(tmp_path, data):
    base = _config_data(tmp_path)
    kind, mutated = data.draw(structural(base))
    _check_config(tmp_path / "exp.yaml", yaml.safe_dump(mutated, sort_keys=False, allow_unicode=True).encode())


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_config_byte_mutations_load_or_refuse_in_one_line(tmp_path, data):
    raw = yaml.safe_dump(_config_data(tmp_path), sort_keys=False).encode()
    kind, mutated = data.draw(byte_level(raw))
    _check_config(tmp_path / "exp.yaml", mutated)


def test_config_through_the_cli_is_the_same_rule(tmp_path):
    """The reader's refusal is what the CLI prints: one example through `main` (history)."""
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"name: prop\n\xff\n")
    code, out, err = cli(["history", "--config", path])
    one_line_refusal(code, err)
    assert f"{path}: byte 11 (0xff) is not UTF-8" in err


# -------------------------------------------------------------------------------- recipes


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_recipe_mutations_load_or_refuse_in_one_line(tmp_path, data):
    from evalsuite.models.merge_recipe import load_recipe

    base = yaml.safe_load(RECIPE.read_text())
    if data.draw(st.booleans()):
        kind, mutated = data.draw(structural(base))
        raw = yaml.safe_dump(mutated, sort_keys=False).encode()
    else:
        kind, raw = data.draw(byte_level(RECIPE.read_bytes()))
    path = tmp_path / "recipe.yml"
    path.write_bytes(raw)
    code, err, recipe = reader(lambda: load_recipe(path))
    if code == 2:
        one_line_refusal(code, err)
    else:
        assert recipe.config.merge_method == yaml.safe_load(raw.decode("utf-8-sig"))["merge_method"]
    assert path.read_bytes() == raw


# ------------------------------------------------------------------------- results files


@pytest.fixture(scope="module")
def results_file() -> tuple[Path, dict, list]:
    (path,) = DETAILS.glob("results_*.json")
    code, out, err = cli(["score", path, "--format", "json"])
    assert code == 0, err
    return path, json.loads(path.read_text()), json.loads(out)


def _score(path: Path) -> tuple[int, str, str]:
    return cli(["score", path, "--format", "json"])


@settings(max_examples=50, **SETTINGS)
@given(data=st.data())
def test_results_file_mutations_score_or_refuse_in_one_line(tmp_path, results_file, data):
    source, parsed, _ = results_file
    if data.draw(st.booleans()):
        kind, mutated = data.draw(structural(parsed))
        raw = json.dumps(mutated, indent=data.draw(st.sampled_from([None, 2]))).encode()
    else:
        kind, raw = data.draw(byte_level(source.read_bytes()))
    path = tmp_path / source.name
    path.write_bytes(raw)
    code, out, err = _score(path)
    if code != 0:
        one_line_refusal(code, err)
    else:
        for row in json.loads(out):
            for key, value in row.items():
                if isinstance(value, float):
                    assert math.isfinite(value), (key, value)  # no NaN ever shown as a score
    assert path.read_bytes() == raw


@settings(max_examples=20, **SETTINGS)
@given(key=st.text(min_size=1, max_size=10).filter(lambda k: k not in ("results", "configs", "versions", "n-samples", "groups",
                                                                        "group_subtasks", "higher_is_better", "config",
                                                                        "model_name", "n-shot")),
       value=values, indent=st.sampled_from([None, 1, 4]))
def test_results_file_extra_top_level_key_keeps_the_numbers(tmp_path, results_file, key, value, indent):
    """A key lm-eval may add one day, or another indentation: the same numbers, exactly."""
    source, parsed, expected = results_file
    path = tmp_path / source.name
    raw = json.dumps({**parsed, key: value}, indent=indent).encode()
    path.write_bytes(raw)
    code, out, err = _score(path)
    assert code == 0, err
    assert _numbers(json.loads(out)) == _numbers(expected)
    assert path.read_bytes() == raw


def _numbers(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "sources"} for row in rows]  # `sources`: where the file lies


# ------------------------------------------------------------------------ details records


@pytest.fixture(scope="module")
def details_copy(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("prop-details") / DETAILS.name
    shutil.copytree(DETAILS, folder)
    return folder


def _validate_folder(folder: Path):
    from evalsuite.published.source import select_run, validate
    from evalsuite.suite import load_suite

    sel = select_run(folder, None, load_suite())
    validate(sel)
    return sel


@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_details_record_mutations_validate_or_refuse_in_one_line(details_copy, data):
    """One samples file of a published details folder mutated (a record's value of the wrong type,
    an extra or a deleted key, a cut or a stray byte): the import's validation accepts it or
    refuses it in one line, and leaves the file as it was."""
    target = data.draw(st.sampled_from(sorted(p.name for p in details_copy.glob("samples_leaderboard_gpqa_*.jsonl"))
                                       + sorted(p.name for p in details_copy.glob("samples_leaderboard_musr_*.jsonl"))))
    path = details_copy / target
    original = path.read_bytes()
    try:
        if data.draw(st.booleans()):
            lines = original.decode().splitlines()
            i = data.draw(st.integers(0, len(lines) - 1))
            kind, rec = data.draw(structural(json.loads(lines[i])))
            lines[i] = json.dumps(rec)
            raw = ("\n".join(lines) + "\n").encode()
        else:
            kind, raw = data.draw(byte_level(original))
        path.write_bytes(raw)
        code, err, sel = reader(lambda: _validate_folder(details_copy))
        if code == 2:
            one_line_refusal(code, err)
        else:
            assert sel.run == "2026-12-03T14-24-10.874697" and len(sel.benchmarks) == 6
        assert path.read_bytes() == raw
    finally:
        path.write_bytes(original)
