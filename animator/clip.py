"""Video input: a clip probed and decoded as a stream, its frames' dream starts, its sound kept.

`probe` reads what ffmpeg says of a file (streams, duration, frame rate) and refuses what cannot be
dreamed: a missing, unreadable or corrupt file, one without a video stream, a clip that holds no
frames between `start` and `end`. `decode` streams RGB frames from ffmpeg one at a time (never
the whole clip in memory). `VideoFrames` gives the frame loop each frame's dream start: the new
input frame blended with the previous dream carried along the optical flow (`animator.flow`).
`add_audio` copies the clip's sound, trimmed to the frames dreamed, into the finished MP4.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator import flow, io
from animator.errors import InputError, OutputError

AUDIO_BITRATE = "192k"
FFMPEG_TIMEOUT_S = 600  # counting the frames of a long clip decodes it once

_STREAM = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio): (\w+)(.*)$", re.MULTILINE)
_SIZE = re.compile(r"[ ,](\d+)x(\d+)[ ,\]]")
_RATE = re.compile(r"([\d.]+)(k?) (fps|tbr)")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_FRAME_COUNT = re.compile(r"frame=\s*(\d+)")


@dataclass(frozen=True)
class Clip:
    """A video file as ffmpeg sees it: size (width, height) in pixels, frames per second
    (0: unknown), duration in seconds (0: unknown), and the codec of its sound (None: silent)."""

    path: Path
    size: tuple[int, int]
    fps: float
    duration: float
    audio: str | None


def probe(path: str | Path) -> Clip:
    """What the video file at `path` holds; `InputError` if it cannot be dreamed."""
    path = Path(path)
    io.check_is_file(path, "video")  # ffmpeg would wait on a pipe forever
    text = _ffmpeg(["-i", str(path)], path).stderr
    streams = _STREAM.findall(text)
    if not streams and re.search(r"^Input #0", text, re.MULTILINE):
        raise InputError(f"input video '{path}' holds no frames (it is empty)", remedy="clip_with_frames")
    if not streams:
        raise InputError(f"input video '{path}' is not a readable video ({_last_line(text)})",
                         remedy="re_encode")
    videos = [s for s in streams if s[0] == "Video" and "attached pic" not in s[2]]
    if not videos:
        raise InputError(f"input video '{path}' has no video stream (only "
                         f"{', '.join(kind.lower() for kind, *_ in streams)})", remedy="video_input")
    _, _, details = videos[0]
    size, rate = _SIZE.search(details), _RATE.search(details)
    audio = next((codec for kind, codec, _ in streams if kind == "Audio"), None)
    duration = _DURATION.search(text)
    return Clip(path, (int(size[1]), int(size[2])) if size else (0, 0),
                float(rate[1]) * (1000 if rate[2] else 1) if rate else 0.0,
                _seconds(*duration.groups()) if duration else 0.0, audio)


def trim_params(start: float, end: float | None) -> list[str]:
    """ffmpeg input options that keep the frames shown from `start` up to `end` (seconds)."""
    params = ["-ss", f"{start:.6f}"] if start else []
    return params + (["-t", f"{end - start:.6f}"] if end is not None else [])


def count_frames(clip: Clip, start: float = 0.0, end: float | None = None) -> int:
    """How many frames `decode` gives between `start` and `end` (seconds), counted by decoding
    them once; `InputError` when there are none."""
    if clip.duration and start >= clip.duration:
        raise InputError(f"input video '{clip.path}': start {start:g} s is past its end "
                         f"({clip.duration:g} s)", remedy="earlier_start")
    done = _ffmpeg([*trim_params(start, end), "-i", str(clip.path), "-map", "0:v:0",
                    "-f", "null", "-"], clip.path)
    counts = _FRAME_COUNT.findall(done.stderr)
    if done.returncode != 0 or not counts:
        raise InputError(f"input video '{clip.path}' cannot be decoded ({_last_line(done.stderr)})",
                         remedy="re_encode")
    if int(counts[-1]) == 0:
        span = f"between {start:g} s and {end:g} s" if end is not None else f"after {start:g} s"
        raise InputError(f"input video '{clip.path}' holds no frames {span}"
                         f"{' (it is empty)' if not start and end is None else ''}", remedy="other_times")
    return int(counts[-1])


def decode(clip: Clip, start: float = 0.0, end: float | None = None,
           skip: int = 0) -> Iterator[np.ndarray]:
    """The clip's frames from `start` to `end` (seconds) as H×W×3 uint8 RGB, one at a time;
    the first `skip` are decoded and dropped (resuming). Raises `InputError` if ffmpeg fails."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(clip.path), input_params=trim_params(start, end),
                                        output_params=["-map", "0:v:0"])
    try:
        width, height = _next(reader, clip, 0)["size"]
        index = 0
        while (data := _next(reader, clip, index)) is not None:
            if index >= skip:
                yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
            index += 1
    finally:
        reader.close()


def _next(reader, clip: Clip, index: int):
    try:
        return next(reader, None)
    except (OSError, RuntimeError) as error:
        raise InputError(f"input video '{clip.path}' cannot be decoded past frame {index} "
                         f"({_last_line(str(error))})", remedy="re_encode") from error


def add_audio(video: Path, clip: Clip, start: float, seconds: float) -> None:
    """Put `seconds` of the clip's sound from `start` into the MP4 `video` (replaced atomically).

    The sound is re-encoded as AAC: a cut at any time needs it, and MP4 takes AAC from any source.
    Raises `OutputError` (the video is left as it was) if ffmpeg fails.
    """
    with io.atomic_output(video, ".mp4") as temp:
        done = _ffmpeg(["-i", str(video), *trim_params(start, start + seconds), "-i", str(clip.path),
                        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac",
                        "-b:a", AUDIO_BITRATE, "-y", str(temp)], clip.path)
        if done.returncode != 0:
            raise OutputError(f"cannot copy the sound of '{clip.path}' into '{video}' "
                              f"({_last_line(done.stderr)}): the video is kept without it")


def _ffmpeg(args: list[str], path: Path) -> subprocess.CompletedProcess:
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, errors="replace",
                              timeout=FFMPEG_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise InputError(f"input video '{path}': ffmpeg took over {FFMPEG_TIMEOUT_S} s to read it",
                         remedy="trim") from error


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if "output file" not in line]
    return (useful or lines or ["no output from ffmpeg"])[-1]


def _seconds(hours: str, minutes: str, seconds: str) -> float:
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# --- the frame loop's starts ------------------------------------------------------------------


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

    def __init__(self, config, clip: Clip, count: int) -> None:
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
        """Copy the clip's sound, for the `frames` dreamed, into the finished MP4 `output`."""
        if self.clip.audio is None or output is None or not frames:
            return
        if self.config.output_format != "mp4":
            note(f"{self.clip.path.name}: its sound is left out: a {self.config.output_format} "
                 "output has none (write an .mp4 to keep it)")
            return
        try:
            add_audio(output, self.clip, self.config.video_input.start, frames / self.config.fps)
        except OutputError as error:  # the picture is complete: a render without its sound
            note(str(error))

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
            frame = io.fit_size(frame, tuple(animation.size), mode=animation.fit)
        return frame


def open_frames(config, note=lambda text: None):
    """The config resolved for its clip, and the clip's frame starts: the frame count is the
    clip's (at most `frames` if the config sets it), the frame rate the clip's unless set."""
    from animator.config import Config

    spec, animation = config.video_input, config.animation
    clip = probe(config.input_path)
    _check_pixels(clip, animation.max_pixels)
    count = count_frames(clip, spec.start, spec.end)
    given = animation.model_fields_set
    update = {"frames": min(count, animation.frames) if "frames" in given else count}
    if "fps" not in given and clip.fps > 0:
        update["fps"] = clip.fps
    resolved = Config(animation.model_copy(update=update), config.base_dir, config.source,
                      config.chain)
    return resolved, VideoFrames(resolved, clip, update["frames"])


def _check_pixels(clip: Clip, max_pixels: int) -> None:
    width, height = clip.size
    if width * height > max_pixels:
        raise InputError(f"input video '{clip.path}' is {width}×{height} ({width * height:,} pixels), "
                         f"over the limit of {max_pixels:,} pixels a frame", remedy="max_pixels")
