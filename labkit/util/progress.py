"""Progress bars for the loops a user waits on: count, rate and time left, on stderr or in a notebook.

One policy for every bar of the kit (``docs/guides/setup.md``, "Progress bars"):

- a bar goes to **stderr** only (stdout, ``--json`` output included, never changes), and only when stderr is
  a terminal or the code runs in a Jupyter kernel (there ``tqdm.auto`` draws an ipywidgets bar);
- ``labkit --quiet`` (:func:`silence`) and ``LABKIT_PROGRESS=0`` turn every bar off; so does running under
  pytest (``PYTEST_CURRENT_TEST``), so the suite's output does not depend on ``-s`` or a terminal;
- a bar disappears when its loop ends (``leave=False``): nothing is left in a terminal's scrollback, a
  notebook's outputs, or a figure.

Wrapping a loop is one line, and costs nothing when bars are off (the iterable comes back as it is)::

    for x in progress(items, desc="bootstrap", total=n):
        ...

    with progress_bar(desc="trials", total=n, unit="trial") as bar:
        ...
        bar.update()

    results = await gather(*coros, desc="ws rollouts", unit="rollout")

    shards = map_done(run_shard, jobs, executor, desc="fleet shards", unit="replica")  # counted as each ends

``tqdm`` is imported only when a bar is drawn, so commands that draw none do not pay for it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, as_completed
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

#: The environment variable that turns bars off (``0``, ``false``, ``no``, ``off``).
ENV_VAR = "LABKIT_PROGRESS"
_OFF = frozenset({"0", "false", "no", "off"})
_ON = frozenset({"", "1", "true", "yes", "on"})

#: Set by pytest while a test runs: bars stay off, whatever the terminal.
TEST_RUNNER_ENV = "PYTEST_CURRENT_TEST"

_silenced = False


def silence(quiet: bool = True) -> None:
    """Turn every bar of this process off (``labkit --quiet``), or back to the policy with ``quiet=False``."""
    global _silenced
    _silenced = quiet


def in_kernel() -> bool:
    """Whether this code runs in a Jupyter (ipykernel) kernel, where a bar is a widget in the cell's output."""
    if "ipykernel" not in sys.modules:
        return False
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def enabled() -> bool:
    """Whether a bar would be drawn now (the policy in the module docstring)."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value not in _OFF | _ON:
        raise ValueError(f"{ENV_VAR}: expected 0 or 1 (or false/true, no/yes, off/on), got {value!r}")
    if _silenced or value in _OFF or TEST_RUNNER_ENV in os.environ:
        return False
    return in_kernel() or _isatty(sys.stderr)


def _tqdm_class() -> Any:
    # tqdm.auto picks the ipywidgets bar in a Jupyter kernel and the text bar elsewhere.
    from tqdm.auto import tqdm

    # No tqdm monitor thread: it tunes how often a bar redraws, but never redraws a stalled one; the ticker
    # below does that.
    tqdm.monitor_interval = 0
    return tqdm


#: A bar with no update for this long is redrawn, so its elapsed time moves (one shard of 19 s is not a hang).
TICK_S = 1.0
_open_bars: set[Any] = set()
_ticker_lock = threading.Lock()
_ticker: threading.Thread | None = None


def _tick() -> None:
    global _ticker
    while True:
        with _ticker_lock:
            if not _open_bars:  # the last bar closed: the thread ends (a new bar starts a new one)
                _ticker = None
                return
            bars = list(_open_bars)
        for bar in bars:
            if bar._time() - bar.last_print_t >= TICK_S:
                try:
                    bar.refresh()  # takes tqdm's own lock; a bar closed meanwhile draws nothing
                except (OSError, ValueError):  # its stream went away (closed, or a broken pipe): stop drawing it
                    with _ticker_lock:
                        _open_bars.discard(bar)
        threading.Event().wait(TICK_S)


def _track(bar: Any) -> Any:
    """Keep ``bar``'s elapsed time moving while it is open (one daemon thread, only while bars are open)."""
    global _ticker
    with _ticker_lock:
        _open_bars.add(bar)
        if _ticker is None:
            _ticker = threading.Thread(target=_tick, name="labkit-progress", daemon=True)
            _ticker.start()
    return bar


def _new_bar(desc: str, total: float | None, unit: str) -> Any:
    cls = _tqdm_class()
    options = {"total": total, "desc": desc, "unit": unit, "leave": False, "file": sys.stderr, "dynamic_ncols": True}
    if not in_kernel():
        return _track(cls(**options))
    from tqdm.notebook import tqdm_notebook

    if not issubclass(cls, tqdm_notebook):  # a kernel without ipywidgets: tqdm's text bar on stderr
        return _track(cls(**options))
    # The widget goes out under a display id, so that closing the bar can blank its output: tqdm only closes
    # the widget, which JupyterLab removes but an executed .ipynb keeps (a "0/3" bar in its saved output), and
    # a loop that breaks early would leave a red bar.
    from IPython.display import display

    bar = cls(display=False, **options)
    bar.labkit_display = display(bar.container, display_id=True)
    return _track(bar)


def _close(bar: Any) -> None:
    with _ticker_lock:
        _open_bars.discard(bar)
    bar.close()
    handle = getattr(bar, "labkit_display", None)
    if handle is not None:
        handle.update({}, raw=True)


def progress(iterable: Iterable[T], *, desc: str, total: float | None = None, unit: str = "it") -> Iterable[T]:
    """``iterable`` with a bar (count, rate, time left) when :func:`enabled`; else ``iterable`` itself.

    ``total`` defaults to ``len(iterable)`` when it has one; without a total the bar shows count and rate.
    """
    if not enabled():
        return iterable
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return _iterate(iterable, desc, total, unit)


def _iterate(iterable: Iterable[T], desc: str, total: float | None, unit: str) -> Iterator[T]:
    # A generator of our own rather than tqdm's iterator, so the bar is closed by ``finally`` when the loop
    # breaks or raises, and tqdm's class is not in the iterable's type.
    bar = _new_bar(desc, total, unit)
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        _close(bar)


class Bar:
    """A bar updated by hand (see :func:`progress_bar`); every method does nothing when bars are off."""

    def __init__(self, bar: Any | None) -> None:
        self._bar = bar

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def update(self, n: float = 1) -> None:
        """``n`` more units done."""
        if self._bar is not None:
            self._bar.update(n)

    def note(self, text: str) -> None:
        """A short status after the counts (e.g. the current point of a search)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)


@contextmanager
def progress_bar(*, desc: str, total: float | None, unit: str = "it") -> Iterator[Bar]:
    """A :class:`Bar` for loops that are not one iterable (callbacks, nested loops, work in chunks)."""
    bar = _new_bar(desc, total, unit) if enabled() else None
    try:
        yield Bar(bar)
    finally:
        if bar is not None:
            _close(bar)


async def gather(*aws: Awaitable[T], desc: str, unit: str = "it", return_exceptions: bool = False) -> list[Any]:
    """``asyncio.gather(*aws)`` (same results, in order; same errors) with a bar that moves as each ends."""
    with progress_bar(desc=desc, total=len(aws), unit=unit) as bar:
        if not bar.shown:
            return list(await asyncio.gather(*aws, return_exceptions=return_exceptions))

        async def counted(aw: Awaitable[T]) -> T:
            try:
                return await aw
            finally:  # a failed one is done too
                bar.update()

        return list(await asyncio.gather(*(counted(aw) for aw in aws), return_exceptions=return_exceptions))


def map_done(
    fn: Callable[[Any], T], items: Iterable[Any], executor: Executor | None = None, *, desc: str, unit: str = "it"
) -> list[T]:
    """``[fn(x) for x in items]``, in this process or on ``executor`` (a process pool, a Dask cluster's
    ``client.get_executor()``), in ``items``' order; the bar counts each as it ends, not in order.

    On an executor the first error cancels what has not started and is raised, as ``Executor.map`` does.
    """
    if executor is None:
        return [fn(x) for x in progress(items, desc=desc, unit=unit)]
    futures: list[Future[T]] = [executor.submit(fn, x) for x in items]
    try:
        with progress_bar(desc=desc, total=len(futures), unit=unit) as bar:
            for done in as_completed(futures):
                done.result()  # raises the first error as it happens
                bar.update()
    finally:
        for f in futures:
            f.cancel()  # nothing to do for those that ended
    return [f.result() for f in futures]


def write(message: str, file: TextIO | None = None) -> None:
    """Print a line (default: to stdout) without tearing a bar that is on screen."""
    out = sys.stdout if file is None else file
    if "tqdm" in sys.modules:  # a bar may be on screen: tqdm clears it, prints, and redraws it
        from tqdm import tqdm

        tqdm.write(message, file=out)
        out.flush()
    else:
        print(message, file=out, flush=True)


__all__ = [
    "ENV_VAR",
    "Bar",
    "enabled",
    "gather",
    "in_kernel",
    "map_done",
    "progress",
    "progress_bar",
    "silence",
    "write",
]
