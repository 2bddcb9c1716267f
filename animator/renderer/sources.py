"""Frame sources: where each frame's dream starts, for an animation from one image (`Stills`) and
for a video (`VideoFrames`); the frame loop (`animator.renderer.loop`) reads either through the
`FrameSource` interface, and `open_source` picks one for a config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from animator.config import Config
from animator.media import images
from animator.media.clip import Clip, check_pixels, clip_rate, count_frames, decode, probe
from animator.renderer import flow
from animator.settings import params
from animator.settings.dream import DreamSettings
from animator.settings.errors import InputError, OutputError

Note = Callable[[str], None]


class FrameSource(Protocol):
    """Each frame's dream start, for the frame loop. Used as a context manager around a render
    (a video source decodes on a thread it stops on exit).

    `config` is the config the render runs: the one the source was opened with, resolved for
    its input. A video's frame count and frame rate are its clip's unless the config sets them,
    so the loop, `--dry-run` and the load-time range checks read `source.config`, never the
    config they were given: that is how a schedule going out of range on frame 76 of a 90-frame
    clip is refused before the render starts.
    """

    config: Config
    # Whether a frame between two dreams (`dream.cadence`) may take the next dream carried back
    # through the inverse transforms: only where the transforms alone move the dream.
    carries_back: bool

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc) -> None: ...

    def source_size(self) -> tuple[int, int]:
        """The (width, height) of the input before it is fitted to the config's size, read
        without decoding it (what the memory check at load sizes the frame from)."""

    def first(self, note: Note) -> np.ndarray:
        """Frame 0's start (float32 H×W×3, 0..255, the config's size)."""

    def begin(self, index: int, note: Note) -> np.ndarray | None:
        """Prepare to dream from frame `index` (0, or a resume point); frame `index`'s start
        when the source makes one itself (frame 0; any frame of a video), else None."""

    def settings(self, t: int) -> DreamSettings:
        """Frame `t`'s dream settings."""

    def next_start(self, t: int, carried):
        """Frame `t`'s start, given `carried`: frame t-1 dreamed and transformed (on the device)."""

    def keep(self, t: int, start, dreamed):
        """What is kept of frame `t`: its dream, mixed with its start where the source says."""

    def finish(self, output: Path | None, frames: int, note: Note) -> None:
        """Add to the finished output what the source brings (a video's sound)."""


def open_source(config: Config) -> FrameSource:
    """The frame source of `config`'s input: a video's frames, or one image (or noise)."""
    if config.video_input is None:
        return Stills(config)
    return open_video(config)


def first_frame(config: Config, note: Note) -> np.ndarray:
    """Frame 0's start for an animation from one image: the input image, or noise, at the
    config's size."""
    animation = config.animation
    if config.input_path is None:
        noise = animation.input.noise
        pixels = images.noise_image(tuple(noise.size), noise.seed)
    else:
        loaded = images.read_image(config.input_path, max_pixels=animation.max_pixels)
        for text in loaded.notes:
            note(f"{config.input_path.name}: {text}")
        pixels = loaded.pixels
    if animation.size is not None:
        pixels = images.fit_size(pixels, tuple(animation.size), mode=animation.fit)
    return pixels


class Stills:
    """The dream starts of an animation from one image: the input (or noise) for frame 0, then
    each frame's start is the previous dream after the transforms."""

    carries_back = True  # the transforms alone move the dream: cadence carries it back too

    def __init__(self, config: Config) -> None:
        self.config = config

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        """Nothing to release."""

    def source_size(self) -> tuple[int, int]:
        """The (width, height) of the input image (from its header) or of the noise."""
        config = self.config
        if config.input_path is None:
            return tuple(config.animation.input.noise.size)
        return images.image_size(config.input_path, config.animation.max_pixels)

    def first(self, note) -> np.ndarray:
        """Frame 0's start: the input image (or noise) at the config's size."""
        return first_frame(self.config, note)

    def begin(self, index: int, note) -> np.ndarray | None:
        """Prepare to dream from frame `index`; returns frame 0's start when `index` is 0."""
        return self.first(note) if index == 0 else None

    def settings(self, t: int):
        return self.config.dream_settings(t)

    def next_start(self, t: int, carried):
        return carried

    def keep(self, t: int, start, dreamed):
        return dreamed

    def finish(self, output: Path | None, frames: int, note) -> None:
        """Nothing to add to the finished output."""


class VideoFrames:
    """Each frame's dream start for a video render, decoded and prepared one frame ahead.

    Frame 0 is dreamed from the first input frame. Frame t starts from input frame t with the
    previous dream (after the transforms) warped along the flow from input frame t-1 to t mixed
    in by `weight` = `blend` where the flow is reliable, 0 elsewhere (the new frame shows
    through); after the dream, the same share of that carried start is kept (`keep`). So `blend`
    0 dreams each frame from scratch and 1 carries the dream unchanged wherever it can, and in a
    still scene each frame's dream is a running average of the dreams before it: it stays put
    instead of flickering. With `every` N > 1, the frames between full dreams carry all of the
    reliable dream and take only `carry_steps` steps per octave. The next input frame and its
    flow are prepared on a background thread while the current frame dreams.
    """

    carries_back = False  # the optical flow has no inverse: cadence carries the dream forward only

    def __init__(self, config: Config, clip: Clip, count: int) -> None:
        self.config, self.clip, self.count = config, clip, count
        self.options = config.animation.video
        self.method = self.options.flow if self._carries() else "none"
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="video-decode")
        self.decoder: Iterator[np.ndarray] | None = None
        self.previous: np.ndarray | None = None
        self.upcoming: Future | None = None
        self.weight = None  # the carried share of the frame being dreamed (None: nothing carried)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def source_size(self) -> tuple[int, int]:
        """The clip's frames' (width, height)."""
        return self.clip.size

    def first(self, note) -> np.ndarray:
        """Frame 0's start: the clip's first frame (float32, the config's size)."""
        spec = self.config.video_input
        frames = decode(self.clip, spec.start, spec.end)
        try:
            return self._fit(next(frames, None), 0)
        finally:
            frames.close()

    def begin(self, index: int, note) -> np.ndarray:
        """Start decoding at input frame `index`; returns that frame (float32, the config's size).

        Resuming at `index` > 0 decodes input frame index-1 too, to know the carried share.
        """
        spec = self.config.video_input
        self.decoder = decode(self.clip, spec.start, spec.end, skip=max(0, index - 1))
        self.previous = self._read(max(0, index - 1))
        if index > 0:
            self.previous, step = self._prepare(index)
            self.weight = self._weight(index, step)
        self._prepare_next(index + 1)
        return self.previous

    def is_full(self, t: int) -> bool:
        """Whether frame `t` gets a full dream (else it is carried, with `carry_steps`)."""
        return t % self.options.every == 0

    def settings(self, t: int):
        """The dream settings of frame `t`: the config's, with fewer steps on carried frames."""
        settings = self.config.dream_settings(t)
        if self.is_full(t):
            return settings
        return dataclasses.replace(settings, steps=min(settings.steps, self.options.carry_steps))

    def next_start(self, t: int, carried):
        """Frame `t`'s start, from `carried` (frame t-1 dreamed and transformed, on the device)."""
        if t >= self.count:
            return carried
        following, step = self.upcoming.result()
        self.previous = following
        self._prepare_next(t + 1)
        self.weight = self._weight(t, step)
        if self.weight is None:
            return following
        return flow.mix(following, flow.move(carried, step), self.weight)

    def keep(self, t: int, start, dreamed):
        """Frame `t`'s dream with the carried share of its `start` kept."""
        return dreamed if self.weight is None else flow.mix(dreamed, start, self.weight)

    def finish(self, output: Path | None, frames: int, note) -> None:
        """Copy the clip's sound, for the `frames` dreamed, into the finished MP4 or WebM `output`."""
        if self.clip.audio is not None:
            add_sound(self.config, output, self.clip.path, self.config.video_input.start, frames, note)

    def close(self) -> None:
        """Stop decoding (ffmpeg ends) and the preparing thread."""
        if self.upcoming is not None:
            self.upcoming.cancel()
        self.pool.shutdown(wait=True)
        if self.decoder is not None:
            self.decoder.close()

    def _carries(self) -> bool:
        return self.options.blend > 0 or self.options.every > 1

    def _weight(self, t: int, step: flow.Carry):
        from keras import ops

        amount = self.options.blend if self.is_full(t) else 1.0
        return ops.convert_to_tensor(step.reliable * np.float32(amount)) if amount else None

    def _prepare_next(self, t: int) -> None:
        self.upcoming = self.pool.submit(self._prepare, t) if t < self.count else None

    def _prepare(self, t: int) -> tuple[np.ndarray, flow.Carry]:
        following = self._read(t)
        return following, flow.carry(self.previous, following, self.method)

    def _read(self, t: int) -> np.ndarray:
        return self._fit(next(self.decoder, None), t)

    def _fit(self, pixels: np.ndarray | None, t: int) -> np.ndarray:
        if pixels is None:
            raise InputError(f"input video '{self.clip.path}' ended at frame {t} of {self.count}: "
                             "it changed while it was being dreamed", remedy="force")
        animation = self.config.animation
        frame = pixels.astype(np.float32)
        if animation.size is not None:
            frame = images.fit_size(frame, tuple(animation.size), mode=animation.fit)
        return frame


def open_video(config: Config) -> VideoFrames:
    """A video's frame starts, whose `config` is the given one resolved for its clip: the frame
    count is the clip's (at most `frames` if the config sets it), the frame rate the clip's
    unless set."""
    spec, animation = config.video_input, config.animation
    clip = probe(config.input_path)
    check_pixels(clip, animation.max_pixels)
    count = count_frames(clip, spec.start, spec.end)
    given = animation.model_fields_set
    update = {"frames": min(count, animation.frames) if "frames" in given else count}
    if "fps" not in given and (rate := clip_rate(clip, count, spec.start, spec.end)) > 0:
        update["fps"] = rate
    resolved = Config(animation.model_copy(update=update), config.base_dir, config.source,
                      config.chain, soundtrack=config.soundtrack, soundtrack_key=config.soundtrack_key)
    return VideoFrames(resolved, clip, update["frames"])


def add_sound(config: Config, output: Path | None, track: Path, start: float, frames: int, note,
              format: str | None = None) -> None:
    """Put `track`'s sound from `start`, as long as the `frames` rendered, into `output`, an MP4
    or WebM (`format`, default the config's), padded to the length the output plays; a format
    without sound says so (`note`), as does a mux that fails (the picture is kept). The one way
    a render's output gets its sound: a soundtrack's, or a video input's."""
    if output is None or not frames:
        return
    format = format or config.output_format
    if format not in params.SOUND_FORMATS:
        suffixes = " or ".join(params.suffixes(sound=True))
        note(f"{track.name}: its sound is left out: a {format} output has none (write {suffixes} to "
             "hear it)")
        return
    from animator.media import audio

    try:
        audio.mux(output, track, start, frames / config.fps, format, config.played_seconds(frames))
    except OutputError as error:  # the picture is complete: a render without its sound
        note(str(error))
