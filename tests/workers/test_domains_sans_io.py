"""Every worker's domain imports the standard library and contracts only (STYLE.md, rule 2)."""

import ast
import sys
from pathlib import Path

import pytest

WORKERS = Path(__file__).resolve().parents[2] / "workers"
DOMAINS = sorted(WORKERS.glob("*/domain.py"))


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_worker_has_a_domain():
    """The same inner shape everywhere."""
    assert {p.parent.name for p in DOMAINS} == {p.parent.name for p in WORKERS.glob("*/app.py")}


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda p: p.parent.name)
def test_domain_is_sans_io(domain):
    """No asyncio, FastStream, pymongo, beanie, websockets or settings in a domain."""
    foreign = imported(domain) - set(sys.stdlib_module_names) - {"contracts", "__future__"}
    assert not foreign, f"{domain} imports {foreign}"
    assert "asyncio" not in imported(domain)
