"""`evalsuite score` on genuine results files of lm-eval 0.4.5 ... 0.4.13 and the Hugging Face fork.

The files under fixtures_score/lm_eval_versions/ were written by those releases themselves (tiny
model, the demo mirror's rows; README.md there says how) and are read here unmodified; damaged
copies are made in tmp_path. Expected numbers are computed here from the files' own leaf values.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from evalsuite import score as sc
from evalsuite.results.files import read_results_file
from evalsuite.cli.main import main
from evalsuite.suite import load_suite

SUITE = load_suite()
HERE = Path(__file__).parent / "fixtures_score" / "lm_eval_versions"
SIX = ["IFEval", "BBH", "MATH Lvl 5", "GPQA", "MuSR", "MMLU-PRO"]
MV, ORIG = "MATH Lvl 5", "MATH Lvl 5 (original parser)"
TOL = 1e-9


def fixture(name: str) -> Path:
    (path,) = sorted((HERE / name).glob("results_*.json"))
    return path


# name -> (MATH task version, does exact_match hold Math-Verify, does exact_match_original exist, --limit)
LEADERBOARD = {
    "hf-fork-adding_all_changess/limit2": (1.0, False, False, 2),
    "hf-fork-main/limit2": (2.0, True, False, 2),
    "0.4.5/limit2": (1.0, False, False, 2),
    "0.4.8/limit2": (2.0, False, False, 2),
    "0.4.9.1/limit2": (3.0, True, True, 2),
    "0.4.13/limit2": (3.0, True, True, 2),
}
FULL = "0.4.13/full"  # leaderboard_bbh, _gpqa, _musr, _mmlu_pro; no --limit
LEAVES = "0.4.9.1/full-leaves"  # leaderboard_mmlu_pro, the three gpqa leaves, leaderboard_musr; no --limit
ALL = [*LEADERBOARD, FULL, LEAVES]


def load(name: str) -> dict:
    return json.loads(fixture(name).read_text())


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["score", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def leaves(data: dict, group: str) -> list[str]:
    """A group's leaf tasks, from the file's own group_subtasks (non-empty lists are groups)."""
    out = []
    for t in data["group_subtasks"][group]:
        sub = data["group_subtasks"].get(t)
        out.extend(leaves(data, t) if sub else [t])
    return out


def bench_leaves(data: dict, group: str) -> list[str]:
    """The group's leaves, or, where the run named the leaf tasks directly, those in `results`."""
    if data["group_subtasks"].get(group):
        return leaves(data, group)
    return sorted(t for t in data["results"] if t.startswith(group + "_") and not data["group_subtasks"].get(t))


def by_hand(data: dict) -> dict[str, float]:
    """The leaderboard numbers from the file's leaf values, written out independently of the scorer."""
    res, ns = data["results"], data["n-samples"]
    out: dict[str, float] = {}
    if "leaderboard_ifeval" in res:
        e = res["leaderboard_ifeval"]
        out["IFEval"] = (e["prompt_level_strict_acc,none"] + e["inst_level_strict_acc,none"]) / 2 * 100
    bbh = bench_leaves(data, "leaderboard_bbh")
    if bbh:
        assert len(bbh) == 24
        out["BBH"] = sum(sc.normalize(res[t]["acc_norm,none"], 1 / len(data["configs"][t]["doc_to_choice"]))
                         for t in bbh) / 24
    g = bench_leaves(data, "leaderboard_gpqa")
    if g:
        assert len(g) == 3
        correct = sum(res[t]["acc_norm,none"] * ns[t]["effective"] for t in g)
        out["GPQA"] = sc.normalize(correct / sum(ns[t]["effective"] for t in g), 0.25)
    m = bench_leaves(data, "leaderboard_musr")
    if m:
        k = {"murder_mysteries": 2, "object_placements": 5, "team_allocation": 3}
        assert len(m) == 3
        out["MuSR"] = sum(sc.normalize(res[t]["acc_norm,none"], 1 / k[t.removeprefix("leaderboard_musr_")])
                          for t in m) / 3
    if "leaderboard_mmlu_pro" in res:
        out["MMLU-PRO"] = sc.normalize(res["leaderboard_mmlu_pro"]["acc,none"], 0.1)
    mt = bench_leaves(data, "leaderboard_math_hard")
    if mt:
        assert len(mt) == 7
        total = sum(ns[t]["effective"] for t in mt)
        for key, display in (("exact_match,none", "em"), ("exact_match_original,none", "em_original")):
            if all(key in res[t] for t in mt):
                out[display] = sum(res[t][key] * ns[t]["effective"] for t in mt) / total * 100
    return out


# --- every genuine file scores, in Python and through the CLI ------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_genuine_file_scores_through_api_and_cli(name, capsys):
    path = fixture(name)
    (s,) = sc.score_paths([path])
    assert s.model == "/work/scratch/tiny/candidate"
    assert s.scores, name
    code, out, err = run_cli(capsys, path, "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["model"] == s.model and row["sources"] == [str(path)]
    assert {"limit", "labels", "task_versions", "notes"} <= set(row)
    code, out, err = run_cli(capsys, path)
    assert code == 0, err
    assert "MMLU-PRO" in out and s.model in out
    for d, sc_ in s.scores.items():
        assert f"{sc_.value:.2f}" in out, d


@pytest.mark.parametrize("name", ALL)
def test_numbers_equal_hand_computation_from_leaf_values(name):
    data = load(name)
    expect = by_hand(data)
    (s,) = sc.score_paths([fixture(name)])
    version, em_is_mv, has_original, _ = LEADERBOARD.get(name, (None, False, False, None))
    for d in ("IFEval", "BBH", "GPQA", "MuSR", "MMLU-PRO"):
        if d in expect:
            assert s.value(d) == pytest.approx(expect[d], abs=TOL), (name, d)
        else:
            assert s.value(d) is None, (name, d)
    if "em" not in expect:
        assert s.value(MV) is None and s.value(ORIG) is None
    elif has_original:
        assert s.value(MV) == pytest.approx(expect["em"], abs=TOL)
        assert s.value(ORIG) == pytest.approx(expect["em_original"], abs=TOL)
    elif em_is_mv:
        assert s.value(MV) == pytest.approx(expect["em"], abs=TOL) and s.value(ORIG) is None
    else:
        assert s.value(ORIG) == pytest.approx(expect["em"], abs=TOL) and s.value(MV) is None
    if all(d in s.scores for d in SIX):
        assert s.average == pytest.approx(sum(expect[d] if d != MV else expect["em"] for d in SIX) / 6, abs=TOL)
    # not a row of dashes: several real, non-zero numbers
    assert sum(1 for d in SIX + [ORIG] if (s.value(d) or 0) > 0) >= 2, s.to_json_dict()


def test_group_subtasks_styles():
    """lm-eval < 0.4.13 lists a leaf task named directly on the command line (not through a group)
    in group_subtasks with []; 0.4.13 lists groups only. 0.4.5 / 0.4.8 / the fork's
    adding_all_changess write no `groups` key. Either way every leaf is read as a task."""
    styles = {}
    for name in [*ALL, "0.4.3/limit2"]:
        data = load(name)
        gs = data["group_subtasks"]
        styles[name] = (sorted(k for k, v in gs.items() if v == []), "groups" in data)
        r = read_results_file(fixture(name))
        leaf = {t for t, v in gs.items() if not v} | {t for v in gs.values() for t in v if not gs.get(t)}
        assert leaf and leaf <= set(r.metrics), name
        assert not (set(r.groups) & leaf), name
        assert set(r.groups) == {g for g, v in gs.items() if v}, name
    assert styles["0.4.3/limit2"] == (["gpqa_diamond_zeroshot"], False)
    assert styles[LEAVES] == (["leaderboard_gpqa_diamond", "leaderboard_gpqa_extended", "leaderboard_gpqa_main",
                               "leaderboard_mmlu_pro"], True)
    for name in ("0.4.5/limit2", "0.4.8/limit2", "hf-fork-adding_all_changess/limit2"):
        assert styles[name] == ([], False), name
    for name in ("0.4.9.1/limit2", "hf-fork-main/limit2", "0.4.13/limit2", FULL):
        assert styles[name] == ([], True), name


def test_leaf_tasks_listed_with_empty_list_are_scored(capsys):
    """The row-of-dashes bug: leaves listed with [] in group_subtasks were taken for groups."""
    data = load(LEAVES)
    assert data["group_subtasks"]["leaderboard_mmlu_pro"] == [] and "leaderboard_gpqa" not in data["group_subtasks"]
    expect = by_hand(data)
    code, out, err = run_cli(capsys, fixture(LEAVES), "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert set(row) >= {"GPQA", "MuSR", "MMLU-PRO"} and row["limit"] is None
    for d in ("GPQA", "MuSR", "MMLU-PRO"):
        assert row[d] == pytest.approx(expect[d], abs=TOL), d
    assert set(row["subtasks"]["GPQA"]) == {"leaderboard_gpqa_diamond", "leaderboard_gpqa_extended",
                                            "leaderboard_gpqa_main"}


# --- MATH task versions ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hf-fork-adding_all_changess/limit2", "0.4.5/limit2", "0.4.8/limit2"])
def test_math_v1_v2_original_parser_only(name, capsys):
    version = LEADERBOARD[name][0]
    data = load(name)
    for t in leaves(data, "leaderboard_math_hard"):
        assert data["versions"][t] == version and "exact_match_original,none" not in data["results"][t]
    (s,) = sc.score_paths([fixture(name)])
    assert MV not in s.scores and s.value(MV) is None
    orig = s.scores[ORIG]
    assert orig.metrics == ["exact_match,none"] and orig.task_version == version
    assert orig.label.startswith("original parser")
    assert ("before the fix" in orig.label) == (version == 1.0)
    assert s.average is None
    code, out, err = run_cli(capsys, fixture(name), "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert MV not in row and "Average" not in row and row[ORIG] == pytest.approx(by_hand(data)["em"], abs=TOL)
    assert row["labels"] == {ORIG: orig.label}
    assert row["task_versions"][ORIG] == version
    assert any(f"MATH task version {version}" in n for n in row["notes"])
    code, out, _ = run_cli(capsys, fixture(name))
    assert code == 0
    assert f"MATH task version {version}: exact_match is the original parser" in out
    assert "Average not available" in out


def test_math_v2_hf_fork_main_is_math_verify():
    """The fork's main (the leaderboard's Feb 2025 re-scoring) writes task version 2.0 too, but
    its exact_match is Math-Verify: told apart by the process_results source in the file."""
    data = load("hf-fork-main/limit2")
    t = "leaderboard_math_algebra_hard"
    assert data["versions"][t] == 2.0 and "verify(" in data["configs"][t]["process_results"]
    (s,) = sc.score_paths([fixture("hf-fork-main/limit2")])
    assert s.scores[MV].label == "Math-Verify (HF fork)" and s.value(ORIG) is None
    assert s.average is not None


@pytest.mark.parametrize("name", ["0.4.9.1/limit2", "0.4.13/limit2"])
def test_math_v3_both_parsers(name):
    (s,) = sc.score_paths([fixture(name)])
    assert s.scores[MV].label == "Math-Verify" and s.scores[ORIG].label == "original parser"
    assert s.scores[MV].task_version == 3.0 == s.scores[ORIG].task_version
    assert s.scores[ORIG].metrics == ["exact_match_original,none"]
    assert s.notes[0] == f"{MV} = Math-Verify; {ORIG} = original parser"


def test_v2_file_without_process_results_is_refused(tmp_path, capsys):
    data = load("0.4.8/limit2")
    for cfg in data["configs"].values():
        cfg.pop("process_results", None)
    p = tmp_path / "results_x.json"
    p.write_text(json.dumps(data))
    assert_error(capsys, p, str(p), "process_results")


def test_mixed_math_versions_are_refused(tmp_path, capsys):
    """MATH subtasks from task code of two versions cannot be weighted into one number."""
    v1, v3 = load("0.4.5/limit2"), load("0.4.13/limit2")
    t = "leaderboard_math_geometry_hard"
    v1["results"][t] = v3["results"][t]
    v1["versions"][t] = v3["versions"][t]
    p = tmp_path / "results_mixed.json"
    p.write_text(json.dumps(v1))
    assert_error(capsys, p, str(p), "MATH Lvl 5", "different task code")


# --- --limit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LEADERBOARD))
def test_limit_run_is_marked(name, capsys):
    assert load(name)["config"]["limit"] == 2  # 2.0 in the older files
    code, out, _ = run_cli(capsys, fixture(name), "--format", "json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["limit"] == 2 and type(row["limit"]) is int
    code, out, _ = run_cli(capsys, fixture(name))
    assert code == 0
    note = [line for line in out.splitlines() if "--limit 2" in line]
    assert note and "/work/scratch/tiny/candidate" in note[0]


@pytest.mark.parametrize("name", [FULL, LEAVES])
def test_full_run_limit_null(name, capsys):
    data = load(name)
    assert data["config"]["limit"] is None
    assert all(v["original"] == v["effective"] for v in data["n-samples"].values())
    code, out, _ = run_cli(capsys, fixture(name), "--format", "json")
    (row,) = json.loads(out)
    assert code == 0 and row["limit"] is None
    code, out, _ = run_cli(capsys, fixture(name))
    assert code == 0 and "--limit" not in out


def test_csv_notes_go_to_stderr(capsys):
    code, out, err = run_cli(capsys, fixture("0.4.8/limit2"), "--format", "csv")
    assert code == 0
    assert out.splitlines()[0].split(",")[-1] == "MMLU-PRO" and "note" not in out
    assert "--limit 2" in err and "MATH task version 2.0" in err


# --- damaged copies of genuine files: one line naming the file, exit 2 ---------------------------


def assert_error(capsys, path, *needles):
    code, out, err = run_cli(capsys, path, "--format", "json")
    assert code == 2, (code, out, err)
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, (n, err)


def damaged(tmp_path, name: str, mutate) -> Path:
    data = copy.deepcopy(load(name))
    mutate(data)
    p = tmp_path / f"results_{name.replace('/', '_')}.json"
    p.write_text(json.dumps(data))
    return p


def test_damaged_metric_key_removed(tmp_path, capsys):
    p = damaged(tmp_path, "0.4.13/limit2",
                lambda d: d["results"]["leaderboard_math_prealgebra_hard"].pop("exact_match_original,none"))
    assert_error(capsys, p, str(p), "leaderboard_math_prealgebra_hard", "exact_match_original,none", "task version 3.0")
    p = damaged(tmp_path, "0.4.5/limit2", lambda d: d["results"]["leaderboard_bbh_navigate"].pop("acc_norm,none"))
    assert_error(capsys, p, str(p), "leaderboard_bbh_navigate", "acc_norm,none")
    p = damaged(tmp_path, "0.4.8/limit2",
                lambda d: d["results"]["leaderboard_math_algebra_hard"].pop("exact_match,none"))
    assert_error(capsys, p, str(p), "leaderboard_math_algebra_hard", "exact_match,none")


def test_damaged_results_removed(tmp_path, capsys):
    p = damaged(tmp_path, "0.4.9.1/limit2", lambda d: d.pop("results"))
    assert_error(capsys, p, str(p), "results")


def test_damaged_n_samples_removed(tmp_path, capsys):
    p = damaged(tmp_path, "hf-fork-main/limit2", lambda d: d.pop("n-samples"))
    assert_error(capsys, p, str(p), "n-samples")


def test_damaged_unknown_math_version(tmp_path, capsys):
    """Only exact_match, and no version: no known task code wrote that."""
    def strip(d):
        for t in leaves(d, "leaderboard_math_hard"):
            d["versions"].pop(t)
            d["configs"][t].pop("metadata")
    p = damaged(tmp_path, "0.4.5/limit2", strip)
    assert_error(capsys, p, str(p), "exact_match_original,none", "task version not in the file")


def test_no_suite_benchmark_in_file(tmp_path, capsys):
    """lm-eval 0.4.3 had no leaderboard tasks: its gpqa_diamond_zeroshot file holds none of ours."""
    p = fixture("0.4.3/limit2")
    assert list(json.loads(p.read_text())["results"]) == ["gpqa_diamond_zeroshot"]
    assert_error(capsys, p, str(p), "none of the leaderboard_v2 benchmarks", "gpqa_diamond_zeroshot")
    q = damaged(tmp_path, FULL, lambda d: d.update(results={k: v for k, v in d["results"].items()
                                                            if not k.startswith("leaderboard_")}))
    assert_error(capsys, q, str(q), "none of the leaderboard_v2 benchmarks")


@pytest.mark.parametrize("name", sorted(LEADERBOARD))
def test_typed_fields_read_from_genuine_files(name):
    """The fields other stages used to dig out of the JSON by key come typed from the one reader:
    n-shot, documents in each task, task configs (ModelResults) and the run-level fields
    (ResultsMeta), equal to what the genuine lm-eval file says."""
    from evalsuite.results.files import meta_of

    path = fixture(name)
    data = json.loads(path.read_text())
    res = read_results_file(path)
    leaves = [t for b in SUITE.benchmarks for t in b.leaf_tasks if t in res.metrics]
    assert leaves and res.n_shot == {t: data["n-shot"][t] for t in leaves}
    assert res.n_original == {t: data["n-samples"][t]["original"] for t in leaves}
    assert all(res.n_original[t] > res.n_samples[t] == 2 for t in leaves if res.n_original[t] > 2)
    assert res.configs == {t: data["configs"][t] for t in leaves}
    meta = meta_of(data)
    assert meta.config == data["config"] and meta.task_hashes == data.get("task_hashes", {})
    assert meta.transformers_version == data.get("transformers_version") and meta.dtype == "float32"


@pytest.mark.parametrize("config, dtype", [
    ({"model_dtype": "torch.bfloat16"}, "bfloat16"),
    ({"model_args": "pretrained=x,dtype=bfloat16,trust_remote_code=False"}, "bfloat16"),
    ({"model_args": {"pretrained": "x", "dtype": "float16"}}, "float16"),
    ({"model_args": "pretrained=x,dtype=auto"}, None),
    ({"model_args": "pretrained=x"}, None),
    ({}, None),
])
def test_results_dtype_rule(config, dtype):
    from evalsuite.results.files import meta_of

    assert meta_of({"config": config}).dtype == dtype
    assert meta_of([]).dtype is None and meta_of({"config": "not a dict"}).config == {}
