"""One octave of gradient ascent, written once in `keras.ops` for every backend.

One step (as in the TensorFlow DeepDream tutorial and Google's notebook): roll the image by a
random jitter, compute the objective's gradient over the tiles of the static tile layout
(`tile_groups`: tiles of one shape go through the model together), roll the gradient back, add
the gradient of the terms that look at the whole image (total variation, stay near the input),
normalise it (by its std or its mean absolute value), take a step of `step_size` grey levels,
clip to 0..255. `max_loss` freezes the image once the objective exceeds it.

What differs between backends comes in as a `Backend`: the value and gradient of a function of a
batch of tiles, and the model's call (`animator.engine.backend` compiles `ascend` for each one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

PIXEL_MIN, PIXEL_MAX = 0.0, 255.0
# Layout.tile_size of a frame that is one tile: the step then reads no static size of the image.
WHOLE = 0
# A floor for the gradient scale, not an offset: gradients of a mean over many pixels are tiny,
# and `g / (std + 1e-8)` would make the step size depend on the frame and tile area.
_TINY = 1e-30


def tile_bounds(length: int, tile_size: int) -> list[tuple[int, int]]:
    """Split `length` pixels into ceil(length / tile_size) near-equal, non-overlapping tiles."""
    count = max(1, math.ceil(length / tile_size))
    edges = [round(i * length / count) for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def tile_groups(height: int, width: int, tile_size: int, batch: int = 1) -> list[list[tuple]]:
    """The tiles of a frame as (y0, y1, x0, x1), in groups of up to `batch` tiles of one shape.

    `tile_bounds` makes tiles that differ by at most a pixel, so there are at most four shapes;
    a group is one batched call of the model. Every tile appears once.
    """
    shapes: dict[tuple[int, int], list[tuple]] = {}
    for y0, y1 in tile_bounds(height, tile_size):
        for x0, x1 in tile_bounds(width, tile_size):
            shapes.setdefault((y1 - y0, x1 - x0), []).append((y0, y1, x0, x1))
    return [boxes[i:i + batch] for boxes in shapes.values() for i in range(0, len(boxes), batch)]


class Layout(NamedTuple):
    """What an octave's compiled program is specialised for, besides the image's shape.

    `tile_size` (pixels) and `tile_batch` (tiles per model call) fix the tiles, `WHOLE` (0) for a
    frame dreamed whole: that program is free of the image's size, so one trace serves every
    octave (`tf.function` with a shape-free signature; jax.jit still compiles each shape); `mean_abs`
    normalises by the mean absolute gradient instead of its std; `unroll` writes the steps out
    as straight code (XLA:CPU runs loop bodies several times slower) instead of a loop. A tuple
    of plain values: tf.function and jax.jit key their compiled programs by its value.
    """

    tile_size: int
    tile_batch: int = 1
    mean_abs: bool = False
    unroll: bool = False


@dataclass(frozen=True)
class Backend:
    """What the step needs from a backend, inside its compiled function.

    `value_and_grad(fn, x)`: fn's scalar value at x and its gradient; `call(tiles)`: the feature
    model's activations (a list, one per layer) for a batch of tiles; `unrolled(steps, body,
    carry)`, where the backend has one: the steps written out in the compiled program from a
    single trace of `body` (else `Layout.unroll` traces each step in a Python loop).
    """

    value_and_grad: Callable
    call: Callable
    unrolled: Callable | None = None


def tiled_gradient(image, objective, weights, inputs, layout: Layout, backend: Backend):
    """The objective over the tiles of `image` (their mean) and its gradient, H×W×3."""
    from keras import ops

    if layout.tile_size == WHOLE:
        loss, grads = backend.value_and_grad(
            lambda tiles: ops.cast(objective.tile_value(backend.call(tiles), weights, inputs), "float32"),
            image[None])
        return loss, grads[0]
    height, width = int(image.shape[0]), int(image.shape[1])
    grads, total, count = {}, 0.0, 0
    for boxes in tile_groups(height, width, layout.tile_size, layout.tile_batch):
        tiles = ops.stack([image[y0:y1, x0:x1] for y0, y1, x0, x1 in boxes])

        def batch_value(tiles):
            # The objective averages over the batch as well: times the batch size it is the sum
            # of the tiles' own objectives, whose gradient for each tile is that tile's alone.
            value = objective.tile_value(backend.call(tiles), weights, inputs)
            return ops.cast(value, "float32") * tiles.shape[0]

        loss, batch_grads = backend.value_and_grad(batch_value, tiles)
        grads.update((box, batch_grads[k]) for k, box in enumerate(boxes))
        total, count = total + loss, count + len(boxes)
    return total / count, _assemble(grads, height, width, layout.tile_size)


def _assemble(grads: dict, height: int, width: int, tile_size: int):
    """The frame's gradient from its tiles' (a grid of rows and columns)."""
    from keras import ops

    rows = [ops.concatenate([grads[(y0, y1, x0, x1)] for x0, x1 in tile_bounds(width, tile_size)], 1)
            for y0, y1 in tile_bounds(height, tile_size)]
    return ops.concatenate(rows, 0) if len(rows) > 1 else rows[0]


def step(image, shift, step_size, max_loss, active, objective, weights, inputs, layout: Layout,
         backend: Backend):
    """One step of gradient ascent; returns (image, objective before the step, still active)."""
    from keras import ops

    loss, gradient = tiled_gradient(ops.roll(image, shift, axis=(0, 1)), objective, weights, inputs,
                                    layout, backend)
    gradient = ops.roll(gradient, -shift, axis=(0, 1))
    if objective.has_image_terms:
        value, image_gradient = backend.value_and_grad(
            lambda pixels: objective.image_value(pixels, weights, inputs), image)
        loss, gradient = loss + value, gradient + image_gradient
    scale = ops.mean(ops.abs(gradient)) if layout.mean_abs else ops.std(gradient)
    active = ops.logical_and(active, loss <= max_loss)
    stepped = image + gradient * (step_size / ops.maximum(scale, _TINY))
    return ops.where(active, ops.clip(stepped, PIXEL_MIN, PIXEL_MAX), image), loss, active


def ascend(image, shifts, step_size, max_loss, objective, weights, inputs, layout: Layout,
           backend: Backend):
    """Every step of one octave: `shifts` is (steps, 2) int32 jitter rolls (rows, columns).

    Returns (image, the objective at each step). The caller compiles this into one call.
    """
    from keras import ops

    def body(i, carry):
        image, losses, active = carry
        image, loss, active = step(image, shifts[i], step_size, max_loss, active, objective,
                                   weights, inputs, layout, backend)
        return image, ops.where(ops.arange(steps) == i, loss, losses), active

    steps = int(shifts.shape[0])
    carry = (image, ops.zeros((steps,), "float32"), ops.convert_to_tensor(True))
    if layout.unroll and backend.unrolled is not None:
        carry = backend.unrolled(steps, body, carry)
    elif layout.unroll:
        for i in range(steps):
            carry = body(i, carry)
    else:
        carry = ops.fori_loop(0, steps, body, carry)
    return carry[0], carry[1]
