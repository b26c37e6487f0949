"""The merge plan: for every output tensor, the t mergekit will use and why.

The t values come from mergekit's own planner (`MergePlanner.plan_to_disk`, which builds the task
graph without executing it). The *reason* (layer position, which filter matched, fallback) is
re-derived here from the recipe and must agree with mergekit's t, or planning fails loudly.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any, Optional

from pydantic import BaseModel

from evalsuite.errors import UserError
from evalsuite.models.merge_recipe import Parent, Recipe

LAYER = re.compile(r"\.layers\.(\d+)\.")


class TensorPlan(BaseModel):
    name: str
    shape: list[int]
    layer: Optional[int] = None  # output layer; None for embeddings and the final norm
    position: Optional[float] = None  # where the layer sits on the gradient: layer / (L - 1)
    t: Optional[float] = None
    rule: str = "t"  # which part of the recipe decided t: "t", a filter, or "fallback"
    reason: str = ""
    params: dict[str, Any] = {}  # every shared parameter mergekit resolved for this tensor


class MergePlan(BaseModel):
    recipe: str
    method: str
    base_model: Optional[str] = None
    dtype: Optional[str] = None
    out_dtype: Optional[str] = None
    tokenizer_source: Optional[str] = None
    num_layers: int
    parents: list[Parent]
    tensors: list[TensorPlan]

    def t_of(self, name: str) -> Optional[float]:
        return next(t.t for t in self.tensors if t.name == name)

    def rows(self) -> list[tuple[str, Optional[float], dict[str, tuple[float, float]]]]:
        """(row label, position, {rule: (min t, max t)}) for embed, each layer, and final weights."""
        groups: dict[str, tuple[Optional[float], dict[str, tuple[float, float]]]] = {}
        order: list[str] = []
        seen_layer = False
        for tp in self.tensors:
            if tp.layer is not None:
                label, seen_layer = str(tp.layer), True
            else:
                label = "final" if seen_layer else "embed"
            if label not in groups:
                groups[label] = (tp.position, {})
                order.append(label)
            cells = groups[label][1]
            if tp.t is not None:
                lo, hi = cells.get(tp.rule, (tp.t, tp.t))
                cells[tp.rule] = (min(lo, tp.t), max(hi, tp.t))
        return [(label, *groups[label]) for label in order]

    def table(self) -> str:
        """A compact per-layer view of t (one column per rule, a bar when there is one column)."""
        rows = self.rows()
        rules: list[str] = []
        for _, _, cells in rows:
            rules += [r for r in cells if r not in rules]
        head = f"merge plan: {self.method}, base {self.base_model}, {self.num_layers} layers, {len(self.tensors)} tensors"
        lines = [head, "layer   pos    " + "".join(f"{r[:12]:>13}" for r in rules)]
        for label, pos, cells in rows:
            line = f"{label:<7} {'' if pos is None else f'{pos:.3f}':<6}"
            for r in rules:
                lo, hi = cells.get(r, (None, None))
                cell = "" if lo is None else f"{lo:.4f}" if lo == hi else f"{lo:.2f}-{hi:.2f}"
                line += f"{cell:>13}"
            if len(rules) == 1 and cells:
                line += "  " + "#" * round(20 * max(hi for _, hi in cells.values()))
            lines.append(line.rstrip())
        return "\n".join(lines)


class _MergekitDtypeNotice(logging.Filter):
    """mergekit 0.1.5 sets `config.torch_dtype`, which transformers 5 renamed `dtype`: its notice
    "`torch_dtype` is deprecated" is about mergekit's code, nothing the user can change."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`torch_dtype` is deprecated" not in record.getMessage()


@contextlib.contextmanager
def mergekit_dtype_notice_dropped():
    """transformers' torch_dtype notice dropped while mergekit plans or merges (any other message passes)."""
    notice = _MergekitDtypeNotice()
    logger = logging.getLogger("transformers.configuration_utils")
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def build_plan(recipe: Recipe, headers: dict[str, dict[str, dict]]) -> MergePlan:
    """Ask mergekit's planner for every tensor's parameters; explain and check each one."""
    from mergekit import merge_methods
    from mergekit.architecture import get_architecture_info
    from mergekit.io.tasks import LoaderCache
    from mergekit.merge import _model_out_config
    from mergekit.options import MergeOptions
    from mergekit.plan import MergePlanner

    cfg = recipe.local_config.model_copy(deep=True)
    options = MergeOptions(quiet=True)
    try:
        arch = get_architecture_info(cfg, options)
        LoaderCache().setup(options)
        with mergekit_dtype_notice_dropped():
            out_config = _model_out_config(cfg, arch)
        planner = MergePlanner(cfg, arch, options=options, out_model_config=out_config)
        tasks = planner.plan_to_disk(out_path="unused-by-planning")
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        raise UserError(f"recipe {recipe.path}: mergekit cannot plan this merge: {str(exc).splitlines()[0]}") from exc
    finally:
        release_loaders(recipe)
    method = merge_methods.get(recipe.config.merge_method)
    has_t = "t" in {p.name for p in method.spec.parameters}
    by_path = {str(p.path): p for p in recipe.parents}
    base = recipe.base
    vocab_free = recipe.config.tokenizer_source is not None or recipe.config.tokenizer is not None
    layers = _layer_positions(recipe)

    tensors: list[TensorPlan] = []
    for task in tasks:
        merge_task = getattr(task, "tensor_task", None)
        if merge_task is None:
            continue
        name = task.tensor_name
        gather = getattr(merge_task.gather_tensors, "gather_tensors", merge_task.gather_tensors)
        shape = _check_inputs(name, gather.weight_info, headers, by_path, base, vocab_free)
        m = LAYER.search(name)
        layer = int(m.group(1)) if m else None
        params = {k: _plain(v) for k, v in dict(merge_task.parameters).items()}
        tp = TensorPlan(name=name, shape=shape, layer=layer, params=params)
        if has_t:
            tp.t = float(params["t"])
            tp.position, sources = layers(layer, any(t.layer is not None for t in tensors))
            if sources is not None:
                value, tp.rule, tp.reason = _explain(name, sources, tp.position)
                if value is None or abs(value - tp.t) > 1e-9:
                    raise RuntimeError(f"plan explanation disagrees with mergekit for {name}: {value} vs {tp.t}")
            else:
                tp.rule, tp.reason = "t", "resolved by mergekit (modules: recipe)"
        tensors.append(tp)

    c = recipe.config
    return MergePlan(
        recipe=str(recipe.path),
        method=c.merge_method,
        base_model=str(c.base_model) if c.base_model else None,
        dtype=c.dtype,
        out_dtype=c.out_dtype,
        tokenizer_source=None if c.tokenizer_source is None else str(c.tokenizer_source),
        num_layers=sum(1 for _ in {t.layer for t in tensors if t.layer is not None}),
        parents=recipe.parents,
        tensors=tensors,
    )


def release_loaders(recipe: Recipe) -> None:
    """Drop mergekit's cached loaders for our parents (a later run may see rewritten files)."""
    from mergekit.io.tasks import LoaderCache

    cache = LoaderCache()
    for ref in list(cache.loaders):
        if any(ref.model.path == str(p.path) for p in recipe.parents):
            cache.loaders.pop(ref, None)


def _plain(v: Any) -> Any:
    return v if isinstance(v, (int, float, str, bool, type(None))) else str(v)


def _check_inputs(name, weight_info, headers, by_path, base: Optional[Parent], vocab_free: bool) -> list[int]:
    """Every input tensor exists in its parent, with the base's shape; returns the base shape."""
    shapes: list[tuple[str, list[int]]] = []
    for model, wi in weight_info.items():
        parent = by_path[model.model.path]
        h = headers[parent.ref]
        found = next((n for n in (wi.name, *(wi.aliases or ()), *(wi.tied_names or ())) if n in h), None)
        if found is None:
            if wi.optional:
                continue
            raise UserError(f"tensor {wi.name}: missing in {parent.ref}")
        shape = list(h[found]["shape"])
        if base is not None and parent.ref == base.ref:
            shapes.insert(0, (parent.ref, shape))
        else:
            shapes.append((parent.ref, shape))
    ref_name, ref_shape = shapes[0]
    for other, shape in shapes[1:]:
        a, b = list(ref_shape), list(shape)
        vocab_axis = next(iter(weight_info.values())).vocabulary_axis
        if vocab_free and vocab_axis is not None and len(a) == len(b):
            a[vocab_axis] = b[vocab_axis] = 0
        if a != b:
            raise UserError(f"shape mismatch: tensor {name} is {ref_shape} in {ref_name} but {shape} in {other}")
    return ref_shape


def _layer_positions(recipe: Recipe):
    """(layer, after_layers) -> (gradient position, [(scope label, parameters)] by precedence).

    As mergekit plans it: a layer's position is its index within its slice / (slice length - 1);
    embeddings (before the layers) and final weights (after) are read at position 0 with the
    first and last slice's parameters respectively.
    """
    c = recipe.config
    top = ("parameters", c.parameters)
    if c.models:
        n = next(p.num_layers for p in recipe.parents)

        def pos(layer: Optional[int], after: bool):
            if layer is None:
                return 0.0, [top]
            return (layer / (n - 1) if n > 1 else 1.0), [top]

        return pos
    if c.slices:
        spans = []  # (first output layer, length, scopes)
        start = 0
        for i, s in enumerate(c.slices):
            length = s.sources[0].layer_range[1] - s.sources[0].layer_range[0]
            spans.append((start, length, [(f"slices[{i}].parameters", s.parameters), top]))
            start += length

        def pos(layer: Optional[int], after: bool):
            if layer is None:
                return 0.0, spans[-1 if after else 0][2]
            for first, length, scopes in spans:
                if first <= layer < first + length:
                    i = layer - first
                    return (i / (length - 1) if length > 1 else 1.0), scopes
            return None, None

        return pos
    return lambda layer, after: (None, None)


def _explain(name: str, scopes: list, pos: float) -> tuple[Optional[float], str, str]:
    """Mirror mergekit's evaluate_setting for `t`: (value, rule, human reason)."""
    for label, scope in scopes:
        if not scope or "t" not in scope:
            continue
        value, rule, reason = _explain_setting(name, scope["t"], pos)
        if value is not None:
            return value, rule, f"{label}.t {reason}"
    return None, "t", "no t for this tensor"


def _explain_setting(name: str, setting: Any, pos: float, rule: str = "t") -> tuple[Optional[float], str, str]:
    from mergekit.config import ConditionalParameter

    how = "" if rule == "t" else "fallback (no filter matched), " if rule == "fallback" else f"filter {rule!r}, "
    if isinstance(setting, ConditionalParameter):
        setting = [setting]
    if isinstance(setting, (int, float, str)) and not isinstance(setting, bool):
        return float(setting), rule, f"{how}constant {float(setting):g}"
    if isinstance(setting, list) and setting and all(isinstance(e, (int, float, str)) for e in setting):
        anchors = [float(e) for e in setting]
        scaled = pos * (len(anchors) - 1)
        i0 = int(scaled)
        i1 = min(len(anchors) - 1, i0 + 1)
        frac = scaled - i0
        value = (1 - frac) * anchors[i0] + frac * anchors[i1]
        return value, rule, f"{how}anchors {anchors} at position {pos:.4f} -> {value:.4f}"
    if isinstance(setting, list):
        for cond in setting:
            if cond.filter is None or cond.filter == "*":
                return _explain_setting(name, cond.value, pos, "fallback")
            if cond.filter in name:
                return _explain_setting(name, cond.value, pos, cond.filter)
    return None, rule, ""
