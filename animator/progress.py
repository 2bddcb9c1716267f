"""A one-line progress bar with rate and ETA, drawn on a text stream (the CLI's, never the library's)."""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressBar:
    """`bar.update(done, total)` redraws `label [####....] done/total  2.1 s/frame  ETA 00:42`.

    On a stream that is not a terminal it writes a line at most every `every` seconds instead.
    """

    def __init__(self, label: str, unit: str = "frame", stream=None, width: int = 28,
                 every: float = 5.0):
        self.label, self.unit, self.width, self.every = label, unit, width, every
        self.stream = stream or sys.stderr
        self.start = self.last_draw = time.monotonic()
        self.first_done = None
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done: int, total: int, start_done: int = 0) -> None:
        """Show that `done` of `total` units are finished (`start_done` were done before this run)."""
        now = time.monotonic()
        if not self.tty and now - self.last_draw < self.every and done < total:
            return
        self.last_draw = now
        worked = done - start_done
        rate = (now - self.start) / worked if worked > 0 else None
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        timing = f"{rate:.2f} s/{self.unit}  ETA {_clock(rate * (total - done))}" if rate else ""
        line = f"{self.label} [{bar}] {done}/{total}  {timing}"
        self.stream.write(("\r" + line.ljust(78)) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (terminal only), reporting the total time."""
        if self.tty:
            self.stream.write(f"  {_clock(time.monotonic() - self.start)}\n")
            self.stream.flush()
