"""Filters: edge detection (Sobel, Prewitt), Gaussian blur, and colour (matching, hue shift).

All work with `keras.ops` on the frame's device; borders are padded by mirroring the edge pixels
(symmetric), so a flat region stays flat up to the border.

Edges come in two looks. `grey` (the default) is the gradient magnitude of the frame's grey,
normalised so a full black-to-white step gives 255. `notebook` is the DeepDream zoom notebook's
`np.hypot(ndimage.sobel(f, 0), ndimage.sobel(f, 1))` on the float RGB frame, clipped to 0..255:
unnormalised, so edges saturate to bright colour, and smoothed across the colour axis too (scipy
filters all three axes of the H×W×3 array).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np

from transforms.context import Context
from transforms.registry import Range, register

__all__ = ["blur", "color_match", "edges", "hue_shift", "match_color", "prewitt", "sobel"]

Strength = Annotated[float, Range(ge=0, le=1), "0: the frame unchanged, 1: the full effect"]

# ITU-R BT.601 luma weights, the usual grey of an RGB image.
LUMA = (0.299, 0.587, 0.114)

Look = Literal["grey", "notebook"]
SOBEL = (1.0, 2.0, 1.0)  # the smoothing across the derivative; Prewitt's is flat
PREWITT = (1.0, 1.0, 1.0)


def _tensor(frame):
    from keras import ops

    return ops.convert_to_tensor(frame, dtype="float32")


def gradients(image, smoothing: tuple[float, float, float]):
    """(gx, gy) of `image` (H×W or H×W×C): the central difference along one axis, smoothed by the
    3 taps `smoothing` along the other; borders mirrored (scipy's `reflect`). Not normalised."""
    from keras import ops

    padding = ((1, 1), (1, 1)) + ((0, 0),) * (len(image.shape) - 2)
    padded = ops.pad(image, padding, mode="symmetric")
    a, b, c = smoothing
    dx = padded[:, 2:] - padded[:, :-2]  # derivative along x, then smoothing along y
    gx = a * dx[:-2] + b * dx[1:-1] + c * dx[2:]
    dy = padded[2:] - padded[:-2]
    gy = a * dy[:, :-2] + b * dy[:, 1:-1] + c * dy[:, 2:]
    return gx, gy


def edges(frame, smoothing: tuple[float, float, float], keep_color: bool, strength: float,
          look: Look = "grey"):
    """Gradient magnitude of the frame, by a 3×3 derivative ⊗ `smoothing` kernel pair.

    look `grey`: of the frame's grey, divided by the kernel's gain, so a full black-to-white step
    gives 255 and a flat region 0; `keep_color` multiplies the frame by that edge map instead of
    returning grey. look `notebook`: per channel, unnormalised, with `smoothing` also applied
    across the colour channels (mirrored at red and blue), clipped to 0..255 (scipy's 3-D sobel).
    `strength` in 0..1 mixes the result with the original frame.
    """
    from keras import ops

    frame = _tensor(frame)
    if look == "notebook":
        gx, gy = gradients(ops.matmul(frame, _across_channels(smoothing)), smoothing)
        result = ops.clip(ops.sqrt(gx * gx + gy * gy), 0.0, 255.0)
    else:
        grey = ops.tensordot(frame, ops.convert_to_tensor(LUMA, dtype="float32"), axes=1)
        gx, gy = gradients(grey, smoothing)
        magnitude = ops.clip(ops.sqrt(gx * gx + gy * gy) / sum(smoothing), 0.0, 255.0)[:, :, None]
        result = frame * (magnitude / 255.0) if keep_color else ops.repeat(magnitude, 3, axis=2)
    return (1.0 - strength) * frame + strength * result


def _across_channels(smoothing: tuple[float, float, float]) -> np.ndarray:
    """3×3 matrix M with (rgb @ M)[k] = a·rgb[k-1] + b·rgb[k] + c·rgb[k+1], ends mirrored."""
    a, b, c = smoothing
    return np.array([[a + b, a, 0.0], [c, b, a], [0.0, c, b + c]], dtype=np.float32)


def _check_look(params: dict) -> None:
    """keep_color belongs to the grey look: say so when a config loads."""
    if params.get("look") == "notebook" and params.get("keep_color"):
        raise ValueError("keep_color: applies to look: grey only (the notebook look is already "
                         "in colour); remove keep_color or use look: grey")


@register("sobel", check=_check_look)
def sobel(frame, ctx: Context, keep_color: bool = False, strength: Strength = 1.0,
          look: Look = "grey"):
    """Sobel edge magnitude as a 0..255 image (0 where flat); keep_color keeps edge colours.

    strength in 0..1 mixes the edges with the frame (0: unchanged). look: grey (normalised grey
    edges), or notebook (the DeepDream notebook's saturated colour edges, see the module).
    """
    return edges(frame, SOBEL, keep_color, strength, look)


@register("prewitt", check=_check_look)
def prewitt(frame, ctx: Context, keep_color: bool = False, strength: Strength = 1.0,
            look: Look = "grey"):
    """Prewitt edge magnitude as a 0..255 image (0 where flat); like sobel, less smoothing."""
    return edges(frame, PREWITT, keep_color, strength, look)


def gaussian_kernel(sigma: float, max_radius: int | None = None) -> np.ndarray:
    """Normalised 1-D Gaussian of standard deviation `sigma` pixels, radius ceil(3 sigma).

    The radius is cut to `max_radius` (a mirrored border cannot be wider than the frame).
    """
    radius = max(1, math.ceil(3 * sigma))
    radius = radius if max_radius is None else max(0, min(radius, max_radius))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


@register("blur")
def blur(frame, ctx: Context,
         sigma: Annotated[float, Range(ge=0), "standard deviation, pixels"] = 1.0):
    """Gaussian blur of standard deviation `sigma` pixels (0: unchanged), edges mirrored."""
    from keras import ops

    frame = _tensor(frame)
    if sigma == 0:
        return frame
    images = frame[None]
    for axis in (1, 2):  # separable: along rows, then along columns
        kernel = gaussian_kernel(sigma, max_radius=int(images.shape[axis]))
        radius = len(kernel) // 2
        padding = [(0, 0)] * 4
        padding[axis] = (radius, radius)
        images = ops.pad(images, padding, mode="symmetric")
        shape = (len(kernel), 1) if axis == 1 else (1, len(kernel))
        taps = np.ascontiguousarray(np.broadcast_to(kernel.reshape(*shape, 1, 1), (*shape, 3, 1)))
        images = ops.depthwise_conv(images, taps, padding="valid", data_format="channels_last")
    return images[0]


def match_color(frame, reference, strength: float = 1.0):
    """Shift each channel of `frame` to the mean and standard deviation of `reference`'s.

    `strength` in 0..1 mixes the matched frame with the original. Both are H×W×3 in 0..255 (the
    sizes may differ); the result is clipped to 0..255. Used for colour coherence across frames.
    """
    from keras import ops

    frame, reference = _tensor(frame), _tensor(reference)
    mean, std = ops.mean(frame, axis=(0, 1)), ops.std(frame, axis=(0, 1))
    target_mean, target_std = ops.mean(reference, axis=(0, 1)), ops.std(reference, axis=(0, 1))
    matched = (frame - mean) * (target_std / ops.maximum(std, 1e-6)) + target_mean
    return ops.clip((1.0 - strength) * frame + strength * matched, 0.0, 255.0)


@register("color_match")
def color_match(frame, ctx: Context, strength: Strength = 1.0):
    """Match each channel's mean and spread to the first frame's, against colour drift."""
    if ctx.first_frame is None:
        return _tensor(frame)
    return match_color(frame, ctx.first_frame, strength)


def hue_rotation(degrees: float) -> np.ndarray:
    """3×3 matrix turning RGB colours about the grey axis by `degrees` (greys stay put).

    At 120 degrees it sends red to green, green to blue, blue to red, exactly.
    """
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    axis = np.full(3, 1 / math.sqrt(3))
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return cos * np.eye(3) + sin * cross + (1 - cos) * np.outer(axis, axis)  # Rodrigues


@register("hue_shift")
def hue_shift(frame, ctx: Context, degrees: float = 10.0):
    """Turn every colour's hue by `degrees` (red → green at 120), keeping greys; clipped."""
    from keras import ops

    matrix = ops.convert_to_tensor(hue_rotation(degrees).T, dtype="float32")
    return ops.clip(ops.matmul(_tensor(frame), matrix), 0.0, 255.0)
