"""The docstring rule of ``recsys/``: every public class, function and method has a docstring, and a public
function that raises says so.

Checked statically with :mod:`ast`, so nothing is imported (no torch, no Streamlit) and the test takes well under
a second. Public means not starting with ``_``; only module-level definitions and class bodies (nested classes
included) are looked at, since a function defined inside a function is an implementation detail.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "recsys"
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
DEFINITIONS = (*FUNCTIONS, ast.ClassDef)


def _raises_directly(function: ast.AST) -> bool:
    """True when ``function``'s own body holds a ``raise``; nested functions, lambdas and classes raise for
    themselves, not for it."""
    pending = list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, (*DEFINITIONS, ast.Lambda)):
            continue
        pending.extend(ast.iter_child_nodes(node))
    return False


def _public_definitions(nodes: list[ast.stmt], prefix: str = ""):
    """``(qualified name, node)`` of the public classes and functions among ``nodes`` and in those classes."""
    for node in nodes:
        if not isinstance(node, DEFINITIONS) or node.name.startswith("_"):
            continue
        yield prefix + node.name, node
        if isinstance(node, ast.ClassDef):
            yield from _public_definitions(node.body, prefix=f"{prefix}{node.name}.")


def _problems() -> tuple[list[str], list[str]]:
    missing, undocumented_raises = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(PACKAGE.parent).as_posix()
        for name, node in _public_definitions(tree.body):
            doc = ast.get_docstring(node)
            if not doc:
                missing.append(f"{where}:{node.lineno} {name}")
            elif isinstance(node, FUNCTIONS) and _raises_directly(node) and "raise" not in doc.lower():
                undocumented_raises.append(f"{where}:{node.lineno} {name}")
    return missing, undocumented_raises


def test_the_walk_finds_the_package():
    # Guards against a moved package making the real test pass vacuously.
    names = {name for path in PACKAGE.rglob("*.py")
             for name, _ in _public_definitions(ast.parse(path.read_text(encoding="utf-8")).body)}
    assert "Catalog.load" in names and "VectorIndex.search" in names


def test_raise_detection_ignores_nested_functions():
    tree = ast.parse(
        "def outer():\n"
        "    def inner():\n"
        "        raise ValueError\n"
        "    return inner\n"
        "def direct(x):\n"
        "    if x:\n"
        "        raise ValueError\n"
    )
    outer, direct = tree.body
    assert not _raises_directly(outer)
    assert _raises_directly(direct)


def test_every_public_definition_is_documented():
    missing, undocumented_raises = _problems()
    message = []
    if missing:
        message.append(f"{len(missing)} public class(es)/function(s) without a docstring:\n  " + "\n  ".join(missing))
    if undocumented_raises:
        message.append(f"{len(undocumented_raises)} public function(s) that raise but whose docstring never says so "
                       "(add a numpydoc 'Raises' section):\n  " + "\n  ".join(undocumented_raises))
    assert not message, "\n".join(message)
