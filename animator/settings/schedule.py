"""Schedules: a numeric parameter as a constant, keyframes, or a safe math expression of `t`.

`t` is the frame index (0-based); a transform may supply more names, e.g. `n`, the column index of
a column roll, as a numpy array: the expression is then evaluated for all columns at once. Inside
`signals(values)` (a config with `audio:` loads in it), expressions may also use per-frame signals,
the soundtrack's features (`animator.media.audio.FEATURES`: `loudness`, `bass`, ...), each read at
frame `t` (0 past its end): they are bound when the expression is parsed.

Accepted forms (parsed and checked once, at load time):

- a number: ``1.05``
- keyframes: ``{0: 1.0, 120: 1.05}`` (linear), or
  ``{"keyframes": {0: 1.0, 120: 1.05}, "interpolation": "linear" | "smooth" | "step"}``
- a Deforum keyframe string: ``"0:(1.0), 120:(1.05 + 0.01*sin(t/8))"``; each value is an expression
- an expression: ``"1.02 + 0.01*sin(t/8)"``

Before the first and after the last keyframe the value holds. Expressions are read with `ast` and
walked by a small evaluator that knows numbers, arithmetic, comparisons, the allowed names and the
math functions below; anything else (attributes, strings, imports, lambdas...) is refused.
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import contextvars
import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from animator.settings.errors import ConfigError, close_names, excerpt

# The soundtrack's features (`animator.media.audio`), one value per frame each: schedule
# variables beside `t` in a config with `audio:`.
SIGNALS = ("loudness", "onset", "beat", "bass", "mid", "treble")

__all__ = ["FUNCTIONS", "INTERPOLATIONS", "SIGNALS", "Schedule", "parse", "signals"]

INTERPOLATIONS = ("linear", "smooth", "step")
MAX_EXPRESSION_LENGTH = 1000  # characters
MAX_EXPRESSION_DEPTH = 60  # nested operations: evaluation recurses once per level
MAX_FRAMES = 1_000_000  # the most frames a render may have (`frames`'s declared range reads it)


def _reduce(ufunc):
    return lambda first, *rest: functools.reduce(ufunc, rest, first)


# Elementwise so that `n` may be an array; min/max take any number of arguments.
FUNCTIONS: dict[str, Callable] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "abs": np.abs, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log10": np.log10,
    "floor": np.floor, "ceil": np.ceil, "round": np.round, "sign": np.sign,
    "min": _reduce(np.minimum), "max": _reduce(np.maximum),
    "clip": np.clip, "where": np.where, "hypot": np.hypot, "pow": np.power,
}  # fmt: skip
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}

_BINARY = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide, ast.Mod: np.mod, ast.Pow: np.power,
}  # fmt: skip
_UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}
_COMPARE = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
    ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal,
}  # fmt: skip


@dataclass(frozen=True)
class Schedule:
    """A parsed numeric parameter: call it with the frame index `t` (and any extra names).

    `source` is the value as written in the config; two schedules from the same source are equal.
    """

    source: object
    path: str = field(default="value", compare=False)
    names: tuple[str, ...] = field(default=("t",), compare=False)
    _evaluate: Callable = field(default=None, repr=False, compare=False)
    _constant: float | None = field(default=None, repr=False, compare=False)

    @property
    def constant(self) -> float | None:
        """The value when it never changes (a plain number), else None."""
        return self._constant

    @property
    def keyframes(self) -> tuple[int, ...]:
        """The frames where keyframes are set (where the value may turn), else ()."""
        return getattr(self._evaluate, "keyframes", ())

    def __call__(self, t: float, **names) -> float | np.ndarray:
        """Value at frame `t`: a float, or an array shaped like an array-valued name (`n`)."""
        unknown = set(names) - set(self.names)
        if unknown:
            raise TypeError(f"{self.path}: unexpected names {sorted(unknown)}")
        if self._constant is not None:
            value = self._constant
        else:
            with np.errstate(all="ignore"):
                value = self._evaluate(np.float64(t), names)
        if isinstance(value, float):  # a keyframe's number: checked without numpy's overhead
            if not math.isfinite(value):
                raise ConfigError(f"{self.path}: {self.source!r} is not finite at t={t}")
            return value
        value = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(value)):
            raise ConfigError(f"{self.path}: {self.source!r} is not finite at t={t}")
        return float(value) if value.ndim == 0 else value


_BOUND: contextvars.ContextVar[Mapping[str, np.ndarray] | None] = contextvars.ContextVar(
    "signals", default=None)


@contextlib.contextmanager
def signals(values: Mapping[str, np.ndarray]) -> Iterator[None]:
    """Within this block, expressions parsed may use `values`' names (one value per frame, e.g.
    the soundtrack's features); each schedule keeps the values it was parsed with."""
    token = _BOUND.set(dict(values))
    try:
        yield
    finally:
        _BOUND.reset(token)


def is_number(value: object) -> bool:
    """An int or float, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite_float(value: int | float, path: str) -> float:
    """`value` as a finite float; ConfigError naming `path` for nan, inf, or an integer past
    the largest float (1e308: Python's integers have no bound, a float's range has)."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{path}: expected a finite number, got {excerpt(value)}")
    return number


def parse(value: object, path: str = "value", names: tuple[str, ...] = ("t",)) -> Schedule:
    """Parse a config value into a Schedule; `names` are the variables expressions may use.

    Raises ConfigError naming `path` and the bad value.
    """
    if isinstance(value, Schedule):
        return value
    names = tuple(names)
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"{path}: expected a number, keyframes or an expression, got {excerpt(value)}")
    if isinstance(value, (int, float)):
        return Schedule(value, path, names, None, finite_float(value, path))
    if isinstance(value, Mapping):
        evaluate = _keyframes_from_mapping(value, path, names)
    elif isinstance(value, str):
        if _DEFORUM_START.match(value):
            evaluate = _keyframes(_deforum_keyframes(value, path, names), "linear")
        else:
            evaluate = compile_expression(value, path, names)
    else:
        raise ConfigError(
            f"{path}: expected a number, keyframes or an expression, got {type(value).__name__} "
            f"{excerpt(value)}"
        )
    schedule = Schedule(value, path, names, evaluate, None)
    _try(schedule, path)
    return schedule


def _try(schedule: Schedule, path: str) -> None:
    """Evaluate once at load time so that wrong arities fail now, not at frame 500."""
    trial = {name: np.arange(3.0) for name in schedule.names if name != "t"}
    try:
        with np.errstate(all="ignore"):
            schedule._evaluate(np.float64(0.0), trial)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: cannot evaluate {schedule.source!r}: {error}") from error


# --- keyframes ----------------------------------------------------------------------------------


def _keyframes_from_mapping(value: Mapping, path: str, names: tuple[str, ...]) -> Callable:
    if "keyframes" in value:
        extra = set(value) - {"keyframes", "interpolation"}
        if extra:
            raise ConfigError(
                f"{path}.{sorted(map(str, extra))[0]}: unknown key; expected keyframes, "
                "interpolation"
            )
        interpolation = value.get("interpolation", "linear")
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"{path}.interpolation: expected one of {list(INTERPOLATIONS)}, "
                f"got {interpolation!r}"
            )
        frames = value["keyframes"]
        if not isinstance(frames, Mapping):
            raise ConfigError(f"{path}.keyframes: expected a mapping frame: value, got {excerpt(frames)}")
        return _keyframes(_keyframe_values(frames, f"{path}.keyframes", names), interpolation)
    return _keyframes(_keyframe_values(value, path, names), "linear")


def _keyframe_values(frames: Mapping, path: str, names: tuple[str, ...]) -> list:
    """[(frame, evaluate)] sorted by frame; each value is a number or an expression."""
    if not frames:
        raise ConfigError(f"{path}: needs at least one keyframe")
    points = []
    for key, item in frames.items():
        frame = _frame_number(key, path)
        item_path = f"{path}[{frame}]"
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise ConfigError(f"{item_path}: expected a number or an expression, got {excerpt(item)}")
        if isinstance(item, str):
            points.append((frame, compile_expression(item, item_path, names)))
        else:
            points.append((frame, _constant_function(finite_float(item, item_path))))
    return sorted(points, key=lambda point: point[0])


def _frame_number(key: object, path: str) -> int:
    try:
        frame = int(str(key).strip())
    except ValueError:
        raise ConfigError(f"{path}: keyframe {key!r} is not a frame number") from None
    if frame < 0:
        raise ConfigError(f"{path}: keyframe {frame} must be >= 0")
    if frame > MAX_FRAMES:  # never reached, and past float64's exact integers
        raise ConfigError(f"{path}: keyframe {excerpt(frame, 40)} is past the longest render "
                          f"({MAX_FRAMES:,} frames)")
    return frame


def _constant_function(value: float) -> Callable:
    return lambda t, names: value


def _keyframes(points: list, interpolation: str) -> Callable:
    """Interpolate between keyframes; hold before the first and after the last."""
    frames = [frame for frame, _ in points]

    def evaluate(t, names):
        after = bisect.bisect_right(frames, float(t))  # a list: searchsorted would copy it per call
        if after == 0:
            return points[0][1](t, names)
        if after == len(points):
            return points[-1][1](t, names)
        (start, value_a), (end, value_b) = points[after - 1], points[after]
        fraction = _ease(interpolation, (float(t) - start) / (end - start))
        a = value_a(t, names)
        return a if fraction == 0.0 else a + (value_b(t, names) - a) * fraction

    evaluate.keyframes = tuple(frames)
    return evaluate


def _ease(interpolation: str, u: float) -> float:
    """Fraction of the way from one keyframe to the next; `smooth` is smoothstep 3u² - 2u³."""
    if interpolation == "step":
        return 0.0
    if interpolation == "smooth":
        return u * u * (3.0 - 2.0 * u)
    return u


_DEFORUM_START = re.compile(r"\s*\d+\s*:\s*\(")
_DEFORUM_KEY = re.compile(r"\s*(\d+)\s*:\s*\(")


def _deforum_keyframes(text: str, path: str, names: tuple[str, ...]) -> list:
    """Read `"0:(1.0), 120:(1.05)"`: frame:(expression) pairs separated by commas."""
    frames, position = {}, 0
    while position < len(text):
        match = _DEFORUM_KEY.match(text, position)
        if not match:
            rest = text[position:]
            raise ConfigError(f"{path}: expected 'frame:(value)' at {rest!r} in {text!r}")
        close = _closing_parenthesis(text, match.end(), path)
        frames[match.group(1)] = text[match.end() : close]
        position = close + 1
        separator = re.match(r"\s*(,|$)", text[position:])
        if not separator:
            raise ConfigError(f"{path}: expected ',' after keyframe in {text!r}")
        position += separator.end()
    return _keyframe_values(frames, path, names)


def _closing_parenthesis(text: str, start: int, path: str) -> int:
    depth = 1
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    raise ConfigError(f"{path}: unbalanced parentheses in {text!r}")


# --- expressions --------------------------------------------------------------------------------


def compile_expression(text: str, path: str, names: tuple[str, ...] = ("t",)) -> Callable:
    """Check `text` and return `evaluate(t, names) -> value`; raises ConfigError if not allowed.

    An expression is at most `MAX_EXPRESSION_LENGTH` characters and `MAX_EXPRESSION_DEPTH`
    operations deep (`1+1+1` is 2 deep), so that reading and evaluating it stay quick.
    """
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ConfigError(f"{path}: expression {excerpt(text, 40)} is {len(text):,} characters long, "
                          f"over the limit of {MAX_EXPRESSION_LENGTH:,}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ConfigError(f"{path}: invalid expression {text!r}: {error.msg}") from None
    except (RecursionError, MemoryError):  # the parser's own nesting limits
        tree = None
    if tree is None or _depth(tree) > MAX_EXPRESSION_DEPTH:
        raise ConfigError(f"{path}: expression {excerpt(text, 40)} nests over "
                          f"{MAX_EXPRESSION_DEPTH} operations deep: write it shorter")
    bound = _BOUND.get() or {}
    known = (*names, *bound)
    allowed = ", ".join([*known, *CONSTANTS, *FUNCTIONS])
    for node in ast.walk(tree):
        problem = _refuse(node, known)
        if problem:
            raise ConfigError(f"{path}: {problem} in expression {text!r}; allowed: {allowed}"
                              f"{_signal_hint(node, bound)}")
    body = tree.body
    used = {node.id: bound[node.id] for node in ast.walk(tree)
            if isinstance(node, ast.Name) and node.id in bound and node.id not in names}
    if not used:
        return lambda t, values: _evaluate(body, {"t": t, **values})
    return lambda t, values: _evaluate(body, {"t": t, **_signals_at(used, t), **values})


def _signal_hint(node: ast.AST, bound: Mapping) -> str:
    """For an unknown name: that a soundtrack feature needs `audio:`, or the feature meant."""
    if not isinstance(node, ast.Name):
        return ""
    if node.id in SIGNALS and node.id not in bound:
        return f"; {node.id!r} is a feature of the soundtrack: give the config an `audio:` track"
    near = close_names(node.id, SIGNALS, n=2)
    return f"; the soundtrack's features are {', '.join(SIGNALS)}.{near}" if near else ""


def _signals_at(used: Mapping[str, np.ndarray], t) -> dict:
    """Each signal's value at frame `t` (rounded down), 0 past its end."""
    index = int(np.floor(t))
    return {name: np.float64(values[index]) if 0 <= index < len(values) else np.float64(0.0)
            for name, values in used.items()}


def _depth(tree: ast.AST) -> int:
    """How deep the operations nest (a walk without recursion: it measures untrusted trees)."""
    deepest, pending = 0, [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_EXPRESSION_DEPTH:
            pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                           if not isinstance(child, (ast.expr_context, ast.operator, ast.unaryop,
                                                     ast.cmpop)))
    return deepest


def _refuse(node: ast.AST, names: tuple[str, ...]) -> str | None:
    """Why `node` is not allowed in an expression, or None."""
    if isinstance(node, ast.Name):
        if node.id in names or node.id in CONSTANTS or node.id in FUNCTIONS:
            return None
        return f"unknown name {node.id!r}"
    if isinstance(node, ast.Constant):
        if not is_number(node.value):
            return f"{type(node.value).__name__} constant {node.value!r} not allowed"
        try:
            float(node.value)
        except OverflowError:  # evaluated as float64: an integer past 1e308 has no value
            return f"constant {excerpt(node.value, 40)} is past the largest number (1e308)"
        return None
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            return f"call of {ast.unparse(node.func)!r} not allowed"
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            return f"keyword or starred arguments in {ast.unparse(node)!r} not allowed"
        return None
    if type(node) in _ALLOWED_NODES:
        return None
    return f"{type(node).__name__.lower()} {ast.unparse(node)!r} not allowed"


_ALLOWED_NODES = {
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Load,
    *_BINARY, *_UNARY, *_COMPARE,
}  # fmt: skip


def _evaluate(node: ast.AST, values: dict):
    """Walk a checked expression tree; numbers are float64 so `**` cannot build huge integers."""
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.Name):
        if node.id in values:
            return values[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise TypeError(f"name {node.id!r} is not supplied here")
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, values))
    if isinstance(node, ast.Compare):
        return _compare(node, values)
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*(_evaluate(arg, values) for arg in node.args))
    raise TypeError(f"unsupported {type(node).__name__}")


def _compare(node: ast.Compare, values: dict):
    """`a < b < c` as (a < b) & (b < c), as 1.0/0.0 so results can enter arithmetic."""
    left, result = _evaluate(node.left, values), True
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _evaluate(right_node, values)
        result = np.logical_and(result, _COMPARE[type(op)](left, right))
        left = right
    return np.asarray(result, dtype=np.float64)


def sample_frames(frames: int, schedules=(), count: int = 1000) -> list[int]:
    """Frames at which to check schedules without visiting every frame of a long render: all of
    an animation up to `2 * count` frames; else the first `count`, `count` evenly spaced, each
    keyframe of `schedules` with its neighbours, and the last."""
    if frames <= 2 * count:
        return list(range(max(1, frames)))
    picks = {*range(count), frames - 1}
    picks.update(round(t) for t in np.linspace(0, frames - 1, count))
    for parsed in schedules:
        picks.update(t + d for t in parsed.keyframes for d in (-1, 0, 1))
    return sorted(t for t in picks if 0 <= t < frames)


def first_outside(schedule: Schedule, allowed: Callable[[float], bool], frames: int,
                  integer: bool = False) -> tuple[int, float] | None:
    """The first frame t of a `frames`-long render whose value `allowed` refuses, with that value;
    or None. The frames are those `sample_frames` picks (all of them up to 2000 frames).

    `integer`: the value is rounded first, as an int parameter is. A constant is checked once.
    This is the one place a schedule's range is checked over a render's frames.
    """
    for t in [0] if schedule.constant is not None else sample_frames(frames, [schedule]):
        value = schedule(t)
        value = float(round(value)) if integer else value
        if not allowed(value):
            return t, value
    return None
