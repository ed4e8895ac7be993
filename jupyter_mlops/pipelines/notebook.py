"""What a step notebook declares: the names set in its ``parameters``-tagged cell, read with ``ast``.

papermill only warns about a parameter the notebook does not declare and injects it anyway; a typo then runs
the notebook with its default. Reading the declarations lets the spec check refuse it before anything runs.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from jupyter_mlops.exceptions import InvalidInput


def read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"Cannot read the notebook {path}: {exc}. Is it a valid .ipynb file?", path=str(path)
        ) from exc


def declared_parameters(path: Path) -> list[str] | None:
    """Names assigned in the cell tagged ``parameters`` (in order), or None when no cell has that tag."""
    for cell in read(path).get("cells", []):
        if cell.get("cell_type") != "code" or "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = "".join(cell.get("source", []))
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise InvalidInput(
                f"The parameters cell of {path} is not valid Python (line {exc.lineno}): {exc.msg}.", path=str(path)
            ) from exc
        names: list[str] = []
        for node in tree.body:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id not in names:
                        names.append(name.id)
        return names
    return None


def content_hash(path: Path) -> str:
    """The hash of what a notebook runs: its code cells' sources and its kernel, not outputs or execution counts."""
    nb = read(path)
    code = ["".join(cell.get("source", [])) for cell in nb.get("cells", []) if cell.get("cell_type") == "code"]
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name", "")
    return hashlib.sha256(json.dumps([kernel, code]).encode()).hexdigest()


def kernel_name(path: Path) -> str | None:
    return read(path).get("metadata", {}).get("kernelspec", {}).get("name")
