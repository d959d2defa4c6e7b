"""The import graph of ``src/rnnkit``, read with ``ast``: layers point one way, and no module imports
itself back through others (docs/architecture.md).

Every ``import`` and ``from ... import`` of an rnnkit module is read, at module level and inside
functions, relative and absolute. Two properties:

* **layers** (:data:`LAYERS`, lowest first): a module may import its own layer and the layers below
  it, never one above. Checked for *every* import, including those inside functions: an import
  deferred to call time still makes the lower layer depend on the higher one.
* **no cycle** among the imports that run when a module is imported: module level (class bodies
  included, ``if TYPE_CHECKING:`` blocks excluded), each with the packages it initialises on the
  way (importing ``rnnkit.models.tagger`` runs ``rnnkit/models/__init__.py`` too). Imports inside
  functions are left out of the cycle check on purpose: they run after every module is initialised,
  so they cannot deadlock an import, and the layer check already forbids the upward ones; within a
  layer, a deferred import is how an optional dependency (matplotlib, Triton, onnx) stays optional.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "rnnkit"

# The layers, lowest first. A module belongs to the layer of the longest prefix that names it (a
# package names all its modules). Within a layer imports go either way, as long as there is no cycle.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # errors, the version, masks from lengths, safe unpickling, metrics, process groups, typed settings, signals
    ("foundations", ("rnnkit.errors", "rnnkit.version", "rnnkit.padding", "rnnkit.safe_pickle", "rnnkit.metrics", "rnnkit.distributed", "rnnkit.settings", "rnnkit.signals")),
    ("data", ("rnnkit.data", "rnnkit.files", "rnnkit.plots")),  # readers, vocabularies, batching; run files, pictures
    ("cells", ("rnnkit.cells",)),  # the reference cells: the equations
    ("engines", ("rnnkit.engines",)),  # fast paths, each proven equal to the cells
    ("recurrent", ("rnnkit.recurrent", "rnnkit.regularisers", "rnnkit")),  # a cell over time; the package root re-exports it
    ("models", ("rnnkit.models",)),
    ("decoding", ("rnnkit.decoding",)),  # sampling, search and scoring over any model
    ("tasks", ("rnnkit.tasks",)),
    ("training", ("rnnkit.training",)),  # the trainer knows a task only by its protocol
    ("runs", ("rnnkit.runs",)),  # a run directory: prepare, train, open
    ("tools", ("rnnkit.analysis", "rnnkit.serve", "rnnkit.export", "rnnkit.demos")),
    ("cli", ("rnnkit.cli",)),
)


@dataclass(frozen=True)
class Import:
    importer: str  # the module whose file holds the statement
    path: str  # its file, from the repository root
    target: str  # the rnnkit module it names
    line: int
    text: str  # the statement as written
    at_import: bool  # runs when the importer is imported (module level, not TYPE_CHECKING)

    def __str__(self) -> str:
        return f"{self.importer} ({self.path}:{self.line}): {self.text}"


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.Module):
    """(statement, runs at import) for every import statement in the file."""
    found = []

    def visit(node: ast.AST, at_import: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, at_import))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    visit(ast.Module(body=[statement], type_ignores=[]), False)
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]), at_import)
            else:
                visit(child, at_import)

    visit(tree, True)
    return found


def read_imports(modules: dict[str, Path]) -> list[Import]:
    """Every import of an rnnkit module in the package, resolved to the module it names."""
    imports = []
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, at_import in _statements(ast.parse(source, filename=str(path))):
            text = ast.get_source_segment(source, node) or ""
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                # ``from package import submodule`` names the submodule; ``from module import name`` the module
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names]
            for target in dict.fromkeys(targets):
                if target == "rnnkit" or target.startswith("rnnkit."):
                    imports.append(Import(name, str(path.relative_to(SOURCE.parents[1])), target, node.lineno, " ".join(text.split()), at_import))
    return imports


def layer_of(module: str) -> int | None:
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            # the package root names itself only: every module sits under it
            if (module == prefix or (prefix != "rnnkit" and module.startswith(prefix + "."))) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def initialised(target: str, importer: str) -> list[str]:
    """The modules that importing ``target`` from ``importer`` runs: the target and the packages above
    it that are not already above the importer (the root always is)."""
    parts = target.split(".")
    own = {".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 2)}
    return [".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) not in own] or [target]


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for successor in sorted(edges.get(node, ())):
            if state.get(successor) == 1:
                return path[path.index(successor) :] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


@pytest.fixture(scope="module")
def graph():
    modules = module_files()
    return modules, read_imports(modules)


def test_the_graph_is_read(graph):
    """The reader sees relative, absolute and deferred imports (a check of the checker)."""
    modules, imports = graph
    assert len(modules) > 50
    pairs = {(i.importer, i.target, i.at_import) for i in imports}
    assert ("rnnkit.recurrent", "rnnkit.cells", True) in pairs  # from .cells import ...
    assert ("rnnkit.cli.__main__", "rnnkit.cli", True) in pairs  # from . import entry
    assert any(not at_import for *_, at_import in pairs)  # imports inside functions are read too


def test_every_module_has_a_layer(graph):
    modules, _ = graph
    unplaced = sorted(m for m in modules if layer_of(m) is None)
    assert not unplaced, f"modules in no layer of tests/test_architecture.py LAYERS (add them there and to docs/architecture.md): {unplaced}"


def test_layers_point_one_way(graph):
    _, imports = graph
    upward = []
    for imp in imports:
        low, high = layer_of(imp.importer), layer_of(imp.target)
        if low is not None and high is not None and high > low:
            upward.append(f"{imp}  [layer {LAYERS[low][0]!r} imports layer {LAYERS[high][0]!r}]")
    assert not upward, "imports against the layer order (docs/architecture.md):\n" + "\n".join(upward)


def test_no_import_cycle(graph):
    _, imports = graph
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], Import] = {}
    for imp in imports:
        if not imp.at_import:
            continue
        for module in initialised(imp.target, imp.importer):
            if module != imp.importer:
                edges.setdefault(imp.importer, set()).add(module)
                where.setdefault((imp.importer, module), imp)
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle) + "\n" + "\n".join(str(where[a, b]) for a, b in zip(cycle, cycle[1:]))


# Within these packages a module imports only the shared ones beside it: one model (or task) never
# reaches into another's file for a piece they both need; that piece moves to a shared module.
SHARED_WITHIN = {
    "rnnkit.models": {"rnnkit.models.base", "rnnkit.models.registry", "rnnkit.models.heads", "rnnkit.models.losses", "rnnkit.models.crf"},
    # pretrained: encoders and features from language-model runs; spec: what a task declares, without torch
    "rnnkit.tasks": {"rnnkit.tasks.base", "rnnkit.tasks.pretrained", "rnnkit.tasks.spec"},
}
OWN_DECLARATION = "_spec"  # a task module imports its own declaration, rnnkit.tasks.<task>_spec (rnnkit train --help reads it alone)


def reaching_into_siblings(imports: list[Import]) -> list[str]:
    return [
        str(imp)
        for imp in imports
        for package, shared in SHARED_WITHIN.items()
        if imp.importer.startswith(package + ".") and imp.target.startswith(package + ".") and imp.target not in shared
        and imp.target != imp.importer + OWN_DECLARATION
    ]


def test_models_and_tasks_share_pieces_only_through_shared_modules(graph):
    _, imports = graph
    reaching = reaching_into_siblings(imports)
    assert not reaching, "a module imports a sibling's file; move the shared piece to one of " + str(SHARED_WITHIN) + ":\n" + "\n".join(reaching)


def test_the_checks_can_fail():
    """The checks catch what they are for: an upward import and a circle."""
    assert layer_of("rnnkit.data.batches") < layer_of("rnnkit.training.trainer")
    assert layer_of("rnnkit.engines.triton.loops") == layer_of("rnnkit.engines")
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None
    assert initialised("rnnkit.models.tagger", "rnnkit.tasks.tagging") == ["rnnkit.models", "rnnkit.models.tagger"]
    assert initialised("rnnkit.models.heads", "rnnkit.models.tagger") == ["rnnkit.models.heads"]
    sibling = Import("rnnkit.models.classifier", "src/rnnkit/models/classifier.py", "rnnkit.models.tagger", 1, "from .tagger import final_outputs", True)
    shared = Import("rnnkit.models.classifier", "src/rnnkit/models/classifier.py", "rnnkit.models.heads", 1, "from .heads import final_outputs", True)
    assert reaching_into_siblings([sibling, shared]) == [str(sibling)]
