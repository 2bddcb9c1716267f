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
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from animator.config import Config
from animator.media import images
from animator.renderer import sources
from animator.renderer.output import add_soundtrack, assemble
from animator.renderer.start import (
    SETTINGS_KEY,
    _begin,
    _check_outputs,
    _first_again,
    _keep_features,
    _Start,
    _starting_point,
    _write_settings,
    settings_path,
)
from animator.renderer.state import FrameStore
from animator.renderer.writes import _Checkpoints, _LiveVideo, _to_numpy, _Writes
from animator.settings.errors import (
    ConfigError,
    Interrupted,
    PluginError,
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
        add_soundtrack(config, output, done, note)
    if stop is not None and stop.is_set() and done < config.frames:
        where = f"; a playable {output.name} holds them" if output else ""
        raise Interrupted(f"stopped after {done} of {config.frames} frames{where}", remedy="resume")
    return RenderResult(done, start.index, output, config.frames_dir, time.monotonic() - began)


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
                shown = _in_between(config, starts, carried, dreamed, span, size, first)
                # each frame is written before the transforms that follow it run: one that fails
                # keeps every frame dreamed so far
                for j, picture in zip(range(index, span.next + 1), [*shown, dreamed]):
                    fetched = writes.fetch(picture, j)
                    writes.frame(j, fetched)
                    reached = j + 1
                    if live is not None:
                        live.send(fetched)
                    if j == span.next:  # the resume point after a dream: its frame transformed
                        frame = _carry(config, starts, dreamed, _context(config, j, size, rng, first))
                        points.append((frame, rng.bit_generator.state))
                    checkpoints.reach(j + 1, *points[j - index])
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
