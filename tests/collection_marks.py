"""Which test files ``-m`` deselects as a whole, read from their source without importing them.

pytest applies ``-m`` after importing every test file, and the live conformance files import the SDKs,
LangChain, pydantic-ai, hypothesis and jsonschema: about a third of ``make test-fast``'s start-up in each xdist
worker, for tests it then deselects. ``tests/conftest.py`` skips a file only when no test in it can be
selected: the expression is false for the file's ``pytestmark`` plus every subset of the marks its source names
anywhere (``pytest.mark.X`` in a decorator or a ``pytest.param``), so a test that carries more marks than the
file can never be lost.
"""

from __future__ import annotations

import ast
import functools
import itertools
from pathlib import Path


def _marks_named(tree: ast.Module) -> tuple[frozenset[str], frozenset[str]]:
    """(the marks of the module's ``pytestmark``, every ``pytest.mark.X`` named anywhere in the file)."""

    def named(node: ast.AST) -> set[str]:
        return {
            n.attr
            for n in ast.walk(node)
            if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Attribute)
            and n.value.attr == "mark"
            and isinstance(n.value.value, ast.Name)
            and n.value.value.id == "pytest"
        }

    module_marks: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets):
            module_marks |= named(stmt.value)
    return frozenset(module_marks), frozenset(named(tree))


@functools.cache
def deselects_whole_file(path: Path, markexpr: str) -> bool:
    try:
        from _pytest.mark.expression import Expression  # pytest's own `-m` parser: the same semantics

        expression = Expression.compile(markexpr)
        module_marks, anywhere = _marks_named(ast.parse(path.read_text(), str(path)))
    except Exception:  # an unknown pytest, a syntax error (pytest will report it): collect as usual
        return False
    extra = sorted(anywhere - module_marks)
    if len(extra) > 8:
        return False
    for r in range(len(extra) + 1):
        for subset in itertools.combinations(extra, r):
            marks = module_marks | set(subset)
            if expression.evaluate(lambda name, /, marks=marks, **kwargs: not kwargs and name in marks):
                return False
    return True
