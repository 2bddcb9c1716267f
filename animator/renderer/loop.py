"""The frame loop: dream, write, transform, repeat; resumable after any interruption.

Each frame is written to `<output>.frames/00000.png` (atomically), and every
`output.checkpoint_every` frames or seconds (and when the loop ends) the state needed to go on
(the transformed frame, the random generator, the config's fingerprint) is saved beside it, so
`resume=True` after a crash, a full disk or Ctrl-C dreams again the frames since that point and
continues with exactly the frames an uninterrupted render would have made. PNG and state writing run on a
background thread while the next frame dreams; an MP4 played forward is encoded on another as the
frames arrive, so a finished render needs no assembly pass (a resumed, reversed or ping-pong one,
a GIF, or one whose encoder failed, is assembled from the frames folder at the end).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from animator.config import Config
from animator.media import images
from animator.renderer import sources
from animator.renderer.state import FIRST_FILE, FrameStore
from animator.settings.errors import (
    ConfigError,
    Interrupted,
    OutputError,
    PluginError,
    TooLarge,
    TransformValueError,
)

if TYPE_CHECKING:
    from animator.engine.dream import Dreamer


@dataclass(frozen=True)
class RenderResult:
    """What a render did: frames in the folder, the video written (None for `frames`)."""

    frames: int
    started_at: int
    output: Path | None
    frames_dir: Path
    seconds: float


@dataclass(frozen=True)
class Dreamed:
    """One frame just dreamed: its index, of `total`; `started_at` frames were there before this
    run. `pixels` is a future of its uint8 RGB pixels (H×W×3), copied off the device on a
    background thread: `pixels.result()` waits for them, and only whoever wants them waits."""

    index: int
    total: int
    started_at: int
    pixels: Future


def render(
    config: Config,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
    stop: threading.Event | None = None,
    note: Callable[[str], None] | None = None,
    on_frame: Callable[[Dreamed], None] | None = None,
) -> RenderResult:
    """Render `config`'s animation to its frames folder, then assemble its GIF or MP4.

    `resume` continues an interrupted render of the same config; `force` starts over, replacing
    what is there. `progress(done, total, started_at)` is called after each frame; `note(text)`
    receives remarks for the user (an animated input, a changed plugin); `on_frame(made)` each
    `Dreamed` frame (a live preview). When `stop` is set the loop ends after the current frame,
    assembles what is done and raises `Interrupted`. The one progress loop of every front end.
    """
    frames = run(config, resume=resume, force=force, stop=stop, note=note)
    with contextlib.closing(frames):
        while True:
            try:
                made = next(frames)
            except StopIteration as end:
                return end.value
            if progress is not None:
                progress(made.index + 1, made.total, made.started_at)
            if on_frame is not None:
                on_frame(made)


def run(
    config: Config,
    *,
    resume: bool = False,
    force: bool = False,
    stop: threading.Event | None = None,
    note: Callable[[str], None] | None = None,
    dreamer: Callable[..., Dreamer] | None = None,
) -> Generator[Dreamed, None, RenderResult]:
    """The render as a generator: yields each frame as it is dreamed (`Dreamed`), returns the
    `RenderResult` once the GIF or MP4 is assembled. Arguments as for `render`; `dreamer`, called
    with `Dreamer`'s keyword arguments in its place, lets a caller that renders many times (the
    studio) reuse a Dreamer built from equal arguments.

    Closing the generator early (a `break` in the loop that reads it) keeps every frame written
    so far and their resume point, without assembling: `resume=True` continues from there.
    """
    began = time.monotonic()
    note = note or (lambda text: None)
    if resume and force:
        raise ConfigError("resume and force exclude each other: resume continues a render, "
                          "force replaces it; choose one")
    starts = sources.open_source(config)
    config = starts.config
    store = FrameStore(config.frames_dir)
    _check_outputs(config)
    with store.lock(config.output_path), starts:  # the lock creates the frames folder
        start = _starting_point(config, store, resume, force, note, starts)
        for path in (config.output_path, settings_path(config)):  # a killed render's unfinished
            images.remove_stale_temporaries(path)                  # MP4, its half-written settings
        store.remove_temporaries()
        dreamer = _dreamer(config, dreamer, tuple(np.shape(start.frame)[:2]))
        precision = getattr(dreamer, "precision", None)  # a caller's own dreamer may not say
        if config.animation.dream.precision == "auto" and precision is not None:
            note(f"precision {precision}")
        if start.index == 0 and not start.resumed:  # the input and the model are good: only now
            _begin(config, store)                      # replace an old render
        elif start.index > 0 and start.first is None:  # first.npz missing or damaged: dream frame 0 again
            start.first = _first_again(config, dreamer, store, starts)
        _keep_features(config)
        settings = _write_settings(config, precision)
        store.frame_text = {SETTINGS_KEY: config.frame_settings()}
        live = _LiveVideo.open(config) if start.index == 0 else None
        if live is not None:
            live.writer.comment = settings
        try:
            done = yield from _loop(config, dreamer, store, start, stop, live, starts)
        except BaseException as error:
            if live is not None:
                live.abort()
            if isinstance(error, PluginError):  # its fix may change a plugin's code on resume
                store.mark_plugin_failed()
            raise
        if done > config.frames:
            note(f"'{store.folder}' holds {done} frames, more than the {config.frames} asked for: "
                 f"all {done} are kept and assembled")
        if live is not None and live.finish(done):
            output = config.output_path
        else:
            output = assemble(config) if done else None
        starts.finish(output, done, note)
        _add_soundtrack(config, output, done, note)
    if stop is not None and stop.is_set() and done < config.frames:
        where = f"; a playable {output.name} holds them" if output else ""
        raise Interrupted(f"stopped after {done} of {config.frames} frames{where}", remedy="resume")
    return RenderResult(done, start.index, output, config.frames_dir, time.monotonic() - began)


@dataclass
class _Start:
    index: int
    frame: np.ndarray
    rng: np.random.Generator
    first: np.ndarray | None
    resumed: bool = False  # frame 0 again, over the frames of the same render (kept until replaced)


def _check_outputs(config: Config) -> None:
    out, source = config.output_path, config.input_path
    if source is not None and source.exists() and out.exists() and out.resolve() == source.resolve():
        raise OutputError(f"output '{out}' is the input image: choose another output.path")


def _starting_point(config: Config, store: FrameStore, resume: bool, force: bool, note,
                    starts) -> _Start:
    """Where to begin: the newest intact resume point, or frame 0 from the input (nothing written).

    Frame 0 replaces what the folder and the output hold only under `force`, or where they hold
    nothing: a resume with no intact resume point refuses rather than start over.
    """
    saved = store.latest_state() if resume else None
    if saved is not None:
        _check_same_render(config, store, saved, note)
    _check_memory(config, starts.source_size())
    if saved is None or saved.index == 0:  # the start's resume point is the input itself
        if saved is None and not force:
            _check_nothing_to_lose(config, store, resume)
        frame = starts.begin(0, note)
        _check_octaves(config, frame.shape[0], frame.shape[1])
        return _Start(0, frame, np.random.default_rng(config.seed), None, resumed=saved is not None)
    rng = np.random.default_rng()
    rng.bit_generator.state = saved.rng_state
    if saved.index < config.frames:
        starts.begin(saved.index, note)
    return _Start(saved.index, saved.frame, rng, store.load_first())


def _check_same_render(config: Config, store: FrameStore, saved, note) -> None:
    """Refuse to resume a render of another config (naming what changed); a plugin fixed after
    it failed is noted instead, and its new code recorded."""
    fingerprint, record = config.fingerprint(), _settings_record(config)
    changed = store.changed_keys(record)
    if saved.fingerprint != fingerprint:
        _refuse_changed(store, changed)
    plugins = [key for key in changed if key.startswith("plugin_files.")]
    if plugins and not store.plugin_failed():  # else new code would dream the frames after
        _refuse_changed(store, plugins)
    if plugins:  # a plugin fixed after it failed: frames from the failure on use its new code
        names = ", ".join(key.removeprefix("plugin_files.") for key in plugins)
        note(f"plugin {names} changed since the last run: frames from {saved.index} "
             "on use the new code")
        store.save_record(record, fingerprint)
    store.fingerprint = fingerprint


# Bytes a pixel of the frame takes in the loop: float32 RGB (12 bytes) for the start, the dream,
# its octave image and gradient, the transformed frame, the first frame (colour coherence), the
# resume point's copy, and uint8 copies for the PNG writers and the encoder: about 8 frames.
FRAME_BYTES_PER_PIXEL = 8 * 12
# Decoding: Pillow's image (up to 4 bytes a pixel) and its float32 RGB copy (12).
DECODE_BYTES_PER_PIXEL = 16


def _check_memory(config: Config, source: tuple[int, int]) -> None:
    """Refuse, before the input is decoded, frames whose memory does not fit: the decoded input
    (`source`: its width, height), the frame and its copies in the loop, and the dream's gradient
    (the memory budget, which tiles keep it within)."""
    from animator.engine import backend

    width, height = tuple(config.animation.size or source)
    frames = width * height * FRAME_BYTES_PER_PIXEL
    decode = source[0] * source[1] * DECODE_BYTES_PER_PIXEL
    dream = 0 if backend.has_accelerator() else backend.memory_budget()  # else on the device
    need, available = max(frames, decode) + dream, backend.host_memory()
    if need > available:
        what = f"size {width}x{height}" if config.animation.size else f"the input's {width}x{height}"
        raise TooLarge(f"frames of {what} need about {_gb(need)} of memory (the frame and its copies "
                       f"{_gb(max(frames, decode))}, the dream {_gb(dream)}), more than the "
                       f"{_gb(available)} available: set a smaller `size:`")


def _gb(count: int) -> str:
    return f"{count / 1e9:.1f} GB"


def _check_nothing_to_lose(config: Config, store: FrameStore, resume: bool) -> None:
    """Refuse to start a render over frames or an output that are there (only `force` may)."""
    out = config.output_path
    recorded = store.recorded_fingerprint()
    if resume and recorded is not None and recorded != config.fingerprint():
        _refuse_changed(store, store.changed_keys(_settings_record(config)))
    if not (out.exists() or store.has_frames()):
        return
    if resume:
        what = f"'{store.folder}' holds no intact resume point" if store.has_frames() else \
            f"there is no render to continue in '{store.folder}'"
        kept = f" ({store.frame_count()} frames kept)" if store.has_frames() else ""
        exists = f" and output '{out}' exists" if out.exists() else ""
        raise OutputError(f"cannot resume: {what}{kept}{exists}", remedy="force")
    what = f"output '{out}' exists" if out.exists() else \
        f"an unfinished render ({store.frame_count()} frames) is in '{store.folder}'"
    raise OutputError(what, remedy="resume_or_force")


def _refuse_changed(store: FrameStore, changed: list[str]) -> None:
    named = [_changed_name(key) for key in changed if key != "files"] or \
        ["a file it names, or a setting of an earlier version"]
    raise ConfigError(f"cannot resume: the config changed since '{store.folder}' was rendered "
                      f"({', '.join(named)})", remedy="undo_or_force")


def _changed_name(key: str) -> str:
    """A changed record key as a user reads it: `files.dream.guide` is that file's content."""
    for prefix in ("files.", "plugin_files."):
        if key.startswith(prefix):
            return f"the content of {key.removeprefix(prefix)}"
    return key


def _first_again(config: Config, dreamer, store: FrameStore, starts) -> np.ndarray:
    """Dream frame 0 again for the colour reference, and check it is the frame on disk."""
    dreamed, _ = dreamer.dream_frame(starts.first(lambda text: None), starts.settings(0),
                                     np.random.default_rng(config.seed))
    first = _to_numpy(dreamed)
    if not np.array_equal(images.rgb_uint8(first), store.first_frame_pixels()):
        raise OutputError(f"cannot resume: '{store.folder / FIRST_FILE}' is missing or damaged, "
                          "and dreaming frame 0 again does not give the frame on disk (another "
                          "machine or version?)", remedy="force")
    store.save_first(first)
    return first


def _begin(config: Config, store: FrameStore) -> None:
    """Replace whatever the folder holds with a new render's record."""
    store.clear()
    store.create()
    store.save_record(_settings_record(config), config.fingerprint())
    store.save_start()  # before frame 0: a kill at any moment from now on leaves a resume point


# The keyword of each frame PNG's text chunk that holds the settings that made it.
SETTINGS_KEY = "animator.config"


def settings_path(config: Config) -> Path:
    """Where the effective config is written: beside the output, `zoom.gif` -> `zoom.gif.yaml`."""
    return config.output_path.with_name(config.output_path.name + ".yaml")


def _keep_features(config: Config) -> None:
    """Keep the soundtrack's features beside the frames: a resumed render reads these values."""
    path = config.features_file
    if path is not None and not path.exists():
        config.soundtrack.save(path)


def _add_soundtrack(config: Config, output: Path | None, frames: int, note) -> None:
    """Put the soundtrack's cut, as long as the `frames` rendered, into an MP4 or WebM `output`;
    a format without sound says so."""
    if config.audio_path is None or output is None or not frames:
        return
    if config.output_format not in ("mp4", "webm"):
        note(f"{config.audio_path.name}: its sound is left out: a {config.output_format} output "
             "has none (write an .mp4 to hear it)")
        return
    from animator.media import audio

    try:
        audio.mux(output, config.audio_path, config.animation.audio.start,
                  frames / config.animation.fps, config.output_format)
    except OutputError as error:  # the picture is complete: a render without its sound
        note(str(error))


def _write_settings(config: Config, precision=None) -> str:
    """Write the effective config beside the output (every default filled in, so that the
    output can be made again from it), headed by the precision `auto` chose and why; returns
    the config's text, which an MP4 carries (as `assemble` writes it from the frames alone)."""
    text = config.effective_yaml()
    written = text
    if precision is not None and config.animation.dream.precision == "auto":
        header, _, rest = text.partition("\n")
        written = f"{header}\n# dream.precision auto chose {precision}\n{rest}"
    images.write_atomic(settings_path(config), lambda stream: stream.write(written.encode("utf-8")))
    return text


def _settings_record(config: Config) -> dict:
    from animator.config import NOT_PIXELS

    record = config.animation.model_dump(mode="json", exclude=NOT_PIXELS)
    return {**record, "files": config.file_digests(), "plugin_files": config.plugin_digests()}


def _check_octaves(config: Config, height: int, width: int) -> None:
    """Refuse, before any model is built, a size too small for any frame's octaves."""
    from animator.engine import models
    from animator.engine.dream import size_fix

    min_size = models.spec_for(config.dream_model).min_size
    for t in config.sample_frames():
        settings = config.dream_settings(t)
        fix = size_fix(height, width, settings, min_size)
        if fix:
            raise ConfigError(
                f"dream.octaves: {settings.octaves} octaves of scale {settings.octave_scale:g} "
                f"(frame {t}) make the smallest octave of a {width}x{height} frame smaller than "
                f"{config.animation.dream.model}'s {min_size} px: {fix}")


def _dreamer(config: Config, build: Callable[..., Dreamer] | None = None,
             size: tuple[int, int] | None = None) -> Dreamer:
    """The config's Dreamer; `precision: auto` is chosen for frames of `size` (height, width)."""
    from animator.engine.dream import make_dreamer

    with config.signals():  # the objective's weights may follow the soundtrack
        return make_dreamer(config.animation.dream, config.base_dir, build, size)


def _loop(config, dreamer, store: FrameStore, start: _Start, stop, live: _LiveVideo | None,
          starts) -> Generator[Dreamed, None, int]:
    """Dream frames start.index.. until done or stopped, yielding each one; returns the number
    of frames on disk.

    The frame stays on the backend's device from dream to transforms to the next dream: this
    thread never waits for a copy to the host (but for the first frame, kept for colour
    coherence), so on a GPU the next dream is queued while background threads copy each frame
    out, write its PNG and resume points, and feed the encoder (`_Writes`). A resume point is
    saved every `output.checkpoint_every` and when the loop ends, stopped, finished or failed
    (after the last frame that was transformed), each only once every frame before it is on
    disk; a failed write stops the loop before any later resume point is saved, so the folder
    always resumes cleanly. At `dream.cadence` N the frames between two dreams are made from the
    transforms (`animator.renderer.cadence`) once the later one is dreamed, then written in order; each
    one's resume point holds the earlier dream carried forward to it, so any frame resumes.
    """
    from keras import ops

    from animator.renderer.cadence import Dreams
    from transforms import match_color

    animation, frame, rng, first = config.animation, start.frame, start.rng, start.first
    if first is not None:  # uploaded once: colour coherence reads it on the device every frame
        first = ops.convert_to_tensor(first, "float32")
    size = (int(frame.shape[1]), int(frame.shape[0]))
    writes = _Writes(store)
    checkpoints = _Checkpoints(animation.output.checkpoint_every)
    reached = 0  # frames 0..reached-1 are written (or being written) by now
    dreams, index = Dreams(config), start.index
    try:
        try:
            while index < animation.frames:
                if stop is not None and stop.is_set():
                    break
                span = dreams.span(index)  # frames index..span.next-1 come from the transforms
                carried, points = [], []
                for j in range(index, span.next):  # F_j, and the resume point after frame j
                    carried.append(frame)
                    frame = _carry(config, starts, frame, _context(config, j, size, rng, first))
                    points.append((frame, rng.bit_generator.state))
                dreamed, _ = dreamer.dream_frame(frame, starts.settings(span.next), rng)
                dreamed = starts.keep(span.next, frame, dreamed)
                if first is not None and animation.color.coherence == "match_first":
                    dreamed = match_color(dreamed, first, animation.color.strength)
                if first is None:  # colour coherence keeps the first frame's float pixels
                    store.save_first(_to_numpy(dreamed))
                    first = dreamed
                frame = _carry(config, starts, dreamed, _context(config, span.next, size, rng, first))
                points.append((frame, rng.bit_generator.state))
                shown = _in_between(config, starts, carried, dreamed, span, size, first)
                for j, picture, point in zip(range(index, span.next + 1), [*shown, dreamed], points):
                    fetched = writes.fetch(picture, j)
                    writes.frame(j, fetched)
                    reached = j + 1
                    if live is not None:
                        live.send(fetched)
                    checkpoints.reach(j + 1, *point)
                    if checkpoints.due():
                        writes.state(*checkpoints.take())
                    yield Dreamed(j, animation.frames, start.index, fetched)
                index = span.next + 1
            if live is not None:  # the MP4 is finished while the last writes are saved
                live.end()
        finally:  # a resume (or a longer render) goes on after the last transformed frame
            if checkpoints.unsaved():
                writes.state(*checkpoints.take())
        writes.drain()
    finally:
        writes.close()
    return _frames_kept(store, reached)


def _frames_kept(store: FrameStore, written: int) -> int:
    """The frames on disk, once frames 0..`written`-1 are: fewer (the folder, or frames in it,
    removed meanwhile) is an error, not a shorter video."""
    count = store.frame_count()
    if count < written:
        raise store.removed()
    return count


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
        """A live encoder for an MP4 played forward, else None (assembled at the end)."""
        options = config.animation.output
        if config.output_format != "mp4" or options.reverse or options.pingpong:
            return None
        from animator.media.video import Mp4Writer

        try:
            writer = Mp4Writer(config.output_path, config.animation.fps, quality=options.quality,
                               preset=options.preset, frames_dir=config.frames_dir)
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


def _context(config: Config, index: int, size: tuple[int, int], rng, first):
    from transforms import Context

    return Context(index, config.animation.frames, size, rng, first)


def _carry(config: Config, starts, frame, ctx):
    """Frame `ctx.index` carried to the next frame's start: transformed, then (a video) moved
    along the flow into the next input frame."""
    return starts.next_start(ctx.index + 1, _transform(config, frame, ctx))


def _in_between(config: Config, starts, carried: list, dreamed, span, size, first) -> list:
    """The frames before `span.next` made from the transforms (`animator.renderer.cadence.in_between`):
    cross-faded with the next dream carried back where the chain and the starts can invert."""
    from animator.renderer.cadence import in_between

    if not carried:
        return []
    chain = config.chain if config.chain.invertible and starts.carries_back else None
    contexts = [_context(config, index, size, None, first)
                for index in range(span.next - len(carried), span.next)]
    return in_between(chain, carried, dreamed, span, contexts)


def _transform(config: Config, dreamed, ctx):
    """The chain applied to a dreamed frame; a failing plugin says how to go on once fixed, a
    value out of range, or a built-in failing on its values, how to keep what is rendered (a
    changed config cannot resume)."""
    try:
        return config.chain.apply(dreamed, ctx)
    except (PluginError, ConfigError) as error:  # ConfigError: a schedule not finite here
        plugin_code = not isinstance(error, (TransformValueError, ConfigError)) and \
            error.facts.get("plugin", True)
        if plugin_code:  # the plugin's file may change: the render resumes once it is fixed
            raise PluginError(f"{error}: frames 0..{ctx.index} are kept; fix the transform",
                              remedy="then_resume") from error
        raise TransformValueError(f"{error.message}: frames 0..{ctx.index} are kept",
                                  remedy="shorten_or_force", facts={"frames": ctx.index}) from error


def assemble(config: Config) -> Path | None:
    """Write the GIF or MP4 from the frames folder (None for format `frames`)."""
    from animator.media import video

    if config.output_format == "frames":
        return None
    arguments = assemble_arguments(config)
    try:
        video.assemble(**arguments)
    except (OutputError, OSError, RuntimeError) as error:  # ffmpeg missing or failing, disk full
        what = error.message if isinstance(error, OutputError) else str(error)
        raise OutputError(f"{what}: every frame is kept in '{config.frames_dir}'", remedy="assemble",
                          facts=arguments) from error
    return config.output_path


def assemble_arguments(config: Config) -> dict:
    """`animator.media.video.assemble`'s arguments that make this config's output from its frames."""
    options = config.animation.output
    return {"frames": str(config.frames_dir), "out": str(config.output_path), "fps": config.animation.fps,
            **{key: getattr(options, key) for key in VIDEO_OPTIONS}, "format": config.output_format,
            "comment": config.effective_yaml()}


# The output options that decide how the frames become a video.
VIDEO_OPTIONS = ("reverse", "pingpong", "loop", "quality", "preset", "palette", "dither")


def _planned_size(config: Config) -> tuple[int, int] | None:
    """The frames' (width, height) if known without reading the input image, else None."""
    animation = config.animation
    if animation.size is not None and animation.fit != "fit":
        return tuple(animation.size)
    if config.input_path is None and animation.size is None:
        return tuple(animation.input.noise.size)
    return None


def _soundtrack_line(config: Config) -> list[str]:
    track = config.soundtrack
    if track is None:
        return []
    return [f"audio: {config.audio_path} ({track.seconds:.1f} s from {config.animation.audio.start:g} s, "
            f"{track.tempo:.1f} BPM, {len(track.beats)} beats)"]


def describe(config: Config) -> str:
    """The resolved settings and the expected cost, for `--dry-run`."""
    starts = sources.open_source(config)
    config = starts.config  # a video's frame count and rate are its clip's
    animation = config.animation
    size = _planned_size(config)
    if size is not None:  # a dry run says now what the render would refuse
        _check_octaves(config, size[1], size[0])
    sampled = config.sample_frames()
    exact = len(sampled) == animation.frames  # else an estimate from evenly spaced frames
    picks = sampled if exact else [round(t) for t in np.linspace(0, animation.frames - 1, 1000)]
    with starts:
        steps = [starts.settings(t) for t in picks]
    if exact:  # the frames between dreams (dream.cadence) cost no step
        from animator.renderer.cadence import dreamed_frames

        dreamed = set(dreamed_frames(config))
        total_steps = sum(s.octaves * s.steps for t, s in zip(picks, steps) if t in dreamed)
    else:
        total_steps = round(sum(s.octaves * s.steps / s.cadence for s in steps)
                            * animation.frames / len(picks))
    lines = [
        f"config: {config.source}",
        f"input: {config.input_path or 'noise ' + json.dumps(animation.input.noise.model_dump())}",
        f"output: {config.output_path} ({config.output_format}), frames in {config.frames_dir}",
        f"output options: {json.dumps(animation.output.model_dump(mode='json', exclude={'path'}))}",
        f"frames: {animation.frames} at {animation.fps:g} fps "
        f"({animation.frames / animation.fps:.1f} s of video)",
        f"dream: {json.dumps(animation.dream.model_dump(exclude_none=True))}",
        f"transforms: {', '.join(config.chain.names) or 'none'}",
        *_soundtrack_line(config),
        f"cost: {'' if exact else 'about '}{total_steps} gradient steps "
        f"({total_steps // max(1, animation.frames)} per frame)",
    ]
    return "\n".join(lines)

