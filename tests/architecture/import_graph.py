"""The project's import graph, read from the source with ``ast`` (nothing is imported or run).

Every import counts: at module level, inside functions (lazy imports), and under
``TYPE_CHECKING``. A boundary is about what a module depends on, not about when it loads it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

#: Top-level names of the Azure SDKs (``azure-*`` distributions and their ``msal`` base).
AZURE_SDK_ROOTS = ("azure", "msal")
#: The Azure Functions worker library is the trigger API itself, not an Azure service SDK.
FUNCTIONS_LIBRARY = "azure.functions"


@dataclass(frozen=True)
class ImportEdge:
    importer: str  # dotted module name
    imported: str  # dotted name as written (module, or module attribute for ``from X import y``)
    line: int


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path, folders: Iterable[str]) -> Iterator[Path]:
    for folder in folders:
        target = root / folder
        if target.is_file():
            yield target
            continue
        for path in sorted(target.rglob("*.py")):
            if not any(part.startswith(".") or part == "node_modules" for part in path.parts):
                yield path


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def imports_of(root: Path, path: Path) -> Iterator[ImportEdge]:
    """Every import in ``path``; ``from X import y`` yields ``X.y`` (resolved to a module later)."""
    importer = module_name(root, path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportEdge(importer, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _resolve_relative(importer, path.name == "__init__.py", node.level, base)
            for alias in node.names:
                yield ImportEdge(importer, f"{base}.{alias.name}", node.lineno)
            yield ImportEdge(importer, base, node.lineno)


def project_graph(root: Path, folders: Iterable[str]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (names resolved to the module that holds them)."""
    files = list(python_files(root, folders))
    modules = {module_name(root, path) for path in files}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for path in files:
        for edge in imports_of(root, path):
            target = _owning_module(edge.imported, modules)
            if target is not None and target != edge.importer:
                graph[edge.importer].add(target)
    return graph


def _owning_module(dotted: str, modules: set[str]) -> str | None:
    """The longest known module that ``dotted`` names or lies in (``a.b.c`` -> ``a.b``)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (or a self-loop), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative Tarjan: deep graphs must not hit the recursion cap
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    components.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(components)


def azure_sdk_imports(root: Path, folders: Iterable[str]) -> list[ImportEdge]:
    """Imports of an Azure SDK (``azure.*``, ``msal``), other than the Functions library."""
    found = []
    for path in python_files(root, folders):
        for edge in imports_of(root, path):
            top = edge.imported.split(".")[0]
            functions_api = edge.imported == FUNCTIONS_LIBRARY or edge.imported.startswith(
                FUNCTIONS_LIBRARY + "."
            )
            if top in AZURE_SDK_ROOTS and not functions_api and edge.imported != "azure":
                found.append(edge)
    return found


def imports_of_package(root: Path, folders: Iterable[str], package: str) -> list[ImportEdge]:
    return [
        edge
        for path in python_files(root, folders)
        for edge in imports_of(root, path)
        if edge.imported == package or edge.imported.startswith(package + ".")
    ]
