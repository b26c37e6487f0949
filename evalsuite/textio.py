"""The one rule for reading text: every file evalsuite reads (experiment and sweep configs, mergekit
recipes, lm-eval results files, samples/details records, published-score tables) is decoded here,
as UTF-8 (a leading byte-order mark is allowed). A byte that is not UTF-8 is one line naming the
file and the byte offset (`NotUtf8`, a UserError: exit 2) instead of a UnicodeDecodeError
traceback. `NotUtf8` is also a ValueError, so a reader that treats a damaged file of its own as
"recompute it" keeps doing so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

from evalsuite.errors import UserError

PathLike = Union[str, Path]
BOM = b"\xef\xbb\xbf"


class NotUtf8(UserError, ValueError):
    """A file (or line of one) whose bytes are not UTF-8."""


def decode(raw: bytes, path: PathLike, *, offset: int = 0, line: int | None = None) -> str:
    """`raw` as text. `offset`: where `raw` starts in the file (a line read from the middle of a
    file names its offset in the whole file); `line`: the 1-based line it came from."""
    start = len(BOM) if offset == 0 and raw.startswith(BOM) else 0
    try:
        return raw[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = offset + start + exc.start
        where = f"{path}: line {line}" if line is not None else str(path)
        raise NotUtf8(f"{where}: byte {at} (0x{raw[start + exc.start]:02x}) is not UTF-8 "
                      "(evalsuite reads every file as UTF-8; save it as UTF-8)") from None


def read_text(path: PathLike, what: str = "file") -> str:
    """The whole file as text; OSError is the caller's (each names its own missing file)."""
    return decode(Path(path).read_bytes(), path)


def loads(raw: Union[bytes, str], path: PathLike, *, offset: int = 0, line: int | None = None) -> Any:
    """JSON from bytes decoded by the one rule (`json.loads` would guess UTF-16/32 from bytes and
    raise a bare UnicodeDecodeError). JSON errors stay `json.JSONDecodeError` (ValueError)."""
    text = raw if isinstance(raw, str) else decode(raw, path, offset=offset, line=line)
    return json.loads(text)


def read_json(path: PathLike) -> Any:
    return loads(Path(path).read_bytes(), path)
