"""The compiled octave per Keras backend, and the device facts that size its tiles.

The step itself is written once (`animator.engine.ascent`); each backend here supplies only the value
and gradient of a function of a batch of tiles, the model's call, and how an octave's steps
compile into one call (TensorFlow: a `tf.function`, with or without XLA; JAX: `jax.jit` over
`model.stateless_call`), so Python is not involved between steps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import keras

from animator.engine.ascent import WHOLE, Backend, Layout, ascend, tile_bounds, tile_groups  # noqa: F401


def tile_batch(tile_size: int, bytes_per_pixel: float, budget: int, limit: int = 16) -> int:
    """How many tiles of `tile_size` one gradient call may take within `budget` bytes (>= 1)."""
    per_tile = 3.0 * bytes_per_pixel * tile_size * tile_size
    if per_tile <= 0:
        return 1
    return int(max(1, min(limit, budget // per_tile)))


@functools.cache
def has_accelerator() -> bool:
    """Whether the backend computes on a GPU (or another accelerator) rather than the CPU: the
    one test behind XLA's and unrolling's defaults, tile batching, the memory budget and where
    a frame is packed for the host (fixed for the process, as the backend is)."""
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
    return min(host_memory() // 4, 2 << 30)


def host_memory() -> int:
    """Bytes of RAM available to this process now (Linux's MemAvailable; 8 GiB where unknown)."""
    try:
        with open("/proc/meminfo") as info:
            fields = dict(line.split(":", 1) for line in info)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 8 << 30


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


def octave_function(model, objective, xla: bool | None = None, source: str | None = None) -> Octave:
    """The compiled octave of `model` and `objective` for the active Keras backend (see Octave).

    `xla` compiles the TensorFlow octave with XLA: None means on a GPU only (on a CPU a plain
    tf.function was measured 3× faster); JAX always compiles with XLA. `source` identifies the
    model for TensorFlow's trace cache (`trace_cache.model_source`; None: not cached); JAX keeps
    its compiled programs in its own cache (`compile_cache`).
    """
    name = keras.backend.backend()
    if name == "tensorflow":
        return _TensorFlowOctave(model, objective, has_accelerator() if xla is None else xla, source)
    if name == "jax":
        return _JaxOctave(model, objective)
    raise _unsupported(name)


def activations(outputs) -> list:
    """A feature model's outputs as a list (one per layer), as it returns one output bare."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


class Octave:
    """`octave(image, shifts, step_size, tile_size, normalisation, max_loss, tile_batch=1,
    weights=None, inputs=None)` -> (image, losses): every step of one octave in one call.

    `image` is H×W×3 float32 pixels on the backend's device, `shifts` a (steps, 2) int32 array
    of jitter rolls (rows, columns), `tile_size` in pixels; `tile_batch` tiles of one shape go
    through the model in one call; `weights` (one per objective term, default the objective's
    own) and `inputs` (the objective's tensors: guide features, the octave's base image) are
    arguments of the compiled function, so changing them does not recompile it. `losses` holds
    the objective per step. A frame that fits one tile is dreamed whole (`Layout` WHOLE), in a
    program TensorFlow traces once for every octave size; a tiled frame's depends on its size.
    `traces` counts the traces of `ascent.ascend`, `restored` the traces TensorFlow's trace
    cache gave instead.
    """

    def __init__(self, model, objective):
        self.model, self.objective, self.traces, self.restored = model, objective, 0, 0

    def __call__(self, image, shifts, step_size, tile_size, normalisation, max_loss, tile_batch=1,
                 weights=None, inputs=None):
        from keras import ops

        whole = int(tile_size) >= max(int(image.shape[0]), int(image.shape[1]))
        layout = Layout(WHOLE if whole else int(tile_size), 1 if whole else int(tile_batch),
                        normalisation == "mean_abs", self.unroll)
        weights = self.objective.weights() if weights is None else weights
        return self.run(ops.convert_to_tensor(image, "float32"), ops.convert_to_tensor(shifts, "int32"),
                        ops.convert_to_tensor(step_size, "float32"),
                        ops.convert_to_tensor(max_loss, "float32"),
                        ops.convert_to_tensor(weights, "float32"), dict(inputs or {}), layout)

    def ascend(self, backend: Backend, image, shifts, step_size, max_loss, weights, inputs, layout):
        self.traces += 1  # runs only while the backend traces
        return ascend(image, shifts, step_size, max_loss, self.objective, weights, inputs, layout,
                      backend)


class _TensorFlowOctave(Octave):
    def __init__(self, model, objective, xla: bool, source: str | None = None):

        super().__init__(model, objective)
        # XLA:CPU runs while-loop bodies several times slower than straight code: unrolled there
        self.unroll = xla and not has_accelerator()
        self._xla, self._functions, self._source = xla, {}, source
        self._backend = Backend(self._value_and_grad,
                                lambda tiles: activations(model(tiles, training=False)))

    def run(self, image, shifts, step_size, max_loss, weights, inputs, layout):
        """The octave's `tf.function` for this layout, traced once per signature: a whole frame's
        signature leaves the image's height and width (and those of the inputs of its size, the
        octave's base) free, so the octaves of a frame, and every later frame, share one trace
        (a trace of the model's gradient costs seconds: three octaves used to pay it three times).
        A trace an earlier process left in the trace cache is called instead of tracing again."""
        import tensorflow as tf

        from animator.engine import trace_cache

        def spec(tensor):
            free = layout.tile_size == WHOLE and tuple(tensor.shape) == tuple(image.shape)
            return tf.TensorSpec([None, None, *tensor.shape[2:]] if free else tensor.shape, tensor.dtype)

        args = (image, shifts, step_size, max_loss, weights, inputs)
        signature = tuple(tf.nest.map_structure(spec, args))
        key = (layout, repr(signature))
        if key in self._functions:
            return self._functions[key](*args)
        entry = self._source and trace_cache.key(self._source, self.model, self.objective, layout,
                                                 key[1], self._xla)
        restored = entry and trace_cache.load(entry, self.model.weights, args)
        if restored:
            self.restored += 1
            self._functions[key] = restored
            return restored(*args)
        # No AutoGraph: the step is keras.ops with no Python branch on a tensor, and
        # converting its source took half the trace (InceptionV3: 5.4 s -> 2.8 s at 256²).
        traced = tf.function(functools.partial(self._ascend, layout), input_signature=signature,
                             jit_compile=self._xla, autograph=False)
        self._functions[key] = traced
        result = traced(*args)
        if entry:
            trace_cache.store(entry, traced.get_concrete_function(), self.model.weights)
        return result

    def _ascend(self, layout, image, shifts, step_size, max_loss, weights, inputs):
        return self.ascend(self._backend, image, shifts, step_size, max_loss, weights, inputs, layout)

    @staticmethod
    def _value_and_grad(fn, x):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return value, tape.gradient(value, x)


class _JaxOctave(Octave):
    def __init__(self, model, objective):
        import jax

        super().__init__(model, objective)
        # XLA:CPU runs while-loop bodies several times slower than straight-line code (measured:
        # 21 s vs 2.6 s for an octave of 10 steps at 256x256), so on a CPU the steps unroll into
        # one program; on an accelerator the loop keeps compile times short.
        self.unroll = not has_accelerator()
        self._octave = jax.jit(self._stateless, static_argnames=("layout",))

    def _stateless(self, trainable, non_trainable, image, shifts, step_size, max_loss, weights,
                   inputs, layout):
        import jax

        def call(tiles):
            outputs, _ = self.model.stateless_call(trainable, non_trainable, tiles, training=False)
            return activations(outputs)

        def unrolled(steps, body, carry):
            # One trace of the step, written out `steps` times when lowered: the straight-line
            # program XLA:CPU runs fast, for a fraction of a Python loop's tracing time. A single
            # step is traced straight: XLA:CPU leaves a loop of one step with the backward pass's
            # convolutions in a layout it runs ~3x slower (naive loops, not Eigen).
            if steps == 1:
                return body(0, carry)
            return jax.lax.fori_loop(0, steps, body, carry, unroll=True)

        backend = Backend(lambda fn, x: jax.value_and_grad(fn)(x), call, unrolled)
        return self.ascend(backend, image, shifts, step_size, max_loss, weights, inputs, layout)

    def run(self, image, shifts, step_size, max_loss, weights, inputs, layout):
        trainable = [v.value for v in self.model.trainable_variables]
        non_trainable = [v.value for v in self.model.non_trainable_variables]
        return self._octave(trainable, non_trainable, image, shifts, step_size, max_loss, weights,
                            inputs, layout=layout)


def compiled(fn):
    """`fn`, a function of backend tensors written in `keras.ops`, compiled with XLA for the
    active backend (TensorFlow: a `tf.function` with `jit_compile`; JAX: `jax.jit`): traced
    once per input shape, then one fused program on the tensors' device."""
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    if name == "jax":
        import jax

        return jax.jit(fn)
    raise _unsupported(name)


def _unsupported(name: str) -> RuntimeError:
    return RuntimeError(f"the {name} backend is not supported: set KERAS_BACKEND=tensorflow or jax")


# --- The compute precision `dream.precision: auto` chooses -----------------------------------
# bfloat16 pays only where the hardware computes in it: an AVX2-only CPU emulates it (slower
# than float32), a GPU before compute capability 8 (Ampere) has no bf16 tensor cores. Where
# it does compute in bf16, it is chosen per model from measurements (`PRECISION_TABLE`, which
# `scripts/bench.py --precision` writes): depthwise convolutions (MobileNetV2) ran slower in
# bf16 on a CPU that has it.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
BF16_COMPUTE_CAPABILITY = (8, 0)
PRECISION_TABLE = "precision.json"  # beside this module: the package's measurements


@dataclass(frozen=True)
class PrecisionChoice:
    """The compute precision of a Dreamer (float32 or bfloat16) and why it was chosen."""

    precision: str
    reason: str

    def __str__(self) -> str:
        return f"{self.precision}: {self.reason}"


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as the kernel reports them (empty where it does not)."""
    try:
        with open(cpuinfo) as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (`platform.processor()` where /proc/cpuinfo has none)."""
    try:
        with open(cpuinfo) as info:
            for line in info:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def gpu_compute_capability() -> tuple[int, int] | None:
    """The first GPU's CUDA compute capability, e.g. (9, 0) for an H100; None without one
    (or where the backend does not say)."""
    if not has_accelerator():
        return None
    name = keras.backend.backend()
    try:
        if name == "jax":
            import jax

            given = getattr(jax.devices()[0], "compute_capability", None)
            return tuple(int(part) for part in str(given).split(".")[:2]) if given else None
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        given = details.get("compute_capability")
        return tuple(given[:2]) if given else None
    except Exception:  # a backend or driver that does not report it: treat as unknown
        return None


def device_kind(flags: frozenset[str] | None = None, capability: tuple[int, int] | None = None,
                accelerator: bool | None = None) -> tuple[str, str]:
    """(kind, description) of the device that computes: kind "gpu" (bf16 tensor cores), "cpu-bf16"
    (native bf16 arithmetic), or "float32" where bf16 is not native (with the reason)."""
    accelerator = has_accelerator() if accelerator is None else accelerator
    if accelerator:
        capability = gpu_compute_capability() if capability is None else capability
        if capability is None or tuple(capability) < BF16_COMPUTE_CAPABILITY:
            shown = "unknown" if capability is None else ".".join(map(str, capability))
            return "float32", f"this GPU (compute capability {shown}) has no bf16 tensor cores"
        return "gpu", f"bf16 tensor cores (compute capability {'.'.join(map(str, capability))})"
    flags = cpu_flags() if flags is None else flags
    present = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    if not present:
        return "float32", f"this CPU has no native bf16 arithmetic (no {' or '.join(BF16_CPU_FLAGS)} flag)"
    return "cpu-bf16", f"this CPU computes in bf16 ({', '.join(present)})"


def size_class(height: int, width: int, measured) -> int:
    """The measured side (pixels) nearest to a height × width frame's, by area on a log scale."""
    import math

    side = math.sqrt(max(1, height) * max(1, width))
    return min((int(s) for s in measured), key=lambda s: abs(math.log(s / side)))


def precision_tables() -> list[dict]:
    """The measurements `auto` reads: this machine's own (`scripts/bench.py --precision --save`
    writes them to the user's cache folder) before the package's."""
    import json
    from pathlib import Path

    from animator.engine.compile_cache import user_cache_folder

    tables = []
    for folder in (user_cache_folder(), Path(__file__).parent):
        try:
            tables.append(json.loads((folder / PRECISION_TABLE).read_text()))
        except (OSError, ValueError):
            continue
    return tables


def choose_precision(model: str, size: tuple[int, int] | None = None, *, kind=None,
                     tables: list[dict] | None = None) -> PrecisionChoice:
    """`dream.precision: auto` for zoo model `model` at a frame of `size` (height, width): bfloat16
    where the device computes in it and it measured faster for this model at the nearest
    measured size, float32 elsewhere. Reads no clock: on a device without native bf16 it costs
    only a look at /proc/cpuinfo (or the GPU's compute capability)."""
    kind, description = device_kind() if kind is None else kind
    if kind == "float32":
        return PrecisionChoice("float32", description)
    backend = keras.backend.backend()
    for table in precision_tables() if tables is None else tables:
        sizes = table.get(kind, {}).get(backend, {}).get(model)
        if sizes:
            side = size_class(*(size or (256, 256)), sizes)
            times = sizes[str(side)]
            faster = times["bfloat16"] < times["float32"]
            ratio = times["float32"] / times["bfloat16"]
            return PrecisionChoice("bfloat16" if faster else "float32",
                                   f"{description}; bf16 measured {ratio:.2f}x float32's speed for "
                                   f"{model} at {side}² on {table.get('measured_on', {}).get(kind, kind)}")
    if kind == "gpu":
        return PrecisionChoice("bfloat16", description)
    return PrecisionChoice("float32", f"{description}, but bf16 is not measured for {model} on "
                                      f"{backend} here: scripts/bench.py --precision measures it")
