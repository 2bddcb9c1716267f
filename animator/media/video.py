"""Video output: stream frames into an MP4 (ffmpeg) or a GIF (Pillow), and assemble a folder.

Every writer keeps memory constant in the number of frames: MP4 frames go straight to
ffmpeg's stdin; GIF frames are encoded one at a time from files on disk (Pillow's own
`save_all` keeps every frame until the end, so it is not used). Outputs appear atomically:
a hidden temporary file beside the output is renamed over it only once it is complete.
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
import struct
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import GifImagePlugin, Image

from animator.media.images import (
    atomic_output,
    commit,
    decode_failure,
    discard,
    encode_png,
    list_frames,
    output_error,
    rgb_uint8,
    temp_beside,
)
from animator.settings.errors import ConfigError, InputError, OutputError
from animator.settings.params import ANIMATION, FORMATS, OUTPUT

PALETTES = OUTPUT["palette"].choices
QUALITY, LOOP, PALETTE = (OUTPUT[key].default for key in ("quality", "loop", "palette"))
PALETTE_SAMPLE_FRAMES = 8  # frames sampled, evenly spaced, to build a shared GIF palette
PALETTE_SAMPLE_SIDE = 256  # pixels: longest side of each sampled frame in the palette mosaic
GIF_MIN_DELAY_CS = 2  # browsers play delays under 2 centiseconds at 10 cs: never write less
# How a failed write ends, in no front end's words: a caller that knows the fix adds it.
ASSEMBLE_RETRY = "try again"
PRESETS, DEFAULT_PRESET = OUTPUT["preset"].choices, OUTPUT["preset"].default  # libx264's
FPS = ANIMATION["fps"].range


def frame_order(n: int, reverse: bool = False, pingpong: bool = False) -> list[int]:
    """Indices in which to play `n` frames.

    `reverse` plays last to first. `pingpong` plays forward then back without repeating
    the turning frames, so it loops seamlessly: n frames give 2n - 2 (one frame gives 1).
    """
    order = list(range(n))
    if reverse:
        order.reverse()
    if pingpong:
        order += order[-2:0:-1]
    return order


def video_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The container to write: `format` if given, else from the suffix (.gif, .mp4)."""
    if format is not None:
        if format not in FORMATS.values():
            raise ConfigError(f"video format must be one of {sorted(FORMATS.values())}, "
                              f"got {format!r}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OutputError(f"cannot write '{path}': unknown video suffix '{suffix}': "
                          f"use one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def gif_frame_duration(fps: float) -> int:
    """Milliseconds per GIF frame at `fps`: GIF stores whole centiseconds, at least 2.

    10 fps gives 100 ms; 30 fps gives 30 ms (33.3 rounded); over 50 fps plays at 50.
    """
    _check_fps(fps)
    return 10 * max(GIF_MIN_DELAY_CS, round(100 / fps))


def crf_for_quality(quality: float) -> int:
    """libx264's constant rate factor for `quality` in 0..10 (higher is better, bigger).

    Linear from crf 38 (0, rough) through 26 (5) and 18 (8, near transparent) to 13 (10):
    the top stays lossy, unlike imageio's mapping where 10 means lossless and huge files.
    """
    return round(38 - 2.5 * _check_quality(quality))


def _check_quality(quality: float) -> float:
    bounds = OUTPUT["quality"].range
    if bounds.violation(quality):
        raise ConfigError(f"video quality must be between {bounds.ge:g} and {bounds.le:g}, got {quality!r}")
    return quality


def vp9_crf_for_quality(quality: float) -> int:
    """libvpx-vp9's constant quality level (0..63) for `quality` in 0..10, as `crf_for_quality`
    does for libx264: linear from 50 (0) through 22 (8, the default) to 15 (10)."""
    return round(50 - 3.5 * _check_quality(quality))


# libx264's presets as VP9's speeds: (deadline, cpu-used); the three fastest in realtime mode.
VP9_SPEEDS = {"ultrafast": ("realtime", 8), "superfast": ("realtime", 7), "veryfast": ("realtime", 6),
              "faster": ("good", 5), "fast": ("good", 4), "medium": ("good", 3), "slow": ("good", 2),
              "slower": ("good", 1), "veryslow": ("good", 0)}


def check_preset(preset: str) -> str:
    """`preset` if it is one of libx264's `PRESETS`, else a ConfigError listing them."""
    if preset not in PRESETS:
        raise ConfigError(f"MP4 preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    return preset


def open_writer(
    path: str | os.PathLike,
    fps: float,
    *,
    format: str | None = None,
    quality: float = QUALITY,
    preset: str = DEFAULT_PRESET,
    loop: int | None = LOOP,
    palette: str = PALETTE,
    dither: bool = False,
    frames_dir: str | os.PathLike | None = None,
) -> Mp4Writer | WebmWriter | WebpWriter | GifWriter:
    """Open a video writer; use it in a `with` block and `.write(frame)` one frame at a time.

    Frames are H×W×3 RGB, float 0..255 or uint8, all the same size. The format comes from
    the suffix unless `format` (one of `FORMATS`' values) is given. MP4 and WebM use `quality`
    (0..10, see `crf_for_quality`) and `preset` (libx264's speed against size, see `PRESETS`; WebM
    maps it onto `VP9_SPEEDS`); WebP uses `quality` and `loop`; GIF uses
    `loop`, `palette` and `dither` (see `write_gif`).
    `frames_dir` names the folder that keeps the frames, for error messages. The output's
    folder is created, and checked writable, before the first frame.
    """
    kind = video_format(path, format)
    if kind == "mp4":
        return Mp4Writer(path, fps, quality=quality, preset=preset, frames_dir=frames_dir)
    if kind == "webm":
        return WebmWriter(path, fps, quality=quality, preset=preset, frames_dir=frames_dir)
    if kind == "webp":
        return WebpWriter(path, fps, quality=quality, loop=loop, frames_dir=frames_dir)
    return GifWriter(path, fps, loop=loop, palette=palette, dither=dither)


class _Writer:
    """Context-manager behaviour shared by the writers: close on success, discard on error."""

    frames_written: int

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class Mp4Writer(_Writer):
    """H.264 MP4 (yuv420p) streamed to ffmpeg one frame at a time, in constant memory.

    yuv420p needs even sizes: an odd width or height is padded by one pixel that repeats
    the last column or row (63×65 is written as 64×66); nothing is scaled or cropped.
    """

    def __init__(self, path, fps: float, quality: float = QUALITY, frames_dir=None,
                 preset: str = DEFAULT_PRESET) -> None:
        self.path = Path(path)
        self.fps = _check_fps(fps)
        self.quality, self.crf = quality, crf_for_quality(quality)
        self.preset = check_preset(preset)
        self.frames_dir = frames_dir or "FRAMES_DIR"
        self.frames_written = 0
        self.frame_shape: tuple[int, ...] | None = None
        self._encoder = None
        self._ended = False  # `end_input` has run: ffmpeg finished with every frame
        self._temp: Path | None = _create_temp(self.path, self.suffix)

    suffix = ".mp4"
    pix_fmt_in = "yuv420p"  # what ffmpeg reads: `_encoder_input`'s layout
    comment: str | None = None  # the MP4's metadata comment (the effective config)

    def write(self, frame) -> None:
        """Encode one frame (H×W×3 RGB, float 0..255 or uint8)."""
        pixels = rgb_uint8(frame)
        if self._encoder is None:
            self._start(pixels.shape)
        self._check_shape(pixels.shape)
        self._send(self._encoder_input(self._padded(pixels)))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it into place; raises `OutputError` if ffmpeg failed."""
        if self._temp is None:
            return
        if self._encoder is None and not self._ended:
            self.abort()
            raise OutputError(f"no frames were written to '{self.path}': render at least one")
        self.end_input()
        if not self._complete():
            self.abort()
            raise self._failure("ffmpeg stopped before finishing the file")
        self._commit()

    def end_input(self) -> None:
        """Tell ffmpeg that the last frame was written and wait while it finishes the file (on
        another thread, while its caller saves the rest); `close` then moves it into place.
        Raises `OutputError` if ffmpeg failed."""
        if self._encoder is None:
            return
        encoder, self._encoder, self._ended = self._encoder, None, True
        try:
            encoder.close()
        except (OSError, RuntimeError) as err:
            self.abort()
            raise self._failure(str(err)) from err

    def abort(self) -> None:
        """Stop ffmpeg and remove the unfinished file; the output path is left untouched."""
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            encoder.close()
        if self._temp is not None:
            discard(self._temp)
            self._temp = None

    def _start(self, shape: tuple[int, ...]) -> None:
        import imageio_ffmpeg

        height, width = self._padded(np.zeros((*shape[:2], 1), np.uint8)).shape[:2]
        self.frame_shape = shape
        options = self._encoder_options()
        if self.comment:
            options["output_params"] += ["-metadata", f"comment={self.comment}"]
        self._encoder = imageio_ffmpeg.write_frames(
            str(self._temp), (width, height), fps=self.fps, quality=None, macro_block_size=1,
            pix_fmt_in=self.pix_fmt_in, ffmpeg_log_level="error", **options)
        self._send(None)

    def _encoder_options(self) -> dict:
        return {"codec": "libx264", "pix_fmt_out": "yuv420p",
                "output_params": ["-crf", str(self.crf), "-preset", self.preset]}

    def _padded(self, pixels):
        return _even_size(pixels)

    def _encoder_input(self, pixels):
        """The padded RGB frame as yuv420p planes (BT.601, limited range), by OpenCV: ~1 ms at
        1080p, where ffmpeg's own converter takes ~5 ms of the encoder's CPU."""
        import cv2

        return cv2.cvtColor(pixels, cv2.COLOR_RGB2YUV_I420)

    def _complete(self) -> bool:
        return _has_movie_index(self._temp)

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if shape != self.frame_shape:
            expected = f"{self.frame_shape[1]}×{self.frame_shape[0]}"
            raise OutputError(
                f"frame {self.frames_written} is {shape[1]}×{shape[0]} but '{self.path}' is "
                f"{expected}: every frame of a video must have the same size"
            )

    def _send(self, pixels) -> None:
        try:
            self._encoder.send(pixels)
        except (OSError, RuntimeError, StopIteration) as err:
            self.abort()
            raise self._failure(str(err).splitlines()[0] if str(err) else repr(err)) from err

    def _commit(self) -> None:
        temp, self._temp = self._temp, None
        try:
            commit(temp, self.path)
        except OSError as err:
            discard(temp)
            raise output_error(err, self.path, ASSEMBLE_RETRY) from err

    def _failure(self, reason: str) -> OutputError:
        if _disk_nearly_full(self.path.parent):
            reason = "the disk is full; free some space"
        return OutputError(f"ffmpeg failed while writing '{self.path}' ({reason})", remedy="assemble",
                           facts={"frames": str(self.frames_dir), "out": str(self.path)})


class WebmWriter(Mp4Writer):
    """VP9 WebM (yuv420p, constant quality) streamed to ffmpeg's libvpx one frame at a time: the
    open format for the web, with Opus sound where the render has a soundtrack. Odd sizes are
    padded as for MP4."""

    suffix = ".webm"

    def _encoder_options(self) -> dict:
        deadline, speed = VP9_SPEEDS[self.preset]
        return {"codec": "libvpx-vp9", "pix_fmt_out": "yuv420p",
                "output_params": ["-crf", str(vp9_crf_for_quality(self.quality)), "-b:v", "0",
                                  "-deadline", deadline, "-cpu-used", str(speed), "-row-mt", "1"]}

    def _complete(self) -> bool:
        """A finished WebM starts with the EBML header and has its cue index (written last)."""
        with open(self._temp, "rb") as stream:
            if stream.read(4) != EBML_MAGIC:
                return False
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - WEBM_TAIL_BYTES))
            return WEBM_CUES_ID in stream.read()


EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # every Matroska/WebM file's first four bytes
WEBM_CUES_ID = b"\x1c\x53\xbb\x6b"  # the Cues element ffmpeg writes as it finishes the file
WEBM_TAIL_BYTES = 1 << 20  # where to look for it: cues for hours of video take some kilobytes


class WebpWriter(Mp4Writer):
    """Animated WebP streamed to ffmpeg's libwebp encoder one frame at a time: it loops like a
    GIF in browsers and chat apps at a fraction of the size, in full colour.

    `quality` 0..10 is libwebp's 0..100; `loop` as for GIF (0: forever, None: once).
    """

    suffix = ".webp"
    pix_fmt_in = "rgb24"  # odd sizes stay odd, which yuv420p planes cannot hold

    def __init__(self, path, fps: float, quality: float = QUALITY, loop: int | None = LOOP,
                 frames_dir=None) -> None:
        _check_gif_options(loop, PALETTE)
        self.loop = 1 if loop is None else loop
        super().__init__(path, fps, quality=quality, frames_dir=frames_dir)
        self.webp_quality = round(10 * quality)

    def _encoder_options(self) -> dict:
        return {"codec": "libwebp_anim", "pix_fmt_out": "yuv420p",
                "output_params": ["-loop", str(self.loop), "-quality", str(self.webp_quality),
                                  "-f", "webp"]}

    def _padded(self, pixels):
        return np.ascontiguousarray(pixels)  # WebP takes odd sizes

    def _encoder_input(self, pixels):
        return pixels

    def _complete(self) -> bool:
        with open(self._temp, "rb") as stream:
            header = stream.read(12)
        return header[:4] == b"RIFF" and header[8:12] == b"WEBP"


class GifWriter(_Writer):
    """A GIF written from frames spooled to a hidden folder beside it, then `write_gif`.

    Spooling keeps memory constant and lets the shared palette sample the whole animation.
    """

    def __init__(self, path, fps: float, loop: int | None = LOOP, palette: str = PALETTE,
                 dither: bool = False) -> None:
        self.path = Path(path)
        self.fps, self.loop, self.palette, self.dither = _check_fps(fps), loop, palette, dither
        _check_gif_options(loop, palette)
        self.frames_written = 0
        _prepare_output(self.path)
        try:
            self._spool = tempfile.TemporaryDirectory(
                dir=self.path.parent, prefix=f".{self.path.name}.frames-")
        except OSError as err:
            raise output_error(err, self.path, ASSEMBLE_RETRY) from err
        self._paths: list[Path] = []

    def write(self, frame) -> None:
        """Store one frame (H×W×3 RGB, float 0..255 or uint8) until `close`."""
        path = Path(self._spool.name) / f"{self.frames_written:08d}.png"
        try:
            path.write_bytes(encode_png(frame))
        except OSError as err:
            self.abort()
            raise output_error(err, self.path, "run again") from err
        self._paths.append(path)
        self.frames_written += 1

    def close(self) -> None:
        """Encode the spooled frames into the GIF, then remove them."""
        if self._spool is None:
            return
        try:
            if not self._paths:
                raise OutputError(f"no frames were written to '{self.path}': render at least one")
            write_gif(self._paths, self.path, self.fps, loop=self.loop,
                      palette=self.palette, dither=self.dither)
        finally:
            self.abort()

    def abort(self) -> None:
        """Remove the spooled frames; the output path is left untouched."""
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None


def write_gif(
    frame_paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    fps: float,
    loop: int | None = LOOP,
    palette: str = PALETTE,
    dither: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Encode image files into an animated GIF, one frame in memory at a time.

    `fps` sets each frame's delay (see `gif_frame_duration`). `loop`: 0 repeats forever,
    N > 0 is stored as the GIF loop count N (most browsers then play N + 1 times), None
    plays once. `palette`: "shared" quantizes every frame to one 256-colour palette built
    from up to 8 evenly spaced frames (no colour flicker); "per_frame" gives each frame its
    own. `dither` applies Floyd–Steinberg when quantizing. `progress(done, total)` is called
    after each frame. Returns the number of frames.
    """
    paths = [Path(path) for path in frame_paths]
    out = Path(out)
    duration = gif_frame_duration(fps)
    _check_gif_options(loop, palette)
    if not paths:
        raise InputError(f"no frames to write to '{out}': give a folder that holds frames")
    shared = _shared_palette(paths) if palette == "shared" else None
    _prepare_output(out)
    try:
        with atomic_output(out, ".gif") as temp, open(temp, "wb") as stream:
            _write_gif_stream(stream, paths, shared, duration, loop, dither, progress)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as err:
        raise output_error(err, out, ASSEMBLE_RETRY) from err
    return len(paths)


def _write_gif_stream(stream, paths: list[Path], shared, duration: int, loop, dither,
                      progress=None) -> None:
    """Write header, frames and trailer with Pillow's frame-level GIF encoder."""
    size = None
    for index, path in enumerate(paths):
        frame = _open_frame(path, size)
        size = frame.size
        indexed = _quantize(frame, shared, dither)
        if index == 0:
            info = {"loop": loop, "duration": duration}
            stream.writelines(GifImagePlugin.getheader(indexed, None, info)[0])
        stream.writelines(GifImagePlugin.getdata(
            indexed, duration=duration, include_color_table=shared is None))
        if progress is not None:
            progress(index + 1, len(paths))
    stream.write(b";")


def _quantize(frame: Image.Image, shared: Image.Image | None, dither: bool) -> Image.Image:
    method = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    if shared is None:
        return frame.quantize(256, method=Image.Quantize.MEDIANCUT, dither=method)
    return frame.quantize(palette=shared, dither=method)


def _shared_palette(paths: list[Path]) -> Image.Image:
    """A 256-colour palette image from a mosaic of evenly spaced frames."""
    count = min(len(paths), PALETTE_SAMPLE_FRAMES)
    picks = sorted({round(i) for i in np.linspace(0, len(paths) - 1, count)})
    tiles = [_palette_tile(_open_frame(paths[i])) for i in picks]
    mosaic = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)))
    left = 0
    for tile in tiles:
        mosaic.paste(tile, (left, 0))
        left += tile.width
    return mosaic.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def _palette_tile(frame: Image.Image) -> Image.Image:
    # Nearest-neighbour keeps real frame colours; smoothing would invent in-between ones.
    scale = min(1.0, PALETTE_SAMPLE_SIDE / max(frame.size))
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    return frame.resize(size, Image.Resampling.NEAREST)


def assemble(
    frames: str | os.PathLike | Iterable[str | os.PathLike],
    out: str | os.PathLike,
    *,
    fps: float,
    reverse: bool = False,
    pingpong: bool = False,
    loop: int | None = LOOP,
    quality: float = QUALITY,
    preset: str = DEFAULT_PRESET,
    palette: str = PALETTE,
    dither: bool = False,
    format: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    comment: str | None = None,
) -> int:
    """Make a GIF, WebP, MP4 or WebM (`format`, else from `out`'s suffix) from a folder of frames or a list
    of files.

    A folder is read in natural order (`frame2` before `frame10`); one that holds numbered frames
    (`00000.png`, `00001.png`, ...) gives only those, with no number missing (`numbered_frames`).
    `reverse` and `pingpong` reorder as `frame_order` says. MP4 uses `quality` and `preset`; GIF
    uses `loop`, `palette`, `dither` (see `write_gif`). The output's folder is created if missing;
    an existing output is replaced. `progress(done, total)` is called after each frame; `comment`
    goes into an MP4's or WebM's metadata (ffmpeg's WebP muxer writes none). Returns the number of
    frames written.
    """
    kind = video_format(out, format)
    is_folder = isinstance(frames, (str, os.PathLike))
    paths = numbered_frames(list_frames(frames), frames) if is_folder else [Path(path) for path in frames]
    ordered = [paths[i] for i in frame_order(len(paths), reverse, pingpong)]
    if kind == "gif":
        return write_gif(ordered, out, fps, loop=loop, palette=palette, dither=dither,
                         progress=progress)
    if not ordered:
        raise InputError(f"no frames to write to '{out}': give a folder that holds frames")
    frames_dir = frames if is_folder else ordered[0].parent
    streamed = open_writer(out, fps, format=kind, quality=quality, preset=preset, loop=loop,
                           frames_dir=frames_dir)
    streamed.comment = comment
    with streamed as writer:
        size = None
        for index, path in enumerate(ordered):
            frame = _open_frame(path, size)
            size = frame.size
            writer.write(np.asarray(frame))
            if progress is not None:
                progress(index + 1, len(ordered))
    return writer.frames_written


def numbered_frames(paths: list[Path], folder) -> list[Path]:
    """A folder's frames to assemble: where any is numbered (`00000.png`, `17.jpg`), only the
    numbered ones, in their numbers' order and with no number missing or repeated (another image
    there, a cover or a note, is no frame of the animation); else all of them, as listed."""
    numbered = [path for path in paths if _frame_number(path) is not None]
    if not numbered:
        return paths
    numbered.sort(key=_frame_number)
    for before, after in zip(numbered, numbered[1:]):
        first, second = _frame_number(before), _frame_number(after)
        if second == first:
            raise InputError(f"frames folder '{folder}' has frame {first} twice ('{before.name}' and "
                             f"'{after.name}'): remove one of them")
        if second > first + 1:
            missing = f"{first + 1}" if second == first + 2 else f"{first + 1} to {second - 1}"
            raise InputError(f"frames folder '{folder}' has a gap: frame {missing} is missing "
                             f"between '{before.name}' and '{after.name}'; render the "
                             "missing frames or remove the later ones")
    return numbered


def _frame_number(path: Path) -> int | None:
    """The number a frame file's name is (`00012.png`: 12), or None for any other name."""
    stem = path.stem
    return int(stem) if stem.isascii() and stem.isdigit() else None


def _open_frame(path: Path, size: tuple[int, int] | None = None) -> Image.Image:
    """Load a frame file as RGB; `size` (width, height), if given, must match."""
    try:
        with warnings.catch_warnings(), Image.open(path) as image:
            warnings.simplefilter("ignore", UserWarning)  # a damaged file's: the error says it
            frame = image.convert("RGB")
    except Exception as err:
        if not decode_failure(err):
            raise
        reason = str(err) if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
        raise InputError(f"frame '{path}' is not a readable image ({reason}): "
                         "remove it or render it again") from err
    if size is not None and frame.size != size:
        raise InputError(f"frame '{path}' is {frame.width}×{frame.height} but the first frame "
                         f"is {size[0]}×{size[1]}: all frames must share one size")
    return frame


def _even_size(pixels: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by repeating the last row or column (yuv420p needs even)."""
    height, width = pixels.shape[:2]
    if height % 2 or width % 2:
        pixels = np.pad(pixels, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(pixels)


def _has_movie_index(path: Path) -> bool:
    """Whether an MP4 holds its top-level `moov` box, which ffmpeg writes last."""
    with open(path, "rb") as stream:
        while len(header := stream.read(8)) == 8:
            size, kind = struct.unpack(">I4s", header)
            if kind == b"moov":
                return True
            if size == 1:
                size = struct.unpack(">Q", stream.read(8))[0] - 8
            if size < 8:
                return False
            stream.seek(size - 8, os.SEEK_CUR)
    return False


def _disk_nearly_full(folder: Path, margin: int = 1 << 20) -> bool:
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def _prepare_output(out: Path) -> None:
    if out.is_dir():
        raise OutputError(f"output '{out}' is a folder: give a file name ending in "
                          f"{' or '.join(FORMATS)}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise output_error(err, out, ASSEMBLE_RETRY) from err


def _create_temp(out: Path, suffix: str) -> Path:
    _prepare_output(out)
    try:
        return temp_beside(out, suffix)
    except OSError as err:
        raise output_error(err, out, ASSEMBLE_RETRY) from err


def _check_fps(fps: float) -> float:
    """`fps` within its declared range (a GIF's longest delay, what ffmpeg encodes)."""
    is_number = isinstance(fps, numbers.Real) and not isinstance(fps, bool)
    if not (is_number and math.isfinite(fps) and not FPS.violation(fps)):
        raise ConfigError(f"fps must be a number of frames per second {FPS}, got {fps!r}")
    return float(fps)


def _check_gif_options(loop: int | None, palette: str) -> None:
    if palette not in PALETTES:
        raise ConfigError(f"GIF palette must be one of {list(PALETTES)}, got {palette!r}")
    bounds = OUTPUT["loop"].range
    if loop is not None and not (isinstance(loop, int) and not bounds.violation(loop)):
        raise ConfigError(f"GIF loop must be 0 (forever), a count up to {bounds.le} or None (once), "
                          f"got {loop!r}")
