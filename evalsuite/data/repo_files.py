"""A dataset repo folder laid out as on the hub (a local mirror): its configs and data files as
`datasets` itself resolves them, all local (the README's `configs:` through huggingface_hub's
`DatasetCard` and `datasets`' `MetadataConfigs`, patterns through `sanitize_patterns` and
`resolve_pattern`, a repo without configs through `get_data_patterns`), and the small readers of
its data files' columns and rows that `evalsuite.data` checks them with. Checked against
datasets 5.2.0 and huggingface_hub 2.4.0 (public functions of `datasets.data_files`; the
`MetadataConfigs` class `datasets.load_dataset` reads a local folder's README with).
"""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import yaml

DATA_EXTENSIONS = (".parquet", ".csv", ".jsonl", ".json", ".arrow")


def visible_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _resolve(root: Path, patterns: list[str], extensions: Optional[list[str]] = None) -> list[Path]:
    """The files of `root` the patterns match, as `datasets` resolves them (fsspec glob: `*` stops
    at `/`; hidden and `__` folders only when named); no match is an empty list."""
    from datasets.data_files import resolve_pattern  # datasets: ~2 s to import; only a mirror/snapshot check needs it

    found: set[Path] = set()
    for pattern in patterns:
        try:
            found.update(Path(f) for f in resolve_pattern(pattern, base_path=root.as_posix(), allowed_extensions=extensions))
        except FileNotFoundError:
            continue
    return sorted(found)


def _inferred_splits(root: Path) -> dict[str, list[Path]]:
    """No `configs:` block: the splits `datasets` infers from the file names (`get_data_patterns`)."""
    from datasets.data_files import EmptyDatasetError, get_data_patterns  # (datasets: ~2 s, see _resolve)

    try:
        patterns = get_data_patterns(root.as_posix())
    except EmptyDatasetError:
        return {}
    splits = {str(split): _resolve(root, pats, list(DATA_EXTENSIONS)) for split, pats in patterns.items()}
    return {split: files for split, files in splits.items() if files}


def _metadata_configs(readme: Path, bench_id: str, problems: list[str]) -> Optional[dict[str, dict]]:
    """The README's `configs:` as `datasets` reads them (config name -> params); None, with the
    problem noted, when the front matter or the block is not what `datasets` accepts."""
    st = readme.stat()
    configs, problem = _card_configs(str(readme), st.st_size, st.st_mtime_ns)
    if problem is not None:
        problems.append(f"{bench_id}: {readme}: front matter `configs:` not readable by datasets ({problem})")
    return configs


@lru_cache(maxsize=64)
def _card_configs(readme: str, size: int, mtime_ns: int) -> tuple[Optional[Any], Optional[str]]:
    """(MetadataConfigs, None) or (None, why), once per README content (its size and mtime): the
    card is read by huggingface_hub's `DatasetCard`, its configs by `datasets`' `MetadataConfigs`."""
    from datasets.utils.metadata import MetadataConfigs  # (datasets: ~2 s, see _resolve)
    from huggingface_hub import DatasetCard

    try:
        return MetadataConfigs.from_dataset_card_data(DatasetCard.load(readme).data), None
    except (ValueError, TypeError, yaml.YAMLError) as exc:
        return None, (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def data_columns(path: Path) -> Optional[list[str]]:
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq  # pyarrow: ~0.5 s to import; parquet files only

        return list(pq.read_schema(path).names)
    if name.endswith(".csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh), [])
    if name.endswith((".jsonl", ".json")):
        rows = _json_rows(path)
        if rows is None:
            return None
        return list(rows[0]) if rows and isinstance(rows[0], dict) else ([] if not rows else None)
    return None


def _json_rows(path: Path) -> Optional[list[Any]]:
    """Rows of a JSON-lines file or of a JSON array (both load with `datasets`' json builder);
    None when it is neither."""
    text = path.read_text(encoding="utf-8")
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        pass
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, list) else None


def column_kinds(path: Path) -> dict[str, str]:
    """Column -> "string", "list", "integer", ... of a parquet schema or the first JSON row."""
    if path.name.endswith(".parquet"):
        import pyarrow as pa  # (pyarrow: ~0.5 s, parquet files only)
        import pyarrow.parquet as pq

        def kind(t: Any) -> str:
            if pa.types.is_string(t) or pa.types.is_large_string(t):
                return "string"
            if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
                return "list"
            return "integer" if pa.types.is_integer(t) else str(t)

        schema = pq.read_schema(path)
        return {n: kind(t) for n, t in zip(schema.names, schema.types)}
    if path.name.endswith((".jsonl", ".json")):
        row = next(iter(_json_rows(path) or []), None)
        names = {str: "string", list: "list", int: "integer", float: "float", bool: "boolean",
                 dict: "object", type(None): "null"}
        return {k: names.get(type(v), type(v).__name__) for k, v in row.items()} if isinstance(row, dict) else {}
    return {}


def data_rows(path: Path, column: Optional[str] = None) -> list[Any]:
    """All rows of a data file (or one column of them); small helper for content checks."""
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq  # (pyarrow: ~0.5 s, parquet files only)

        table = pq.read_table(path, columns=[column] if column else None)
        return table.column(column).to_pylist() if column else table.to_pylist()
    if name.endswith(".csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    elif name.endswith((".jsonl", ".json")):
        rows = [r for r in _json_rows(path) or [] if isinstance(r, dict)]
    else:
        return []
    return [r.get(column) for r in rows] if column else rows


def config_splits(root: Path, bench_id: str, name: Optional[str], problems: list[str],
                  infer: bool = False) -> Optional[dict[str, list[Path]]]:
    """Split -> data files of config `name` (None: the default one), as `datasets.load_dataset`
    would read them from this folder; `infer`: a README without `configs:` is read as `datasets`
    reads such a repo (splits from file names). Problems are noted, prefixed by `bench_id`."""
    from datasets.data_files import sanitize_patterns  # (datasets: ~2 s, see _resolve)

    readme = root / "README.md"
    configs = _metadata_configs(readme, bench_id, problems) if readme.is_file() else {}
    if configs is None:
        return None
    if not configs:
        if infer and name is None:
            return _inferred_splits(root)
        where = readme if readme.is_file() else root / "README.md (missing)"
        problems.append(f"{bench_id}: {where}: no `configs:` block in the YAML front matter")
        return None
    try:
        key = name if name is not None else (configs.get_default_config_name() or "default")
    except ValueError as exc:  # several default configs
        problems.append(f"{bench_id}: {readme}: {exc}")
        return None
    if key not in configs:
        have = ", ".join(sorted(configs)) or "none"
        problems.append(f"{bench_id}: {readme}: no config {key!r} (has: {have})")
        return None
    config = configs[key]
    base = root / config["data_dir"] if config.get("data_dir") else root
    if config.get("data_files") is None:
        return _inferred_splits(base)
    try:
        patterns = sanitize_patterns(config["data_files"])
    except ValueError as exc:
        problems.append(f"{bench_id}: {readme}: config {key!r}: {str(exc).splitlines()[0]}")
        return None
    return {split: _resolve(base, list(pats)) for split, pats in patterns.items()}
