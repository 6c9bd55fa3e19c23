"""The package's layers: imports run one way (``data_download`` -> ``wavegms``) and never in a
circle, so each module can be read, and changed, knowing only what is below it
(docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("wavegms", "data_download")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports at run time, at any depth (functions included);
    ``if TYPE_CHECKING:`` blocks are annotations only and are skipped."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from pkg import module` imports the module; `from module import name` the module.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def test_the_library_never_imports_the_downloader():
    offenders = {
        module: sorted(m for m in imports if m.split(".")[0] == "data_download")
        for module, imports in _graph().items()
        if module.split(".")[0] == "wavegms"
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_no_import_cycles():
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                walk(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert cycles == []


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The cycle test would be blind to lazy imports if the parser skipped function bodies."""
    source = tmp_path / "wavegms" / "a.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from .b import x\n    import wavegms.c\n")
    modules = {"wavegms.a", "wavegms.b", "wavegms.c"}
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert _imports(source, modules) == {"wavegms.b", "wavegms.c"}
    finally:
        ROOT = saved
