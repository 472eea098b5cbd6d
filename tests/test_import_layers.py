"""The package's import graph follows the layer order of docs/architecture.md.

Every ``import`` of the package's own modules is read with ``ast``, at module level and inside functions, and
two rules are checked:

- no module imports a module of a higher layer (:data:`LAYERS`, lowest first);
- the modules import each other without a cycle, counting the imports inside functions too: an import put
  into a function may delay loading a heavy module (start-up time of ``medseg-masksup --help``), never
  dodge a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "medseg_masksup"
ROOT = PACKAGE.name

#: the layers, lowest first: a module may import its own layer and those below it, never one above.
#: Names are packages or modules directly under ``medseg_masksup`` (``""`` is the package's ``__init__``).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("errors", "devices", "record", "bundle_files")),
    ("io", ("io",)),
    ("data", ("data",)),
    ("model", ("networks", "method", "checkpoint", "")),
    ("tracking", ("tracking",)),
    ("training", ("training",)),
    ("inference", ("inference", "quality")),
    ("study", ("study", "tools")),
    ("entry", ("commands", "cli", "bundle_exit")),
)
LAYER_OF = {part: (rank, name) for rank, (name, parts) in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> tuple[int, str]:
    """``(rank, layer name)`` of a module of the package."""
    top = module.split(".")[1] if "." in module else ""
    if top not in LAYER_OF:
        raise AssertionError(f"{module}: {top or ROOT!r} has no layer; add it to LAYERS and docs/architecture.md")
    return LAYER_OF[top]


def _target(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str, path: Path) -> Iterator[tuple[str, bool, int]]:
    """``(imported module of the package, inside a function?, line)`` for each import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[str, bool, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ImportFrom):
                target = _target(module, path.name == "__init__.py", child)
                if target == ROOT or target.startswith(ROOT + "."):
                    submodules = [f"{target}.{a.name}" for a in child.names if f"{target}.{a.name}" in MODULES]
                    for name in submodules or [target]:
                        yield name, in_function, child.lineno
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                        yield alias.name, in_function, child.lineno
            yield from walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    yield from walk(tree, False)


EDGES = [(module, target, in_function, line) for module, path in MODULES.items()
         for target, in_function, line in imports(module, path) if target != module]


def test_the_walk_sees_the_imports_it_must_judge():
    """The walk finds module-level, relative, function-level and package imports (else the rules below pass vacuously)."""
    edges = {(m, t, f) for m, t, f, _ in EDGES}
    assert ("medseg_masksup.checkpoint", "medseg_masksup.errors", False) in edges  # from .errors import ...
    assert ("medseg_masksup.checkpoint", "medseg_masksup.networks", True) in edges  # inside load_network
    assert ("medseg_masksup.io", "medseg_masksup.io.case", False) in edges  # a package's __init__
    assert len(MODULES) > 100 and len(EDGES) > 250


def test_no_import_runs_up_the_layers():
    upward = []
    for module, target, in_function, line in EDGES:
        (rank, name), (target_rank, target_name) = layer(module), layer(target)
        if target_rank > rank:
            where = "inside a function" if in_function else "at module level"
            upward.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}: {module} ({name}) imports "
                          f"{target} ({target_name}) {where}")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("with_function_imports", [False, True], ids=["module-level", "with-function-level"])
def test_no_import_cycle(with_function_imports):
    edges: dict[str, set[str]] = {}
    for module, target, in_function, _ in EDGES:
        if with_function_imports or not in_function:
            edges.setdefault(module, set()).add(target)
    cycles = _cycles(edges)
    assert not cycles, "modules that import each other (directly or round a loop):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_rules_catch_an_upward_import_and_a_cycle():
    """The checks themselves: an upward import and a cycle are found."""
    assert layer("medseg_masksup.io.case")[0] < layer("medseg_masksup.study.report")[0]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_layer_is_documented():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for name, parts in LAYERS:
        assert f"**{name}**" in doc, f"docs/architecture.md does not describe the layer {name}"
        for part in parts:
            if part:
                assert f"`{part}" in doc, f"docs/architecture.md does not place {part} in the layer {name}"
