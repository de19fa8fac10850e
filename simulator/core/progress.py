"""Progress bars that suit where stderr goes.

On a terminal a bar is tqdm, redrawn in place as usual. Anywhere else (a CI log, `nohup`, a
pipe, a file) every redraw would be one more carriage-return frame in the log, thousands per
run, so the bar writes plain lines instead, never a '\\r':

- one line every LINE_INTERVAL_S seconds while it advances (checked when it advances, so a
  stalled bar stays silent), with the time left at the rate so far where the total is known, and
- one line when it finishes (reaches its total, or ends its iterable). A bar stopped short
  (an error, Ctrl-C) writes no last line, so an error stays the last line on stderr.

A bar of D seconds therefore writes at most floor(D / LINE_INTERVAL_S) + 1 lines.
`enabled=False` (`--no-progress`) silences both kinds.
"""
import sys
import time
from collections.abc import Iterable, Iterator

from tqdm import tqdm

LINE_INTERVAL_S = 10.0  # seconds between two lines of a bar when stderr is not a terminal


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def progress_bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
                 enabled: bool = True, leave: bool = True, unit_scale: bool = False):
    """A tqdm-compatible bar over `iterable` (or one advanced with `update(n)` up to `total`).

    The object supports iteration, `update`, `set_postfix`, `set_postfix_str`, `close` and
    `with`. `leave=False` erases the bar on a terminal when it closes; in plain lines the last
    line is written either way. `unit_scale` shows counts with SI prefixes (bytes: 12.3MB).
    """
    if not enabled or stderr_is_terminal():
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, leave=leave,
                    unit_scale=unit_scale)
    return LineProgress(iterable, total, desc, unit, unit_scale)


class LineProgress:
    """tqdm's interface, writing a plain line to stderr every LINE_INTERVAL_S and one when done."""

    def __init__(self, iterable: Iterable | None, total: float | None, desc: str, unit: str, unit_scale: bool):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit, self.unit_scale = iterable, total, desc, unit, unit_scale
        self.n = 0
        self.postfix = ""
        self.closed = False
        self.start_s = self.last_line_s = time.monotonic()

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update()
        self.close()  # only when the iterable ends; a loop left early writes no last line

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        self.closed = True

    def update(self, n: float = 1) -> None:
        self.n += n
        now_s = time.monotonic()
        if now_s - self.last_line_s >= LINE_INTERVAL_S and not self.closed:
            self.last_line_s = now_s
            self._write(self._count() + self._percent(), now_s, self._left(now_s))

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}), **kwargs}.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def close(self) -> None:
        """The last line, when the bar reached its total (or has none); nothing when it stopped short."""
        if self.closed:
            return
        self.closed = True
        if self.total is None or self.n >= self.total:
            self._write(f"done, {self._count()}", time.monotonic())

    def _number(self, value: float) -> str:
        if self.unit_scale:
            return tqdm.format_sizeof(value)
        return f"{value:.0f}" if float(value).is_integer() or value >= 1000 else f"{value:.3g}"

    def _count(self) -> str:
        total = f"/{self._number(self.total)}" if self.total is not None else ""
        return f"{self._number(self.n)}{total} {self.unit}"

    def _percent(self) -> str:
        return f" ({100 * self.n / self.total:.0f}%)" if self.total else ""

    def _left(self, now_s: float) -> str:
        """The time left at the rate so far (tqdm's ETA), where the total is known."""
        if not self.total or self.n <= 0:
            return ""
        return f", {(self.total - self.n) * (now_s - self.start_s) / self.n:.0f} s left"

    def _write(self, state: str, now_s: float, left: str = "") -> None:
        elapsed_s = now_s - self.start_s
        rate = f", {self._number(self.n / elapsed_s)} {self.unit}/s" if elapsed_s > 0 else ""
        postfix = f", {self.postfix}" if self.postfix else ""
        prefix = f"{self.desc}: " if self.desc else ""
        try:
            print(f"{prefix}{state} in {elapsed_s:.1f} s{rate}{left}{postfix}", file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr gone (closed pipe): progress is not worth an error
            pass
