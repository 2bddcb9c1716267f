"""The frame loop's writers: each frame copied to the host, its PNG and resume points written on
background threads in order, the live MP4 fed, and when to save a resume point."""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from animator.config import Config
from animator.media import images
from animator.renderer.state import FrameStore
from animator.settings.errors import (
    OutputError,
    PluginError,
)


class _Checkpoints:
    """When to save a resume point: after the run's first frame (so that a folder with frames
    always has one), then every `frames` frames (at multiples of it), or once `seconds` have
    passed since the last one; frames dreamed since are dreamed again on resume.

    `every` is `output.checkpoint_every` (5 or "30s"). `reach` records the newest resume point
    (index, transformed frame, generator state); `take` hands it over to be saved.
    """

    def __init__(self, every: int | str) -> None:
        from animator.config import checkpoint_cadence

        self.frames, self.seconds = checkpoint_cadence(every)
        self.point: tuple | None = None
        self.clock, self.taken = time.monotonic(), False

    def reach(self, index: int, frame, rng_state: dict) -> None:
        self.point = (index, frame, rng_state)

    def due(self) -> bool:
        if not self.taken:
            return True
        if self.frames is not None:
            return self.point[0] % self.frames == 0
        return time.monotonic() - self.clock >= self.seconds

    def unsaved(self) -> bool:
        return self.point is not None

    def take(self) -> tuple:
        point, self.point, self.clock, self.taken = self.point, None, time.monotonic(), True
        return point


class _Writes:
    """Frames copied to the host, their PNGs and resume points written, on background threads.

    One thread copies each dreamed frame off the device as uint8 pixels, in order (`fetch`):
    rounded once for both the PNG writers and the encoder. Up to `threads`
    PNGs are encoded at once (compression releases the GIL; two, or half the cores up to 4 on a
    GPU host: a writer works only while a frame waits for it, so while a CPU dreams, slower than
    they write, they leave it the cores; at 1080p on 2 cores a second one took the frame
    pipeline from 29 to 33 frames/s), and one more thread copies the
    transformed frame of each resume point and saves it once every frame before it is on disk.
    After a failed write no later point is saved. At most `threads + 1` writes are in flight:
    `frame` waits for the oldest beyond that and raises its failure, if any.
    """

    def __init__(self, store: FrameStore, threads: int | None = None) -> None:
        self.store = store
        self.threads = threads or min(4, max(2, (os.cpu_count() or 1) // 2))
        self.fetches = ThreadPoolExecutor(1, thread_name_prefix="frame-fetch")
        self.frames = ThreadPoolExecutor(self.threads, thread_name_prefix="frame-writer")
        self.states = ThreadPoolExecutor(1, thread_name_prefix="state-writer")
        self.pending: deque[Future] = deque()
        self.unsaved: list[Future] = []  # frame writes since the last resume point
        self.broken = False

    def fetch(self, frame, index: int = 0) -> Future:
        """Start copying frame `index` (a backend tensor or numpy) to uint8 RGB pixels."""
        return self.fetches.submit(_host_pixels, frame, index)

    def frame(self, index: int, fetched: Future) -> None:
        """Start writing frame `index`'s PNG once `fetched`."""
        while len(self.pending) > self.threads:
            self._wait_oldest()
        written = self.frames.submit(self._write_frame, index, fetched)
        self.pending.append(written)
        self.unsaved.append(written)

    def state(self, index: int, frame, rng_state: dict) -> None:
        """Save the resume point before frame `index` (`frame`: a backend tensor or numpy)
        once every frame before it is on disk."""
        written, self.unsaved = self.unsaved, []
        self.pending.append(self.states.submit(self._save_state, written, index, frame, rng_state))

    def drain(self) -> None:
        """Wait for every write; raise the first failure as an OutputError."""
        while self.pending:
            self._wait_oldest()

    def close(self) -> None:
        """Finish what was started (frames already dreamed are kept), then stop the threads."""
        self.fetches.shutdown(wait=True)
        self.frames.shutdown(wait=True)
        self.states.shutdown(wait=True)

    def _write_frame(self, index: int, fetched: Future) -> None:
        self.store.write_frame(index, fetched.result())

    def _save_state(self, written: list[Future], index: int, frame, rng_state: dict) -> None:
        try:
            if self.broken:
                raise _WriteSkipped
            for write in written:  # never record a resume point past a frame not on disk
                write.result()
            self.store.save_state(index, _finite(_to_numpy(frame), index), rng_state)
        except BaseException:
            self.broken = True
            raise

    def _wait_oldest(self) -> None:
        """Wait for the oldest write in flight; re-raise its failure as an OutputError."""
        try:
            self.pending.popleft().result()
        except OSError as error:  # a write that escaped io's own handling, e.g. a full disk
            where = error.filename or self.store.folder
            raise images.output_error(error, where, remedy="then_resume") from error


class _WriteSkipped(Exception):
    """A resume point not saved because an earlier write failed (that failure is reported)."""


def _host_pixels(frame, index: int) -> np.ndarray:
    """Frame `index` as uint8 RGB pixels on the host (`pixels.to_host`), its finiteness checked
    here, off the frame loop's thread: checking it there would make the loop wait for the device."""
    from animator.renderer.pixels import to_host

    rgb, finite = to_host(frame)
    if not finite:
        raise _non_finite(index)
    return rgb


def _finite(pixels: np.ndarray, index: int) -> np.ndarray:
    """`pixels` of frame `index` (dreamed, or about to be), checked on the host."""
    if not np.isfinite(pixels).all():
        raise _non_finite(index)
    return pixels


def _non_finite(index: int) -> PluginError:
    if index == 0:  # no transform ran before it: the start frame or its dream made them
        return PluginError("frame 0 holds non-finite values (NaN or inf): the start frame or its "
                           "dream made them; check the input and the dream settings")
    return PluginError(f"frame {index} holds non-finite values (NaN or inf) made by the "
                       f"transforms of frame {index - 1}: frames 0..{index - 1} are kept; fix the "
                       "transform", remedy="then_resume")


def _to_numpy(frame) -> np.ndarray:
    # np.asarray shares a CPU tensor's buffer, where keras' convert_to_numpy copies it (4 ms a
    # 1080p frame); from a GPU it copies, as convert_to_numpy does.
    return np.asarray(frame)


# The outputs encoded while the frames are dreamed (the video codecs); GIF and WebP are made at the end.
LIVE_FORMATS = ("mp4", "webm")


class _LiveVideo:
    """The MP4 encoded on a background thread while the frames are dreamed.

    At most one frame waits for the encoder (ffmpeg runs in its own process, with its own
    threads). If the encoder fails, the render goes on and the MP4 is assembled from the frames
    folder at the end instead; the file appears at the output path only once it is complete.
    """

    def __init__(self, writer) -> None:
        self.writer = writer
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")
        self.pending: Future | None = None
        self.failed = False

    @classmethod
    def open(cls, config: Config) -> _LiveVideo | None:
        """A live encoder for an MP4 or WebM played forward, else None (assembled at the end)."""
        options = config.animation.output
        if config.output_format not in LIVE_FORMATS or options.reverse or options.pingpong:
            return None
        from animator.media.video import open_writer

        try:
            writer = open_writer(config.output_path, config.animation.fps, format=config.output_format,
                                 quality=options.quality, preset=options.preset,
                                 frames_dir=config.frames_dir)
        except OutputError:  # assembling at the end will report it, with the frames kept
            return None
        return cls(writer)

    def send(self, fetched: Future) -> None:
        """Queue one frame (a future of its pixels), after the encoder has taken the previous one."""
        self._settle()
        if not self.failed:
            self.pending = self.pool.submit(lambda: self.writer.write(fetched.result()))

    def end(self) -> None:
        """No more frames: ffmpeg finishes the file on the encoder's thread meanwhile."""
        self._settle()
        if not self.failed and self.writer.frames_written:
            self.pending = self.pool.submit(self.writer.end_input)

    def finish(self, frames: int) -> bool:
        """Move the MP4 into place if it holds all `frames`; False if it must be assembled."""
        self._settle()
        self.pool.shutdown()
        if self.failed or frames == 0 or self.writer.frames_written != frames:
            self.writer.abort()
            return False
        try:
            self.writer.close()
        except OutputError:
            return False
        return True

    def abort(self) -> None:
        """Stop the encoder and remove its unfinished file."""
        self.failed = True
        self.pool.shutdown(wait=True)
        self.writer.abort()

    def _settle(self) -> None:
        if self.pending is None:
            return
        pending, self.pending = self.pending, None
        try:
            pending.result()
        except (OutputError, OSError, ValueError):  # ffmpeg gone or refusing the frame
            self.failed = True
            self.writer.abort()
