"""Bad input, round two (issue #22; docs/bad-input.md, the sections "Encodings", "Names",
"Published parents", "Run history", "Sweep recipes" and "Other options"): every case is the real
CLI (`evalsuite.cli.main.main`, in-process) on an input a new user gets wrong, and ends in ONE
`error:` line, exit code 2, and the whole temp folder (results folder, config, the inputs
themselves) byte-identical. None of these tests starts lm-eval: every refusal comes before
the first job, the first folder and the first lock."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from evalsuite.cli.main import main

REPO = Path(__file__).resolve().parent.parent
DETAILS = REPO / "tests" / "fixtures_import" / "hf-fork-main-math" / "tiny-org__candidate"
MIRROR = REPO / "examples" / "demo_mirror"
RECIPE = REPO / "examples" / "demo.mergekit.yml"
LATIN1 = "# r\xe9sum\xe9 of the settings (written on another system)\n".encode("latin-1")


def tree(root: Path) -> dict[str, str]:
    """Every entry under `root`: folders, and files with their sha256 (what 'unchanged' means)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + str(p.readlink())
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def refused(capsys, root: Path, argv: list[str], *expected: str) -> str:
    """Run the CLI; assert exit 2, one `error:` line holding every `expected` piece, and `root`
    byte-identical before and after. Returns the line."""
    capsys.readouterr()
    before = tree(root)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    for piece in expected:
        assert piece in lines[0], (piece, lines[0])
    assert tree(root) == before, argv
    return lines[0]


def experiment(dest: Path, *, name: str = "exp", parents: list | None = None, **extra) -> dict:
    data = {
        "name": name,
        "candidate": {"fixture": "candidate"},
        "parents": parents or [],
        "benchmarks": ["bbh", "gpqa"],
        "device": "cpu",
        "offline": True,
        "limit": 2,
        "data": {"source": "mirror", "mirror": str(MIRROR)},
        "output": {"results": str(dest / "results"), "reports": str(dest / "reports")},
        **extra,
    }
    return data


def write_config(dest: Path, data: dict, *, prefix: bytes = b"", name: str = "exp.yaml") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / name
    path.write_bytes(prefix + yaml.safe_dump(data, sort_keys=False).encode())
    return path


@pytest.fixture(autouse=True)
def no_jobs(monkeypatch):
    """A refusal comes before any job: a test here that reaches the executor fails at once."""
    from evalsuite.run.local import LocalExecutor

    def run(*args, **kwargs):
        raise AssertionError("bad input reached the executor (a job was about to start)")
    monkeypatch.setattr(LocalExecutor, "run", run)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """The temp folder as the working folder (commands without --config use ./results)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def details(dest: Path) -> Path:
    folder = dest / "details" / DETAILS.name
    shutil.copytree(DETAILS, folder)
    return folder


def one_file(folder: Path, pattern: str) -> Path:
    (path,) = folder.glob(pattern)
    return path


# ------------------------------------------------------------------------------------ encodings


ENCODING_COMMANDS = {
    "run": ["run", "--all", "--config"],
    "card": ["card", "--model", "tiny-candidate", "--config"],
    "history": ["history", "--config"],
    "baseline set": ["baseline", "set", "nightly", "--config"],
    "baseline list": ["baseline", "list", "--config"],
    "regress": ["regress", "--baseline", "nightly", "--config"],
    "view": ["view", "--config"],
    "compare": ["compare", "--config"],
    "report": ["report", "--config"],
    "verify": ["verify", "--model", "tiny-candidate", "--config"],
}


@pytest.mark.parametrize("command", sorted(ENCODING_COMMANDS))
def test_latin1_byte_in_a_config_is_one_line_naming_file_and_offset(home, capsys, command):
    """A comment written on another system (one Latin-1 byte) in the config, for every command
    that reads one: the file and the byte offset, not a UnicodeDecodeError traceback."""
    cfg = write_config(home, experiment(home), prefix=LATIN1)
    offset = LATIN1.index(b"\xe9")
    refused(capsys, home, [*ENCODING_COMMANDS[command], cfg], f"{cfg}: byte {offset} (0xe9) is not UTF-8")


def test_latin1_byte_in_import_config(home, capsys):
    cfg = write_config(home, experiment(home), prefix=LATIN1)
    refused(capsys, home, ["import", DETAILS, "--name", "pub", "--config", cfg], f"{cfg}: byte 3 (0xe9) is not UTF-8")


def test_latin1_byte_in_a_sweep_file_and_its_base_recipe(home, capsys):
    data = experiment(home, name="sw", parents=[{"fixture": "parent_a"}, {"fixture": "parent_b"}],
                      recipe=str(RECIPE), grid={"parameters.t": [0.25, 0.75]}, benchmarks=["mmlu_pro"])
    data.pop("candidate"), data.pop("limit")
    sweep = write_config(home, data, prefix=LATIN1, name="sweep.yaml")
    refused(capsys, home, ["sweep", "--config", sweep], f"{sweep}: byte 3 (0xe9) is not UTF-8")
    recipe = home / "recipe.yml"
    recipe.write_bytes(LATIN1 + RECIPE.read_bytes())
    sweep = write_config(home, {**data, "recipe": str(recipe)}, name="sweep.yaml")
    refused(capsys, home, ["sweep", "--config", sweep], f"{recipe}: byte 3 (0xe9) is not UTF-8")


def test_latin1_byte_in_a_merge_recipe(home, capsys):
    recipe = home / "recipe.yml"
    recipe.write_bytes(RECIPE.read_bytes() + LATIN1)
    offset = len(RECIPE.read_bytes()) + 3
    refused(capsys, home, ["merge", recipe, home / "merged"], f"{recipe}: byte {offset} (0xe9) is not UTF-8")


def test_latin1_byte_in_a_results_file_for_score(home, capsys):
    results = home / "results_2026-01-01T00-00-00.000000.json"
    results.write_bytes(one_file(DETAILS, "results_*.json").read_bytes().replace(b'"results"', b'"r\xe9sults"', 1))
    refused(capsys, home, ["score", results], f"{results}: byte ", "(0xe9) is not UTF-8")


def test_latin1_byte_in_a_details_record_names_line_and_offset(home, capsys):
    folder = details(home)
    samples = one_file(folder, "samples_leaderboard_gpqa_main_*.jsonl")
    raw = samples.read_bytes()
    second = raw.index(b"\n") + 1  # a byte in the second record
    at = raw.index(b"e", second + 40)
    samples.write_bytes(raw[:at] + b"\xe9" + raw[at + 1:])
    refused(capsys, home, ["import", folder, "--name", "pub"], f"{samples}: line 2: byte {at} (0xe9) is not UTF-8")
    assert not (home / "results").exists()


def test_latin1_byte_in_a_details_results_file(home, capsys):
    folder = details(home)
    results = one_file(folder, "results_*.json")
    raw = results.read_bytes()
    at = raw.index(b"leaderboard")
    results.write_bytes(raw[:at] + b"\xe9" + raw[at + 1:])
    refused(capsys, home, ["import", folder, "--name", "pub"], f"{results}: byte {at} (0xe9) is not UTF-8")


def test_utf8_with_a_byte_order_mark_is_read(tmp_path):
    """A BOM (Windows editors) is not an error: the one rule reads UTF-8 with or without it."""
    from evalsuite.config import load_experiment

    cfg = write_config(tmp_path, experiment(tmp_path), prefix=b"\xef\xbb\xbf")
    assert load_experiment(cfg).name == "exp"


# ---------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("name, expected", [
    ("pub\nx", "--name 'pub\\nx' must be letters, digits"),
    (".hidden", "--name '.hidden' must be letters, digits, '.', '_' or '-' (not starting with '.')"),
    ("a/b", "--name 'a/b' must be letters"),
    ("tab\there", "--name 'tab\\there' must be letters"),
    ("x" * 200, "(at most 128 characters; it has 200)"),
    ("", "--name '' must be letters"),
])
def test_import_names_follow_the_one_rule(home, capsys, name, expected):
    refused(capsys, home, ["import", DETAILS, "--name", name], expected)
    assert not (home / "results").exists()


@pytest.mark.parametrize("where, value, expected", [
    ("experiment", "has space", "name: experiment name 'has space' must be letters"),
    ("experiment", "e" * 129, "experiment name 'eeee"),
    ("model", "_x", "candidate: name '_x' must be letters"),
    ("model", "m\u0007", "candidate: name 'm\\x07' must be letters"),
])
def test_config_names_follow_the_one_rule(home, capsys, where, value, expected):
    data = experiment(home)
    if where == "experiment":
        data["name"] = value
    else:
        data["candidate"] = {"fixture": "candidate", "name": value}
    cfg = write_config(home, data)
    refused(capsys, home, ["run", "--all", "--config", cfg], expected)


def test_derived_model_name_too_long_is_refused(home, capsys):
    folder = home / ("m" * 140)
    folder.mkdir()
    cfg = write_config(home, {**experiment(home), "candidate": {"path": str(folder)}})
    refused(capsys, home, ["run", "--all", "--config", cfg], "(at most 128 characters", "(derived from the model's source); set name:")


def test_sweep_candidate_name_with_a_newline(home, capsys):
    data = experiment(home, name="sw", parents=[{"fixture": "parent_a"}, {"fixture": "parent_b"}], recipe=str(RECIPE),
                      candidates=[{"name": "c\n1", "set": {"parameters.t": 0.5}}], benchmarks=["mmlu_pro"])
    data.pop("candidate"), data.pop("limit")
    sweep = write_config(home, data, name="sweep.yaml")
    refused(capsys, home, ["sweep", "--config", sweep], "candidate name 'c\\n1' must be letters")


def test_baseline_name_with_a_newline_and_card_model_with_a_path(home, capsys):
    refused(capsys, home, ["baseline", "set", "nightly\n"], "baseline name 'nightly\\n' must be letters")
    cfg = write_config(home, experiment(home))
    refused(capsys, home, ["card", "--config", cfg, "--model", "a/../b"], "--model 'a/../b' must be letters")


# ----------------------------------------------------------------------------- published parents


def _published_run(home: Path, capsys, source, *expected: str, **model) -> None:
    cfg = write_config(home, experiment(home, parents=[{"name": "pub", "published": str(source), **model}]))
    refused(capsys, home, ["run", "--all", "--config", cfg], *expected)
    assert not (home / "results").exists()  # no results/, no .lock, no tasks/


def _damage(folder: Path, pattern: str, edit) -> Path:
    path = one_file(folder, pattern)
    path.write_bytes(edit(path.read_bytes()))
    return path


def test_published_parent_missing_folder(home, capsys):
    _published_run(home, capsys, home / "nope", "parents.0.published: details folder", "does not exist")


def test_published_parent_folder_of_garbage(home, capsys):
    (home / "garbage").mkdir()
    (home / "garbage" / "notes.txt").write_text("not details\n")
    _published_run(home, capsys, home / "garbage", "no lm-eval results_<date>.json in this folder")


def test_published_parent_truncated_record(home, capsys):
    folder = details(home)
    path = _damage(folder, "samples_leaderboard_bbh_snarks_*.jsonl", lambda b: b[: len(b) - 40])
    _published_run(home, capsys, folder, f"{path}: line", "truncated or unparsable record")


def test_published_parent_document_missing(home, capsys):
    folder = details(home)
    path = _damage(folder, "samples_leaderboard_gpqa_main_*.jsonl", lambda b: b[b.index(b"\n") + 1:])
    _published_run(home, capsys, folder, f"{path}:", "documents missing")


def test_published_parent_results_not_json(home, capsys):
    folder = details(home)
    path = _damage(folder, "results_*.json", lambda b: b[:100])
    _published_run(home, capsys, folder, f"{path}: cannot read results JSON")


def test_published_parent_latin1_record(home, capsys):
    folder = details(home)
    path = _damage(folder, "samples_leaderboard_ifeval_*.jsonl", lambda b: b[:30] + b"\xff" + b[31:])
    _published_run(home, capsys, folder, f"{path}: line 1: byte 30 (0xff) is not UTF-8")


def test_published_parent_local_folder_with_revision(home, capsys):
    _published_run(home, capsys, DETAILS, "--revision is for hub repos, not a local folder", revision="a" * 40)


def test_published_parent_hub_repo_offline_not_cached(home, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    (home / "hf").mkdir()
    _published_run(home, capsys, "open-llm-leaderboard/nobody__nothing-details", "open-llm-leaderboard/nobody__nothing-details")


# ------------------------------------------------------------------------------ sweep recipes


def _sweep(home: Path, **changes) -> Path:
    data = experiment(home, name="sw", parents=[{"fixture": "parent_a"}, {"fixture": "parent_b"}], recipe=str(RECIPE),
                      grid={"parameters.t": [0.25, 0.75]}, benchmarks=["mmlu_pro"])
    data.pop("candidate"), data.pop("limit")
    data.update(changes)
    return write_config(home, {k: v for k, v in data.items() if v is not None}, name="sweep.yaml")


def test_sweep_grid_value_mergekit_refuses_before_any_parent_runs(home, capsys):
    """`t: ["0,5"]` (a decimal comma) passed the sweep's own checks, both parents were evaluated,
    then the merge stopped: now mergekit's own parameter validation refuses it up front."""
    sweep = _sweep(home, grid={"parameters.t": [["0,5"]]})
    refused(capsys, home, ["sweep", "--config", sweep], "parameters.t: t = [\"0,5\"]: mergekit refuses it")
    assert not (home / "results").exists() and not (home / "reports").exists()


def test_sweep_set_value_mergekit_refuses(home, capsys):
    sweep = _sweep(home, grid=None, candidates=[{"name": "c1", "set": {"parameters.t": "half"}}])
    refused(capsys, home, ["sweep", "--config", sweep], "candidates.0", "mergekit refuses it")


def test_sweep_explicit_recipe_mergekit_refuses(home, capsys):
    recipe = home / "other.yml"
    recipe.write_text(RECIPE.read_text().replace("t: [0, 0.5, 1, 0.5, 0]", "t: [0, half, 1]"))
    sweep = _sweep(home, candidates=[{"name": "c1", "recipe": str(recipe)}])
    refused(capsys, home, ["sweep", "--config", sweep], "candidates.0 (c1", "mergekit refuses it")


def test_merge_recipe_with_a_decimal_comma(home, capsys):
    recipe = home / "recipe.yml"
    recipe.write_text(RECIPE.read_text().replace("t: [0, 0.5, 1, 0.5, 0]", 't: [0, "0,5", 1]'))
    refused(capsys, home, ["merge", recipe, home / "merged"], "parameters.t: t = [0, \"0,5\", 1]: mergekit refuses it")


# ------------------------------------------------------------------------------------ history


def foreign_sqlite(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        conn.execute("INSERT INTO contacts VALUES ('ada', '555-0100')")
    conn.close()
    return path


def evalsuite_history(root: Path) -> Path:
    from evalsuite.history.db import connect

    connect(root, create=True).close()
    return root / "history.sqlite"


@pytest.mark.parametrize("argv", [
    ["history"], ["history", "--format", "json"], ["baseline", "list"], ["baseline", "set", "nightly"],
    ["regress", "--baseline", "nightly"],
], ids=lambda a: " ".join(a))
def test_foreign_sqlite_file_is_refused_and_left_alone(home, capsys, argv):
    db = foreign_sqlite(home / "results" / "history.sqlite")
    refused(capsys, home, [*argv, "--results", home / "results"], f"{db}: not an evalsuite run history (an SQLite file of another program")
    assert sorted(p.name for p in (home / "results").iterdir()) == ["history.sqlite"]


def test_run_refuses_a_foreign_history_before_any_work(home, capsys):
    foreign_sqlite(home / "results" / "history.sqlite")
    cfg = write_config(home, experiment(home))
    refused(capsys, home, ["run", "--all", "--config", cfg], "not an evalsuite run history")


@pytest.mark.parametrize("content, why", [(b"", "an empty file"), (b"name,phone\nada,555\n", "not an SQLite file")])
def test_history_file_that_is_not_sqlite(home, capsys, content, why):
    (home / "results").mkdir()
    (home / "results" / "history.sqlite").write_bytes(content)
    refused(capsys, home, ["history", "--results", home / "results"], f"not an evalsuite run history ({why})")


@pytest.mark.parametrize("last", ["-2", "0"])
def test_history_last_must_be_positive(home, capsys, last):
    evalsuite_history(home / "results")
    refused(capsys, home, ["history", "--results", home / "results", "--last", last], f"--last {last}: the number of runs to list must be 1 or more")


def test_read_only_commands_open_the_history_read_only(home, capsys):
    """`history` and `baseline list` read a history the user cannot write (mode=ro): listed,
    and the file byte-identical."""
    db = evalsuite_history(home / "results")
    before = db.read_bytes()
    db.chmod(0o444)
    try:
        assert main(["history", "--results", str(home / "results")]) == 0
        assert main(["baseline", "list", "--results", str(home / "results")]) == 0
        assert "no recorded runs" in capsys.readouterr().out
    finally:
        db.chmod(0o644)
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["history.sqlite"]  # no -wal/-shm either


def test_a_history_created_by_evalsuite_carries_its_marker(tmp_path):
    from evalsuite.history.db import APPLICATION_ID, check_history_file

    db = evalsuite_history(tmp_path)
    assert int.from_bytes(db.read_bytes()[68:72], "big") == APPLICATION_ID
    check_history_file(tmp_path)  # recognised


# -------------------------------------------------------------------------------- other options


@pytest.mark.parametrize("argv, expected", [
    (["--tolerance", "-1"], "--tolerance -1.0: normalized points, 0 or more"),
    (["--tolerance", "nan"], "--tolerance nan: normalized points, 0 or more"),
])
def test_regress_tolerance_range(home, capsys, argv, expected):
    evalsuite_history(home / "results")
    refused(capsys, home, ["regress", "--baseline", "nightly", "--results", home / "results", *argv], expected)


def test_regress_junit_in_the_way(home, capsys):
    evalsuite_history(home / "results")
    (home / "out").mkdir()
    (home / "file").write_text("mine\n")
    refused(capsys, home, ["regress", "--baseline", "nightly", "--results", home / "results", "--junit", home / "out"], "is a folder")
    refused(capsys, home, ["regress", "--baseline", "nightly", "--results", home / "results", "--junit", home / "file" / "r.xml"],
            f"{home / 'file'} is a file, not a folder")


def test_card_out_is_a_folder_and_view_dir_is_a_file(home, capsys):
    cfg = write_config(home, experiment(home))
    (home / "out").mkdir()
    refused(capsys, home, ["card", "--config", cfg, "--model", "tiny-candidate", "--out", home / "out"], "--out", "is a folder")
    (home / "reports.txt").write_text("mine\n")
    refused(capsys, home, ["view", "--dir", home / "reports.txt"], "is a file, not a folder")


def test_import_over_an_unreadable_experiment_record_is_refused_before_reading_the_source(home, capsys):
    (home / "results" / "experiments").mkdir(parents=True)
    (home / "results" / "experiments" / "pub.json").write_text("someone's notes\n")
    refused(capsys, home, ["import", DETAILS, "--name", "pub"], "an experiment record that cannot be read is in the way")


def test_verify_with_a_bad_name_in_its_config(home, capsys):
    cfg = write_config(home, {**experiment(home), "name": "../x"})
    refused(capsys, home, ["verify", "--model", "m", "--config", cfg], "experiment name '../x' must be letters")
