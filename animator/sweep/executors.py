"""Where a sweep's variants render: a thread of this process, a pool of processes, or Ray tasks.

Each executor runs `worker.render_variant` with a mailbox: the worker posts `(id, done, total)`
after each frame and asks `is_set()` whether to stop. `drive` submits the variants, relays the
progress and outcomes, and on a stop request lets running variants end after their current frame
and starts no more. Ray (`pip install "deepdream-animator[ray]"`) is imported only when asked for.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing.managers import SyncManager
from typing import Protocol

from animator.settings.errors import ConfigError
from animator.sweep.model import Outcome, Variant
from animator.sweep.worker import render_variant

POLL_SECONDS = 0.2
PARENT_POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # prctl(2)


class Executor(Protocol):
    """Where variants render, as `drive` uses it. A handle is whatever the executor tracks a
    submitted variant by (an id, a Future, a Ray object reference)."""

    def submit(self, variant: Variant) -> Hashable:
        """Start rendering `variant` (or queue it); its handle."""

    def wait(self, handles: list, timeout: float) -> list:
        """The handles among `handles` whose variants have ended, waiting up to `timeout` seconds
        for at least one."""

    def outcome(self, handle, variant: Variant) -> Outcome:
        """How `variant` ended (finished, stopped, failed): never raises for a variant's error."""

    def relay(self) -> None:
        """Pass the workers' posted progress on to `on_frame`, in this thread."""

    def stop(self, handles: list) -> None:
        """Ask the running variants to end after their current frame (kept for the next run)."""

    def abort(self, handles: list) -> None:
        """End the running variants now (a second Ctrl-C): what they wrote is kept."""

    def close(self) -> None:
        """Release the workers (processes, Ray actors)."""


class _Mailbox:
    """A worker's progress goes to `put`; `is_set` says whether it should stop."""

    def __init__(self, put: Callable, flag) -> None:
        self.put, self.flag = put, flag

    def is_set(self) -> bool:
        return self.flag.is_set()


class _SerialExecutor:
    """Variants one after another in this thread: the model is built once, and a second Ctrl-C
    interrupts the frame being dreamed, as it does for `animator render`."""

    def __init__(self, on_frame: Callable | None, stop: threading.Event | None) -> None:
        self.mailbox = _Mailbox(lambda item: on_frame and on_frame(*item), stop or threading.Event())
        self.stopped = False

    def submit(self, variant: Variant) -> str:
        return variant.id

    def wait(self, handles: list[str], timeout: float) -> list[str]:
        return handles[:1]

    def outcome(self, handle: str, variant: Variant) -> Outcome:
        if self.stopped:
            return Outcome(variant.id, "stopped")
        return render_variant(*_arguments(variant), self.mailbox)

    def relay(self) -> None:
        """Progress went straight to `on_frame`."""

    def stop(self, handles: list[str]) -> None:
        self.stopped = True

    def abort(self, handles: list[str]) -> None:
        """Nothing runs in the background."""

    def close(self) -> None:
        """Nothing to shut down."""


class _ProcessExecutor:
    """`jobs` variants at once, each in its own process (on a CPU; a GPU takes one at a time)."""

    def __init__(self, jobs: int, on_frame: Callable | None) -> None:
        context = multiprocessing.get_context("spawn")  # TensorFlow does not survive a fork
        self.manager = SyncManager(ctx=context)
        self.manager.start(_die_with_parent, (os.getpid(),))
        self.items, self.flag = self.manager.Queue(), self.manager.Event()
        self.mailbox = _Mailbox(self.items.put, self.flag)
        self.on_frame = on_frame
        self.pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                        initargs=(os.getpid(),))

    def submit(self, variant: Variant) -> Future:
        return self.pool.submit(render_variant, *_arguments(variant), self.mailbox)

    def wait(self, handles: list[Future], timeout: float) -> list[Future]:
        return list(wait(handles, timeout, return_when=FIRST_COMPLETED).done)

    def outcome(self, handle: Future, variant: Variant) -> Outcome:
        if handle.cancelled():
            return Outcome(variant.id, "stopped")
        try:
            return handle.result()
        except Exception as error:  # a worker process that died (killed, out of memory)
            return _lost(variant, error)

    def relay(self) -> None:
        with contextlib.suppress(queue.Empty, OSError, EOFError):
            while True:
                item = self.items.get_nowait()
                if self.on_frame is not None:
                    self.on_frame(*item)

    def stop(self, handles: list[Future]) -> None:
        self.flag.set()
        for handle in handles:
            handle.cancel()  # only those not started

    def abort(self, handles: list[Future]) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():  # this process's own workers and manager
            child.terminate()
        self.aborted = True

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        if not self.aborted:
            self.manager.shutdown()

    aborted = False


def _arguments(variant: Variant) -> tuple:
    """`render_variant`'s arguments but the mailbox: plain values a process or a Ray task can take."""
    return variant.id, variant.data, str(variant.config.base_dir), variant.config.source


def _lost(variant: Variant, error: BaseException) -> Outcome:
    line = (str(error).strip().splitlines() or [""])[0]
    return Outcome(variant.id, "failed", message=f"worker lost: {type(error).__name__}: {line}",
                   exit_code=1)


def _start_worker(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the parent asks the workers to stop after a frame
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """End this process when the process `parent` ends, however (kill -9 too): an orphan would
    go on rendering and hold its variant's lock against the next run. On Linux the kernel sends
    SIGKILL at once; elsewhere (and should that fail) a thread notices within a second."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:  # a dead parent's children are adopted by another process
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


class _RayMailbox:
    """A worker's side of the Ray mailbox actor (picklable: it holds only the actor's handle)."""

    def __init__(self, actor) -> None:
        self.actor = actor

    def put(self, item) -> None:
        self.actor.put.remote(item)

    def is_set(self) -> bool:
        import ray

        return ray.get(self.actor.is_set.remote())


class _MailboxActor:
    """Collects the workers' progress and holds the stop flag (made a Ray actor when used)."""

    def __init__(self) -> None:
        self.items, self.stopped = [], False

    def put(self, item) -> None:
        self.items.append(item)

    def take(self) -> list:
        items, self.items = self.items, []
        return items

    def stop(self) -> None:
        self.stopped = True

    def is_set(self) -> bool:
        return self.stopped


class _RayExecutor:
    """Each variant a Ray task, on one GPU where the cluster has GPUs. The variants' files (the
    input, plugins, the sweep's folder) must be at the same path on every node."""

    def __init__(self, address: str, on_frame: Callable | None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError('--ray needs Ray: pip install "deepdream-animator[ray]"') from None
        self.ray, self.on_frame = ray, on_frame
        self.started = not ray.is_initialized()
        if self.started:
            _connect(ray, address)
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        self.task = ray.remote(num_gpus=gpus, max_retries=0)(render_variant)
        self.actor = ray.remote(num_cpus=0)(_MailboxActor).remote()
        self.mailbox = _RayMailbox(self.actor)

    def submit(self, variant: Variant):
        return self.task.remote(*_arguments(variant), self.mailbox)

    def wait(self, handles: list, timeout: float) -> list:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        return done

    def outcome(self, handle, variant: Variant) -> Outcome:
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayError as error:  # a node lost, a worker killed
            return _lost(variant, error)

    def relay(self) -> None:
        for item in self.ray.get(self.actor.take.remote()):
            if self.on_frame is not None:
                self.on_frame(*item)

    def stop(self, handles: list) -> None:
        self.actor.stop.remote()

    def abort(self, handles: list) -> None:
        for handle in handles:
            self.ray.cancel(handle, force=True)

    def close(self) -> None:
        self.ray.kill(self.actor)
        if self.started:
            self.ray.shutdown()


def _connect(ray, address: str) -> None:
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, ValueError) as error:
        reason = str(error).split(". ")[0].rstrip(".")  # Ray's own advice names its flags, not ours
        raise ConfigError(f"--ray {address}: cannot connect to a Ray cluster ({reason}): start one "
                          "with `ray start --head`, or give its address") from None


@contextlib.contextmanager
def open_executor(jobs: int = 1, ray_address: str | None = None, on_frame: Callable | None = None,
                  stop: threading.Event | None = None):
    """The executor for a run, shut down on leaving. `on_frame(id, done, total)` receives the
    variants' progress (in this thread, from `drive`)."""
    if ray_address:
        executor = _RayExecutor(ray_address, on_frame)
    elif _local_jobs(jobs) == 1:
        executor = _SerialExecutor(on_frame, stop)
    else:
        executor = _ProcessExecutor(jobs, on_frame)
    try:
        yield executor
    finally:
        executor.close()


def _local_jobs(jobs: int) -> int:
    """`jobs` processes on a CPU; one variant at a time on a GPU, which each render fills."""
    if jobs < 1:
        raise ConfigError(f"--jobs: must be >= 1, got {jobs}")
    if jobs == 1:
        return 1
    from animator.engine.backend import has_accelerator

    return 1 if has_accelerator() else jobs


def drive(executor: Executor, variants: list[Variant], on_outcome: Callable[[Outcome], None] | None,
          stop: threading.Event | None) -> dict[str, Outcome]:
    """Submit every variant, relay progress and outcomes until all have ended; returns the
    outcomes. When `stop` is set, running variants end after their frame and no more start; an
    exception here (a second Ctrl-C) aborts them at once."""
    handles = {executor.submit(variant): variant for variant in variants}
    outcomes, stopping = {}, False
    try:
        while handles:
            if stop is not None and stop.is_set() and not stopping:
                executor.stop(list(handles))
                stopping = True
            for handle in executor.wait(list(handles), POLL_SECONDS):
                variant = handles.pop(handle)
                outcomes[variant.id] = executor.outcome(handle, variant)
                executor.relay()
                if on_outcome is not None:
                    on_outcome(outcomes[variant.id])
            executor.relay()
    except BaseException:
        executor.abort(list(handles))
        raise
    return outcomes
