"""The transform chain: built and checked once from the config's list, applied to every frame.

The YAML form is a list; each item is a name, or a one-key mapping name -> parameters::

    - zoom: {factor: 1.04}
    - roll: {shift: "n / 15", axis: columns}
    - sobel

A name may also say where it comes from, `my_effects.py:vignette` or `package.module:vignette`:
the plugin is loaded first. Numeric parameters are schedules (`animator.settings.schedule`), evaluated at
the frame index. Each transform's output is checked (same shape, float; finite when it was made
on the host), so a broken plugin fails at once with its name, its source and the frame.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from animator.settings import schedule
from animator.settings.errors import ConfigError, PluginError, close_names, excerpt
from animator.settings.schedule import Schedule, is_number
from transforms.context import Context
from transforms.registry import BUILT_IN, Param, Profile, Registry, Transform, active, type_name

__all__ = ["Chain", "Step", "apply", "build_chain", "value_problems"]


@dataclass(frozen=True)
class Integer:
    """A schedule whose value is rounded to a whole number (an `int` parameter)."""

    schedule: schedule.Schedule


@dataclass(frozen=True)
class Along:
    """A schedule of `n` and `t` handed to the transform as a function of `n` (a Profile)."""

    schedule: schedule.Schedule


def evaluate(value: object, t: int) -> object:
    """The value of a compiled parameter at frame `t`."""
    if isinstance(value, schedule.Schedule):
        return value(t)
    if isinstance(value, Integer):
        return int(round(value.schedule(t)))
    if isinstance(value, Along):
        return functools.partial(_along, value.schedule, t)
    if isinstance(value, (list, tuple)):
        return type(value)(evaluate(item, t) for item in value)
    return value


def _along(profile: schedule.Schedule, t: int, n: np.ndarray) -> np.ndarray:
    n = np.asarray(n, dtype=np.float64)
    return np.broadcast_to(np.asarray(profile(t, n=n), dtype=np.float64), n.shape)


@dataclass(frozen=True)
class Step:
    """One transform of the chain with its compiled parameters; `path` locates it in the config."""

    transform: Transform
    params: Mapping[str, object]
    path: str

    @property
    def name(self) -> str:
        return self.transform.name

    def arguments(self, t: int) -> dict:
        """The parameters' values at frame `t`."""
        return {name: evaluate(value, t) for name, value in self.params.items()}

    def run(self, frame, ctx: Context):
        """Apply the transform to `frame` (a backend tensor): its parameters' values at this
        frame are checked first (`Transform.check_values`), then what it returns."""
        arguments = self.arguments(ctx.index)
        self.transform.check_values(arguments, ctx.index)
        return self._call(self.transform.function, frame, ctx, arguments)

    def undo(self, frame, ctx: Context):
        """Apply the transform's inverse to `frame`: what it made at frame `ctx.index` carried
        back to before it (the parameters, checked when it ran forward, with their defaults)."""
        arguments = self.transform.with_defaults(self.arguments(ctx.index))
        return self._call(self.transform.inverse, frame, ctx, arguments, "inverse ")

    def _call(self, function, frame, ctx: Context, arguments: dict, what: str = ""):
        from keras import ops

        given = ops.convert_to_numpy(frame) if self.transform.numpy else frame
        try:
            result = function(given, ctx, **arguments)
        except (Exception, SystemExit) as error:  # sys.exit() in a plugin: reported, frames kept
            raise self._error(ctx, f"{what}failed: {type(error).__name__}: {error}") from error
        return self._checked(result, tuple(frame.shape), ctx)

    def _checked(self, result, expected: tuple, ctx: Context):
        from keras import backend, ops

        try:  # what a plugin returns may be anything: an object with a `shape` of 5
            shape = tuple(result.shape)
            dtype = np.dtype(result.dtype).name if isinstance(result, np.ndarray) else \
                backend.standardize_dtype(result.dtype)
        except (AttributeError, TypeError, ValueError):
            raise self._error(ctx, f"returned {type(result).__name__}; expected an array") from None
        if shape != expected:
            raise self._error(ctx, f"returned shape {shape}; expected {expected}")
        if not dtype.startswith(("float", "bfloat")):  # numpy names strings and objects itself
            raise self._error(ctx, f"returned dtype {dtype}; expected a float array")
        # Checked here only when made on the host (reading a device frame back would make the
        # host wait for the device after every transform); the frame loop checks the frame once,
        # where its writer thread copies it anyway.
        if isinstance(result, np.ndarray) and not np.isfinite(result).all():
            raise self._error(ctx, "returned non-finite values (NaN or inf)")
        return ops.convert_to_tensor(result, dtype="float32")

    def _error(self, ctx: Context, what: str) -> PluginError:
        """`plugin` (a fact): the code that failed may change without changing the config, so a
        render can resume once it is fixed; a built-in's failure is its values' (or a bug)."""
        return PluginError(f"{self.transform.at(ctx.index)} {what}",
                           facts={"plugin": self.transform.source != BUILT_IN})

    def checked(self) -> Step:
        """The step with only the parameters its transform checks: those with a declared range,
        or all of them if it has a `check`."""
        transform = self.transform
        if transform.check is not None:
            return self
        params = {name: value for name, value in self.params.items()
                  if getattr(transform.param(name), "range", None) is not None}
        return Step(transform, types.MappingProxyType(params), self.path)

    def schedules(self) -> list[Schedule]:
        """The schedules of its numbers (an int's included), not those of a Profile."""
        return [item for value in self.params.values() for item in _schedules_in(value)]


def _schedules_in(value) -> list[Schedule]:
    """The schedules of a compiled value, those inside lists (a matrix's numbers) too."""
    if isinstance(value, (list, tuple)):
        return [item for part in value for item in _schedules_in(part)]
    if isinstance(value, Integer):
        return [value.schedule]
    return [value] if isinstance(value, Schedule) else []


@dataclass(frozen=True)
class Chain:
    """Transforms applied in order between dreamed frames."""

    steps: tuple[Step, ...] = ()

    @property
    def names(self) -> list[str]:
        return [step.name for step in self.steps]

    def __len__(self) -> int:
        return len(self.steps)

    def apply(self, frame, ctx: Context):
        """Run every transform on `frame` (H×W×3, 0..255, tensor or numpy) at frame `ctx.index`.

        Returns a float32 backend tensor of the same shape. Raises PluginError naming the
        transform, its source and the frame when one fails or returns a bad frame.
        """
        from keras import ops

        frame = ops.convert_to_tensor(frame, dtype="float32")
        for step in self.steps:
            frame = step.run(frame, ctx)
        return frame

    @property
    def invertible(self) -> bool:
        """Whether every transform has an inverse (`Transform.inverse`), so `invert` can run."""
        return all(step.transform.inverse is not None for step in self.steps)

    def invert(self, frame, ctx: Context):
        """Carry `frame` back through the chain as it ran at frame `ctx.index`: each inverse, last
        transform first, so `invert(apply(f, ctx), ctx)` is `f` up to resampling and edges.

        `ctx.rng` is None: an inverse undoes the draws it cannot see, so it draws nothing.
        """
        from keras import ops

        frame = ops.convert_to_tensor(frame, dtype="float32")
        ctx = dataclasses.replace(ctx, rng=None)
        for step in reversed(self.steps):
            frame = step.undo(frame, ctx)
        return frame


def apply(chain: Chain, frame, ctx: Context):
    """`chain.apply(frame, ctx)`, as a function."""
    return chain.apply(frame, ctx)


# --- building -----------------------------------------------------------------------------------


def build_chain(
    spec: list | None,
    base_dir: str | Path | None = None,
    path: str = "transforms",
    registry: Registry | None = None,
    frames: int | None = None,
) -> Chain:
    """Check the config's list of transforms and compile its parameters into a Chain.

    `base_dir` (the config's folder) resolves plugin files named as `file.py:name`. The values of
    the parameters are checked (`value_problems`): constants once; with `frames`, schedules at
    the frames of a render that long. Every problem (unknown transform or parameter, bad value,
    bad schedule, a value out of range and the first frame where it is) is reported together in
    one ConfigError, one line per problem, each starting with its key path (and in its
    `problems`, beside that key path).
    """
    registry = registry or active()
    if spec is None:
        return Chain()
    if not isinstance(spec, (list, tuple)):
        raise ConfigError(f"{path}: expected a list of transforms, got {excerpt(spec)}")
    steps, problems = [], []
    for index, item in enumerate(spec):
        try:
            steps.append(_build_step(item, f"{path}[{index}]", base_dir, registry, problems))
        except ConfigError as error:
            problems.append((f"{path}[{index}]", str(error)))
    chain = Chain(tuple(steps))
    problems += value_problems(chain, frames)
    if problems:
        raise ConfigError("\n".join(line for _, line in problems), problems=problems)
    return chain


def value_problems(chain: Chain, frames: int | None) -> list[tuple[str, str]]:
    """(key path, line) for each parameter value a transform refuses (`Transform.value_problems`:
    a declared range, its `check`), at the first frame of 0..frames-1 where it does, frames as
    `schedule.sample_frames` picks them; a step whose numbers are all constant is checked once.
    With `frames` None, only such steps are checked. (The chain checks every frame it runs.)"""
    ranges, checks = [], []
    for step in chain.steps:
        checked = step.checked()
        scheduled = checked.schedules()
        constant = all(s.constant is not None for s in scheduled)
        if (checked.transform.check is None and not checked.params) or (not constant and frames is None):
            continue
        found: dict[str | None, tuple[str, str]] = {}
        for t in [0] if constant else schedule.sample_frames(frames, scheduled):
            try:
                problems = step.transform.value_problems(checked.arguments(t))
            except ConfigError as error:  # a schedule not finite at t
                found.setdefault("", (step.path, str(error)))
                break
            where = "" if constant else f" at frame {t}"
            for name, what in problems:
                path = f"{step.path}.{name}" if name else step.path
                found.setdefault(name, (path, f"{path}: {what}{where}"))
        ranges += [problem for name, problem in found.items() if name is not None]
        checks += [problem for name, problem in found.items() if name is None]
    return ranges + checks


def _build_step(item, path: str, base_dir, registry: Registry, problems: list) -> Step | None:
    spec = read_step(item, path)
    name, given = spec.written, dict(spec.params or {})
    transform = _lookup(spec, path, base_dir, registry)
    path = f"{path}.{name}"
    params = {}
    for key, value in given.items():
        param = transform.param(key)
        if param is None and not transform.accepts_any:
            expected = [p.name for p in transform.params]
            problems.append((f"{path}.{key}", f"{path}.{key}: unknown parameter; expected one of "
                             f"{expected}.{close_names(str(key), expected)}".rstrip(".")))
            continue
        try:
            params[key] = compile_value(param or Param(str(key)), value, f"{path}.{key}")
        except ConfigError as error:
            problems.append((f"{path}.{key}", str(error)))
    for param in transform.params:
        if param.required and param.name not in given:
            problems.append((f"{path}.{param.name}",
                             f"{path}.{param.name}: missing required parameter ({param})"))
    return Step(transform, types.MappingProxyType(params), path)


@dataclass(frozen=True)
class StepSpec:
    """A transform step as written in a config's `transforms:` list: `name`, `{name: params}`,
    or either with a plugin before the name (`file.py:name`, `module:name`). The one reading of
    that grammar: the chain, the config's file rule and the studio's plugin check all use it."""

    name: str
    plugin: str | None = None  # what comes before the last ':' (a file or a module), if anything
    params: Mapping | None = None  # as written; None where none were
    mapping: bool = False  # written as a one-key mapping

    @property
    def written(self) -> str:
        """The step's name as written, plugin included."""
        return self.name if self.plugin is None else f"{self.plugin}:{self.name}"

    @property
    def names_file(self) -> bool:
        """Whether the plugin before the name is a file (`file.py:name`), not a module."""
        from transforms.plugins import is_file_spec

        return self.plugin is not None and is_file_spec(self.plugin)

    def item(self, plugin: str | None = None):
        """The step written back, with its plugin replaced by `plugin` if given."""
        plugin = self.plugin if plugin is None else plugin
        name = self.name if plugin is None else f"{plugin}:{self.name}"
        return {name: self.params} if self.mapping else name


def read_step(item, path: str = "transforms") -> StepSpec:
    """A step of a `transforms:` list read as `StepSpec`; a ConfigError naming `path` for any
    other shape (a step is a name or a one-key mapping of a name to its parameters)."""
    if isinstance(item, str):
        return _spec(item)
    if isinstance(item, Mapping) and len(item) == 1:
        ((name, params),) = item.items()
        if params is not None and not isinstance(params, Mapping):
            raise ConfigError(f"{path}.{name}: expected a mapping of parameters, got {excerpt(params)}")
        return _spec(str(name), params, mapping=True)
    raise ConfigError(
        f"{path}: expected a transform name or a one-key mapping name: {{params}}, got {excerpt(item)}"
    )


def _spec(written: str, params: Mapping | None = None, mapping: bool = False) -> StepSpec:
    plugin, colon, name = written.rpartition(":")
    return StepSpec(name, plugin if colon else None, params, mapping)


def _lookup(spec: StepSpec, path: str, base_dir, registry: Registry) -> Transform:
    if spec.plugin is not None:
        from transforms.plugins import load_plugin

        try:
            load_plugin(spec.plugin, base_dir, registry)
        except PluginError as error:
            raise ConfigError(f"{path}: {error}") from error
    try:
        return registry.get(spec.name)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except PluginError as error:  # an entry point that fails to import
        raise ConfigError(f"{path}: {error}") from error


def compile_value(param: Param, value: object, path: str) -> object:
    """Check `value` against the parameter's annotation; numbers become schedules.

    float -> Schedule of t; int -> rounded Schedule; Profile -> schedule of n and t; bool, str and
    Literal choices are checked as they are; tuples and lists are compiled item by item.
    """
    annotation = param.annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Profile:
        return Along(schedule.parse(value, path, names=("t", "n")))
    if annotation is float:
        return schedule.parse(value, path)
    if annotation is int:
        return Integer(schedule.parse(value, path))
    if annotation is bool:
        return _expect(value, isinstance(value, bool), "true or false", path)
    if annotation is str:
        return _expect(value, isinstance(value, str), "a string", path)
    if origin is typing.Literal:
        return _expect(value, value in args, f"one of {list(args)}", path)
    if origin in (tuple, list):
        return _compile_sequence(param, origin, args, value, path)
    if annotation is None and is_number(param.default):
        return schedule.parse(value, path)
    return value  # an annotation the chain does not know: the transform checks it


def _compile_sequence(param: Param, origin, args: tuple, value: object, path: str):
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected a list ({type_name(param.annotation)}), got {excerpt(value)}")
    if origin is tuple and args and args[-1] is not Ellipsis and len(args) != len(value):
        raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}: {excerpt(value)}")
    items = []
    for index, item in enumerate(value):
        item_type = _item_type(origin, args, index)
        items.append(compile_value(Param(param.name, item_type), item, f"{path}[{index}]"))
    return origin(items)


def _item_type(origin, args: tuple, index: int):
    """The annotation of item `index` of a list[X], tuple[X, ...] or tuple[X, Y]."""
    if not args:
        return None
    return args[0] if origin is list or args[-1] is Ellipsis else args[index]


def _expect(value: object, ok: bool, what: str, path: str) -> object:
    if not ok:
        raise ConfigError(f"{path}: expected {what}, got {excerpt(value)}")
    return value
