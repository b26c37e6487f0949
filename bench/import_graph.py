"""evalsuite's import graph: folder-level arrows, loops between files and folders, oversized modules.

Every import counts, those inside functions and under `TYPE_CHECKING` included. A unit is a
top-level file of evalsuite/ (`score.py`) or a subpackage (`report/`); `fixtures/` is left out of
the folder graph (test data builders). Printed:

- each folder's arrows to other units;
- strongly connected units among folders and top-level files (a loop through any chain of imports);
- two-way ties that involve a folder;
- loops between single modules (file level);
- imports inside functions (file: line, module), the ones that should carry a start-up reason;
- modules over 400 lines.

    python bench/import_graph.py [REPO_ROOT]     # default: the repository this file sits in
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_LINES = 400


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, package: str) -> list[tuple[str, int, bool]]:
    """(imported evalsuite module, line, inside a function) for every import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, in_function) for a in child.names if a.name.startswith("evalsuite"))
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module.startswith("evalsuite"):
                    out.append((child.module, child.lineno, in_function))
                    # `from evalsuite.x import y`: y may be a module
                    out.extend((f"{child.module}.{a.name}", child.lineno, in_function) for a in child.names)
            visit(child, inner)

    visit(tree, False)
    return out


def resolve(mod: str, modules: set[str]) -> str | None:
    """The longest existing module that `mod` names (a name imported from a module is not one)."""
    parts = mod.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in modules:
            return cand
        parts.pop()
    return None


def unit(mod: str, pkg: Path) -> str | None:
    """evalsuite.x.y -> 'x/' when x is a package, else 'x.py'."""
    parts = mod.split(".")
    if len(parts) < 2:
        return None
    return parts[1] + "/" if (pkg / parts[1]).is_dir() else parts[1] + ".py"


def sccs(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    nodes = sorted(set(edges) | {w for ws in edges.values() for w in ws})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return sorted(out)


def main(root: Path) -> None:
    pkg = root / "evalsuite"
    files = sorted(pkg.rglob("*.py"))
    modules = {module_name(root, f) for f in files}
    folder_edges: dict[str, set[str]] = {}
    file_edges: dict[str, set[str]] = {}
    inside: list[str] = []
    for f in files:
        me = module_name(root, f)
        for mod, line, in_function in imports(f, "evalsuite"):
            target = resolve(mod, modules)
            if target is None or target == me:
                continue
            if target != "evalsuite" and not me.startswith(target + ".") and not (
                    f.name == "__init__.py" and target.startswith(me + ".")):
                file_edges.setdefault(me, set()).add(target)
            if in_function and mod == target:
                inside.append(f"{f.relative_to(root)}:{line} {mod}")
            if "fixtures" in f.relative_to(pkg).parts:
                continue
            a, b = unit(me, pkg), unit(target, pkg)
            if a and b and a != b and b != "fixtures/":
                folder_edges.setdefault(a, set()).add(b)

    print("folder-level arrows (folder -> others, any import incl. inside functions):")
    for u in sorted(folder_edges):
        if u.endswith("/"):
            print(f"  {u} -> {', '.join(sorted(folder_edges[u]))}")
    print("cycles among files+folders (strongly connected units):")
    for comp in sccs(folder_edges) or [["none"]]:
        print("  ", " <-> ".join(comp))
    print("two-way ties involving a folder:")
    ties = [f"{a} <-> {b}" for a in sorted(folder_edges) for b in sorted(folder_edges[a])
            if a < b and a in folder_edges.get(b, ()) and (a.endswith("/") or b.endswith("/"))]
    for t in ties or ["none"]:
        print("  ", t)
    print("cycles between modules (file level):")
    for comp in sccs(file_edges) or [["none"]]:
        print("  ", " <-> ".join(comp))
    print(f"evalsuite imports inside functions: {len(inside)}")
    for line in inside:
        print("  ", line)
    print(f"modules over {MAX_LINES} lines:")
    big = [(n, f) for f in files if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    for n, f in sorted(big, reverse=True) or [(0, None)]:
        print("  ", f"{f.relative_to(root)} {n}" if f else "none")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
