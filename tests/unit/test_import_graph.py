"""The module graph of imagematch and index_builder, read with ``ast`` (nothing is imported):

* no import cycle (runtime imports; ``if TYPE_CHECKING:`` blocks are types only);
* the core never imports a source, and a source never imports the API, the console or a front door;
* only the front doors (CLI, operations, deploy) reach up into index_builder, which never reaches
  back into them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

FRONT_DOORS = ("imagematch.cli", "imagematch.deploy", "imagematch.operations")
EDGES = ("imagematch.api", "imagematch.console", "imagematch.app", *FRONT_DOORS)


def _modules() -> dict[str, Path]:
    found = {}
    for root in ("imagematch", "index_builder"):
        for path in (REPO / root).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _runtime_imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _runtime_imports(name, path) for name, path in MODULES.items()}


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    assert _cycles(GRAPH) == []


def test_the_core_never_imports_a_source() -> None:
    core = [n for n in GRAPH if n.startswith("imagematch") and not _under(n, ("imagematch.sources", *EDGES))]
    wrong = {n: sorted(m for m in GRAPH[n] if _under(m, ("imagematch.sources",))) for n in core}
    assert {n: m for n, m in wrong.items() if m} == {}


def test_a_source_never_imports_the_api_the_console_or_a_front_door() -> None:
    sources = [n for n in GRAPH if _under(n, ("imagematch.sources",))]
    wrong = {n: sorted(m for m in GRAPH[n] if _under(m, EDGES)) for n in sources}
    assert {n: m for n, m in wrong.items() if m} == {}


def test_only_front_doors_reach_into_index_builder() -> None:
    core = [n for n in GRAPH if n.startswith("imagematch") and not _under(n, FRONT_DOORS)]
    wrong = {n: sorted(m for m in GRAPH[n] if m.startswith("index_builder")) for n in core}
    assert {n: m for n, m in wrong.items() if m} == {}
    back = {
        n: sorted(m for m in GRAPH[n] if _under(m, FRONT_DOORS))
        for n in GRAPH
        if n.startswith("index_builder")
    }
    assert {n: m for n, m in back.items() if m} == {}
