"""Progress bars that suit where the output goes: a live bar on a terminal, a periodic line in a log.

tqdm redraws its bar in place with carriage returns, several times a second. On a terminal that is a live bar;
in a file or a pipe (``make run > log.txt``, CI) every redraw stays in the output, and the log fills with
thousands of ``\\r``-joined fragments. :func:`progress_bar` is the one way this package and ``scripts/`` make a
progress bar: tqdm as usual when the stream is a terminal, otherwise tqdm writing through :class:`LineWriter`,
which prints the bar's state as whole, newline-terminated ASCII lines: the first one, then at most one every
:data:`LOG_INTERVAL_S` seconds, then the final one.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, Callable

from tqdm.auto import tqdm

#: What every long job reports its progress through: ``progress(fraction, message)``, ``fraction`` in [0, 1] and
#: ``message`` one line a page or a log shows. Defined here once; the library imports it from here.
ProgressCallback = Callable[[float, str], None]

#: Seconds between two progress lines when the output is not a terminal.
LOG_INTERVAL_S = 5.0

# Cursor movements tqdm writes for stacked bars (``position``); meaningless in a log.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def is_terminal(stream: Any) -> bool:
    """True when ``stream`` is an open terminal; False for files, pipes, closed or odd streams (and None)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class LineWriter:
    """A text stream for tqdm's ``file=`` that turns its in-place redraws into throttled whole lines.

    tqdm writes each state of a bar as ``"\\r" + state`` (padded with spaces) and a ``"\\n"`` when a bar that
    stays (``leave=True``) closes. Each state replaces the pending one; a pending state is written as one line
    when ``interval_s`` has passed since the last line, and always at a newline, so that the final state of
    every bar is in the log. Identical consecutive lines are written once.

    Args:
        stream: where the lines go (a file, a pipe, ``sys.stderr``).
        interval_s: the least number of seconds between two lines of the same writer, except a bar's last one.
        clock: seconds on a monotonic clock (a parameter for tests).
    """

    def __init__(self, stream: IO[str], interval_s: float = LOG_INTERVAL_S, clock=time.monotonic) -> None:
        self.stream = stream
        self.interval_s = float(interval_s)
        self.encoding = getattr(stream, "encoding", None) or "utf-8"
        self._clock = clock
        self._pending: str | None = None
        self._last_line: str | None = None
        self._last_time: float | None = None

    def isatty(self) -> bool:
        """Always False: what this writes is meant for a log."""
        return False

    def write(self, text: str) -> int:
        """Take what tqdm writes; returns ``len(text)`` as a text stream does."""
        # Odd items are the separators, even ones the text between them.
        for index, segment in enumerate(re.split(r"([\r\n])", text)):
            if index % 2:
                if segment == "\n":
                    self._emit()
                continue
            state = _ANSI_ESCAPE.sub("", segment).strip()
            if state:
                self._pending = state
                if self._last_time is None or self._clock() - self._last_time >= self.interval_s:
                    self._emit()
        return len(text)

    def flush(self) -> None:
        """Flush the underlying stream (a pending state waits for its interval or the bar's end)."""
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()

    def _emit(self) -> None:
        if self._pending is not None and self._pending != self._last_line:
            self.stream.write(self._pending + "\n")
            self.flush()
            self._last_line = self._pending
            self._last_time = self._clock()
        self._pending = None


def progress_bar(
    iterable: Iterable | None = None, *, file: IO[str] | None = None, interval_s: float = LOG_INTERVAL_S, **options
) -> tqdm:
    """A tqdm progress bar over ``iterable`` (or to ``update`` by hand) that keeps logs clean.

    On a terminal it is tqdm with ``options`` as given. Anywhere else (a file, a pipe) the bar is written as
    whole ASCII lines by a :class:`LineWriter`: the first state, then at most one line every ``interval_s``
    seconds (tqdm's ``mininterval``, and the writer's limit for explicit ``refresh()`` calls too), then the final
    state -- never a carriage return.

    Args:
        iterable: what to iterate over, as for ``tqdm(iterable)``; None for a bar moved with ``update``.
        file: the stream; ``sys.stderr`` (looked up at call time) when None, as tqdm does.
        interval_s: seconds between two lines when ``file`` is not a terminal.
        **options: any other ``tqdm`` keyword (``total``, ``desc``, ``unit``, ``disable``, ``bar_format`` ...);
            ``mininterval`` and ``ascii`` are set by this function when the stream is not a terminal.

    Returns:
        The ``tqdm`` instance; use it exactly as tqdm's (``update``, ``set_postfix_str``, ``close``, ``with``).
    """
    stream = sys.stderr if file is None else file
    if is_terminal(stream):
        return tqdm(iterable, file=stream, **options)
    options.update(mininterval=interval_s, ascii=True, dynamic_ncols=False)
    return tqdm(iterable, file=LineWriter(stream, interval_s), **options)


@contextlib.contextmanager
def no_library_bars() -> Iterator[None]:
    """Run the block with the progress bars of transformers and huggingface_hub switched off, then restore them.

    Their loaders draw their own tqdm bars ("Loading weights: 100%| 103/103" as sentence-transformers reads
    MiniLM), which bypass :func:`progress_bar` and leave fragments in a log; a model load of a second or two needs
    no bar at all. The switches are global, so a bar another thread draws meanwhile is off too.
    """
    switches = []
    try:
        from transformers.utils import logging as transformers_logging

        switches.append((transformers_logging.is_progress_bar_enabled, transformers_logging.disable_progress_bar,
                         transformers_logging.enable_progress_bar))
    except ImportError:
        pass
    try:
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

        switches.append((lambda: not are_progress_bars_disabled(), disable_progress_bars, enable_progress_bars))
    except ImportError:
        pass
    was_on = [is_on() for is_on, _, _ in switches]
    for _, disable, _ in switches:
        disable()
    try:
        yield
    finally:
        for on, (_, _, enable) in zip(was_on, switches):
            if on:
                enable()
