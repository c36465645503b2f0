"""The package's shape is checked, not hoped for: the layers contract in pyproject.toml, no import
cycle, no private name used across modules, imports inside functions only for optional extras
or start-up time (said in a comment), and few flat modules."""

import ast
import re
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnlab"
ROOT = SRC.parents[1]
MODULES = sorted(SRC.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_layers_contract_holds():
    importlinter = pytest.importorskip("importlinter.cli")
    sys.path.insert(0, str(SRC.parent))
    try:
        assert importlinter.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0
    finally:
        sys.path.remove(str(SRC.parent))


def test_the_contract_names_every_package():
    text = (ROOT / "pyproject.toml").read_text()
    named = set(re.findall(r"rnnlab\.[a-z_]+", text[text.index("[tool.importlinter]"):]))
    packages = {f"rnnlab.{p.name}" for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    flat = {f"rnnlab.{p.stem}" for p in SRC.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert packages <= named and flat <= named, (packages | flat) - named


def _imports(tree: ast.AST, name: str) -> set[str]:
    """The rnnlab modules a module imports (from X import y counts X, and X.y when that is a module)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("rnnlab")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnlab"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_no_import_cycle():
    names = {module_name(p): p for p in MODULES}
    graph = {n: {m for m in _imports(ast.parse(p.read_text()), n) if m in names and m != n}
             for n, p in names.items()}
    graph.pop("rnnlab", None)                             # the root re-exports the public API
    for edges in graph.values():
        edges.discard("rnnlab")
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):                                          # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))
    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_private_name_is_used_across_modules():
    """Neither ``from rnnlab.x import _name`` nor ``module._name`` on an rnnlab module imported by name."""
    names = {module_name(p) for p in MODULES}
    used = []
    for path in MODULES:
        tree = ast.parse(path.read_text())
        modules = {"rnnlab"}                                   # local names bound to rnnlab modules
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("rnnlab")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnlab"):
                modules |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in names}
                used += [f"{module_name(path)}: {node.module}.{a.name}" for a in node.names
                         if a.name.startswith("_") and not a.name.startswith("__")]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and isinstance(node.value, ast.Name) and node.value.id in modules:
                used.append(f"{module_name(path)}: {node.value.id}.{node.attr}")
    assert used == []


def test_imports_inside_functions_say_why():
    """Only for an optional extra or start-up time, with a comment on the line saying which."""
    unexplained = []
    for path in MODULES:
        source = path.read_text().splitlines()
        for fn in ast.walk(ast.parse("\n".join(source))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    line = source[node.lineno - 1]
                    if not re.search(r"#.*(optional extra|start-up time|with matplotlib)", line):
                        unexplained.append(f"{path.relative_to(SRC)}:{node.lineno}: {line.strip()}")
    assert unexplained == []


def test_at_most_six_flat_modules():
    flat = sorted(p.name for p in SRC.glob("*.py"))
    assert len(flat) <= 6, flat
