"""mkdocs hooks of the documentation site (mkdocs.yml: ``hooks``).

The docstrings use Sphinx roles (``:class:`Session```, ``:func:`labkit.sim.sweep.sweep```), which mkdocstrings
leaves as literal text. Each role becomes an mkdocs-autorefs cross-reference marked optional: a link where the
target is documented in the API reference, the name in code where it is not (no warning, no literal role).
"""

from __future__ import annotations

import html
import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const|type):<code>([^<]+)</code>")


def _reference(match: re.Match[str]) -> str:
    target = html.unescape(match.group(1)).strip()
    shown = target
    if target.startswith("~"):  # Sphinx: show the last part only
        target = target[1:]
        shown = target.rsplit(".", 1)[-1]
    target = target.removesuffix("()")
    return (
        f'<autoref optional identifier="{html.escape(target, quote=True)}"><code>{html.escape(shown)}</code></autoref>'
    )


def rewrite_roles(text: str) -> str:
    """HTML with every Sphinx role turned into an optional cross-reference."""
    return ROLE.sub(_reference, text)


def on_page_content(html_text: str, **kwargs: Any) -> str:
    return rewrite_roles(html_text)
