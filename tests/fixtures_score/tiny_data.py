"""A few rows per leaderboard task as local parquet + `--include_path` overrides, for a real
`lm_eval run --model dummy` over the whole `leaderboard` group (no hub access).

Rows carry only the columns the task code reads (see shared/reference/lm_eval_leaderboard_tasks.md).
The overrides `include:` the installed YAML and replace only the dataset source.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from evalsuite.suite import load_suite

LB = Path(importlib.util.find_spec("lm_eval").submodule_search_locations[0]) / "tasks" / "leaderboard"

MUSR_K = {"murder_mysteries": 2, "object_placements": 5, "team_allocation": 3}
MATH_FILES = {
    "algebra_hard": "math_algebra.yaml",
    "counting_and_prob_hard": "math_counting_and_prob.yaml",
    "geometry_hard": "math_geometry.yaml",
    "intermediate_algebra_hard": "math_intermediate_algebra.yaml",
    "num_theory_hard": "math_num_theory.yaml",
    "prealgebra_hard": "math_prealgebra.yaml",
    "precalculus_hard": "math_precalculus.yaml",
}
IFEVAL_KW = ["num_highlights", "relation", "num_words"]


def _override(tasks_dir: Path, task: str, include: Path, data_files: dict[str, Path]) -> None:
    lines = [f"include: {include}", f"task: {task}", "dataset_path: parquet", "dataset_name: null",
             "dataset_kwargs:", "  data_files:"]
    lines += [f"    {split}: {path}" for split, path in data_files.items()]
    (tasks_dir / f"{task}.yaml").write_text("\n".join(lines) + "\n")


def build(root: Path, rows: int = 3) -> Path:
    """Write data + overrides under root; return the include path (folder of task YAMLs)."""
    suite = load_suite()
    data, tasks = root / "data", root / "tasks"
    data.mkdir(parents=True, exist_ok=True)
    tasks.mkdir(parents=True, exist_ok=True)

    bbh = suite.get("bbh")
    for short, k in bbh.choices.items():
        if short == "object_counting":
            choices = [str(i) for i in range(19)]
        else:
            import yaml

            class _L(yaml.SafeLoader):
                pass

            _L.add_multi_constructor("!", lambda loader, suffix, node: None)
            choices = yaml.load((LB / "bbh_mc" / f"{short}.yaml").read_text(), Loader=_L)["doc_to_choice"]
        f = data / f"bbh_{short}.parquet"
        pd.DataFrame({"input": [f"question {i} about {short}" for i in range(rows)],
                      "target": [choices[i % len(choices)] for i in range(rows)]}).to_parquet(f)
        _override(tasks, bbh.task_prefix + short, LB / "bbh_mc" / f"{short}.yaml", {"test": f})

    for short, k in MUSR_K.items():
        ch = [f"option {j}" for j in range(k)]
        f = data / f"musr_{short}.parquet"
        pd.DataFrame({"narrative": ["A short story."] * rows, "question": ["Which one?"] * rows,
                      "choices": [str(ch)] * rows, "answer_index": [i % k for i in range(rows)],
                      "answer_choice": [ch[i % k] for i in range(rows)]}).to_parquet(f)
        _override(tasks, f"leaderboard_musr_{short}", LB / "musr" / f"musr_{short}.yaml", {short: f})

    for short in ("diamond", "extended", "main"):
        f = data / f"gpqa_{short}.parquet"
        pd.DataFrame({"Question": [f"What is {i}?" for i in range(rows)], "Correct Answer": ["right"] * rows,
                      "Incorrect Answer 1": ["w1"] * rows, "Incorrect Answer 2": ["w2"] * rows,
                      "Incorrect Answer 3": ["w3"] * rows}).to_parquet(f)
        _override(tasks, f"leaderboard_gpqa_{short}", LB / "gpqa" / f"gpqa_{short}_zeroshot.yaml", {"train": f})

    for short, yml in MATH_FILES.items():
        df = pd.DataFrame({"problem": [f"What is {i}+{i}?" for i in range(rows)] + ["easy"],
                           "level": ["Level 5"] * rows + ["Level 1"],
                           "solution": [f"It is $\\boxed{{{2 * i}}}$." for i in range(rows)] + ["$\\boxed{1}$"],
                           "type": ["Algebra"] * (rows + 1)})
        test, train = data / f"math_{short}_test.parquet", data / f"math_{short}_train.parquet"
        df.to_parquet(test)
        df.to_parquet(train)
        _override(tasks, f"leaderboard_math_{short}", LB / "math" / yml, {"test": test, "train": train})

    mm = [dict(question_id=i, question=f"q{i}?", options=["a", "b", "c", "d"], answer="A", answer_index=0,
               cot_content="", category="math", src="stub") for i in range(max(rows, 5))]
    test, val = data / "mmlu_pro_test.parquet", data / "mmlu_pro_validation.parquet"
    pd.DataFrame(mm[:rows]).to_parquet(test)
    pd.DataFrame(mm).to_parquet(val)
    _override(tasks, "leaderboard_mmlu_pro", LB / "mmlu_pro" / "mmlu_pro.yaml", {"test": test, "validation": val})

    kw = {k: None for k in IFEVAL_KW}
    f = data / "ifeval.parquet"
    pd.DataFrame({"key": list(range(rows)), "prompt": [f"Write about topic {i} without commas." for i in range(rows)],
                  "instruction_id_list": [["punctuation:no_comma", "change_case:english_lowercase"]] * rows,
                  "kwargs": [[kw, kw]] * rows}).to_parquet(f)
    _override(tasks, "leaderboard_ifeval", LB / "ifeval" / "ifeval.yaml", {"train": f})
    return tasks
