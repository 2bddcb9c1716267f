"""A progress bar with rate and ETA for the CLI (the library only calls a progress callback).

On a terminal it is drawn by `rich`, sized to the terminal's width (nothing wraps, so no stale
rows are left behind as it redraws); on anything else (a log file, a pipe) a plain line is written
at most every `every` seconds, and at the end.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressBar:
    """`bar.update(done, total)` shows `label ━━━━━━╸━━━━ done/total  2.1 s/frame  ETA 00:42`.

    `stream`: where to draw (stderr); `width`: the terminal's columns (None: detected).
    """

    def __init__(self, label: str, unit: str = "frame", stream=None, every: float = 5.0,
                 width: int | None = None):
        self.label, self.unit, self.every = label, unit, every
        self.stream = stream or sys.stderr
        self.start = self.last_draw = time.monotonic()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._rich = self._rich_progress(width) if self.tty else None
        self._task = None

    def _rich_progress(self, width: int | None):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn
        from rich.table import Column

        console = Console(file=self.stream, width=width, force_terminal=True, highlight=False)
        return Progress(
            TextColumn(self.label, table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            BarColumn(bar_width=None, table_column=Column(ratio=1)),
            TextColumn("{task.completed}/{task.total}", table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[timing]}", table_column=Column(no_wrap=True)),
            console=console, auto_refresh=False, expand=True)

    def update(self, done: int, total: int, start_done: int = 0) -> None:
        """Show that `done` of `total` units are finished (`start_done` were done before this run)."""
        now = time.monotonic()
        if not self.tty and now - self.last_draw < self.every and done < total:
            return
        self.last_draw = now
        timing = self._timing(now, done, total, start_done)
        if self._rich is None:
            self.stream.write(f"{self.label}: {done}/{total}  {timing}".rstrip() + "\n")
            self.stream.flush()
            return
        if self._task is None:
            self._task = self._rich.add_task(self.label, total=total, completed=done, timing=timing)
            self._rich.start()
        self._rich.update(self._task, completed=done, total=total, timing=timing)
        self._rich.refresh()

    def _timing(self, now: float, done: int, total: int, start_done: int) -> str:
        worked = done - start_done
        if worked <= 0:
            return ""
        rate = (now - self.start) / worked
        return f"{rate:.2f} s/{self.unit}  ETA {_clock(rate * (total - done))}"

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop drawing; the bar's last state stays on the terminal. Safe to call twice."""
        if self._rich is not None and self._task is not None:
            self._rich.update(self._task, timing=f"{_clock(time.monotonic() - self.start)} in all")
            self._rich.refresh()
            self._rich.stop()
            self._task = None
