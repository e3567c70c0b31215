"""Token counts of wire text, estimated the way the simulator and the clients agree on.

The live server counts conversation tokens with :func:`estimate_tokens`, and the agent runner builds payloads
whose estimate equals the workload's token counts (:func:`filler_text`), so a live run and a simulation see
the same sizes. Real tokenizers differ; the estimate only has to be shared.
"""

from __future__ import annotations

#: UTF-8 bytes per estimated token (English text averages about four).
BYTES_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Tokens in a text, estimated as one per 4 UTF-8 bytes (rounded up).

    The live server counts conversation tokens with this, and the agent runner builds payloads whose
    estimate equals the workload's token counts, so a live run and a simulation see the same sizes.
    """
    # ASCII text is one byte per character: its length, without encoding a copy (a long output is kilobytes).
    n = len(text) if text.isascii() else len(text.encode())
    return -(-n // BYTES_PER_TOKEN)


_WORDS = ("tok ", "abc ", "xyz ", "foo ", "bar ", "qux ", "lab ", "kit ")


def filler_text(n_tokens: int, salt: int = 0) -> str:
    """A deterministic text of exactly ``n_tokens`` estimated tokens (4-byte words)."""
    if n_tokens <= 0:
        return ""
    # Word i is _WORDS[(i + salt) % 8]: whole cycles of the rotated words, then the rest (one join, not n).
    k = salt % len(_WORDS)
    rotated = _WORDS[k:] + _WORDS[:k]
    cycles, rest = divmod(n_tokens, len(_WORDS))
    return "".join(rotated) * cycles + "".join(rotated[:rest])
