"""The package's layout (issue #13, "Must show"), read from the source with :mod:`ast`.

- No import cycle among limitsim's modules.  Every ``import``/``from ... import`` anywhere in
  a file counts, function-level and ``TYPE_CHECKING`` imports included.
  ``from limitsim.x import y`` is an edge to the module ``limitsim.x.y`` when that is a module,
  else to ``limitsim.x``; relative imports are resolved the same way.  Edges to the package
  ``limitsim`` itself (its ``__init__``, which re-exports the public names) are ignored:
  ``from limitsim import _kernels`` counts as an edge to ``limitsim._kernels``, while
  ``from limitsim import Task`` counts as none.
- At most :data:`MAX_TOP_MODULES` modules directly in ``limitsim/`` (``*.py``, ``__init__.py``
  included).
- No module over :data:`MAX_MODULE_LINES` lines (all of ``limitsim/``, recursively, except the
  emitted files in ``limitsim/_generated/``).
- At most :data:`MAX_LONG_FUNCTIONS` functions (methods and nested functions included) whose
  body, not counting the docstring, is over :data:`MAX_FUNCTION_LINES` lines: from the first
  statement after the docstring to the function's last line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "limitsim"
MAX_TOP_MODULES = 25
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
MAX_LONG_FUNCTIONS = 2


def module_name(path: Path) -> str:
    """``limitsim/a/b.py`` -> ``limitsim.a.b``; ``limitsim/a/__init__.py`` -> ``limitsim.a``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file below ``limitsim/``."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def import_edges(modules: dict[str, Path]) -> dict[str, dict[str, list[int]]]:
    """Module -> {imported limitsim module -> line numbers of the imports} (module docstring)."""
    edges: dict[str, dict[str, list[int]]] = {name: {} for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, up level - 1 packages
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join([*package, *([base] if base else [])])
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    targets.append(child if child in modules else base)
            for target in targets:
                if target.split(".")[0] != "limitsim" or target == "limitsim":
                    continue
                while target not in modules:  # `import limitsim.a.b` names a module or package
                    target = target.rpartition(".")[0]
                if target in (name, "limitsim"):
                    continue
                linenos = edges[name].setdefault(target, [])
                if node.lineno not in linenos:  # one line may import several names
                    linenos.append(node.lineno)
    return edges


def strongly_connected_components(graph: dict[str, dict[str, list[int]]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def describe_cycles(graph: dict[str, dict[str, list[int]]], components: list[list[str]]) -> str:
    lines = []
    for component in components:
        lines.append(f"cycle among {', '.join(component)}:")
        for source in component:
            for target, linenos in sorted(graph[source].items()):
                if target in component:
                    where = ", ".join(str(n) for n in linenos)
                    lines.append(f"    {source} -> {target}  (line {where})")
    return "\n".join(lines)


def test_no_import_cycles():
    graph = import_edges(source_files())
    components = strongly_connected_components(graph)
    if components:
        pytest.fail(f"{len(components)} import cycle(s):\n{describe_cycles(graph, components)}")


def test_import_edges_are_resolved_to_modules(tmp_path):
    """Function-level and relative imports count; names that are not modules resolve to their
    module; the package ``limitsim`` itself is no edge."""
    files = {  # module name -> (file, source)
        "limitsim": ("__init__.py", ""),
        "limitsim.a": (
            "a.py",
            "from limitsim import b, Thing\nimport limitsim.c.d\n"
            "def f():\n    from limitsim.c import d, e\n    from . import b\n",
        ),
        "limitsim.b": ("b.py", "import limitsim\nfrom limitsim import Thing\n"),
        "limitsim.c": ("c/__init__.py", "from .d import x\n"),
        "limitsim.c.d": ("c/d.py", ""),
    }
    (tmp_path / "c").mkdir()
    for file, text in files.values():
        (tmp_path / file).write_text(text)
    edges = import_edges({name: tmp_path / file for name, (file, _) in files.items()})
    assert edges["limitsim.a"] == {"limitsim.b": [1, 5], "limitsim.c.d": [2, 4], "limitsim.c": [4]}
    assert edges["limitsim.b"] == {} and edges["limitsim.c"] == {"limitsim.c.d": [1]}


def test_the_cycle_finder_finds_cycles():
    """The check above can fail: a known graph with two cycles and a chain."""
    graph = {"a": {"b": [1]}, "b": {"a": [2]}, "c": {"d": [1]}, "d": {"e": [1]}, "e": {"c": [1]}}
    graph["f"] = {"a": [1]}
    assert strongly_connected_components(graph) == [["a", "b"], ["c", "d", "e"]]


def test_at_most_25_modules_at_the_top():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    if len(top) > MAX_TOP_MODULES:
        pytest.fail(f"{len(top)} modules directly in limitsim/ (at most {MAX_TOP_MODULES}): {top}")


def test_no_module_over_450_lines():
    generated = PACKAGE / "_generated"
    lengths = {
        path.relative_to(PACKAGE.parent).as_posix(): len(
            path.read_text(encoding="utf-8").splitlines()
        )
        for path in sorted(PACKAGE.rglob("*.py"))
        if generated not in path.parents
    }
    long = {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES}
    listing = "\n".join(
        f"    {name}: {n} lines" for name, n in sorted(long.items(), key=lambda x: -x[1])
    )
    if long:
        pytest.fail(f"{len(long)} module(s) over {MAX_MODULE_LINES} lines:\n{listing}")


def body_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of the body from the first statement after the docstring to the function's end."""
    body = function.body
    if ast.get_docstring(function, clean=False) is not None and len(body) > 1:
        body = body[1:]
    elif ast.get_docstring(function, clean=False) is not None:
        return 0  # only a docstring
    assert function.end_lineno is not None
    return function.end_lineno - body[0].lineno + 1


def long_functions() -> dict[str, int]:
    """``path:line name`` -> body lines, for the functions over MAX_FUNCTION_LINES."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = body_lines(node)
                if n > MAX_FUNCTION_LINES:
                    where = f"{path.relative_to(PACKAGE.parent).as_posix()}:{node.lineno}"
                    found[f"{where} {node.name}"] = n
    return found


def test_at_most_two_functions_over_60_lines():
    long = long_functions()
    listing = "\n".join(
        f"    {name}: {n} lines" for name, n in sorted(long.items(), key=lambda x: -x[1])
    )
    if len(long) > MAX_LONG_FUNCTIONS:
        pytest.fail(
            f"{len(long)} functions with a body over {MAX_FUNCTION_LINES} lines "
            f"(at most {MAX_LONG_FUNCTIONS}):\n{listing}"
        )


def test_body_lines_skips_the_docstring():
    source = 'def f():\n    """Doc.\n\n    More.\n    """\n    x = 1\n    return x\n'
    (function,) = ast.parse(source).body
    assert body_lines(function) == 2
    (function,) = ast.parse("def g(): return 1\n").body
    assert body_lines(function) == 1
