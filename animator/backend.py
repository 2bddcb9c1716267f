"""The compiled octave: every gradient-ascent step of one octave in one call, per Keras backend.

One step (as in the TensorFlow DeepDream tutorial and Google's notebook): roll the image by a
random jitter, compute the objective's gradient tile by tile, roll the gradient back, normalise
it (by its std or its mean absolute value), take a step of `step_size` grey levels, clip to 0..255.
The steps run inside the compiled function (a `tf.function` loop or a `jax.lax.fori_loop`), so
Python is not involved between steps. `max_loss` freezes the image once the objective exceeds it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras

PIXEL_MIN, PIXEL_MAX = 0.0, 255.0
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


def tile_batch(tile_size: int, bytes_per_pixel: float, budget: int, limit: int = 16) -> int:
    """How many tiles of `tile_size` one gradient call may take within `budget` bytes (>= 1)."""
    per_tile = 3.0 * bytes_per_pixel * tile_size * tile_size
    if per_tile <= 0:
        return 1
    return int(max(1, min(limit, budget // per_tile)))


def has_accelerator() -> bool:
    """Whether the backend computes on a GPU (or another accelerator) rather than the CPU: the
    one test behind XLA's and unrolling's defaults, tile batching and the memory budget."""
    name = keras.backend.backend()
    if name == "jax":
        import jax

        return jax.devices()[0].platform != "cpu"
    if name == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    return False


def memory_budget() -> int:
    """Bytes the gradient of one tile may use: a quarter of the accelerator's free memory, or on a
    CPU a quarter of the available RAM, at most 2 GiB (larger tiles gain nothing there, and a
    4K frame then dreams in well under 6 GB)."""
    free = _accelerator_free_bytes()
    if free is not None:
        return free // 4
    try:
        with open("/proc/meminfo") as info:
            fields = dict(line.split(":", 1) for line in info)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        available = 8 << 30
    return min(available // 4, 2 << 30)


def _accelerator_free_bytes() -> int | None:
    name = keras.backend.backend()
    try:
        if not has_accelerator():
            return None
        if name == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return stats.get("bytes_limit", 0) - stats.get("bytes_in_use", 0) or None
        # TensorFlow reports no card size, and its allocator takes most of the card for
        # itself: the card's total is what it has. Without nvidia-smi, assume 16 GiB.
        return nvidia_total_bytes() or 16 << 30
    except Exception:  # a backend without memory statistics: fall back to the host's RAM
        return None


def nvidia_total_bytes(run=None) -> int | None:
    """The memory of the first NVIDIA GPU as nvidia-smi reports it, or None without one."""
    import shutil
    import subprocess

    if run is None:
        if shutil.which("nvidia-smi") is None:
            return None
        run = subprocess.run
    try:
        done = run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                   capture_output=True, text=True, timeout=10)
        return int(done.stdout.split()[0]) << 20 if done.returncode == 0 else None  # MiB
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def auto_tile_size(height: int, width: int, bytes_per_pixel: float, budget: int) -> int:
    """The whole frame when its gradient fits `budget` bytes, else the largest multiple of 32
    whose square tile does (at least 128 pixels).

    The backward pass keeps the forward activations and adds their gradients: about 3× the
    forward activations, which `bytes_per_pixel` measures.
    """
    per_pixel = 3.0 * bytes_per_pixel
    if height * width * per_pixel <= budget:
        return max(height, width)
    side = int(math.sqrt(budget / per_pixel)) // 32 * 32
    return max(128, side)


def octave_function(model, objective, xla: bool | None = None) -> Callable:
    """`run(image, shifts, step_size, tile_size, normalisation, max_loss, tile_batch=1)`
    `-> (image, losses)`.

    `image` is H×W×3 float32 pixels on the backend's device, `shifts` a (steps, 2) int32 array of
    jitter rolls (rows, columns), `tile_size` in pixels; `losses` holds the objective per step.
    `tile_batch` tiles of one shape go through the model in one batched call (see `tile_groups`)
    on JAX and TensorFlow with XLA, whose tile layout is fixed when tracing; the plain
    `tf.function` takes one tile per call. `xla` compiles the TensorFlow octave with XLA: None
    means on a GPU only (on a CPU a plain tf.function was measured 3× faster); JAX always
    compiles with XLA. The result does not depend on `tile_batch` beyond float rounding.
    """
    name = keras.backend.backend()
    if name == "tensorflow":
        return _tensorflow_octave(model, objective, has_accelerator() if xla is None else xla)
    if name == "jax":
        return _jax_octave(model, objective)
    raise RuntimeError(f"the {name} backend is not supported: set KERAS_BACKEND=tensorflow or jax")


def _activations(outputs) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _tensorflow_octave(model, objective, xla: bool) -> Callable:
    import tensorflow as tf

    def tile_gradient(tile):
        with tf.GradientTape() as tape:
            tape.watch(tile)
            loss = objective(_activations(model(tile[None], training=False)))
        return loss, tape.gradient(loss, tile)

    def batch_gradient(tiles):
        # The objective averages over the batch as well: times the batch size it is the sum of
        # the tiles' own objectives, whose gradient for each tile is that tile's alone.
        with tf.GradientTape() as tape:
            tape.watch(tiles)
            loss = objective(_activations(model(tiles, training=False))) * tiles.shape[0]
        return tf.cast(loss, tf.float32), tape.gradient(loss, tiles)

    def edges(length, tile_size):
        count = tf.maximum(1, (length + tile_size - 1) // tile_size)
        steps = tf.range(count + 1, dtype=tf.float64) * tf.cast(length, tf.float64)
        return tf.cast(tf.round(steps / tf.cast(count, tf.float64)), tf.int32)

    def tiled_gradient(image, tile_size):
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        ys, xs = edges(height, tile_size), edges(width, tile_size)
        gradient, total = tf.zeros_like(image), tf.constant(0.0)
        for i in tf.range(tf.size(ys) - 1):
            for j in tf.range(tf.size(xs) - 1):
                y0, y1, x0, x1 = ys[i], ys[i + 1], xs[j], xs[j + 1]
                loss, tile_grad = tile_gradient(image[y0:y1, x0:x1])
                pad = [[y0, height - y1], [x0, width - x1], [0, 0]]
                gradient += tf.pad(tile_grad, pad)
                total += tf.cast(loss, tf.float32)
        tiles = tf.cast((tf.size(ys) - 1) * (tf.size(xs) - 1), tf.float32)
        return total / tiles, gradient

    def static_tiled_gradient(image, tile_size, batch):
        # Under XLA every shape must be known when tracing: the tile layout is plain Python,
        # fixed per frame size (as on JAX), and the function is traced once per size.
        height, width = image.shape[0], image.shape[1]
        gradient, total, count = tf.zeros_like(image), 0.0, 0
        for boxes in tile_groups(height, width, tile_size, batch):
            loss, grads = batch_gradient(tf.stack([image[y0:y1, x0:x1] for y0, y1, x0, x1 in boxes]))
            for k, (y0, y1, x0, x1) in enumerate(boxes):
                gradient += tf.pad(grads[k], [[y0, height - y1], [x0, width - x1], [0, 0]])
            total, count = total + loss, count + len(boxes)
        return total / count, gradient

    def ascend(image, shifts, step_size, tile_size, mean_abs, max_loss, tiled, unroll=False):
        # unroll: under XLA the step count is static and a Python loop unrolls the steps into
        # one program; XLA:CPU runs while-loop bodies several times slower than straight code.
        steps = shifts.shape[0] if unroll else tf.shape(shifts)[0]
        losses = tf.TensorArray(tf.float32, size=steps)
        active = tf.constant(True)
        for i in (range(steps) if unroll else tf.range(steps)):
            shift = shifts[i]
            loss, gradient = tiled(tf.roll(image, shift, axis=[0, 1]), tile_size)
            gradient = tf.roll(gradient, -shift, axis=[0, 1])
            scale = tf.cond(mean_abs, lambda g=gradient: tf.reduce_mean(tf.abs(g)),
                            lambda g=gradient: tf.math.reduce_std(g))
            active = tf.logical_and(active, loss <= max_loss)
            stepped = image + gradient * (step_size / tf.maximum(scale, _TINY))
            image = tf.where(active, tf.clip_by_value(stepped, PIXEL_MIN, PIXEL_MAX), image)
            losses = losses.write(i, loss)
        return image, losses.stack()

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, 3], tf.float32),
            tf.TensorSpec([None, 2], tf.int32),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.bool),
            tf.TensorSpec([], tf.float32),
        ],
    )
    def octave(image, shifts, step_size, tile_size, mean_abs, max_loss):
        return ascend(image, shifts, step_size, tile_size, mean_abs, max_loss, tiled_gradient)

    @tf.function(jit_compile=True)
    def octave_xla(image, shifts, step_size, tile_layout, mean_abs, max_loss):
        tiled = lambda image, layout: static_tiled_gradient(image, *layout)  # noqa: E731
        return ascend(image, shifts, step_size, tile_layout, mean_abs, max_loss, tiled, unroll=True)

    def run(image, shifts, step_size, tile_size, normalisation, max_loss, tile_batch=1):
        args = (tf.constant(shifts, tf.int32), tf.constant(step_size, tf.float32))
        rest = (tf.constant(normalisation == "mean_abs"), tf.constant(max_loss, tf.float32))
        if xla:  # the tile layout stays Python ints: part of the traced shapes
            return octave_xla(image, *args, (int(tile_size), int(tile_batch)), *rest)
        return octave(image, *args, tf.constant(tile_size, tf.int32), *rest)

    return run


def _jax_octave(model, objective) -> Callable:
    import functools

    import jax
    import jax.numpy as jnp

    def loss_of(trainable, non_trainable, tiles):
        # The objective averages over the batch as well: times the batch size it is the sum of
        # the tiles' own objectives, whose gradient for each tile is that tile's alone.
        outputs, _ = model.stateless_call(trainable, non_trainable, tiles, training=False)
        return objective(_activations(outputs)).astype(jnp.float32) * tiles.shape[0]

    value_and_grad = jax.value_and_grad(loss_of, argnums=2)

    def tiled_gradient(trainable, non_trainable, image, tile_size, batch):
        # Shapes are static under jit, so the tile layout is plain Python, fixed per frame size.
        gradient, total, count = jnp.zeros_like(image), 0.0, 0
        for boxes in tile_groups(image.shape[0], image.shape[1], tile_size, batch):
            tiles = jnp.stack([image[y0:y1, x0:x1] for y0, y1, x0, x1 in boxes])
            loss, grads = value_and_grad(trainable, non_trainable, tiles)
            for k, (y0, y1, x0, x1) in enumerate(boxes):
                gradient = gradient.at[y0:y1, x0:x1].set(grads[k])
            total, count = total + loss, count + len(boxes)
        return total / count, gradient

    unroll = not has_accelerator()

    @functools.partial(jax.jit, static_argnames=("tile_size", "tile_batch", "mean_abs"))
    def octave(trainable, non_trainable, image, shifts, step_size, max_loss, tile_size, tile_batch,
               mean_abs):
        def step(i, carry):
            image, losses, active = carry
            shift = (shifts[i, 0], shifts[i, 1])
            rolled = jnp.roll(image, shift, axis=(0, 1))
            loss, gradient = tiled_gradient(trainable, non_trainable, rolled, tile_size, tile_batch)
            gradient = jnp.roll(gradient, (-shift[0], -shift[1]), axis=(0, 1))
            scale = jnp.mean(jnp.abs(gradient)) if mean_abs else jnp.std(gradient)
            active = jnp.logical_and(active, loss <= max_loss)
            step = gradient * (step_size / jnp.maximum(scale, _TINY))
            stepped = jnp.clip(image + step, PIXEL_MIN, PIXEL_MAX)
            return jnp.where(active, stepped, image), losses.at[i].set(loss), active

        steps = shifts.shape[0]
        carry = (image, jnp.zeros(steps, jnp.float32), jnp.asarray(True))
        # XLA:CPU runs while-loop bodies several times slower than straight-line code (measured:
        # 21 s vs 2.6 s for an octave of 10 steps at 256x256), so on a CPU the steps unroll into
        # one program; on an accelerator the loop keeps compile times short.
        image, losses, _ = jax.lax.fori_loop(0, steps, step, carry, unroll=unroll)
        return image, losses

    def run(image, shifts, step_size, tile_size, normalisation, max_loss, tile_batch=1):
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        return octave(trainable, non_trainable, jnp.asarray(image, jnp.float32),
                      jnp.asarray(shifts, jnp.int32), jnp.float32(step_size),
                      jnp.float32(max_loss), tile_size=int(tile_size),
                      tile_batch=int(tile_batch), mean_abs=normalisation == "mean_abs")

    return run
