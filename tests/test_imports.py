"""The package's layers (docs/architecture.md): each module of ``wavegms`` imports only from its
own layer or the layers below it, lowest first::

    utils < data < model (the paper's model) < engine (+ pretrained) < course < entry (cli)

``data_download`` imports only ``wavegms.utils`` and ``wavegms.data``; nothing in ``wavegms``
imports ``data_download`` or ``tools``; and no imports run in a circle. So each module can be
read, and changed, knowing only what is below it.

Imports are read from the source at any depth: module level, inside functions (the lazy imports
that keep ``--help`` fast), and ``importlib.import_module("...")`` with a literal name. Imports
under ``if TYPE_CHECKING:`` are annotations only and are skipped. ``wavegms/__init__.py`` names
the public API from every layer (lazily) and is exempt; as an import it counts as the top layer:
inside the package, a name is imported from its home module.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("wavegms", "data_download", "tools")

# Lowest first; a name covers the module and the modules under it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("utils", ("wavegms.utils",)),
    ("data", ("wavegms.data",)),
    (
        "model",
        (
            "wavegms.wavelets",
            "wavegms.norm",
            "wavegms.encoder",
            "wavegms.lmm",
            "wavegms.tiny_vae",
            "wavegms.model",
            "wavegms.losses",
        ),
    ),
    ("engine", ("wavegms.engine", "wavegms.pretrained")),
    ("course", ("wavegms.course",)),
    ("entry", ("wavegms.cli", "wavegms.__main__", "wavegms")),
)
DATA_DOWNLOAD_MAY_USE = ("utils", "data")


class Import(NamedTuple):
    site: str  # "wavegms/engine/train.py:12", relative to the root
    target: str  # the project module imported


def layer(module: str) -> int | None:
    """The index in ``LAYERS`` of a ``wavegms`` module (the package itself: the top)."""
    for index, (_, names) in enumerate(LAYERS):
        if any(module == n or (n != "wavegms" and module.startswith(f"{n}.")) for n in names):
            return index
    return None


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _literal_import_module(node: ast.Call) -> str | None:
    """``X`` of ``importlib.import_module("X")`` (absolute names only), else None."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name != "import_module" or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return None if first.value.startswith(".") else first.value
    return None


def imports(path: Path, root: Path, modules: set[str]) -> list[Import]:
    """The project modules (of ``modules``) that ``path`` imports at run time, with the line of
    each import; ``if TYPE_CHECKING:`` blocks are skipped."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    site = path.relative_to(root).as_posix()
    found: list[Import] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import module` imports the module; `from module import name` the module.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        elif isinstance(node, ast.Call):
            targets = [t for t in [_literal_import_module(node)] if t]
        found.extend(
            Import(f"{site}:{node.lineno}", target)
            for target in dict.fromkeys(targets)
            if target in modules and target != name
        )
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def import_graph(root: Path = ROOT) -> dict[str, list[Import]]:
    """Every module of ``PACKAGES`` under ``root`` -> its imports of project modules."""
    files = [p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))]
    modules = {_module_name(p, root) for p in files}
    return {_module_name(p, root): imports(p, root, modules) for p in files}


def _refusal(importer: str, target: str) -> str | None:
    """Why ``importer`` may not import ``target``, or None if it may."""
    top, target_top = importer.split(".")[0], target.split(".")[0]
    if importer == "wavegms" or top == "tools":
        return None
    if top == "data_download":
        if target_top == "data_download" or (
            layer(target) is not None and LAYERS[layer(target)][0] in DATA_DOWNLOAD_MAY_USE
        ):
            return None
        return "data_download imports only wavegms.utils and wavegms.data"
    if target_top != "wavegms":
        return f"wavegms never imports {target_top}"
    own, other = layer(importer), layer(target)
    if own is None or other is None:
        return f"{importer if own is None else target} has no layer in LAYERS"
    return None if other <= own else f"{LAYERS[own][0]} imports {LAYERS[other][0]}"


def layer_violations(graph: dict[str, list[Import]]) -> list[str]:
    """``"file:line -> module (why)"`` for each import that goes up a layer or out of bounds."""
    return [
        f"{site} -> {target} ({why})"
        for importer, found in sorted(graph.items())
        for site, target in found
        if (why := _refusal(importer, target))
    ]


def test_every_wavegms_module_has_a_layer():
    unplaced = [m for m in import_graph() if m.startswith("wavegms") and layer(m) is None]
    assert unplaced == [], "add these modules to LAYERS (and to docs/architecture.md)"


def test_imports_run_down_the_layers():
    violations = layer_violations(import_graph())
    assert not violations, "imports up a layer:\n" + "\n".join(violations)


def test_no_import_cycles():
    graph = {module: {i.target for i in found} for module, found in import_graph().items()}
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


def test_the_checker_flags_upward_imports_wherever_they_are(tmp_path):
    """The layer test can fail: upward imports at module level, inside functions and through
    ``import_module`` are flagged with their line; ``TYPE_CHECKING`` imports, imports of the
    same layer or below, the package's own ``__init__`` and ``tools`` are not."""
    sources = {
        "wavegms/__init__.py": "from .course import session\n",
        "wavegms/utils/__init__.py": "",
        "wavegms/utils/a.py": (
            "from typing import TYPE_CHECKING\n"
            "from . import b\n"
            "if TYPE_CHECKING:\n"
            "    from ..engine import train\n"
            "def f():\n"
            "    from ..engine.train import fit\n"
        ),
        "wavegms/utils/b.py": "",
        "wavegms/data/__init__.py": "from ..utils import a\n",
        "wavegms/model.py": "import wavegms.data\nfrom wavegms import cli\n",
        "wavegms/engine/__init__.py": "",
        "wavegms/engine/train.py": "import wavegms.model\nimport data_download.x\n",
        "wavegms/course/__init__.py": "",
        "wavegms/course/session.py": "import importlib\nimportlib.import_module('wavegms.cli')\n",
        "wavegms/cli.py": "from .course import session\n",
        "data_download/__init__.py": "",
        "data_download/x.py": "from wavegms.data import load\nfrom wavegms.engine import train\n",
        "tools/__init__.py": "",
        "tools/t.py": "from wavegms import cli\n",
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert layer_violations(import_graph(tmp_path)) == [
        "data_download/x.py:2 -> wavegms.engine.train "
        "(data_download imports only wavegms.utils and wavegms.data)",
        "wavegms/course/session.py:2 -> wavegms.cli (course imports entry)",
        "wavegms/engine/train.py:2 -> data_download.x (wavegms never imports data_download)",
        "wavegms/model.py:2 -> wavegms.cli (model imports entry)",
        "wavegms/utils/a.py:6 -> wavegms.engine.train (utils imports engine)",
    ]


def test_the_course_package_exports_every_public_name_of_its_session():
    # `wavegms.course.__all__` is built from its lazy exports, which must cover session's.
    import wavegms.course as course
    from wavegms.course import session

    assert set(session.__all__) <= set(course.__all__)
    assert all(getattr(course, name) is not None for name in course.__all__)
