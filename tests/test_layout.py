"""The code's shape, read with ast: recommender/ imports without a cycle (lazy imports included), the
collaborative layers import one way, nothing in recommender/ imports streamlit, and the size limits
hold (a unit over them is named in ARCHITECTURE.md with the reason)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recommender"
COLLAB_LAYERS = ["params", "factors", "history", "stats", "topk", "state", "outfits", "taste", "blend", "candidates", "features",
                 "ranker", "methods", "reasons", "model", "submission"]
MAX_FILE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 450, 250, 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules this module imports, at module level or inside a function alike."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            base = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            # `from . import name`: the submodule `name` when there is one, else the package's own name
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def test_the_engine_imports_without_a_cycle():
    graph, state, cycle = import_graph(), {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle.extend(trail[trail.index(nxt):] + [node, nxt] if nxt in trail else [node, nxt])
                return True
            if nxt not in state and visit(nxt, trail + [node]):
                return True
        state[node] = "done"
        return False

    for start in sorted(graph):
        if start not in state and visit(start, []):
            break
    assert not cycle, " → ".join(cycle)


def test_collab_layers_import_only_layers_below_them():
    graph = import_graph()
    for i, layer in enumerate(COLLAB_LAYERS):
        allowed = {f"recommender.collab.{below}" for below in COLLAB_LAYERS[:i]}
        inside = {m for m in graph[f"recommender.collab.{layer}"] if m.startswith("recommender.collab")}
        assert inside <= allowed, f"collab/{layer}.py imports {sorted(inside - allowed)}"


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    # The check itself can fail: two modules that import each other, one of them lazily.
    (tmp_path / "recommender").mkdir()
    (tmp_path / "recommender" / "__init__.py").write_text("")
    (tmp_path / "recommender" / "a.py").write_text("from .b import x\n")
    (tmp_path / "recommender" / "b.py").write_text("def x():\n    from .a import y\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "recommender")
    with pytest.raises(AssertionError, match="recommender.a → recommender.b → recommender.a"):
        test_the_engine_imports_without_a_cycle()


def test_nothing_in_the_engine_imports_streamlit():
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not any(n.split(".")[0] == "streamlit" for n in names), name


def oversized() -> list[str]:
    out = []
    for name, path in modules().items():
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            out.append(f"{path.relative_to(ROOT)}")
        for node in ast.walk(ast.parse(text)):
            span = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, ast.ClassDef) and span > MAX_CLASS_LINES or (
                    isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and span > MAX_FUNCTION_LINES):
                out.append(f"{path.relative_to(ROOT)}:{node.name}")
    return out


def test_units_over_the_size_limits_are_explained_in_architecture():
    architecture = (ROOT / "ARCHITECTURE.md").read_text()
    unexplained = [unit for unit in oversized() if f"`{unit}`" not in architecture]
    assert not unexplained, f"over {MAX_FILE_LINES} lines a file, {MAX_CLASS_LINES} a class or {MAX_FUNCTION_LINES} a function: {unexplained}"
