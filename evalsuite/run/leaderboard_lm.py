"""The leaderboard's model side on top of lm-eval 0.4.13: `--model hf-leaderboard`.

The Open LLM Leaderboard ran the Hugging Face fork of lm-eval (`huggingface/lm-evaluation-harness`,
branch `adding_all_changess`). Its task files are practically those of lm-eval 0.4.13; its HF model
class is not. `LeaderboardHFLM` is lm-eval 0.4.13's own `HFLM`, registered with lm-eval's model
registry, with the fork's rules where they differ (docs/fidelity.md has each rule's source):

- BOS: the fork passes `add_special_tokens = False or self.add_bos_token` to the tokenizer for every
  causal-LM encoding and forces `add_bos_token = True` for Gemma models (model_type gemma, gemma2,
  recurrentgemma). A prompt that already starts with BOS (a Gemma chat template begins with
  `{{ bos_token }}`) is given a second one. lm-eval 0.4.13 instead leaves the tokenizer's default
  and drops the tokenizer's BOS when the text already starts with one.
- max length: the fork takes the first of `n_positions`, `max_position_embeddings`, `n_ctx`
  (model config) or the tokenizer's `model_max_length` that exists, capped at 4096; lm-eval 0.4.13
  takes it uncapped (8192 for Gemma-2).
- log-softmax dtype: the fork computes the loglikelihoods' log-softmax in the model's dtype
  (`dtype=self.dtype`: bf16 on the leaderboard); lm-eval 0.4.13 in the logits' own dtype unless
  `softmax_dtype=` is given. `hf-leaderboard` passes `softmax_dtype=<dtype>`.

Nothing else is changed: requests, batching, generation and scoring are lm-eval 0.4.13's.
Importing this module registers the model; `python -m evalsuite.run.lm_eval_cli` is lm-eval's own
CLI with it registered.
"""

from __future__ import annotations

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from evalsuite.run.jobs import LEADERBOARD_MODEL as MODEL_NAME
FORK_MAX_LENGTH = 4096  # the fork's HFLM._DEFAULT_MAX_LENGTH
GEMMA_TYPES = frozenset({"gemma", "recurrentgemma", "gemma2"})


@register_model(MODEL_NAME)
class LeaderboardHFLM(HFLM):
    """lm-eval 0.4.13's HFLM with the fork's BOS, max-length and log-softmax dtype rules."""

    def __init__(self, pretrained, add_bos_token: bool = False, **kwargs):
        dtype = kwargs.get("dtype", "auto")
        if kwargs.get("softmax_dtype") is None and dtype not in (None, "auto"):
            kwargs["softmax_dtype"] = dtype  # the fork: F.log_softmax(logits, dim=-1, dtype=self.dtype)
        super().__init__(pretrained, **kwargs)  # the tokenizer as the fork makes it: its own add_bos_token
        # the fork: default False, forced True for Gemma ("Gemma underperforms without it")
        self.add_bos_token = bool(add_bos_token) or getattr(self.config, "model_type", None) in GEMMA_TYPES

    @property
    def max_length(self) -> int:
        if self._max_length:
            return self._max_length
        sources = ((self.model.config, "n_positions"), (self.model.config, "max_position_embeddings"),
                   (self.model.config, "n_ctx"), (self.tokenizer, "model_max_length"))
        for component, attr in sources:  # the first attribute that exists, as the fork does
            if hasattr(component, attr):
                return min(getattr(component, attr), FORK_MAX_LENGTH)
        return FORK_MAX_LENGTH

    def _special_tokens(self) -> dict:
        return {"add_special_tokens": bool(self.add_bos_token)} if self.backend == "causal" else {}

    def tok_encode(self, string: str, add_special_tokens=None, left_truncate_len=None, **kwargs) -> list[int]:
        if add_special_tokens is None:  # explicit values (e.g. continuations) pass through as in 0.4.13
            add_special_tokens = self._special_tokens().get("add_special_tokens")
        return super().tok_encode(string, add_special_tokens=add_special_tokens, left_truncate_len=left_truncate_len, **kwargs)

    def tok_batch_encode(self, strings: list[str], padding_side: str = "left", left_truncate_len=None, truncation: bool = False):
        old_padding_side = self.tokenizer.padding_side
        self.tokenizer.padding_side = padding_side
        try:
            encoding = self.tokenizer(strings, truncation=truncation, padding="longest", return_tensors="pt", **self._special_tokens())
        finally:
            self.tokenizer.padding_side = old_padding_side
        if left_truncate_len:
            encoding["input_ids"] = encoding["input_ids"][:, -left_truncate_len:]
            encoding["attention_mask"] = encoding["attention_mask"][:, -left_truncate_len:]
        return encoding["input_ids"], encoding["attention_mask"]
