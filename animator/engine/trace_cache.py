"""TensorFlow's traced octaves on disk, so a later process skips the trace of the model's gradient.

Tracing an octave (Python building the graph of the model's forward pass and its gradient through
Keras' layers) costs seconds in a render's first frame: 3.4 s of InceptionV3's 7.2 s at 256². The
trace's result is a library of FunctionDefs that holds no weights (they are captured variables). A
traced octave is stored as that library, its functions renamed after the entry's key, and what
it captures: the positions in `model.weights` of its variables, the values of its small constants
(a preprocessing's mean). A later process with the same key
registers the functions with the eager runtime and calls them with its own variables' handles: a
few milliseconds instead of the trace. The runtime still optimises the graph on the first call.

The key covers everything a trace reads: the TensorFlow and Keras versions, the engine's source,
the model (a zoo name, or a model file's path, size and modification time) with its layers'
classes, dtype policies and variable shapes, the objective's terms without their weights
(weights are arguments), the octave's layout and signature, and XLA. Models given as a
`keras.Model`, or with layers from outside Keras, are not cached: their Python code is not part of
any key. An entry that cannot be read or does not fit is ignored, and the octave is traced again.

The folder is `$ANIMATOR_TF_CACHE` if set (`off` turns the cache off), else
`$XDG_CACHE_HOME/deepdream-animator/tensorflow`; it keeps the `MAX_ENTRIES` most recently used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import threading
import time
from pathlib import Path

from animator.engine.compile_cache import cache_folder

ENV_VAR = "ANIMATOR_TF_CACHE"
MAX_ENTRIES = 64
MAX_CONSTANT = 4096  # elements: a captured constant larger than this is not kept in an entry
SUFFIX = ".trace"
PART = ".part"  # an entry being written
_FORMAT = 1


def folder(environ=None) -> Path | None:
    """Where traced octaves go: the environment's choice, or the user's cache folder."""
    return cache_folder(environ, ENV_VAR, "tensorflow")


def model_source(model, spec, preprocess: str | None = None) -> str | None:
    """What identifies a Dreamer's model for the cache: its zoo name, or a model file's resolved
    path, size and modification time, with its preprocessing; None for a `keras.Model` (its
    code is nobody's key)."""
    from animator.engine.models import OBJECT

    if spec.default_weights == OBJECT or not isinstance(model, str):
        return None
    preprocess = preprocess or spec.preprocess
    if spec.default_weights != "file":
        return f"zoo:{spec.name}:{preprocess}"
    try:
        path = Path(model).resolve()
        stat = path.stat()
    except OSError:
        return None
    return f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}:{preprocess}"


def model_fingerprint(model) -> list | None:
    """The layers' classes and dtype policies and the variables' shapes and dtypes, in order;
    None where a layer's class is not Keras' own (its code could change under one name)."""
    layers = []
    for layer in model._flatten_layers(include_self=False):
        kind = type(layer)
        if not kind.__module__.startswith("keras.") or kind.__name__ == "Lambda":
            return None
        layers.append([kind.__name__, getattr(layer.dtype_policy, "name", str(layer.dtype_policy))])
    variables = [[list(v.shape), str(v.dtype)] for v in model.weights]
    return [layers, variables]


def objective_description(objective) -> list:
    """The objective's terms as the trace reads them: their kinds, layers, channels and
    reductions; not their weights (arguments of the octave) nor a guide's image (its features
    are arguments too)."""
    return [[type(term).__name__,
             {field.name: getattr(term, field.name) for field in dataclasses.fields(term)
              if field.name not in ("weight", "image")}]
            for term in objective.terms]


@functools.cache
def _engine_digest() -> str:
    """A digest of the engine's source files that shape a trace."""
    digest = hashlib.sha256()
    for name in ("ascent.py", "backend.py", "objective.py", "models.py", "trace_cache.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def key(source: str, model, objective, layout, signature: str, xla: bool) -> str | None:
    """The entry's name for one traced octave, or None where it cannot be cached."""
    import keras
    import tensorflow as tf

    fingerprint = model_fingerprint(model)
    if fingerprint is None:
        return None
    facts = [_FORMAT, tf.__version__, keras.__version__, _engine_digest(), source, fingerprint,
             objective_description(objective), list(layout), signature, bool(xla)]
    return hashlib.sha256(json.dumps(facts, default=repr).encode()).hexdigest()[:32]


class Restored:
    """A traced octave registered from the cache: called like the `tf.function` it was."""

    def __init__(self, name: str, handles: list, outputs: int):
        self.name, self._handles, self._outputs = name.encode(), handles, outputs

    def __call__(self, *args):
        import tensorflow as tf
        from tensorflow.python.eager import context

        flat = tf.nest.flatten(args)
        return tuple(context.context().call_function(self.name, flat + self._handles, self._outputs))


def load(entry: str, variables, args) -> Restored | None:
    """The cached octave `entry` for a model with `variables` (its `weights`), called with
    `args`; None where there is none, or it does not fit."""
    import tensorflow as tf
    from tensorflow.core.framework import function_pb2
    from tensorflow.python.eager import context

    where = folder()
    if where is None:
        return None
    path = where / f"{entry}{SUFFIX}"
    try:
        data = path.read_bytes()
        size = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + size])
        library = function_pb2.FunctionDefLibrary.FromString(data[8 + size:])
        main = next(f for f in library.function if f.signature.name == meta["name"])
        captured = [variables[c].handle if isinstance(c, int) else tf.constant(c["value"], c["dtype"])
                    for c in meta["captures"]]
        flat = tf.nest.flatten(args)
        wanted = [arg.type for arg in main.signature.input_arg]
        if wanted != [t.dtype.as_datatype_enum for t in flat + captured]:
            return None
        ctx = context.context()
        for function in library.function:  # callees before their callers, as stored
            if not ctx.has_function(function.signature.name):
                ctx.add_function_def(function)
    except Exception:  # a missing, partly written, foreign or stale entry: trace instead
        return None
    try:
        os.utime(path)  # recently used: kept longest
    except OSError:
        pass
    return Restored(meta["name"], captured, meta["outputs"])


def store(entry: str, concrete, variables) -> bool:
    """Keep `concrete` (the octave's traced function) as `entry`; False where it captures
    something other than `variables` and small constants (then it is not cached) or the folder
    cannot be written."""
    from tensorflow.core.framework import function_pb2

    where = folder()
    if where is None:
        return False
    positions = {id(v.handle): i for i, v in enumerate(variables)}
    captures = [positions.get(id(tensor), _constant(tensor)) for tensor in concrete.captured_inputs]
    if None in captures:
        return False
    functions = [*concrete.graph.as_graph_def().library.function, concrete.function_def]
    names = {f.signature.name: f"animator_{entry}_{i}" for i, f in enumerate(functions)}
    library = function_pb2.FunctionDefLibrary()
    for function in functions:
        renamed = library.function.add()
        renamed.CopyFrom(function)
        _rename(renamed, names)
    meta = json.dumps({"name": names[concrete.function_def.signature.name], "captures": captures,
                       "outputs": len(concrete.function_def.signature.output_arg)}).encode()
    data = len(meta).to_bytes(8, "little") + meta + library.SerializeToString()
    partial = where / f".{entry}.{os.getpid()}.{threading.get_ident()}{PART}"
    try:
        where.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, where / f"{entry}{SUFFIX}")
        _evict(where)
    except OSError:  # a full disk or a read-only folder: the cache only saves time
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        return False
    return True


def _constant(tensor) -> dict | None:
    """A captured constant as the entry keeps it; None for anything else (a resource, a large
    tensor)."""
    import tensorflow as tf

    if tensor.dtype == tf.resource or tensor.shape.num_elements() is None \
            or tensor.shape.num_elements() > MAX_CONSTANT:
        return None
    try:
        return {"value": tensor.numpy().tolist(), "dtype": tensor.dtype.name}
    except (AttributeError, TypeError, ValueError):  # not an eager tensor with a value
        return None


def _rename(function, names: dict) -> None:
    """Rename `function` and every function its nodes call (While bodies, calls) after `names`."""
    function.signature.name = names.get(function.signature.name, function.signature.name)
    for node in function.node_def:
        if node.op in names:
            node.op = names[node.op]
        for value in node.attr.values():
            if value.HasField("func") and value.func.name in names:
                value.func.name = names[value.func.name]
            for called in value.list.func:
                if called.name in names:
                    called.name = names[called.name]


def _evict(where: Path) -> None:
    """Remove all but the MAX_ENTRIES most recently used entries, and writes a killed process
    left unfinished over an hour ago."""
    def used(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile by another process
            return time.time()

    for stale in sorted(where.glob(f"*{SUFFIX}"), key=used, reverse=True)[MAX_ENTRIES:]:
        stale.unlink(missing_ok=True)
    for partial in where.glob(f".*{PART}"):
        if used(partial) < time.time() - 3600:
            partial.unlink(missing_ok=True)
