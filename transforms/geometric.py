"""Geometric transforms: zoom, stretch, rotate, translate, affine; one shared warp applies them.

Coordinates are pixels, x to the right (columns), y down (rows), pixel centres on integers. Each
transform builds a forward 3×3 matrix (where an input pixel lands in the output) about a centre
given as fractions of (width, height), and its inverse (`undone`, for `dream.cadence`) warps by
that matrix's inverse; `warp` inverts the matrix it is given and resamples on the device the frame is
on: bilinear and nearest through `keras.ops.image.affine_transform`, bicubic and Lanczos by
weighting the source pixels around each sample point (`keras.ops` gathers), one axis at a time
when the matrix keeps the axes (zoom, stretch, translate).

Why Lanczos, sharpened, is the default: bilinear resampling is a low-pass filter, and an endless
zoom applies it at every frame; the dream does not restore what it removes, so after a few hundred
frames the picture goes soft. Lanczos (3 lobes) keeps more of the detail, and `sharpen` (by
default `CRISP_SHARPEN`) gives back what it still softens between pixels, so a long zoom keeps
its first frame's sharpness without ringing; the result is clipped to 0..255 so any overshoot
cannot overflow.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np

from transforms.context import Context
from transforms.registry import Range, register

__all__ = ["about", "affine", "resample", "rotate", "singular", "stretch", "translate", "undone", "warp",
           "zoom"]

Fill = Literal["reflect", "nearest", "wrap", "constant"]
Interpolation = Literal["lanczos3", "lanczos5", "bicubic", "bilinear", "nearest"]
Sharpen = Annotated[float, Range(ge=0, le=1), "with bicubic and Lanczos: restore the fine "
                    "detail resampling softens (0: none)"]

# The default resampling: the one that keeps an endless zoom crisp (see the module docstring).
CRISP: Interpolation = "lanczos3"
# Its sharpening, calibrated on a 150-frame zoom (README, "Why Lanczos by default").
CRISP_SHARPEN = 0.06
# Half-widths, in source pixels, of the kernels `resample` evaluates itself.
RADIUS = {"bicubic": 2, "lanczos3": 3, "lanczos5": 5}
# An affine matrix's least determinant (area ratio) a warp inverts; a zoom or stretch factor's
# range keeps its matrices above it (1e-3 × 1e-3 = 1e-6).
MIN_DETERMINANT = 1e-12
Factor = Range(ge=1e-3, le=1e3)


def warp(frame, matrix, fill: Fill = "reflect", interpolation: Interpolation = CRISP,
         sharpen: float = CRISP_SHARPEN):
    """Resample `frame` (H×W×3) through the forward affine `matrix` (2×3 or 3×3, pixels).

    Output pixels whose source falls outside the frame are filled by `fill`: reflect
    (d c b a | a b c d), nearest (a a | a b c d), wrap, or constant (black). `interpolation`:
    lanczos3 / lanczos5 (windowed sinc, 3 or 5 lobes), bicubic (Keys, a = -0.5), bilinear,
    nearest; bicubic and Lanczos are sharpened by `sharpen` (0..1, see `sharpened`) and their
    results clipped to 0..255. Bilinear and nearest are plain (scipy's order 1 and 0).
    """
    from keras import ops

    inverse = np.linalg.inv(as_matrix(matrix))
    frame = ops.convert_to_tensor(frame, dtype="float32")
    if interpolation in RADIUS:
        return ops.clip(resample(frame, inverse, fill, interpolation, sharpen), 0.0, 255.0)
    # affine_transform maps each OUTPUT pixel to the INPUT pixel it samples: the inverse.
    sampling = np.array([*inverse[0], *inverse[1], 0.0, 0.0], dtype=np.float32)
    return ops.image.affine_transform(
        frame, sampling, interpolation=interpolation, fill_mode=fill, data_format="channels_last"
    )


def resample(frame, inverse: np.ndarray, fill: Fill, interpolation: str, sharpen: float = 0.0):
    """Output pixel (x, y) = Σ kernel(source − tap) · frame[tap] over the taps around the source
    point inverse @ (x, y, 1), one axis at a time when `inverse` keeps the axes; not clipped."""
    from keras import ops

    height, width = (int(n) for n in frame.shape[:2])
    x = ops.arange(width, dtype="float32")[None, :]
    y = ops.arange(height, dtype="float32")[:, None]
    (a, b, c), (d, e, f) = (row.tolist() for row in inverse[:2])
    if b == 0 and d == 0:  # separable: columns, then rows, each a 1-D resampling
        columns = taps(a * x[0] + c, width, fill, interpolation, sharpen)
        frame = sum(w[None, :, None] * ops.take(frame, i, axis=1) for i, w in columns)
        rows = taps(e * y[:, 0] + f, height, fill, interpolation, sharpen)
        return sum(w[:, None, None] * ops.take(frame, i, axis=0) for i, w in rows)
    flat = ops.reshape(frame, (height * width, frame.shape[2]))
    columns = taps(a * x + b * y + c, width, fill, interpolation, sharpen)
    rows = taps(d * x + e * y + f, height, fill, interpolation, sharpen)
    return sum(
        (wy * wx)[:, :, None] * ops.take(flat, iy * width + ix, axis=0)
        for iy, wy in rows
        for ix, wx in columns
    )


def taps(source, size: int, fill: Fill, interpolation: str, sharpen: float = 0.0) -> list:
    """(index, weight) for each tap around the `source` coordinates (any shape) along an axis of
    `size` pixels: indices folded into the frame by `fill`, weights summing to 1 (`sharpened`
    by `sharpen`)."""
    from keras import ops

    radius = RADIUS[interpolation]
    base = ops.floor(source)
    fraction, first = source - base, ops.cast(base, "int32")
    offsets = range(1 - radius, radius + 1)
    weights = [kernel(fraction, offset, interpolation) for offset in offsets]
    total = sum(weights)
    weights = [weight / total for weight in weights]
    if sharpen > 0:
        offsets, weights = range(-radius, radius + 2), sharpened(fraction, weights, sharpen)
    result = []
    for offset, weight in zip(offsets, weights):
        index = first + offset
        if fill == "constant":  # a tap outside the frame reads black
            weight = ops.where(ops.logical_and(index >= 0, index < size), weight, 0.0)
        result.append((fold(index, size, fill), weight))
    return result


def sharpened(fraction, weights: list, sharpen: float) -> list:
    """The kernel's weights (one per tap, consecutive) convolved with the sharpening filter
    [-s, 1 + 2s, -s], s = sharpen · sin²(π · fraction): one more tap on each side, same sum.

    Resampling at a whole pixel copies it, and at half a pixel softens the finest detail most
    (Lanczos 3 keeps 76% of it at 3/4 of the Nyquist frequency); s follows that loss, so an
    endless zoom, resampled at every frame, stays crisp, while whole-pixel moves stay exact.
    """
    from keras import ops

    s = sharpen * ops.sin(math.pi * fraction) ** 2
    padded = [0.0, 0.0, *weights, 0.0, 0.0]
    return [(1.0 + 2.0 * s) * padded[i + 1] - s * (padded[i] + padded[i + 2])
            for i in range(len(weights) + 2)]


def fold(index, size: int, fill: Fill):
    """Indices outside 0..size-1 mapped back inside the way `fill` extends the frame."""
    from keras import ops

    if fill == "wrap":
        return ops.mod(index, size)
    if fill == "reflect":  # period 2·size: a b c d | d c b a
        index = ops.mod(index, 2 * size)
        return ops.where(index < size, index, 2 * size - 1 - index)
    return ops.clip(index, 0, size - 1)  # nearest; constant zeroes these taps' weights


def kernel(fraction, offset: int, interpolation: str):
    """The resampling kernel at distance `fraction - offset` source pixels (fraction in 0..1,
    a whole `offset`): Keys bicubic (a = -0.5), or Lanczos, exactly 0 at every other whole
    pixel, so a whole-pixel move copies pixels unchanged."""
    from keras import ops

    signed = fraction - offset
    d = ops.abs(signed)
    if interpolation == "bicubic":
        near = (1.5 * d - 2.5) * d * d + 1.0
        far = ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0
        return ops.where(d <= 1.0, near, ops.where(d < 2.0, far, 0.0))
    lobes = RADIUS[interpolation]
    # sin(π(f - o)) = (-1)^o sin(πf): exactly 0 when f is, where sin(π·o) in floats is not.
    sine = (-1.0) ** offset * ops.sin(math.pi * fraction)
    safe = ops.where(d < 1e-6, 1.0, signed)  # sinc(d) sinc(d / lobes), away from d = 0
    value = lobes * sine * ops.sin(math.pi * safe / lobes) / (math.pi * math.pi * safe * safe)
    return ops.where(d < 1e-6, 1.0, ops.where(d < lobes, value, 0.0))


def as_matrix(matrix) -> np.ndarray:
    """A 2×3 or 3×3 affine matrix as 3×3 float64; ValueError for other shapes or projective."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape == (2, 3):
        matrix = np.vstack([matrix, [0.0, 0.0, 1.0]])
    if matrix.shape != (3, 3) or not np.allclose(matrix[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"expected a 2×3 or 3×3 affine matrix, got {matrix.tolist()}")
    if singular(matrix):
        raise ValueError(f"matrix {matrix.tolist()} is singular")
    return matrix


def singular(matrix: np.ndarray) -> bool:
    """Whether a 3×3 affine matrix squeezes the plane (nearly) flat, so that no warp inverts it,
    or holds a number too large to invert."""
    with np.errstate(all="ignore"):
        det = np.linalg.det(matrix)
    return not (np.isfinite(matrix).all() and np.isfinite(det)) or abs(det) < MIN_DETERMINANT


def about(center: tuple[float, float], size: tuple[int, int], linear) -> np.ndarray:
    """3×3 matrix applying the 2×2 `linear` map about `center` (fractions of width, height)."""
    width, height = size
    cx, cy = center[0] * (width - 1), center[1] * (height - 1)
    to_center = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    back = np.array([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]])
    scale = np.eye(3)
    scale[:2, :2] = linear
    return back @ scale @ to_center


def _size(frame) -> tuple[int, int]:
    height, width = frame.shape[:2]
    return int(width), int(height)


def undone(matrix_of):
    """The inverse of a transform that warps by `matrix_of(frame, **params)`: the warp by that
    matrix's inverse, with the same fill and resampling (a zoom of 1.05 undone by one of 1/1.05)."""

    def inverse(frame, ctx: Context, fill: Fill = "reflect", interpolation: Interpolation = CRISP,
                sharpen: float = CRISP_SHARPEN, **params):
        matrix = np.linalg.inv(as_matrix(matrix_of(frame, **params)))
        return warp(frame, matrix, fill, interpolation, sharpen)

    return inverse


def zoom_matrix(frame, factor: float, center: tuple[float, float]) -> np.ndarray:
    return about(center, _size(frame), np.diag([factor, factor]))


def stretch_matrix(frame, vertical: float, horizontal: float,
                   center: tuple[float, float]) -> np.ndarray:
    return about(center, _size(frame), np.diag([horizontal, vertical]))


def rotate_matrix(frame, degrees: float, center: tuple[float, float]) -> np.ndarray:
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    # y points down, so a counter-clockwise turn on screen sends (x, y) to (x cos + y sin, ...).
    return about(center, _size(frame), np.array([[cos, sin], [-sin, cos]]))


def translate_matrix(frame, dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def affine_matrix(frame, matrix) -> np.ndarray:
    return as_matrix(matrix)


@register("zoom", inverse=undone(zoom_matrix))
def zoom(
    frame,
    ctx: Context,
    factor: Annotated[float, Factor, "> 1 zooms in, < 1 out, 1: unchanged"] = 1.05,
    center: tuple[float, float] = (0.5, 0.5),
    fill: Fill = "reflect",
    interpolation: Interpolation = CRISP,
    sharpen: Sharpen = CRISP_SHARPEN,
):
    """Scale about `center` (fractions of width, height); factor > 1 zooms in, 1 is identity.

    By default Lanczos 3 with `sharpen: 0.06`, which keeps an endless zoom as crisp as its first
    frame (1.03 a frame: the last 30 of 300 frames keep 112% of frame 0's sharpness, plain Lanczos
    77%, bilinear 54%); `sharpen: 0` is plain Lanczos.

    Example: `zoom: {factor: "1.02 + 0.01*sin(t/8)"}` breathes in and out.
    """
    return warp(frame, zoom_matrix(frame, factor, center), fill, interpolation, sharpen)


@register("stretch", inverse=undone(stretch_matrix))
def stretch(
    frame,
    ctx: Context,
    vertical: Annotated[float, Factor, "rows apart by this factor (> 1 stretches)"] = 1.0,
    horizontal: Annotated[float, Factor, "columns apart by this factor (> 1 stretches)"] = 1.0,
    center: tuple[float, float] = (0.5, 0.5),
    fill: Fill = "reflect",
    interpolation: Interpolation = CRISP,
    sharpen: Sharpen = CRISP_SHARPEN,
):
    """Scale rows apart by `vertical` and columns apart by `horizontal` (> 1 stretches)."""
    return warp(frame, stretch_matrix(frame, vertical, horizontal, center), fill, interpolation,
                sharpen)


@register("rotate", inverse=undone(rotate_matrix))
def rotate(
    frame,
    ctx: Context,
    degrees: float = 1.0,
    center: tuple[float, float] = (0.5, 0.5),
    fill: Fill = "reflect",
    interpolation: Interpolation = CRISP,
    sharpen: Sharpen = CRISP_SHARPEN,
):
    """Rotate about `center` by `degrees`; positive is counter-clockwise on screen (np.rot90)."""
    return warp(frame, rotate_matrix(frame, degrees, center), fill, interpolation, sharpen)


@register("translate", inverse=undone(translate_matrix))
def translate(
    frame,
    ctx: Context,
    dx: float = 0.0,
    dy: float = 0.0,
    fill: Fill = "reflect",
    interpolation: Interpolation = CRISP,
    sharpen: Sharpen = CRISP_SHARPEN,
):
    """Move the picture `dx` pixels right and `dy` pixels down (fractions interpolate)."""
    return warp(frame, translate_matrix(frame, dx, dy), fill, interpolation, sharpen)


def _check_matrix(params: dict) -> None:
    """The shape of `affine`'s matrix when a config loads (its numbers may be schedules)."""
    matrix = params.get("matrix")
    if not (isinstance(matrix, (list, tuple)) and all(isinstance(r, (list, tuple)) for r in matrix)):
        return  # not a list of rows: the annotation's check reports it
    if len(matrix) not in (2, 3) or any(len(row) != 3 for row in matrix):
        raise ValueError(f"matrix: expected 2 or 3 rows of 3 numbers (a 2×3 or 3×3 affine "
                         f"matrix), got {[len(row) for row in matrix]} numbers per row")
    last = matrix[2] if len(matrix) == 3 else [0, 0, 1]
    if all(isinstance(v, (int, float)) for v in last) and list(map(float, last)) != [0.0, 0.0, 1.0]:
        raise ValueError(f"matrix: the third row must be [0, 0, 1] (affine, not perspective), "
                         f"got {list(last)}; or give only the first two rows")
    numbers = [*matrix[:2], [0.0, 0.0, 1.0]]
    if all(isinstance(v, (int, float)) for row in numbers for v in row) and \
            singular(np.array(numbers, dtype=np.float64)):  # checked at every sampled frame
        raise ValueError(f"matrix: {[list(row) for row in matrix[:2]]} cannot be inverted (its "
                         f"determinant is under {MIN_DETERMINANT:g}, or not finite): no warp undoes it")


@register("affine", check=_check_matrix, inverse=undone(affine_matrix))
def affine(
    frame,
    ctx: Context,
    matrix: list[list[float]],
    fill: Fill = "reflect",
    interpolation: Interpolation = CRISP,
    sharpen: Sharpen = CRISP_SHARPEN,
):
    """Apply a forward affine `matrix` (2×3 or 3×3, pixel coordinates x right, y down)."""
    return warp(frame, matrix, fill, interpolation, sharpen)
