"""The rules that keep the package easy to change, as tests: the core imports no face, no module grows past 600
lines, and every exception is declared in exceptions.py, drawn in its docstring and knows its HTTP status."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import jupyter_mlops.exceptions as exceptions_module
from jupyter_mlops.exceptions import MlopsError

PACKAGE = Path(__file__).parent.parent / "jupyter_mlops"
FACES = ("cli", "magics", "server", "ui", "widgets")  # jupyter_mlops/<face>[.py]
FACE_IMPORTS = ("IPython", "ipywidgets", "jupyter_server", "tornado", *(f"jupyter_mlops.{f}" for f in FACES))
MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "labextension" not in p.relative_to(PACKAGE).parts)


def _is_face(path: Path) -> bool:
    first = path.relative_to(PACKAGE).parts[0]
    return first.removesuffix(".py") in FACES


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            if node.module == "jupyter_mlops":  # from jupyter_mlops import cli
                found += [(node.lineno, f"jupyter_mlops.{alias.name}") for alias in node.names]
    return found


def _jupyter_hooks(tree: ast.Module) -> set[int]:
    """Lines of the package's Jupyter entry points (``_jupyter_server_extension_points``, ``load_ipython_extension``):
    the one place outside the faces that names them, so that Jupyter finds them."""
    lines: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in (
            "_jupyter_server_extension_points",
            "load_ipython_extension",
        ):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def test_the_core_imports_no_face():
    offenders = []
    for path in _modules():
        if _is_face(path):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        hooks = _jupyter_hooks(tree) if path.name == "__init__.py" and path.parent == PACKAGE else set()
        for line, module in _imports(tree):
            if line not in hooks and any(module == f or module.startswith(f + ".") for f in FACE_IMPORTS):
                offenders.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert offenders == [], "core modules must not import a face:\n" + "\n".join(offenders)


def test_no_module_exceeds_600_lines():
    long = [
        f"{p.relative_to(PACKAGE)}: {n} lines" for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert long == [], f"split these modules (at most {MAX_LINES} lines each):\n" + "\n".join(long)


def _exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(exceptions_module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == exceptions_module.__name__
    ]


def test_every_exception_class_lives_in_exceptions_py():
    """No module but exceptions.py declares a class deriving from an exception (private control-flow signals
    included: they are listed there too, or are not exceptions)."""
    declared = []
    for path in _modules():
        if path.name == "exceptions.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
                if bases & ({c.__name__ for c in _exception_classes()} | {"Exception", "BaseException"}):
                    declared.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert declared == [], "declare these in jupyter_mlops/exceptions.py:\n" + "\n".join(declared)


@pytest.mark.parametrize("cls", _exception_classes(), ids=lambda c: c.__name__)
def test_the_tree_is_drawn_and_each_error_knows_its_status(cls):
    assert issubclass(cls, MlopsError), f"{cls.__name__} must derive from MlopsError"
    assert isinstance(cls.http_status, int) and 400 <= cls.http_status <= 599
    assert cls.__doc__, f"{cls.__name__} says when it is raised"
    doc = exceptions_module.__doc__ or ""
    line = next((li for li in doc.splitlines() if f" {cls.__name__}" in li or li.strip() == cls.__name__), None)
    assert line is not None, f"{cls.__name__} is missing from the tree in the docstring of exceptions.py"
    status = [int(w.strip("()")) for w in line.split() if w.startswith("(") and w.strip("()").isdigit()]
    if status:
        assert status == [cls.http_status], f"the tree says {status[0]} for {cls.__name__}, the class {cls.http_status}"
    if cls is not MlopsError:  # drawn under its parent: the nearest line above that is indented less
        parent = cls.__mro__[1]
        lines = doc.splitlines()
        here = lines.index(line)
        depth = len(line) - len(line.lstrip(" │├└─"))
        above = [li for li in lines[:here] if li.strip() and len(li) - len(li.lstrip(" │├└─")) < depth]
        assert above and f" {parent.__name__}" in " " + above[-1].lstrip(" │├└─"), (
            f"the tree must draw {cls.__name__} under {parent.__name__}"
        )


def test_only_the_layout_joins_paths_under_the_workspace_root():
    """``layout.py`` owns the workspace's folders; everything else asks ``ws.layout`` for them."""
    joins = []
    for path in _modules():
        if path.name == "layout.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                left = ast.unparse(node.left)
                if left.endswith(("ws.root", "workspace.root", "self.root")):
                    joins.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {ast.unparse(node)}")
    assert joins == [], "ask ws.layout for these paths:\n" + "\n".join(joins)
