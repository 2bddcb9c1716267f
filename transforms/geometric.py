"""Geometric transforms: zoom, stretch, rotate, translate, affine; one shared warp applies them.

Coordinates are pixels, x to the right (columns), y down (rows), pixel centres on integers. Each
transform builds a forward 3×3 matrix (where an input pixel lands in the output) about a centre
given as fractions of (width, height); `warp` inverts it and resamples bilinearly on the device
the frame is on (`keras.ops.image.affine_transform`).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from transforms.context import Context
from transforms.registry import register

__all__ = ["about", "affine", "rotate", "stretch", "translate", "warp", "zoom"]

Fill = Literal["reflect", "nearest", "wrap", "constant"]


def warp(frame, matrix, fill: Fill = "reflect"):
    """Resample `frame` (H×W×3) through the forward affine `matrix` (2×3 or 3×3, pixels).

    Output pixels whose source falls outside the frame are filled by `fill`: reflect
    (d c b a | a b c d), nearest (a a | a b c d), wrap, or constant (black).
    """
    from keras import ops

    inverse = np.linalg.inv(as_matrix(matrix))
    # affine_transform maps each OUTPUT pixel to the INPUT pixel it samples: the inverse.
    sampling = np.array([*inverse[0], *inverse[1], 0.0, 0.0], dtype=np.float32)
    return ops.image.affine_transform(
        ops.convert_to_tensor(frame, dtype="float32"),
        sampling,
        interpolation="bilinear",
        fill_mode=fill,
        data_format="channels_last",
    )


def as_matrix(matrix) -> np.ndarray:
    """A 2×3 or 3×3 affine matrix as 3×3 float64; ValueError for other shapes or projective."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape == (2, 3):
        matrix = np.vstack([matrix, [0.0, 0.0, 1.0]])
    if matrix.shape != (3, 3) or not np.allclose(matrix[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"expected a 2×3 or 3×3 affine matrix, got {matrix.tolist()}")
    if abs(np.linalg.det(matrix)) < 1e-12:
        raise ValueError(f"matrix {matrix.tolist()} is singular")
    return matrix


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


@register("zoom")
def zoom(
    frame,
    ctx: Context,
    factor: float = 1.05,
    center: tuple[float, float] = (0.5, 0.5),
    fill: Fill = "reflect",
):
    """Scale about `center` (fractions of width, height); factor > 1 zooms in, 1 is identity.

    Example: `zoom: {factor: "1.02 + 0.01*sin(t/8)"}` breathes in and out.
    """
    if factor <= 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    return warp(frame, about(center, _size(frame), np.diag([factor, factor])), fill)


@register("stretch")
def stretch(
    frame,
    ctx: Context,
    vertical: float = 1.0,
    horizontal: float = 1.0,
    center: tuple[float, float] = (0.5, 0.5),
    fill: Fill = "reflect",
):
    """Scale rows apart by `vertical` and columns apart by `horizontal` (> 1 stretches)."""
    if vertical <= 0 or horizontal <= 0:
        raise ValueError(f"scales must be > 0, got vertical={vertical}, horizontal={horizontal}")
    return warp(frame, about(center, _size(frame), np.diag([horizontal, vertical])), fill)


@register("rotate")
def rotate(
    frame,
    ctx: Context,
    degrees: float = 1.0,
    center: tuple[float, float] = (0.5, 0.5),
    fill: Fill = "reflect",
):
    """Rotate about `center` by `degrees`; positive is counter-clockwise on screen (np.rot90)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    # y points down, so a counter-clockwise turn on screen sends (x, y) to (x cos + y sin, ...).
    linear = np.array([[cos, sin], [-sin, cos]])
    return warp(frame, about(center, _size(frame), linear), fill)


@register("translate")
def translate(frame, ctx: Context, dx: float = 0.0, dy: float = 0.0, fill: Fill = "reflect"):
    """Move the picture `dx` pixels right and `dy` pixels down (fractions interpolate)."""
    return warp(frame, [[1.0, 0.0, dx], [0.0, 1.0, dy]], fill)


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


@register("affine", check=_check_matrix)
def affine(frame, ctx: Context, matrix: list[list[float]], fill: Fill = "reflect"):
    """Apply a forward affine `matrix` (2×3 or 3×3, pixel coordinates x right, y down)."""
    return warp(frame, matrix, fill)
