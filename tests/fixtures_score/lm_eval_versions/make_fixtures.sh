#!/bin/bash
# Makes the genuine lm-eval results files under tests/fixtures_score/lm_eval_versions/<version>/.
# Long-running (installs several lm-eval releases); NOT run by the tests. See README.md here.
#
#   bash tests/fixtures_score/lm_eval_versions/make_fixtures.sh            # all: venvs models runs copy
#   bash tests/fixtures_score/lm_eval_versions/make_fixtures.sh FUNC ARGS   # one step, e.g. run 0.4.5 leaderboard limit2 --limit 2
#
# Everything is built under $SCRATCH (default /work/scratch); only `copy` writes into the repo.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
HERE=$REPO/tests/fixtures_score/lm_eval_versions
SCRATCH=${SCRATCH:-/work/scratch}
MIRROR=$REPO/examples/demo_mirror
# HF fork (github huggingface/lm-evaluation-harness): two branches, exported with `git archive`
FORK_AAC=fca2dc43786f3199aece1c57a7272ab5140162e8    # branch adding_all_changess (Oct 2024)
FORK_MAIN=b569ab0133331d6c6108ee684855a02812b1eb12   # branch main (Mar 2025, Math-Verify PR #17)

# --- 1. one venv per lm-eval release: torch first (the local CPU wheel), then lm-eval + pins ----
mkvenv() {  # NAME PIP-SPEC PINS...
  local d=$SCRATCH/lmeval-$1 spec=$2; shift 2
  [ -x "$d/bin/lm_eval" ] && return 0
  python3.11 -m venv "$d"
  "$d/bin/pip" install -q torch==2.13.0 "setuptools<81"   # ifeval imports pkg_resources
  "$d/bin/pip" install -q "$spec" "$@"
  "$d/bin/pip" freeze > "$d/freeze.txt"
}
venvs() {
  mkvenv 0.4.3 "lm-eval[ifeval,math]==0.4.3" transformers==4.45.2 datasets==2.21.0 "numpy<2" peft==0.13.2 accelerate==1.0.1 pyarrow==17.0.0
  mkvenv 0.4.5 "lm-eval[ifeval,math]==0.4.5" transformers==4.45.2 datasets==3.0.1 "numpy<2" peft==0.13.2 accelerate==1.0.1 pyarrow==17.0.0
  mkvenv 0.4.8 "lm-eval[ifeval,math]==0.4.8" transformers==4.50.3 datasets==3.5.0 "numpy<2.3"
  mkvenv 0.4.9.1 "lm-eval[ifeval,math]==0.4.9.1" transformers==4.55.4 datasets==3.6.0
  # the fork: source trees exported from a clone (`git archive <commit> | tar -x -C DIR`)
  local b c
  for b in adding_all_changess main; do
    c=$FORK_AAC; [ $b = main ] && c=$FORK_MAIN
    [ -d "$SCRATCH/src/hf-fork-$b" ] || { echo "need $SCRATCH/src/hf-fork-$b: git archive $c | tar -x -C it"; exit 1; }
    mkvenv hf-fork-$b "$SCRATCH/src/hf-fork-$b[ifeval,math]" transformers==4.45.2 datasets==2.21.0 "numpy<2" peft==0.13.2 accelerate==1.0.1 pyarrow==17.0.0
  done
}

# --- 2. tiny Gemma-2 models and NLTK punkt_tab, built by this repo --------------------------
models() {
  "$REPO/.venv/bin/python" -c "from evalsuite.fixtures.tiny import build_demo_models; print(build_demo_models(__import__('pathlib').Path('$SCRATCH/tiny')))"
  "$REPO/.venv/bin/python" -c "from evalsuite.nltk_data import ensure_punkt_tab; print(ensure_punkt_tab(__import__('pathlib').Path('$SCRATCH/nltk'), offline=True))"
}

# --- 3. data: every leaderboard task's dataset_path -> the mirror folder -----------------------
# lm-eval 0.4.13 (the repo's .venv): --include_path overrides (same task name replaces the built-in).
# Older releases index the built-in tasks FIRST and keep them over an --include_path task of the
# same name (0.4.5 was tried: it still read TAUR-Lab/MuSR from the hub), so in the scratch venvs
# the installed YAMLs' `dataset_path:` lines are rewritten in place (originals kept as *.orig).
REPOS='bbh_mc=SaylorTwift/bbh gpqa=Idavidrein/gpqa ifeval=wis-k/instruction-following-eval math=DigitalLearningGmbH/MATH-lighteval mmlu_pro=TIGER-Lab/MMLU-Pro musr=TAUR-Lab/MuSR'
patch_data() {  # VENV
  local root; root=$("$1/bin/python" -c "import lm_eval.tasks, os; print(os.path.dirname(lm_eval.tasks.__file__))")/leaderboard
  for kv in $REPOS; do
    local sub=${kv%%=*} repo=${kv#*=}
    grep -rl --include='*yaml*' '^dataset_path:' "$root/$sub" | grep -v '\.orig$' | while read -r y; do
      [ -f "$y.orig" ] || cp "$y" "$y.orig"
      sed "s|^dataset_path:.*|dataset_path: $MIRROR/$repo|" "$y.orig" > "$y"
    done
  done
}
overrides() {  # OUTDIR  (0.4.13 only)
  rm -rf "$1"
  "$REPO/.venv/bin/python" -c "from evalsuite.data import write_task_overrides; from evalsuite.suite import load_suite; import pathlib; print(write_task_overrides(pathlib.Path('$MIRROR'), load_suite().ids, pathlib.Path('$1')))"
}

# --- 4. the runs ------------------------------------------------------------------------------
run() {  # NAME TASKS OUTNAME EXTRA-ARGS...
  local name=$1 tasks=$2 outname=$3; shift 3
  local v=$SCRATCH/lmeval-$name inc=() sub=()
  if [ "$name" = 0.4.13 ]; then  # 0.4.13's CLI has subcommands (`lm_eval run ...`)
    overrides "$SCRATCH/overrides/0.4.13"; inc=(--include_path "$SCRATCH/overrides/0.4.13"); sub=(run)
  else patch_data "$v"; fi
  rm -rf "$SCRATCH/out/$name/$outname"
  HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HOME=$SCRATCH/hf-$name NLTK_DATA=$SCRATCH/nltk TOKENIZERS_PARALLELISM=false \
    "$v/bin/lm_eval" "${sub[@]}" --model hf --model_args "pretrained=$SCRATCH/tiny/candidate,dtype=float32" \
    --tasks "$tasks" "${inc[@]}" --batch_size 8 --device cpu --log_samples \
    --output_path "$SCRATCH/out/$name/$outname" "$@"
}
# The fork's branch adding_all_changess, as committed, dies in generate_until:
#   TypeError: Collator.get_batched() got an unexpected keyword argument 'reset_batch_fn'
# (models/huggingface.py passes it; models/utils.py's Collator does not take it). In the scratch
# venv the call drops that argument (it only matters for --batch_size auto); nothing else changes.
fix_fork() {
  local f; f=$("$SCRATCH/lmeval-hf-fork-adding_all_changess/bin/python" -c "import lm_eval.models.huggingface as m; print(m.__file__)")
  [ -f "$f.orig" ] || cp "$f" "$f.orig"
  sed 's|n=batch_size, batch_fn=batch_fn, reset_batch_fn=self._reset_batch_scheduler|n=batch_size, batch_fn=batch_fn|' "$f.orig" > "$f"
}
runs() {
  ln -sfn "$REPO/.venv" "$SCRATCH/lmeval-0.4.13"
  fix_fork
  run hf-fork-adding_all_changess leaderboard limit2 --limit 2 || echo "FAILED hf-fork-adding_all_changess"
  run hf-fork-main leaderboard limit2 --limit 2 || echo "FAILED hf-fork-main"
  run 0.4.5 leaderboard limit2 --limit 2 || echo "FAILED 0.4.5"
  run 0.4.8 leaderboard limit2 --limit 2 || echo "FAILED 0.4.8"
  run 0.4.9.1 leaderboard limit2 --limit 2 || echo "FAILED 0.4.9.1"
  run 0.4.13 leaderboard limit2 --limit 2 || echo "FAILED 0.4.13"
  # no --limit: every mirror row of the four loglikelihood benchmarks (generation is slow here)
  run 0.4.13 leaderboard_bbh,leaderboard_gpqa,leaderboard_musr,leaderboard_mmlu_pro full || echo "FAILED 0.4.13 full"
  # leaf tasks named directly (not through a group): lm-eval < 0.4.13 lists each with [] in
  # group_subtasks; no --limit
  run 0.4.9.1 leaderboard_mmlu_pro,leaderboard_gpqa_diamond,leaderboard_gpqa_extended,leaderboard_gpqa_main,leaderboard_musr full-leaves || echo "FAILED 0.4.9.1 full-leaves"
  run_043 || echo "FAILED 0.4.3"
}
run_043() {
  # 0.4.3 has no leaderboard tasks: its own gpqa_diamond_zeroshot on the mirror (no suite benchmark)
  local g; g=$("$SCRATCH/lmeval-0.4.3/bin/python" -c "import lm_eval.tasks, os; print(os.path.dirname(lm_eval.tasks.__file__))")/gpqa/zeroshot/_gpqa_zeroshot_yaml
  [ -f "$g.orig" ] || cp "$g" "$g.orig"
  sed "s|^dataset_path:.*|dataset_path: $MIRROR/Idavidrein/gpqa|" "$g.orig" > "$g"
  rm -rf "$SCRATCH/out/0.4.3/limit2"
  HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HOME=$SCRATCH/hf-0.4.3 TOKENIZERS_PARALLELISM=false \
    "$SCRATCH/lmeval-0.4.3/bin/lm_eval" --model hf --model_args "pretrained=$SCRATCH/tiny/candidate,dtype=float32" \
    --tasks gpqa_diamond_zeroshot --batch_size 8 --device cpu --limit 2 --output_path "$SCRATCH/out/0.4.3/limit2"
}

# --- 5. copy results_*.json into the repo, unmodified ---------------------------------------------
copy() {
  for d in "$SCRATCH"/out/*/*; do
    local name; name=$(basename "$(dirname "$d")")/$(basename "$d")
    mkdir -p "$HERE/$name"
    find "$d" -name 'results_*.json' -exec cp {} "$HERE/$name/" \;
  done
  find "$HERE" -name 'results_*.json' | sort
}

if [ $# -gt 0 ]; then "$@"; else venvs; models; runs; copy; fi
