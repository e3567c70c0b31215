"""The ``labkit`` command line: one sub-command per module in ``labkit.cli``.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``. Bad input
(a ``ValueError`` naming the field) becomes a one-line message and exit status 2, no traceback.

Only the command that runs is imported (``labkit headline`` does not load the server or the DES); the top-level
help imports every command module to list them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

import labkit
from labkit.util import progress


def command_names() -> list[str]:
    """The command modules of this package, by file name (``replay.py`` -> ``replay``)."""
    return sorted(i.name for i in pkgutil.iter_modules(__path__) if not i.name.startswith("_"))


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"labkit.cli.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` (then the other modules are not imported)."""
    parser = argparse.ArgumentParser(
        prog="labkit", description="LLM API overhead in agent loops: model, simulate, measure, replay."
    )
    parser.add_argument("--version", action="version", version=f"labkit {labkit.__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars (also: LABKIT_PROGRESS=0)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only else command_names():
        mod = _module(name)
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_in if not a.startswith("-")), None)
    parser = build_parser(first if first in command_names() else None)
    args = parser.parse_args(args_in)
    # Progress bars go to stderr, only on a terminal or in a notebook (labkit.util.progress); --quiet: none.
    progress.silence(args.quiet)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ValueError as exc:
        print(f"labkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `labkit ... | head`: the reader left; say nothing more (Python's own advice for this case).
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
