"""The ``labkit`` command line: one sub-command per module in ``labkit.cli``.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.

Every error a user can cause or fix ends as one line on stderr, ``labkit COMMAND: error: WHAT; WHAT TO DO``,
and exit status 2, with no traceback (:func:`main`): a bad argument (argparse's own errors included), a
``ValueError`` naming the field, a file or folder that is not there, a server or scheduler that does not
answer, an optional extra that is not installed. ``LABKIT_TRACEBACK=1`` shows the traceback as well.

Only the command that runs is imported (``labkit headline`` does not load the server or the DES); the top-level
help imports every command module to list them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import labkit
from labkit.util import progress

#: Options that name a file a command writes (not a folder: those a command creates). Their folder must exist
#: before the command starts, so a long run does not end in a write that fails.
OUTPUT_FILE_OPTIONS: frozenset[str] = frozenset({"--out", "--spans", "--spans-out", "--csv", "--events"})
#: Commands whose ``--out`` is a folder they create (checked by the command, not as a file).
OUT_IS_A_FOLDER: frozenset[str] = frozenset({"figures", "bench", "conformance"})
#: Optional extras of the package and a module each brings: a command that imports a missing one says which
#: extra to install (see docs/guides/dependencies.md).
EXTRAS: dict[str, str] = {
    "plotly": "lab",
    "kaleido": "lab",
    "anywidget": "lab",
    "ipywidgets": "lab",
    "nbclient": "lab",
    "nbformat": "lab",
    "jupyter_client": "lab",
    "jupytext": "lab",
    "distributed": "dask",
    "dask": "dask",
    "openai": "sdk",
    "agents": "sdk",
    "mkdocs": "docs",
}


class UsageError(Exception):
    """A mistake in how a command was called: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors are one line naming the command and where its help is (not the usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def command_names() -> list[str]:
    """The command modules of this package, by file name (``replay.py`` -> ``replay``)."""
    return sorted(i.name for i in pkgutil.iter_modules(__path__) if not i.name.startswith("_"))


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"labkit.cli.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` (then the other modules are not imported)."""
    parser = _Parser(prog="labkit", description="LLM API overhead in agent loops: model, simulate, measure, replay.")
    parser.add_argument("--version", action="version", version=f"labkit {labkit.__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars (also: LABKIT_PROGRESS=0)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in [only] if only else command_names():
        mod = _module(name)
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run, _parser=p)
    return parser


def check_output_files(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Raise :class:`UsageError` when a file option (``OUTPUT_FILE_OPTIONS``) points into a missing folder."""
    for action in parser._actions:
        flags = set(action.option_strings) & OUTPUT_FILE_OPTIONS
        if not flags or (flags == {"--out"} and args.command in OUT_IS_A_FOLDER):
            continue
        value = getattr(args, action.dest, None)
        if value is None or not isinstance(value, str | os.PathLike) or str(value) == "-":
            continue
        folder = Path(value).parent
        if not folder.is_dir():
            raise UsageError(
                f"{sorted(flags)[0]} {value}: the folder {folder}/ does not exist; create it (mkdir -p {folder}) "
                "or choose another path"
            )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _missing_extra(exc: ImportError) -> str | None:
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"this command needs {top}, from the '{extra}' extra: pip install 'labkit[{extra}]'"


def _os_error(exc: OSError) -> str:
    """One line for a failed file or network operation, with what to do."""
    what = exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename
    if isinstance(exc, FileNotFoundError) and name:
        return f"{name}: no such file or folder; check the path (relative paths start at {Path.cwd().name}/)"
    if isinstance(exc, PermissionError) and name:
        return f"{name}: permission denied; choose a path you can write"
    if isinstance(exc, ConnectionError | TimeoutError) or "connect" in what.lower() or "timed out" in what.lower():
        return f"{what}; is the server or scheduler running at that address?"
    return f"{name}: {what}" if name else what


def describe(exc: BaseException) -> str | None:
    """The one line shown for an error a user can fix, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, UsageError | ValueError):
        return str(exc)
    if isinstance(exc, ImportError):
        return _missing_extra(exc)
    for link in _chain(exc):
        if isinstance(link, OSError):
            line = _os_error(link)
            return line if link is exc else f"{str(exc).splitlines()[0]}: {line}"
    # A rollout that could not reach its server (labkit.live.runner.RolloutError, the connect_failed code).
    if type(exc).__name__ == "RolloutError":
        text = str(exc).splitlines()[0]
        if "connect" in text:
            return f"{text}; is a server listening at --base-url?"
        return text
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_in if not a.startswith("-")), None)
    try:
        parser = build_parser(first if first in command_names() else None)
    except ImportError as exc:  # a command module whose imports need an extra
        line = _missing_extra(exc)
        if line is None:
            raise
        print(f"labkit{f' {first}' if first else ''}: error: {line}", file=sys.stderr)
        return 2
    args = parser.parse_args(args_in)
    # Progress bars go to stderr, only on a terminal or in a notebook (labkit.util.progress); --quiet: none.
    progress.silence(args.quiet)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        check_output_files(args, args._parser)
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `labkit ... | head`: the reader left; say nothing more (Python's own advice for this case).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        line = describe(exc)
        if line is None:
            raise
        if os.environ.get("LABKIT_TRACEBACK"):
            import traceback

            traceback.print_exc()
        print(f"labkit {args.command}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
