"""The one name rule. Every name that becomes a path or a record key (experiment, model, sweep and
candidate names, `import --name`, baseline names) is checked here: printable, no path separator,
no control character or space, no leading dot, at most NAME_MAX characters. In practice: a letter
or digit, then letters, digits, '.', '_' or '-'. `SafeName` is the pydantic type of a config
field; `check_name` is the same rule for a name from the command line (a UserError, exit 2).
`evalsuite.paths.inside` still guards every path a name becomes (symlinks out of the folder)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from evalsuite.errors import UserError

NAME_MAX = 128
SAFE_NAME = re.compile(rf"^[A-Za-z0-9][\w.\-]{{0,{NAME_MAX - 1}}}\Z")
RULE = "must be letters, digits, '.', '_' or '-'"


def name_problem(value: object, what: str = "name") -> str | None:
    """Why `value` is not a safe name (one line, the value shown with repr), or None."""
    if not isinstance(value, str):
        return f"{what} must be text, not {type(value).__name__}"
    if SAFE_NAME.match(value) and value.isprintable():
        return None
    shown = repr(value if len(value) <= NAME_MAX + 8 else value[:NAME_MAX] + "…")
    if len(value) > NAME_MAX:
        return f"{what} {shown} {RULE} (at most {NAME_MAX} characters; it has {len(value)})"
    if value[:1] == ".":
        return f"{what} {shown} {RULE} (not starting with '.')"
    return f"{what} {shown} {RULE}"


def check_name(value: object, what: str = "name") -> str:
    problem = name_problem(value, what)
    if problem is not None:
        raise UserError(problem)
    return value  # type: ignore[return-value]


def safe_name(what: str = "name"):
    """The pydantic type of a name field: text that keeps the one name rule, a failure naming `what`
    (e.g. "experiment name")."""
    def check(value: str) -> str:
        problem = name_problem(value, what)
        if problem is not None:
            raise ValueError(problem)
        return value
    return Annotated[str, AfterValidator(check)]


SafeName = safe_name("name")
ExperimentName = safe_name("experiment name")
