"""No import cycles among the modules of the sandbox, the clients and the three plugins.

Imports are read from the source with `ast` (nothing is imported): absolute and relative,
including those under `if TYPE_CHECKING:` (a cycle of type names is still a cycle of
dependencies), but not the implicit import of a package's `__init__` by its modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "salesforce_appcues_sandbox": REPO / "sandbox" / "salesforce_appcues_sandbox",
    "salesforce_appcues_clients": REPO / "clients" / "salesforce_appcues_clients",
    "tap_salesforce_appcues": REPO / "tap-salesforce-appcues" / "tap_salesforce_appcues",
    "target_appcues_profiles": REPO / "target-appcues-profiles" / "target_appcues_profiles",
    "target_salesforce_events": REPO / "target-salesforce-events" / "target_salesforce_events",
}
# Cycles known and scheduled; each names where it is to be removed. Remove the entry then.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for name, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [name, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from x import y`: y is a submodule of x, or a name defined in x.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # `import a.b.c` depends on the deepest of a.b.c, a.b, a that is one of ours.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                yield target


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: set(_imported(name, path, known)) for name, path in known.items()}


def test_the_graph_sees_the_imports_it_should():
    """The reader is not blind: known edges of each layer are found."""
    graph = _graph()
    assert (
        "salesforce_appcues_sandbox.appcues.responses"
        in graph["salesforce_appcues_sandbox.appcues.service"]
    )
    assert (
        "salesforce_appcues_sandbox.salesforce.ids"
        in graph["salesforce_appcues_sandbox.salesforce.soql"]
    )
    assert any(
        n.startswith("salesforce_appcues_clients") for n in graph["tap_salesforce_appcues.tap"]
    )


def test_no_import_cycles():
    cycles = [c for c in _cycles(_graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def test_known_cycles_are_still_there():
    """A known cycle that is gone must leave KNOWN_CYCLES, so it cannot come back unseen."""
    present = {frozenset(c) for c in _cycles(_graph())}
    gone = [", ".join(sorted(c)) for c in KNOWN_CYCLES if c not in present]
    assert not gone, f"no longer cycles, remove from KNOWN_CYCLES: {gone}"
