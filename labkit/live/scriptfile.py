"""Reading a script of the simulated model from a file (YAML, or JSON without pyyaml).

Kept apart from :mod:`labkit.live.server`, whose modules read network input and never import a YAML parser: a
script is the user's own local file, read once at start-up with ``yaml.safe_load``.
"""

from __future__ import annotations

import json
from pathlib import Path

from labkit.live.server.script import Script, ScriptError

__all__ = ["read_script"]


def read_script(path: str | Path) -> Script:
    """A :class:`~labkit.live.server.script.Script` from a YAML or JSON file; errors name the file (and line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        import yaml
    except ImportError:  # pyyaml is optional: JSON (a subset of YAML) still loads
        try:
            return Script.from_dict(json.loads(text), str(p))
        except ValueError:
            raise ScriptError(f"{p}: reading YAML needs pyyaml (pip install pyyaml); JSON works without") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ScriptError(f"{p}:{line} not valid YAML") from None
    return Script.from_dict(data, str(p))
