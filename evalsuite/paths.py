"""One rule for turning a name (from a config, the CLI or a stored record) into a path inside a
folder evalsuite owns: the name is one plain entry, and the path stays inside that folder even
after symlinks are followed. A name is never trusted to be a path."""

from __future__ import annotations

import os
from pathlib import Path

from evalsuite.errors import UserError


def inside(parent: Path, name: str) -> Path:
    """`parent / name`, refused with a UserError when `name` is empty, `.`, `..`, absolute or holds
    a path separator, or when the path resolves (through symlinks) outside `parent`.

    Chain it for nested owned folders (`inside(inside(root, "experiments"), f"{n}.json")`) so that a
    symlinked `experiments/` pointing elsewhere is refused too. A link that stays inside `parent` is
    fine; a missing path is checked as far as it exists (resolve is not strict)."""
    parent = Path(parent)
    bad = (not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name
           or "\0" in name or os.path.isabs(name))
    if bad:
        raise UserError(f"name {name!r} must be a plain file name (no '..', no '/', not absolute) under {parent}")
    path = parent / name
    try:
        home, real = parent.resolve(), path.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loop, unreadable folder
        raise UserError(f"{path}: cannot resolve ({exc})".splitlines()[0]) from None
    if home not in real.parents:
        raise UserError(f"{path}: resolves to {real}, outside {home} (a symlink?); remove it or point it inside")
    return path
