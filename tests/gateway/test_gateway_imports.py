"""The gateway's modules import one way: none imports, even for types only, one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"


def imports(path: Path) -> set[str]:
    """The gateway modules ``path`` imports, wherever the import is (``TYPE_CHECKING`` blocks too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name.split(".")[1] for name in names if name.startswith("gateway.")}


def test_no_gateway_module_imports_one_that_imports_it_back() -> None:
    graph = {path.stem: imports(path) - {path.stem} for path in GATEWAY.glob("*.py")}
    assert graph["session"] >= {"hub"}  # the graph is read at all
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph.get(module, set()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
