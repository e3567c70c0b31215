"""One home per layer: every import in the package against the table in docs/guides/architecture.md.

The table is the one copy of the rules: this test parses it, walks the syntax tree of every module under
``labkit/`` (imports inside functions and under ``TYPE_CHECKING`` too, and ``importlib.import_module`` of a
literal name), and checks each import against the importing module's row. The third-party packages a row says a
layer must "never" load are also checked on its whole import closure, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "labkit"
ARCHITECTURE = ROOT / "docs" / "guides" / "architecture.md"
HEADER = "| folder | holds | may import |"


@dataclass(frozen=True)
class Rule:
    """One row of the table."""

    #: Layers (``sim``) and single modules of a layer (``sim.analytic``) the layer may import.
    layers: frozenset[str]
    #: Third-party packages it may import besides the standard library; ``None``: any.
    packages: frozenset[str] | None
    #: Third-party packages it must not load, even indirectly.
    never: frozenset[str]


def _layer_names() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def _names(text: str) -> list[str]:
    return re.findall(r"`([\w.]+)`", text)


def parse_rules(text: str) -> dict[str, Rule]:
    """Layer (folder name, or ``__init__``/``__main__`` for the root modules) -> its rule."""
    lines = text.splitlines()
    start = lines.index(HEADER) + 2  # the header and its |---| line
    layers = _layer_names()
    rules: dict[str, Rule] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        folder, _, may = (cell.strip() for cell in line.strip("|").split("|"))
        keys = re.findall(r"`labkit/(\w+)/`", folder) + re.findall(r"`labkit/(\w+)\.py`", folder)
        assert keys, f"a table row names no folder: {line}"
        allowed, _, never = may.partition("never")
        if "everything above" in allowed:  # and the other folders of the same row
            named = {name for name in [*rules, *keys] if name in layers}
        else:
            named = set(_names(allowed))
        own = frozenset(n for n in named if n.split(".")[0] in layers)
        third = frozenset(named - own)
        restricted = bool(third) or "standard library only" in allowed
        rule = Rule(own, third if restricted else None, frozenset(_names(never)))
        for key in keys:
            rules[key] = rule
    return rules


RULES = parse_rules(ARCHITECTURE.read_text(encoding="utf-8"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, relative ones resolved; ``from a import b`` gives ``a.b`` when
    ``b`` is a module of the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ""
    if path.is_relative_to(PACKAGE):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if base.startswith("labkit") and _is_module(sub) else base))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def _layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def breach(layer: str, module: str) -> str | None:
    """Why ``layer`` may not import ``module``, or ``None`` if it may."""
    rule = RULES[layer]
    top = module.split(".")[0]
    if top == "labkit":
        parts = module.split(".")
        if len(parts) == 1 or parts[1] == layer:
            return None
        target = ".".join(parts[1:])
        if any(target == name or target.startswith(name + ".") for name in rule.layers):
            return None
        return f"{layer} may not import {module} (may import: {', '.join(sorted(rule.layers)) or 'no layer'})"
    if top == "__future__" or top in sys.stdlib_module_names:
        return None
    if top in rule.never:
        return f"{layer} must never import {top}"
    if rule.packages is not None and top not in rule.packages:
        return f"{layer} may import only {', '.join(sorted(rule.packages)) or 'the standard library'}, not {top}"
    return None


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _breaches() -> list[tuple[str, int, str, str]]:
    out = []
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        for line, module in imports_of(path):
            why = breach(_layer_of(path), module)
            if why:
                out.append((rel, line, module, why))
    return out


def test_the_table_has_a_row_for_every_layer():
    assert set(RULES) >= _layer_names() | {"__init__", "__main__"}
    assert {p.stem for p in PACKAGE.glob("*.py")} <= set(RULES)
    assert RULES["wire"].layers == frozenset() and RULES["wire"].packages == frozenset()
    assert RULES["live"].never >= {"simpy", "plotly"} and "sim.analytic" in RULES["live"].layers
    assert RULES["traces"].layers == {"model", "analysis", "util"} and RULES["traces"].never >= {"sim", "live"}
    assert RULES["experiments"].layers >= {"model", "wire", "sim", "live", "traces", "analysis"}
    assert RULES["cli"].layers >= RULES["experiments"].layers | {"experiments", "viz", "bench", "report"}


def test_every_import_follows_the_table():
    bad = [f"{rel}:{line}: {why}" for rel, line, _module, why in _breaches()]
    assert not bad, "imports running against the layers:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "source,layer,module,allowed",
    [
        ("from labkit.analysis.metrics import turn_metrics", "sim", "labkit.analysis.metrics", False),
        ("from labkit.sim import des", "live", "labkit.sim.des", False),
        ("from labkit.sim.analytic import forecast", "live", "labkit.sim.analytic", True),
        ("import simpy", "live", "simpy", False),
        ("import numpy", "wire", "numpy", False),
        ("import json", "wire", "json", True),
        ("import scipy", "model", "scipy", False),
        ("from labkit.live.server import SimServer", "experiments", "labkit.live.server", True),
        ("from labkit.sim.analytic import forecast", "traces", "labkit.sim.analytic", False),
    ],
)
def test_the_checker_sees_imports_inside_functions(tmp_path, source, layer, module, allowed):
    code = f"import importlib\n\n\ndef late():\n    {source}\n    importlib.import_module({module!r})\n"
    path = tmp_path / "probe.py"
    path.write_text(code)
    assert [m for _, m in imports_of(path)] == ["importlib", module, module]
    assert (breach(layer, module) is None) == allowed


def _never_loaded(layer: str) -> list[str]:
    rule = RULES[layer]
    third = sorted(n for n in rule.never if n.split(".")[0] not in _layer_names())
    if not third:
        return []
    mods = [_module_name(p) for p in sorted((PACKAGE / layer).rglob("*.py"))]
    code = (
        "import importlib, json, sys\n"
        f"for m in {mods!r}:\n    importlib.import_module(m)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {third!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("layer", sorted(k for k, r in RULES.items() if r.never and (PACKAGE / k).is_dir()))
def test_never_is_never_loaded_even_indirectly(layer):
    assert _never_loaded(layer) == []
