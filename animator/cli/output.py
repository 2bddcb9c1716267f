"""What the command line prints: remarks, the progress bar, a sweep's progress, and how Ctrl-C
stops a render."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

from animator.cli.advice import ERROR_PREFIX, _advice
from animator.settings.errors import Interrupted


def _quiet_backends() -> None:
    # TensorFlow's C++ start-up chatter (oneDNN, CUDA probes) is noise for a user of this command.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for a moment: TensorFlow's C++ start-up lines
    ("Could not find cuda drivers ...") are written before its logging can be configured."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _import_backend(debug: bool) -> None:
    """Import Keras (and so its backend) up front, quietly unless --debug."""
    if debug:
        import keras  # noqa: F401
        return
    with _native_stderr_silenced():
        import keras  # noqa: F401


def _say(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def _notes(args):
    """The `note` callback: remarks for the user, one line each (none with --quiet)."""
    return lambda text: _say(args, f"note: {text}")


class _Silent:
    """The progress bar of --quiet."""

    def update(self, *progress) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _progress(args, label: str, unit: str = "frame"):
    from animator.progress import ProgressBar

    return _Silent() if args.quiet else ProgressBar(label, unit=unit)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event):
    """SIGINT/SIGTERM set `stop` (the render ends after the current frame); a second one aborts."""

    def handle(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after the current frame (press Ctrl-C again to abort now)",
              file=sys.stderr)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _SweepProgress:
    """One bar for the frames of every variant still to render (none with --quiet)."""

    def __init__(self, plan, args) -> None:
        self.advice, self.quiet = _advice(args), args.quiet
        todo = [v for v in plan.variants if not v.finished()]
        self.done = {v.id: v.frames_done() for v in todo}
        self.total = sum(v.config.frames for v in todo)
        self.bar = _progress(args, f"sweep of {len(todo)} variants")

    def update(self, variant_id: str, done: int, total: int) -> None:
        self.done[variant_id] = done
        self.bar.update(sum(self.done.values()), self.total)

    def outcome(self, outcome) -> None:
        """A line per variant that ends (on a terminal, rich prints it above the bar); with
        --quiet, only the failures."""
        if outcome.status == "failed":
            line = f"variant {outcome.id} failed: {' '.join(outcome.worded(self.advice).split())}"
        elif outcome.status == "finished" and not self.quiet:
            line = f"variant {outcome.id} finished in {outcome.seconds:.0f} s"
        else:
            return
        print(line, file=sys.stderr)


def _sweep_status(report) -> int:
    stopped, failed = report.with_status("stopped"), report.with_status("failed")
    if stopped:
        raise Interrupted(f"stopped: {len(stopped)} variants unfinished, their frames kept",
                          remedy="resume")
    if failed:
        print(f"{ERROR_PREFIX}{len(failed)} of {len(report.outcomes)} variants failed: "
              f"{', '.join(o.id for o in failed)}", file=sys.stderr)
        return max(o.exit_code for o in failed)
    return 0
