"""Video input: a clip probed and decoded as a stream, its frames' dream starts, its sound kept.

`probe` reads what ffmpeg says of a file (streams, duration, frame rate) and refuses what cannot be
dreamed: a missing, unreadable or corrupt file, one without a video stream, a clip that holds no
frames between `start` and `end`. `decode` streams RGB frames from ffmpeg one at a time (never
the whole clip in memory); `animator.media.audio.mux` puts its sound, trimmed to the frames
dreamed, into the finished video. The frame loop's source of a video's dream starts is
`animator.renderer.sources.VideoFrames`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.media import images
from animator.settings.errors import InputError

FFMPEG_TIMEOUT_S = 600  # counting the frames of a long clip decodes it once

_STREAM = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio): (\w+)(.*)$", re.MULTILINE)
_SIZE = re.compile(r"[ ,](\d+)x(\d+)[ ,\]]")
_RATE = re.compile(r"([\d.]+)(k?) (fps|tbr)")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_FRAME_COUNT = re.compile(r"frame=\s*(\d+)")
# Each frame the clip holds, once: without it ffmpeg's raw output repeats (or drops) frames to
# make a constant rate, which in a variable-rate clip is its highest, counted or decoded alike.
REAL_FRAMES = ("-fps_mode", "passthrough")


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
    images.check_is_file(path, "video")  # ffmpeg would wait on a pipe forever
    text = _ffmpeg(["-i", str(path)], path).stderr
    streams = _STREAM.findall(text)
    if not streams and re.search(r"^Input #0", text, re.MULTILINE):
        raise InputError(f"input video '{path}' holds no frames (it is empty)", remedy="clip_with_frames")
    if not streams:
        raise InputError(f"input video '{path}' is not a readable video ({last_line(text)})",
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
                seconds_of(*duration.groups()) if duration else 0.0, audio)


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
    done = _ffmpeg([*trim_params(start, end), "-i", str(clip.path), "-map", "0:v:0", *REAL_FRAMES,
                    "-f", "null", "-"], clip.path)
    counts = _FRAME_COUNT.findall(done.stderr)
    if done.returncode != 0 or not counts:
        raise InputError(f"input video '{clip.path}' cannot be decoded ({last_line(done.stderr)})",
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
                                        output_params=["-map", "0:v:0", *REAL_FRAMES])
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
                         f"({last_line(str(error))})", remedy="re_encode") from error


def run_ffmpeg(args: list[str], timed_out: Callable[[], Exception]) -> subprocess.CompletedProcess:
    """ffmpeg (imageio-ffmpeg's) run on `args`, its output captured; past FFMPEG_TIMEOUT_S the
    error `timed_out()` makes is raised. The one way the media layer runs ffmpeg to completion."""
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, errors="replace",
                              timeout=FFMPEG_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise timed_out() from error


def _ffmpeg(args: list[str], path: Path) -> subprocess.CompletedProcess:
    return run_ffmpeg(args, lambda: InputError(
        f"input video '{path}': ffmpeg took over {FFMPEG_TIMEOUT_S} s to read it", remedy="trim"))


def last_line(text: str) -> str:
    """ffmpeg's last useful line of `text` (its stderr): what went wrong, in its words."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if "output file" not in line.lower()]
    return (useful or lines or ["no output from ffmpeg"])[-1]


def seconds_of(hours: str, minutes: str, seconds: str) -> float:
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def clip_rate(clip: Clip, count: int, start: float = 0.0, end: float | None = None) -> float:
    """The frame rate that plays `count` frames in the clip's time from `start` to `end`: the
    probed rate (the clip's mean rate, as ffmpeg reads it), unless it is unknown or far above the
    frames' mean rate (a variable-rate clip probed at its fastest, its `tbr`): then that mean."""
    span = min(end, clip.duration) if end is not None and clip.duration else (end or clip.duration)
    span -= start
    if span <= 0 or count < 2:
        return clip.fps
    mean = count / span
    # not closer: the container's duration may be the sound's, longer than the pictures
    return mean if clip.fps <= 0 or clip.fps > 1.5 * mean else clip.fps


def check_pixels(clip: Clip, max_pixels: int) -> None:
    width, height = clip.size
    if width * height > max_pixels:
        raise InputError(f"input video '{clip.path}' is {width}×{height} ({width * height:,} pixels), "
                         f"over the limit of {max_pixels:,} pixels a frame", remedy="max_pixels")
