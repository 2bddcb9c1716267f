"""Shifts: roll each column (or row) by its own whole number of pixels, with wrap-around.

With `axis="columns"` column n moves down by shift(n) pixels (what leaves the bottom comes back at
the top); with `axis="rows"` row n moves right by shift(n). Shifts are rounded to whole pixels and
applied exactly, by gathering index (i - shift) mod size: no interpolation, nothing lost.
`roll` may truncate instead (`rounding: truncate`, toward zero like Python's `int`), which is how
the DeepDream zoom notebook rolls column n by `int(n / 15)`. Both roundings are odd functions, so
the opposite shifts undo a roll exactly (`roll` and `sine_shift` have inverses, for
`dream.cadence`); `stochastic_shift`'s draws cannot be undone without drawing them again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Literal

import numpy as np

from transforms.context import Context
from transforms.registry import Profile, Range, register

__all__ = ["roll", "roll_lines", "sine_shift", "stochastic_shift"]

Axis = Literal["columns", "rows"]
Rounding = Literal["nearest", "truncate"]
ROUND = {"nearest": np.rint, "truncate": np.trunc}
Group = Annotated[int, Range(ge=1), "neighbouring lines that move together"]


def roll_lines(frame, shifts, axis: Axis = "columns", rounding: Rounding = "nearest"):
    """Roll line n of `frame` (a column, or a row) by `shifts[n]` pixels, wrapping around;
    fractional shifts are rounded to the nearest whole pixel, or truncated toward zero."""
    from keras import ops

    frame = ops.convert_to_tensor(frame, dtype="float32")
    height, width = frame.shape[:2]
    shifts = ROUND[rounding](np.asarray(shifts, dtype=np.float64)).astype(np.int64)
    if axis == "columns":  # output[r, c] = input[(r - shift[c]) mod H, c]
        index = (np.arange(height)[:, None] - shifts[None, :]) % height
        gather_axis = 0
    else:  # output[r, c] = input[r, (c - shift[r]) mod W]
        index = (np.arange(width)[None, :] - shifts[:, None]) % width
        gather_axis = 1
    index = ops.convert_to_tensor(index[:, :, None].astype(np.int32))
    index = ops.broadcast_to(index, frame.shape)
    return ops.take_along_axis(frame, index, axis=gather_axis)


def line_count(frame, axis: Axis) -> int:
    """How many lines roll independently: columns (width) or rows (height)."""
    return int(frame.shape[1] if axis == "columns" else frame.shape[0])


def grouped(values: np.ndarray, count: int, group: int) -> np.ndarray:
    """Repeat one value per group of `group` neighbouring lines, cut to `count` lines (indexed,
    never repeated in full: a group of 10⁹ lines is one value for every line there is)."""
    return np.asarray(values)[np.arange(count) // group]


def _unroll(frame, ctx: Context, shift, axis: Axis, group: int, rounding: Rounding):
    """`roll`'s inverse: every line rolled back by its shift."""
    opposite = (lambda n: -np.asarray(shift(n))) if callable(shift) else -shift
    return roll(frame, ctx, opposite, axis, group, rounding)


@register("roll", inverse=_unroll)
def roll(
    frame,
    ctx: Context,
    shift: Profile = 0.0,
    axis: Axis = "columns",
    group: Group = 1,
    rounding: Rounding = "nearest",
):
    """Roll column (or row) n by shift(n) pixels; shift may use n (index) and t (frame).

    With group > 1, n counts groups of `group` neighbouring lines that move together. Fractional
    shifts round to the nearest pixel, or with rounding: truncate toward zero (Python's int).
    Example: `roll: {shift: "n / 15", rounding: truncate}` is the DeepDream notebook's roll.
    """
    count = line_count(frame, axis)
    group = min(int(group), count)  # a group past the frame's lines is one group of all
    n = np.arange(math.ceil(count / group), dtype=np.float64)
    return roll_lines(frame, grouped(_profile(shift, n), count, group), axis, rounding)


def _profile(shift: Callable | float, n: np.ndarray) -> np.ndarray:
    values = shift(n) if callable(shift) else shift
    return np.broadcast_to(np.asarray(values, dtype=np.float64), n.shape)


def _check_period(params: dict) -> None:
    """A period of 0 lines has no wave: refused at any frame."""
    if isinstance(params.get("period"), (int, float)) and params["period"] == 0:
        raise ValueError(f"period: must not be 0 (got {params['period']:g}; it counts lines per "
                         "wave, negative runs the wave backwards)")


def _unshift(frame, ctx: Context, amplitude: float, period: float, speed: float, axis: Axis):
    """`sine_shift`'s inverse: the wave of the opposite amplitude at the same frame."""
    return sine_shift(frame, ctx, -amplitude, period, speed, axis)


@register("sine_shift", check=_check_period, inverse=_unshift)
def sine_shift(
    frame,
    ctx: Context,
    amplitude: float = 4.0,
    period: float = 64.0,
    speed: float = 0.1,
    axis: Axis = "columns",
):
    """Roll line n by amplitude·sin(2π n / period + speed·t) pixels: a travelling wave.

    amplitude in pixels, period in lines (pixels), speed in radians per frame.
    """
    n = np.arange(line_count(frame, axis), dtype=np.float64)
    shifts = amplitude * np.sin(2 * np.pi * n / period + speed * ctx.index)
    return roll_lines(frame, shifts, axis)


def _check_bounds(params: dict) -> None:
    """`low <= high` (after rounding to whole pixels), refused at any frame."""
    low, high = params.get("low"), params.get("high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and round(low) > round(high):
        raise ValueError(f"low: must be <= high, got low={low:g}, high={high:g}")


@register("stochastic_shift", check=_check_bounds)
def stochastic_shift(
    frame, ctx: Context, low: int = -2, high: int = 2, axis: Axis = "columns", group: Group = 1
):
    """Roll each line (or group of lines) by a random whole shift in [low, high] pixels.

    The shifts are drawn from `ctx.rng` first, then applied, so a seeded run replays exactly.
    """
    low, high = int(round(low)), int(round(high))
    count = line_count(frame, axis)
    group = min(int(group), count)
    shifts = ctx.rng.integers(low, high, size=math.ceil(count / group), endpoint=True)
    return roll_lines(frame, grouped(shifts, count, group), axis)
