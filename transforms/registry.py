"""The transform registry: name -> function, with its parameters read from the signature.

A transform is `fn(frame, ctx, **params) -> frame`. Register it with a decorator or a call::

    @register("zoom")
    def zoom(frame, ctx, factor: float = 1.05): ...

    register("my_zoom")(zoom)

Lookups that miss scan the `animator.transforms` entry point group once (lazily), so installed
plugin packages are found without importing them up front.
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from animator.settings.errors import ConfigError, PluginError, TransformValueError, close_names
from animator.settings.params import REQUIRED, Range, range_of, type_name
from animator.settings.params import Parameter as Param
from animator.settings.schedule import is_number

__all__ = [
    "ENTRY_POINT_GROUP",
    "Param",
    "Profile",
    "Range",
    "Registry",
    "Transform",
    "active",
    "available",
    "describe",
    "get",
    "isolated",
    "register",
]

ENTRY_POINT_GROUP = "animator.transforms"
BUILT_IN = "built-in"
# What `describe` says of a transform with and without an inverse (`dream.cadence`).
CARRIED_BACK = "invertible: at dream.cadence > 1 the next dream is carried back through it"
CARRIED_FORWARD = "no inverse: at dream.cadence > 1 its chain carries dreams forward only"


class Profile:
    """Annotation of a parameter that varies along an axis: a schedule of `n` and `t`.

    `n` is the column (or row, or group) index. The transform receives a function of `n`
    (a numpy array of indices) that returns one float per index, `t` already applied.
    """

    type_label = "f(n, t)"


@dataclass(frozen=True)
class Transform:
    """A registered transform. `numpy=True` means it takes and returns numpy arrays; `check`,
    if given, is called with the parameters' values at each frame (defaults filled in; numbers
    as Python numbers) and raises ValueError for values the annotations cannot catch (a matrix
    of the wrong shape, `low` above `high`).

    Calling it, `transforms.get("zoom")(frame, ctx, factor=1.1)`, checks the values (declared
    ranges and `check`) at frame `ctx.index` before the function runs, as the chain does on
    every frame; the bare function is not checked.

    `inverse`, if given, is `fn(frame, ctx, **params)` that undoes the transform with the same
    parameters (all of them, defaults filled in): at `dream.cadence` > 1 the frame loop carries
    the next dream back through it (`Chain.invert`). It must not draw from `ctx.rng` (None there).
    """

    name: str
    function: Callable
    description: str
    params: tuple[Param, ...]
    accepts_any: bool = False
    numpy: bool = False
    source: str = BUILT_IN
    check: Callable[[dict], None] | None = None
    inverse: Callable | None = None

    def __call__(self, frame, ctx, **params):
        """The function applied to `frame` at frame `ctx.index`, once `check_values` passes."""
        self.check_values(params, ctx.index)
        return self.function(frame, ctx, **params)

    def param(self, name: str) -> Param | None:
        return next((param for param in self.params if param.name == name), None)

    def value_problems(self, values: Mapping[str, object]) -> list[tuple[str | None, str]]:
        """What is wrong with the parameters' `values` at one frame (as the function receives
        them): (name, 'must be > 0, got -1') for a number outside its declared range (an int
        parameter's value rounded first), (None, its message) for what `check` refuses.

        Only Python numbers are compared (a tensor is left alone: nothing is read back from a
        device); parameters not given take their defaults.
        """
        problems = []
        for name, value in values.items():
            param = self.param(name)
            if param is None or param.range is None or not is_number(value):
                continue
            value = round(value) if param.annotation is int else value
            if violation := param.range.violation(value):
                problems.append((name, f"{violation}, got {value:g}"))
        if self.check is not None:
            try:  # a Profile's function of n is not a value to check
                self.check(self.with_defaults({k: v for k, v in values.items() if not callable(v)}))
            except (ValueError, TypeError) as error:
                problems.append((None, str(error)))
            except Exception as error:  # the check's own bug: said as the plugin's, not ours
                problems.append((None, f"its check failed: {type(error).__name__}: {error}"))
        return problems

    def check_values(self, values: Mapping[str, object], frame: int) -> None:
        """Raise TransformValueError naming the transform, the frame, the parameter and its value
        if `values` (the parameters' values at `frame`) break a declared range or `check`."""
        problems = self.value_problems(values)
        if problems:
            name, what = problems[0]
            raise TransformValueError(f"{self.at(frame)}: {name + ': ' if name else ''}{what}")

    def with_defaults(self, given: Mapping[str, object]) -> dict:
        """`given` over the declared defaults: what the function receives."""
        return {**{p.name: p.default for p in self.params if not p.required}, **given}

    def at(self, frame: int) -> str:
        """`transform 'zoom' (built-in) at frame 3`: how messages about one frame begin."""
        return f"transform {self.name!r} ({self.origin}) at frame {frame}"

    @property
    def origin(self) -> str:
        """Where it comes from, for messages: 'built-in' or 'plugin my_effects.py'."""
        return self.source if self.source == BUILT_IN else f"plugin {self.source}"


def signature_params(function: Callable) -> tuple[tuple[Param, ...], bool]:
    """The parameters after (frame, ctx), and whether it takes **params of any name.

    `Annotated[float, Range(gt=0), "help"]` declares a range (or annotated-types' `Gt(0)`, ...)
    and a one-line help text; numbers are schedules of the frame index.
    """
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # unresolvable annotations: keep them as written
        hints = {}
    positional = list(signature.parameters.values())
    if len(positional) < 2 or any(
        p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in positional[:2]
    ):
        raise TypeError("a transform must take (frame, ctx, **params)")
    params, accepts_any = [], False
    for parameter in positional[2:]:
        if parameter.kind is parameter.VAR_KEYWORD:
            accepts_any = True
        elif parameter.kind is not parameter.VAR_POSITIONAL:
            params.append(_param(parameter, hints.get(parameter.name, parameter.annotation)))
    return tuple(params), accepts_any


def _param(parameter: inspect.Parameter, annotation: object) -> Param:
    annotation, metadata = None if annotation is REQUIRED else annotation, ()
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *metadata = typing.get_args(annotation)
    bounds = range_of(metadata)
    help = next((item for item in metadata if isinstance(item, str)), "")
    scheduled = annotation in (int, float, Profile) or (
        annotation is None and isinstance(parameter.default, (int, float))
        and not isinstance(parameter.default, bool))
    if bounds is not None and annotation not in (int, float, None):
        raise TypeError(f"parameter {parameter.name!r}: a range needs an int or float, "
                        f"not {type_name(annotation)}")
    return Param(parameter.name, annotation, parameter.default, bounds, help, scheduled)


def first_line(function: Callable) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Transforms by name. `entry_point_group=None` turns off the entry point scan."""

    def __init__(self, entry_point_group: str | None = ENTRY_POINT_GROUP):
        self.entry_point_group = entry_point_group
        self._transforms: dict[str, Transform] = {}
        self._loading: str | None = None  # the plugin being imported, recorded as the source
        self._scanned = False
        self.loaded_plugins: set[str] = set()

    def register(self, name: str | Callable | None = None, *, numpy: bool = False,
                 check: Callable[[dict], None] | None = None, inverse: Callable | None = None):
        """Register `fn(frame, ctx, **params)` under `name` (default: the function's name).

        Usable as `@register`, `@register("zoom")`, `@register("x", numpy=True)` or
        `register("x")(fn)`. `check(params)` validates the parameters' values at each frame;
        `inverse(frame, ctx, **params)` undoes it (see `Transform`). Returns the function unchanged.
        """
        if callable(name):
            return self.register(None, numpy=numpy, check=check, inverse=inverse)(name)

        def decorator(function: Callable) -> Callable:
            self.add(function, name or function.__name__, numpy=numpy, check=check, inverse=inverse)
            return function

        return decorator

    def add(self, function: Callable, name: str, numpy: bool = False,
            check: Callable[[dict], None] | None = None,
            inverse: Callable | None = None) -> Transform:
        source = self._loading or _module_source(function)
        try:
            params, accepts_any = signature_params(function)
        except (TypeError, ValueError) as error:
            raise PluginError(f"transform {name!r} ({source}): {error}") from None
        existing = self._transforms.get(name)
        if existing and existing.function is not function and existing.source != source:
            raise PluginError(f"transform {name!r} from {source} clashes with the one from {existing.origin}")
        transform = Transform(name, function, first_line(function), params, accepts_any, numpy,
                              source, check, inverse)
        self._transforms[name] = transform
        return transform

    def get(self, name: str) -> Transform:
        """The transform called `name`; raises ConfigError with the close names if none."""
        if name not in self._transforms:
            self.load_entry_points(name)
        if name not in self._transforms:
            names = self.available()
            raise ConfigError(
                f"unknown transform {name!r}.{close_names(name, names)} Available: {', '.join(names)}"
            )
        return self._transforms[name]

    def __contains__(self, name: str) -> bool:
        return name in self._transforms

    def available(self) -> list[str]:
        """All names, sorted: registered ones and those entry points offer (not yet loaded)."""
        return sorted(set(self._transforms) | {ep.name for ep in self._entry_points()})

    def describe(self) -> list[str]:
        """Lines for `animator transforms`: each name with its parameters, then its description.

        Entry point plugins are loaded first; one that fails is listed with its error.
        """
        failures = {}
        for entry_point in self._entry_points():
            try:
                self._load_entry_point(entry_point)
            except PluginError as error:
                failures[entry_point.name] = str(error)
        lines = []
        for name in self.available():
            transform = self._transforms.get(name)
            if transform is None:
                lines += [f"{name}", f"    failed to load: {failures.get(name, 'not registered')}"]
                continue
            params = ", ".join([*map(str, transform.params), *(["**params"] * transform.accepts_any)])
            origin = "" if transform.source == BUILT_IN else f"  [{transform.origin}]"
            lines += [f"{name}({params}){origin}", f"    {transform.description}",
                      f"    {CARRIED_BACK if transform.inverse else CARRIED_FORWARD}"]
        return lines

    @contextlib.contextmanager
    def loading(self, source: str) -> Iterator[None]:
        """Record `source` as the origin of everything registered inside the block."""
        previous, self._loading = self._loading, source
        try:
            yield
        finally:
            self._loading = previous

    # --- entry points -------------------------------------------------------------------------

    def _entry_points(self) -> list:
        if self.entry_point_group is None:
            return []
        from importlib.metadata import entry_points

        return list(entry_points(group=self.entry_point_group))

    def load_entry_points(self, name: str | None = None) -> None:
        """Load the entry points called `name` (all when None).

        If none provides `name`, the module entry points are loaded too: a module may register
        more transforms than the one its entry point is named after.
        """
        entry_points = self._entry_points()
        for entry_point in entry_points:
            if name is None or entry_point.name == name:
                self._load_entry_point(entry_point)
        if name is not None and name not in self._transforms:
            for entry_point in entry_points:
                if not entry_point.attr:
                    self._load_entry_point(entry_point)

    def _load_entry_point(self, entry_point) -> None:
        """An entry point names a module that registers transforms, or one function to register."""
        source = f"entry point {entry_point.name} = {entry_point.value}"
        if source in self.loaded_plugins:
            return
        with self.loading(source):
            try:
                loaded = entry_point.load()
            except Exception as error:
                raise PluginError(
                    f"plugin {entry_point.value!r} (entry point {entry_point.name!r}): "
                    f"import failed: {type(error).__name__}: {error}"
                ) from error
            if callable(loaded) and entry_point.name not in self._transforms:
                self.add(loaded, entry_point.name)
        self.loaded_plugins.add(source)


def _module_source(function: Callable) -> str:
    module = getattr(function, "__module__", None) or "?"
    return BUILT_IN if module.split(".")[0] == "transforms" else f"module {module}"


_active = Registry()


def active() -> Registry:
    """The registry that `register`, `get` and the chain use."""
    return _active


@contextlib.contextmanager
def isolated(builtins: bool = True, entry_points: bool = False) -> Iterator[Registry]:
    """Swap in a fresh registry for the block (for tests): built-ins kept unless told otherwise."""
    global _active
    previous = _active
    fresh = Registry(ENTRY_POINT_GROUP if entry_points else None)
    if builtins:
        fresh._transforms = {name: t for name, t in previous._transforms.items() if t.source == BUILT_IN}
    _active = fresh
    try:
        yield fresh
    finally:
        _active = previous


def register(name: str | Callable | None = None, *, numpy: bool = False,
             check: Callable[[dict], None] | None = None, inverse: Callable | None = None):
    """Register a transform in the active registry (see `Registry.register`)."""
    return _active.register(name, numpy=numpy, check=check, inverse=inverse)


def get(name: str) -> Transform:
    """Look up a transform in the active registry; ConfigError with close names if unknown."""
    return _active.get(name)


def available() -> list[str]:
    """Sorted names of every transform (built-ins, plugins, entry points)."""
    return _active.available()


def parameters() -> dict[str, tuple[Param, ...]]:
    """Every registered transform's parameters as `transforms.<name>` sections (built-ins, loaded
    plugins and installed entry points), beside `animator.settings.params.parameters()`."""
    from animator.settings.errors import PluginError

    try:
        active().load_entry_points()
    except PluginError:  # a broken plugin package: `animator transforms` names its error
        pass
    return {f"transforms.{name}": get(name).params for name in available() if name in active()}


def describe() -> list[str]:
    """Lines of text describing every transform, for `animator transforms`."""
    return _active.describe()
