"""Imports flow one way (CLI -> recipes -> library -> math): no import circles, and no
function-local imports inside tfadmm/ that would hide one.

Run as a script (``python tests/test_import_graph.py``) to print the graph's cycles and the
function-local imports.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = {"tfadmm": ROOT / "tfadmm", "tfadmm_cli": ROOT / "cli"}

# Function-local imports inside tfadmm/ that are lazy on purpose: (module, imported module).
# Each is an optional or heavy dependency that most uses of the module never need.
LAZY_IMPORTS_ALLOWED = {
    # tensorflow_datasets is slow to import and only the tfds: data source needs it.
    ("tfadmm.data.tfds_source", "tensorflow_datasets"),
    # LiteRT is optional: without it, TFLite models run in tf.lite.Interpreter.
    ("tfadmm.exporting", "ai_edge_litert.interpreter"),
    # TensorFlow itself: the one place it is imported, at the first use of a part of tfadmm
    # that needs it, so that the core runs without it (Keras' JAX backend).
    ("tfadmm.lazy_tensorflow", "tensorflow"),
    # TensorBoard's protos, for the ADMMTensorBoard callback only (a TensorFlow install
    # brings TensorBoard; a JAX-only one may lack it).
    ("tfadmm.callbacks.tensorboard", "tensorboard.plugins.custom_scalar"),
    ("tfadmm.callbacks.tf_summary_writer", "tensorboard.plugins.custom_scalar"),
    # matplotlib is optional (`tfadmm[plot]`): only drawing the sensitivity curves needs it,
    # and without it a run or plan draws no PNG and says so.
    ("tfadmm.sensitivity_plot", "matplotlib"),
    ("tfadmm.sensitivity_plot", "matplotlib.backends"),
    # TensorBoard's own event writer and protos, for ADMMTensorBoard without TensorFlow.
    ("tfadmm.callbacks.event_writer", "tensorboard.compat.proto"),
    ("tfadmm.callbacks.event_writer", "tensorboard.plugins.custom_scalar"),
    ("tfadmm.callbacks.event_writer", "tensorboard.plugins.histogram"),
    ("tfadmm.callbacks.event_writer", "tensorboard.plugins.scalar"),
    ("tfadmm.callbacks.event_writer", "tensorboard.plugins.text"),
    ("tfadmm.callbacks.event_writer", "tensorboard.summary.writer.event_file_writer"),
    ("tfadmm.callbacks.event_writer", "tensorboard.util"),
}


def _module_name(package: str, root: pathlib.Path, path: pathlib.Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(package, root, path): path
            for package, root in PACKAGES.items() for path in sorted(root.rglob("*.py"))}


def _resolve(module: str, path: pathlib.Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: pathlib.Path):
    """(imported module, line, is_function_local) for every import statement in the file."""
    tree = ast.parse(path.read_text(), str(path))
    local_lines = {
        inner.lineno
        for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(fn) if isinstance(inner, (ast.Import, ast.ImportFrom))
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, node.lineno in local_lines
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:
                # `from package import submodule` imports the submodule (resolved by the
                # caller, which falls back to the package when the name is not a module).
                yield f"{target}.{alias.name}", node.lineno, node.lineno in local_lines


def import_graph() -> dict[str, set[str]]:
    """Edges between tfadmm/cli modules, from module-level and function-level imports alike.

    Importing ``a.b.c`` also runs ``a`` and ``a.b``; an edge goes to the deepest of those that
    is one of ours, and a package's ``__init__`` is a node of its own.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _, _ in _imports(name, path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def function_local_imports() -> list[tuple[str, str, int]]:
    """(module, imported module, line) for each import inside a function in tfadmm/."""
    found = []
    for name, path in _modules().items():
        if not name.startswith("tfadmm."):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    found += [(name, alias.name, node.lineno) for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    found.append((name, _resolve(name, path, node), node.lineno))
    return sorted(set(found))


def _describe(cycle: list[str], graph: dict[str, set[str]]) -> str:
    members = set(cycle)
    edges = [f"{a} -> {b}" for a in cycle for b in sorted(graph[a] & members)]
    return "; ".join(edges)


def test_the_import_graph_of_tfadmm_and_cli_has_no_cycles():
    graph = import_graph()
    assert len(graph) > 50  # the walk found the packages
    found = cycles(graph)
    assert found == [], "import cycles:\n" + "\n".join(_describe(c, graph) for c in found)


def test_no_function_local_imports_in_tfadmm_beyond_the_lazy_ones():
    found = [(module, imported, line) for module, imported, line in function_local_imports()
             if (module, imported) not in LAZY_IMPORTS_ALLOWED]
    assert found == [], "function-local imports (move them to the top of the module):\n" + (
        "\n".join(f"{module}:{line} imports {imported}" for module, imported, line in found))


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


if __name__ == "__main__":
    graph = import_graph()
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} edges")
    for cycle in cycles(graph):
        print(f"cycle of {len(cycle)}: {_describe(cycle, graph)}")
    for module, imported, line in function_local_imports():
        print(f"function-local: {module}:{line} imports {imported}")
