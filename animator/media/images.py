"""Image files in and out: read a start image, make a noise start, write frames atomically.

Frames are float32 H×W×3 RGB arrays in 0..255 (see ARCHITECTURE.md). This module needs only
numpy and Pillow, so reading or listing images never loads a deep-learning backend.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import struct
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from animator.settings.errors import AnimatorError, InputError, OutputError, TooLarge, UserError
from animator.settings.params import ANIMATION

try:  # ISA-L's deflate: about 10x zlib's speed at the same size for frames (level 1)
    from isal import isal_zlib as _deflate
except ImportError:  # a platform without its wheel: the standard library, slower
    _deflate = zlib

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
FIT_MODES = ("resize", "fit", "crop")
TEMP_SUFFIX = ".tmp"
# Each kind of file a user names, as errors call it (`check_is_file`).
FILE_KINDS = {"image": "input image", "video": "input video", "config": "config", "audio": "audio"}

# Transparent areas are composited on white: most viewers show transparency on a light page.
BACKGROUND = (255, 255, 255)

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class LoadedImage(NamedTuple):
    """A decoded image: `pixels` float32 H×W×3 RGB in 0..255, and `notes` for the user."""

    pixels: np.ndarray
    notes: list[str]


def read_image(path: str | os.PathLike,
               max_pixels: int = ANIMATION["max_pixels"].default) -> LoadedImage:
    """Read an image file as a float32 H×W×3 RGB frame in 0..255, plus notes for the user.

    Greyscale, palette, CMYK and 16-bit images become RGB (16-bit values are scaled to 0..255);
    transparent areas are composited on white; the EXIF orientation is applied; an animated
    image gives its first frame and a note. An image over `max_pixels` (width × height) is
    refused from its header, before it is decoded. Raises `InputError` with a one-line fix.
    """
    with _checked_image(path, max_pixels) as image:
        notes = _animation_notes(image)
        depth = _bit_depth(image) if image.mode in _HIGH_DEPTH_MODES else None  # the file's tags
        image = ImageOps.exif_transpose(image)  # a copy, without them
        pixels, more_notes = _to_rgb_array(image, path, depth)
    return LoadedImage(pixels, notes + more_notes)


def image_size(source, max_pixels: int, name: str | None = None) -> tuple[int, int]:
    """An image's (width, height), read from the header of a file path or a binary stream
    (`name` names a stream in errors) without decoding its pixels. Raises `InputError` for an
    image over `max_pixels` (width × height) or a file that is not an image."""
    with _checked_image(source, max_pixels, name) as image:
        return image.size


@contextlib.contextmanager
def _checked_image(source, max_pixels: int, name: str | None = None):
    """The opened (not yet decoded) image, once its header shows at most `max_pixels`; errors
    while it is used become one-line `InputError`s."""
    path = Path(name or source)
    if name is None:
        check_is_file(path, "image")
    try:
        with warnings.catch_warnings(), _open_image(source) as image:
            # a damaged file's own complaints (Pillow's "Corrupt EXIF data"): the error says it
            warnings.simplefilter("ignore", UserWarning)
            _check_pixel_count(path, image.size, max_pixels)
            yield image
    except Image.DecompressionBombError as err:
        raise TooLarge(
            f"input image '{path}' is too large to decode safely ({err}): "
            "shrink the image file (`size:` resizes only after decoding)"
        ) from err
    except Exception as err:
        if not decode_failure(err):
            raise
        raise _unreadable(path, err) from err


def decode_failure(error: BaseException) -> bool:
    """Whether `error`, raised while Pillow opened or decoded a file, says the file cannot be
    read: Pillow's plugins raise whatever a damaged file makes them meet (OSError, ValueError, a
    TypeError from a corrupt TIFF, struct.error, DecompressionBombError, a text chunk past its
    limit), so anything but the project's own errors and running out of memory."""
    return isinstance(error, Exception) and not isinstance(error, (AnimatorError, MemoryError))


def check_is_file(path: Path, kind: str, error: type[UserError] = InputError) -> None:
    """Raise `error` unless `path` is a regular file: not there, a folder, or a pipe or a device
    (reading one could wait forever), or a path the system cannot look up (a name too long, a
    character no file name holds). `kind` (image, video, config) names the file in the message
    and picks the remedy (`errors.PLAIN_ADVICE`)."""
    name = f"{FILE_KINDS[kind]} '{path}'"
    problem = path_problem(path)
    if problem:
        raise error(f"{name} cannot be opened ({problem})", remedy="check_path")
    if not path.exists():
        raise error(f"{name} not found", remedy="check_path")
    if path.is_dir():
        raise error(f"{name} is a folder", remedy=f"{kind}_file")
    if not path.is_file():
        raise error(f"{name} is not a regular file (a pipe or a device)", remedy=f"{kind}_file")


def path_problem(path: str | os.PathLike) -> str | None:
    """Why the system cannot look `path` up (a name too long, a NUL, a lone surrogate that no
    file name encodes), or None: `Path.exists` raises these instead of answering False."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        return err.strerror or str(err)
    except ValueError as err:  # UnicodeEncodeError included
        return f"not a file name this system can hold: {type(err).__name__}"
    return None


def _open_image(path) -> Image.Image:
    # Our own max_pixels check replaces Pillow's warning; its hard limit still raises.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _unreadable(path: Path, err: Exception) -> InputError:
    if isinstance(err, PermissionError):
        return InputError(f"input image '{path}' cannot be read (permission denied): fix its "
                          "permissions or copy it somewhere readable")
    reason = "unknown format" if isinstance(err, UnidentifiedImageError) else \
        str(err) if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
    return InputError(f"input image '{path}' is not a readable image ({reason}): "
                      "check the file, or re-save it as PNG or JPEG")


def _check_pixel_count(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        # The limit guards decoding, which comes before any resize: `size:` alone cannot help.
        raise TooLarge(
            f"input image '{path}' is {width}×{height} ({width * height / 1e6:.1f} megapixels), "
            f"over the limit of {max_pixels:,} pixels: shrink the image file, or raise max_pixels "
            f"to {width * height:,} and set `size:` to dream it smaller"
        )


def _animation_notes(image: Image.Image) -> list[str]:
    frame_count = getattr(image, "n_frames", 1)
    if frame_count > 1:
        return [f"animated image: using its first frame of {frame_count}"]
    return []


def _to_rgb_array(image: Image.Image, path="the image", depth: tuple[int, bool] | None = None
                  ) -> tuple[np.ndarray, list[str]]:
    """Convert any Pillow mode to float32 RGB in 0..255; return notes on what changed."""
    if image.mode in _HIGH_DEPTH_MODES:
        bits, signed = depth or _bit_depth(image)
        top = 2.0 ** (bits - 1 if signed else bits) - 1
        grey = np.clip(np.asarray(image, dtype=np.float64) * (255.0 / top), 0.0, 255.0)
        grey = grey.astype(np.float32)
        return np.repeat(grey[:, :, None], 3, axis=2), [f"{bits}-bit image: scaled to 8 bits"]
    if image.mode == "F":
        grey = np.asarray(image, dtype=np.float32)
        if not np.isfinite(grey).all():  # a dream of NaN is NaN: said now, of the file
            raise InputError(f"input image '{path}' holds NaN or infinite values: re-save it "
                             "with finite ones (or as 8-bit PNG)")
        grey = np.clip(grey, 0.0, 255.0)
        return np.repeat(grey[:, :, None], 3, axis=2), []
    if image.has_transparency_data:
        return _composite_on_background(image), ["transparent areas composited on white"]
    try:
        rgb = image.convert("RGB")
    except ValueError as err:
        raise InputError(f"colour mode '{image.mode}' cannot be converted to RGB ({err}): "
                         "re-save the image as RGB PNG or JPEG") from err
    return np.asarray(rgb, dtype=np.float32), []


def _bit_depth(image: Image.Image) -> tuple[int, bool]:
    """(bits per sample, signed) of a high-depth greyscale image: a TIFF says so in its tags
    (BitsPerSample, SampleFormat 2: signed); else 16 for Pillow's I;16 modes, and for its
    32-bit mode "I" 16 unless a value needs more."""
    tags = getattr(image, "tag_v2", None) or {}
    bits, sample_format = tags.get(258), tags.get(339)
    bits = bits[0] if isinstance(bits, tuple) and bits else bits
    signed = (sample_format[0] if isinstance(sample_format, tuple) and sample_format
              else sample_format) == 2
    if isinstance(bits, int) and 8 < bits <= 32:
        return bits, signed
    if image.mode != "I":
        return 16, False
    low, high = image.getextrema()
    return (16, False) if 0 <= low and high <= 65535 else (32, low < 0)


def _composite_on_background(image: Image.Image) -> np.ndarray:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
    return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.float32)


def fit_size(image: np.ndarray, size: tuple[int, int], mode: str = "resize") -> np.ndarray:
    """Resize a float32 H×W×3 frame to `size` = (width, height) in pixels with Lanczos.

    `mode`: "resize" stretches to exactly `size`; "fit" keeps the aspect ratio and fits inside
    `size` (one side may come out shorter); "crop" keeps the aspect ratio, covers `size` and
    cuts the overflow evenly from both sides, giving exactly `size`. Resampling works on float
    data (no 8-bit rounding); Lanczos overshoot is clipped back to 0..255.
    """
    if mode not in FIT_MODES:
        raise ValueError(f"fit mode must be one of {list(FIT_MODES)}, got {mode!r}")
    width, height = int(size[0]), int(size[1])
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive (width, height) in pixels, got {size!r}")
    image = np.asarray(image, dtype=np.float32)
    source_height, source_width = image.shape[:2]
    box = (0.0, 0.0, float(source_width), float(source_height))
    if mode == "fit":
        scale = min(width / source_width, height / source_height)
        width = max(1, round(source_width * scale))
        height = max(1, round(source_height * scale))
    elif mode == "crop":
        box = _centre_box(source_width, source_height, width / height)
    if (width, height) == (source_width, source_height) and box[2:] == (width, height):
        return image
    return _resample(image, (width, height), box)


def _centre_box(width: int, height: int, aspect: float) -> tuple[float, float, float, float]:
    """The largest centred box of aspect ratio `aspect` (width/height) inside width × height."""
    box_width, box_height = min(width, height * aspect), min(height, width / aspect)
    left, top = (width - box_width) / 2, (height - box_height) / 2
    return (left, top, left + box_width, top + box_height)


def _resample(image: np.ndarray, size: tuple[int, int], box) -> np.ndarray:
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, c])).resize(
            size, Image.Resampling.LANCZOS, box=box))
        for c in range(image.shape[2])
    ]
    return np.clip(np.stack(channels, axis=2), 0.0, 255.0).astype(np.float32)


def noise_image(size: tuple[int, int], seed: int = 0, amplitude: float = 24.0) -> np.ndarray:
    """A smooth random start frame: grey 127.5 plus blurred uniform noise, float32 H×W×3.

    `size` is (width, height) in pixels; `amplitude` is the noise range before blurring, in
    0..255 units. The same seed always gives the same frame.
    """
    width, height = size
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-amplitude, amplitude, size=(height, width, 3)).astype(np.float32)
    for axis in (0, 1, 0, 1):
        noise = _binomial_blur(noise, axis)
    return np.clip(127.5 + noise, 0.0, 255.0).astype(np.float32)


def _binomial_blur(image: np.ndarray, axis: int) -> np.ndarray:
    """Blur with the 1-2-1 kernel along one axis, repeating the edge pixels."""
    pad = [(0, 0)] * image.ndim
    pad[axis] = (1, 1)
    padded = np.pad(image, pad, mode="edge")
    length = image.shape[axis]
    before, centre, after = (np.take(padded, range(i, i + length), axis=axis) for i in range(3))
    return (before + 2 * centre + after) / 4


def to_uint8(frame, finite: bool = False) -> np.ndarray:
    """Round and clip a 0..255 frame (numpy or a backend tensor) to uint8; NaN becomes 0.
    `finite`: the caller has checked that every value is, which saves one pass (~2 ms at 1080p)."""
    pixels = np.asarray(frame)
    if pixels.dtype == np.uint8:
        return pixels
    if finite:  # the float copy made by rint, then in place: the same values as below
        pixels = np.rint(pixels, dtype=np.float32)
        np.clip(pixels, 0, 255, out=pixels)
        return pixels.astype(np.uint8)
    # The first pass makes the float32 copy, the others work in place. fmax takes the number
    # over NaN: NaN becomes 0, -inf 0. Clipping before rounding gives the same uint8 values.
    pixels = np.fmax(pixels, 0, dtype=np.float32)
    np.fmin(pixels, 255, out=pixels)
    np.rint(pixels, out=pixels)
    return pixels.astype(np.uint8)


def output_error(err: OSError, path, retry: str = "run again", remedy: str | None = None) -> OutputError:
    """Turn an OSError met while writing `path` into a one-line OutputError; `retry` ends it,
    or with a `remedy` (`then_resume`: a render's frames), the front end's words for it."""
    retry = "" if remedy else f" and {retry}"
    if err.errno in _DISK_FULL:
        return OutputError(f"disk full while writing '{path}': free some space{retry}", remedy=remedy)
    if err.errno == errno.ENOTDIR:
        return OutputError(f"cannot write '{path}': part of the path is a file, not a folder: "
                           "choose another output path")
    if err.errno in _NOT_WRITABLE:
        return OutputError(f"cannot write '{path}': the folder is not writable "
                           f"({err.strerror}): choose another output folder or fix its permissions")
    return OutputError(f"cannot write '{path}' ({err.strerror or err}): check the path{retry}",
                       remedy=remedy)


def write_png_atomic(path: str | os.PathLike, frame, fast: bool = False,
                     text: dict[str, str] | None = None, durable: bool = True,
                     create_folder: bool = True) -> None:
    """Write a frame as PNG so that `path` is either the old file or the complete new one.

    The PNG goes to a hidden temporary file in the same folder (created if missing, unless
    not `create_folder`: a render's frames folder that vanished is an error, not remade), is
    flushed and fsynced, then renamed over `path`. On failure the temporary file is removed
    and an `OutputError` says what to do (disk full: free space and resume).
    `fast` writes with `encode_png` (animation frames: a 1080p frame in ~25 ms instead of
    ~200 ms); otherwise Pillow's default compression makes a smaller file. Without `durable`
    the rename is durable only once the caller syncs the folder (`sync_folder`).
    """
    path = Path(path)
    pixels = rgb_uint8(frame)
    try:
        if create_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise output_error(err, path, remedy="then_resume") from err
    if fast:
        write_atomic(path, lambda stream: stream.write(encode_png(pixels, text)), durable=durable)
    else:
        write_atomic(path, lambda stream: Image.fromarray(pixels).save(stream, format="PNG"),
                     durable=durable)


def encode_png(frame, text: dict[str, str] | None = None) -> bytes:
    """An H×W×3 RGB frame (uint8, or float 0..255 as `to_uint8` rounds it) as PNG bytes, fast.

    `text` (keyword -> UTF-8 text) goes into compressed iTXt chunks, which PNG readers show as
    the image's text (Pillow: `image.text`).

    Every row uses PNG's "up" filter (the difference from the row above: one numpy subtraction,
    where Pillow tries five filters per row), and the rows are deflated at level 1 by ISA-L when
    `isal` is installed, else by zlib. Any PNG reader decodes it to exactly `frame`'s pixels.
    """
    pixels = rgb_uint8(frame)
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), np.uint8)
    filtered[:, 0] = 2  # filter type "up"; the first row's "above" is zeros, so it is itself
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 wraps: the PNG's modulo 256
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    texts = [part for key, value in (text or {}).items() for part in _png_chunk(b"iTXt", _itxt(key, value))]
    return b"".join((b"\x89PNG\r\n\x1a\n", *_png_chunk(b"IHDR", header), *texts,
                     *_png_chunk(b"IDAT", _deflate.compress(filtered, 1)), *_png_chunk(b"IEND", b"")))


def _itxt(keyword: str, text: str) -> bytes:
    """An iTXt chunk's data: keyword, compressed (zlib), no language, the UTF-8 text."""
    return keyword.encode("latin-1") + b"\0\x01\0\0\0" + zlib.compress(text.encode("utf-8"))


def preview_png(frame, max_side: int) -> bytes:
    """A frame as PNG bytes, shrunk (never enlarged) so its longest side is at most `max_side`
    pixels: for a page or a notebook to show while a render runs."""
    pixels = rgb_uint8(frame)
    height, width = pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
    return encode_png(pixels)


def _png_chunk(kind: bytes, data: bytes) -> tuple[bytes, ...]:
    """A chunk's parts, joined once with the others (a 1080p frame's data is copied once);
    ISA-L's CRC-32 is ~10x zlib's."""
    return (struct.pack(">I", len(data)), kind, data,
            struct.pack(">I", _deflate.crc32(data, _deflate.crc32(kind))))


def write_atomic(path: Path, write, retry: str | None = None, durable: bool = True) -> None:
    """Call `write(stream)` on a hidden temporary file beside `path`, fsync it, rename it over
    `path`: the file is either the old one or the complete new one. An OSError becomes a
    one-line `OutputError` ending with `retry`, by default: resume the render. `durable`
    as for `commit`.
    """
    try:
        with atomic_output(path, durable=durable) as temp, open(temp, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as err:
        raise output_error(err, path, retry or "run again",
                           remedy=None if retry else "then_resume") from err


def rgb_uint8(frame, finite: bool = False) -> np.ndarray:
    """`to_uint8`, then check the frame is H×W×3 RGB; returns a C-contiguous array."""
    pixels = to_uint8(frame, finite)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"a frame must be H×W×3 RGB, got shape {pixels.shape}")
    return np.ascontiguousarray(pixels)


@contextlib.contextmanager
def atomic_output(path: Path, suffix: str = TEMP_SUFFIX, durable: bool = True):
    """Yield a hidden temporary path beside `path`; rename it to `path` if the block succeeds.

    If the block raises, the temporary file is removed and `path` is left untouched.
    `suffix` ends the temporary name (an encoder may choose its format from it); `durable`
    as for `commit`.
    """
    temp = temp_beside(path, suffix)
    try:
        yield temp
        commit(temp, path, durable)
    except BaseException:
        discard(temp)
        raise


def temp_beside(path: Path, suffix: str = TEMP_SUFFIX) -> Path:
    """Create an empty hidden file beside `path` (`.NAME.<random><suffix>`) and return it.

    Unlike `tempfile.mkstemp` (mode 0600), the file gets the permissions the umask allows,
    so the renamed output is as readable as any other file the user writes.
    """
    for _ in range(100):
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries a killed writer left beside `path` (`temp_beside`'s files, a GIF
    writer's spool folders); returns what was removed. Call it only while no other writer of
    `path` runs (a render holds its lock)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.([0-9a-f]{{8}}\.\w+|frames-\w+)$")
    removed = []
    with contextlib.suppress(OSError):
        for item in path.parent.iterdir():
            if pattern.match(item.name):
                with contextlib.suppress(OSError):
                    if item.is_dir():
                        shutil.rmtree(item)
                    else:
                        item.unlink()
                    removed.append(item)
    return removed


def commit(temp: Path, path: Path, durable: bool = True) -> None:
    """Rename a finished temporary file over `path`, atomically and, if `durable`, durably.
    Otherwise the caller syncs the folder later, once for many renames: a folder's
    fsync commits the filesystem's journal, ~3 ms of CPU, more than the rest of a frame's write."""
    os.replace(temp, path)
    if durable:
        sync_folder(path.parent)


def discard(temp: Path) -> None:
    """Remove a temporary file if it is still there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


def sync_folder(folder: Path) -> None:
    """Make a rename durable: fsync the folder that holds it (POSIX only)."""
    if os.name != "posix":
        return
    # Best effort: some filesystems refuse to open or fsync a folder; the rename still holds.
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """The image files in `folder` in natural order (`frame2` before `frame10`).

    Hidden and temporary files are skipped. Raises `InputError` if the folder is missing or
    holds no frames.
    """
    folder = Path(folder)
    if problem := path_problem(folder):
        raise InputError(f"frames folder '{folder}' cannot be opened ({problem}): check the path")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "not found"
        raise InputError(f"frames folder '{folder}' {what}: check the path")
    frames = [path for path in folder.iterdir() if _is_frame(path)]
    if not frames:
        raise InputError(f"frames folder '{folder}' has no frames "
                         f"({', '.join(FRAME_SUFFIXES)}): render first or check the path")
    return sorted(frames, key=natural_key)


def _is_frame(path: Path) -> bool:
    return (not path.name.startswith(".") and path.suffix.lower() in FRAME_SUFFIXES
            and path.is_file())


def natural_key(path: str | os.PathLike) -> tuple:
    """Sort key that compares digit runs as numbers: `frame2` < `frame10`."""
    name = Path(path).name
    parts = re.split(r"(\d+)", name.casefold())
    return (tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name)
