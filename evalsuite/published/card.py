"""Model card section: the "Open LLM Leaderboard Evaluation Results" table and the Hub's
`model-index` metadata, built from the stored results of one model of an experiment's last run.

The form is the one the leaderboard's bot added to model cards in late 2024 (v2 leaderboard).
Found in model cards stored in public repositories (the `code` corpus of this project's search
tool), e.g. the card of tiiuae/Falcon3-10B-Instruct (Dec 2024, as copied in
lemoaidotsh/dark-and-light-mode README.md), ZeroXClem/Llama-3.1-8B-AthenaSky-MegaMix,
tiiuae/falcon-mamba-7b and dfurman/Llama-3-8B-Orpo-v0.1 READMEs:

    # [Open LLM Leaderboard Evaluation Results](https://huggingface.co/spaces/open-llm-leaderboard/open_llm_leaderboard)
    Detailed results can be found [here](https://huggingface.co/datasets/open-llm-leaderboard/<org>__<name>-details)

    |      Metric       |Value|
    |-------------------|----:|
    |Avg.               |26.79|
    |IFEval (0-Shot)    |63.01|
    |BBH (3-Shot)       |31.39|
    |MATH Lvl 5 (4-Shot)|27.95|
    |GPQA (0-shot)      | 3.69|
    |MuSR (0-shot)      | 6.90|
    |MMLU-PRO (5-shot)  |27.82|

and in the YAML front matter, one `model-index` entry per benchmark:

    model-index:
    - name: <name>
      results:
      - task: {type: text-generation, name: Text Generation}
        dataset: {name: IFEval (0-Shot), type: HuggingFaceH4/ifeval, args: {num_few_shot: 0}}
        metrics:
        - {type: inst_level_strict_acc and prompt_level_strict_acc, value: 63.01, name: strict accuracy}
        source: {url: 'https://huggingface.co/spaces/open-llm-leaderboard/open_llm_leaderboard?query=<org>/<name>',
                 name: Open LLM Leaderboard}
      ... BBH (3-Shot) / BBH / acc_norm "normalized accuracy"; MATH Lvl 5 (4-Shot) /
      hendrycks/competition_math / exact_match "exact match"; GPQA (0-shot) / Idavidrein/gpqa /
      acc_norm; MuSR (0-shot) / TAUR-Lab/MuSR / acc_norm; MMLU-PRO (5-shot) / TIGER-Lab/MMLU-Pro,
      config main, split test / acc "accuracy"; values rounded to 2 decimals (6.9, 38.1).

Deliberate differences, because these numbers are a reproduction and not the leaderboard's:
the "Detailed results" link (the leaderboard's details dataset, which does not hold these runs)
is replaced by a line saying what produced the numbers (harness profile, MATH parser, experiment),
`source.name` says "reproduced with evalsuite", and a `--limit` run is marked as such.

Every number comes from the stored results (`evalsuite.score` on the run's job folders); the
constants below are the bot's labels and few-shot counts only.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from huggingface_hub import EvalResult, ModelCardData

from evalsuite.errors import UserError
from evalsuite.schema import ModelScores, Score
from evalsuite.results.store import Store
from evalsuite.study import load_study
from evalsuite.suite import Suite, load_suite

MathParser = Literal["math-verify", "original"]
MATH_PARSERS: tuple[str, ...] = ("math-verify", "original")

LEADERBOARD_URL = "https://huggingface.co/spaces/open-llm-leaderboard/open_llm_leaderboard"
SECTION_TITLE = "Open LLM Leaderboard Evaluation Results"
AVG_LABEL = "Avg."
MISSING = "—"
SOURCE_NAME = "Open LLM Leaderboard (reproduced with evalsuite)"

# Score id of MATH Lvl 5 under each parser (ids of tasks/leaderboard_v2.yaml)
MATH_SCORE_ID = {"math-verify": "math_hard", "original": "math_hard_original"}
PARSER_TEXT = {
    "math-verify": "Math-Verify (the leaderboard's parser since Feb 2025)",
    "original": "the original parser (the one of the leaderboard's model cards of late 2024)",
}


@dataclass(frozen=True)
class CardRow:
    """The bot's row of one benchmark: table label and model-index fields."""

    benchmark: str  # suite benchmark id
    label: str
    dataset_type: str
    num_few_shot: int
    metric_type: str
    metric_name: str
    config: Optional[str] = None
    split: Optional[str] = None


# the bot's rows, in its order (module docstring for where this comes from)
ROWS: tuple[CardRow, ...] = (
    CardRow("ifeval", "IFEval (0-Shot)", "HuggingFaceH4/ifeval", 0,
            "inst_level_strict_acc and prompt_level_strict_acc", "strict accuracy"),
    CardRow("bbh", "BBH (3-Shot)", "BBH", 3, "acc_norm", "normalized accuracy"),
    CardRow("math_hard", "MATH Lvl 5 (4-Shot)", "hendrycks/competition_math", 4, "exact_match", "exact match"),
    CardRow("gpqa", "GPQA (0-shot)", "Idavidrein/gpqa", 0, "acc_norm", "acc_norm"),
    CardRow("musr", "MuSR (0-shot)", "TAUR-Lab/MuSR", 0, "acc_norm", "acc_norm"),
    CardRow("mmlu_pro", "MMLU-PRO (5-shot)", "TIGER-Lab/MMLU-Pro", 5, "acc", "accuracy", config="main", split="test"),
)


@dataclass
class Card:
    model: str
    experiment: str
    hub: Optional[str]
    """the model's Hub id (org/name) when the experiment names one; None for local models"""
    harness: str
    """harness profile of the jobs' identity: leaderboard or upstream (else unknown, or mixed (...))"""
    math_parser: str
    values: dict[str, Optional[float]]
    """benchmark id -> normalized score (unrounded), None where the results hold none"""
    scores: dict[str, Score] = field(default_factory=dict)
    """benchmark id -> the Score shown (MATH: the chosen parser's)"""
    limit: Optional[Union[int, float]] = None
    shots: dict[str, list[int]] = field(default_factory=dict)
    """benchmark id -> distinct few-shot counts of its tasks in the results files (`n-shot`)"""

    @property
    def average(self) -> Optional[float]:
        """Plain mean of the six shown values (the leaderboard's Average), only when all are present."""
        vals = [self.values.get(r.benchmark) for r in ROWS]
        if any(v is None for v in vals):
            return None
        return math.fsum(vals) / len(vals)  # type: ignore[arg-type]

    @property
    def missing(self) -> list[str]:
        return [r.label for r in ROWS if self.values.get(r.benchmark) is None]

    @property
    def math_label(self) -> Optional[str]:
        s = self.scores.get("math_hard")
        return s.label if s is not None else None


# ---------------------------------------------------------------------------------------------
# reading the stored results


def _math_score(ms: ModelScores, parser: str) -> Optional[Score]:
    wanted = MATH_SCORE_ID[parser]
    return next((s for s in ms.scores.values() if s.id == wanted), None)


def card_from_scores(ms: Optional[ModelScores], *, model: str, experiment: str, harness: str,
                     math_parser: str = "math-verify", hub: Optional[str] = None) -> Card:
    """Pick the card's values out of one model's scores (None: no results at all)."""
    if math_parser not in MATH_PARSERS:
        raise UserError(f"--math-parser {math_parser!r}: choose one of {', '.join(MATH_PARSERS)}")
    values: dict[str, Optional[float]] = {}
    shown: dict[str, Score] = {}
    for row in ROWS:
        s: Optional[Score] = None
        if ms is not None:
            if row.benchmark == "math_hard":
                s = _math_score(ms, math_parser)
            else:
                s = next((x for x in ms.scores.values() if x.id == row.benchmark and x.in_average), None)
        values[row.benchmark] = s.value if s is not None else None
        if s is not None:
            shown[row.benchmark] = s
    return Card(model=model, experiment=experiment, hub=hub, harness=harness, math_parser=math_parser,
                values=values, scores=shown, limit=ms.limit if ms is not None else None)


def _harness(records: list) -> str:
    found = sorted({str(r.identity.get("harness", "unknown")) for r in records})
    if not found:
        return "unknown"
    return found[0] if len(found) == 1 else f"mixed ({', '.join(found)})"


def load_card(results_dir: Path, experiment: str, model: str, *, math_parser: str = "math-verify",
              hub: Optional[str] = None, suite: Optional[Suite] = None) -> Card:
    """The card of `model` from the experiment's last run stored in `results_dir`:
    experiment record -> its study (evalsuite.study: jobs checked, results scored once)."""
    suite = suite or load_suite()
    store = Store(Path(results_dir))
    rec = store.read_experiment(experiment)
    names = [m.name for m in rec.models]
    if model not in names:
        raise UserError(f"model {model!r} is not in the last run of experiment {experiment!r} "
                        f"(its models: {', '.join(map(str, names)) or 'none'})")
    only = rec.model_copy(update={"models": [m for m in rec.models if m.name == model], "jobs": {model: rec.jobs.get(model, {})}})
    study = load_study(store, only, suite, check_all=True)
    runs = study.runs[model]
    card = card_from_scores(study.scores.get(model), model=model, experiment=rec.experiment,
                            harness=_harness([r.record for r in runs.values()]), math_parser=math_parser, hub=hub)
    card.shots = _shots([r.parsed.n_shot for r in runs.values()], suite)
    return card


def _shots(n_shots: list[dict[str, int]], suite: Suite) -> dict[str, list[int]]:
    """Few-shot counts the results files record (lm-eval's `n-shot`), per benchmark."""
    found: dict[str, set[int]] = {}
    for n_shot in n_shots:
        for bench in suite.benchmarks:
            for task in bench.leaf_tasks:
                if task in n_shot:
                    found.setdefault(bench.id, set()).add(n_shot[task])
    return {b: sorted(v) for b, v in found.items()}


# ---------------------------------------------------------------------------------------------
# rendering


def _fmt(v: Optional[float]) -> str:
    return MISSING if v is None else f"{v:.2f}"


def _center(text: str, width: int) -> str:
    """The bot's header centring: extra space on the right ("      Metric       ")."""
    pad = max(width - len(text), 0)
    return " " * (pad // 2) + text + " " * (pad - pad // 2)


def markdown_table(card: Card) -> str:
    rows = [(AVG_LABEL, _fmt(card.average))] + [(r.label, _fmt(card.values.get(r.benchmark))) for r in ROWS]
    w1 = max(len("Metric"), *(len(a) for a, _ in rows))
    w2 = max(len("Value"), *(len(b) for _, b in rows))
    lines = [f"|{_center('Metric', w1)}|{_center('Value', w2)}|", f"|{'-' * w1}|{'-' * (w2 - 1)}:|"]
    lines += [f"|{a.ljust(w1)}|{b.rjust(w2)}|" for a, b in rows]
    return "\n".join(lines)


def provenance_line(card: Card) -> str:
    extra = card.math_label  # the scorer's label, when it says more than the parser's name
    label = f" ({extra})" if extra and extra.lower() not in PARSER_TEXT[card.math_parser].lower() else ""
    return (f"Reproduced with evalsuite from the stored results of experiment `{card.experiment}`: "
            f"harness profile `{card.harness}`; MATH Lvl 5 scored with {PARSER_TEXT[card.math_parser]}{label} "
            f"(`--math-parser {card.math_parser}`).")


def limit_line(card: Card) -> Optional[str]:
    if card.limit is None:
        return None
    amount = f"{card.limit:.0%} of the" if card.limit < 1 else f"{card.limit}"  # lm-eval: a limit < 1 is a fraction
    return f"**Warning:** limited to {amount} documents per task: not comparable with the leaderboard."


def missing_line(card: Card) -> Optional[str]:
    if not card.missing:
        return None
    return f"{MISSING}: not in the stored results ({', '.join(card.missing)}); no {AVG_LABEL} without all six."


def shots_line(card: Card) -> Optional[str]:
    """A benchmark whose stored results ran with another few-shot count than the bot's label."""
    off = [f"{r.label} ran {'/'.join(map(str, card.shots[r.benchmark]))}-shot"
           for r in ROWS if card.shots.get(r.benchmark) and card.shots[r.benchmark] != [r.num_few_shot]]
    return f"**Warning:** the stored results differ from the leaderboard's few-shot setting: {'; '.join(off)}." if off else None


def markdown_section(card: Card) -> str:
    head = f"# [{SECTION_TITLE}]({LEADERBOARD_URL})\n{provenance_line(card)}"
    extras = [x for x in (limit_line(card), shots_line(card), missing_line(card)) if x]
    return "\n\n".join([head, *extras, markdown_table(card)]) + "\n"


def card_data(card: Card) -> ModelCardData:
    """The Hub's model-card metadata: one `EvalResult` per benchmark with a value (huggingface_hub
    turns them into the `model-index`)."""
    url = f"{LEADERBOARD_URL}?query={card.hub}" if card.hub else LEADERBOARD_URL
    results = [
        EvalResult(
            task_type="text-generation", task_name="Text Generation",
            dataset_type=row.dataset_type, dataset_name=row.label, dataset_config=row.config, dataset_split=row.split,
            dataset_args={"num_few_shot": row.num_few_shot},
            metric_type=row.metric_type, metric_value=round(v, 2), metric_name=row.metric_name,
            source_url=url, source_name=SOURCE_NAME,
        )
        for row in ROWS if (v := card.values.get(row.benchmark)) is not None
    ]
    return ModelCardData(model_name=card.hub.split("/")[-1] if card.hub else card.model, eval_results=results)


def model_index(card: Card) -> list[dict]:
    """The `model-index` value (the Hub's metadata), one result per benchmark with a value."""
    return card_data(card).to_dict()["model-index"]


def front_matter(card: Card) -> str:
    # dumped here rather than with `ModelCardData.to_yaml` (PyYAML's default width 80, which may fold
    # a long plain value): one line per value, as the cards this project has always written
    buf = io.StringIO()
    yaml.safe_dump({"model-index": model_index(card)}, buf, sort_keys=False, allow_unicode=True, width=1000)
    return "---\n" + buf.getvalue() + "---\n"


def render(card: Card) -> str:
    """YAML front matter (model-index), then the evaluation results section."""
    return front_matter(card) + "\n" + markdown_section(card)
