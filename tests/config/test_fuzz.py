"""Random and mutated configs and expressions against `animator render --dry-run`, in-process.

Whatever a user types, the command answers with exit 0 (a valid config) or 2 (one error line
naming the problem): never 1 (an internal error), never a traceback, each within a time bound
(Hypothesis' deadline) and in bounded memory (the process's peak grows by less than 300 MB).
"""

from __future__ import annotations

import resource
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_robustness import TINY

from animator.cli import main

PREFIX = "animator: error: "
BASE = {**TINY, "transforms": [{"zoom": {"factor": 1.05}}, {"roll": {"shift": "2*sin(n/9 + t)"}}],
        "color": {"coherence": "none"}, "output": {"path": "out/f.gif"}}
KEYS = [
    "input", "input.noise", "input.noise.size", "input.noise.seed", "size", "fit", "frames", "fps",
    "seed", "max_pixels", "dream", "dream.model", "dream.weights", "dream.layers", "dream.objective",
    "dream.octaves", "dream.octave_scale", "dream.steps", "dream.step_size", "dream.jitter",
    "dream.tile_size", "dream.max_loss", "dream.cadence", "dream.normalisation", "dream.precision",
    "dream.xla", "transforms", "color", "color.coherence", "color.strength", "output", "output.format",
    "output.reverse", "output.pingpong", "output.loop", "output.quality", "output.palette",
    "output.checkpoint_every", "frmes", "dream.stepz", "output.path",
]  # fmt: skip
TRANSFORMS = ["zoom", "rotate", "translate", "stretch", "affine", "blur", "hue_shift", "sobel",
              "prewitt", "roll", "sine_shift", "stochastic_shift", "color_match", "zooom", "eval"]
PARAMETERS = ["factor", "center", "degrees", "dx", "dy", "sigma", "shift", "axis", "group",
              "matrix", "amplitude", "period", "speed", "low", "high", "strength", "fill",
              "interpolation", "sharpen", "keep_color", "look", "rounding", "__class__"]
# Expression pieces: the language's own words and some it refuses.
TOKENS = ["t", "n", "1", "0", "2.5", "1e308", "-", "+", "*", "/", "**", "%", "//", "(", ")", ",",
          "sin(", "cos(", "exp(", "log(", "sqrt(", "min(", "max(", "clip(", "where(", "pow(",
          "<", "==", "pi", "e", "x", "__import__(", "'a'", "[1]", "lambda:", ".real", " "]

numbers = st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
expressions = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
leaves = st.none() | st.booleans() | numbers | st.text(max_size=20) | expressions
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6) | st.integers(-3, 10**7), inner, max_size=4),
    max_leaves=16,
)
transform_items = st.one_of(
    st.sampled_from(TRANSFORMS),
    st.builds(lambda name, params: {name: params}, st.sampled_from(TRANSFORMS),
              st.dictionaries(st.sampled_from(PARAMETERS), values, max_size=3)),
    values,
)
chains = st.tuples(st.just("transforms"), st.lists(transform_items, max_size=4))
changes = st.lists(st.tuples(st.sampled_from(KEYS), values) | chains, min_size=1, max_size=5)
FUZZ = settings(max_examples=100, deadline=timedelta(seconds=10), database=None,
                # capsys is read (and so emptied) after every example
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def set_path(data: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    node = data
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


def dry_run(folder: Path, text: str, capsys) -> None:
    """Render `text` as a config with --dry-run; check the exit status and the error line."""
    config = folder / "f.yaml"
    config.write_text(text, encoding="utf-8", errors="surrogatepass")
    code = main(["render", str(config), "--dry-run"])
    captured = capsys.readouterr()
    assert code in (0, 2), (text, captured.err)
    assert "Traceback" not in captured.err, captured.err
    if code == 2:
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert lines[-1].startswith(PREFIX) and "internal error" not in lines[-1], captured.err
        assert len(lines[-1]) < 4000, lines[-1][:300]


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 300, f"peak memory grew by {grown_mb:.0f} MB"


@FUZZ
@given(changes=changes)
def test_a_mutated_config_is_accepted_or_refused_in_one_line(changes, folder, capsys):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in changes:
        set_path(data, key, value)
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return  # not representable as YAML: nothing a user could type
    dry_run(folder, text, capsys)


@FUZZ
@given(expression=expressions, where=st.sampled_from(["dream.step_size", "dream.steps", "dream.jitter",
                                                      "dream.octave_scale", "roll"]))
def test_a_random_expression_is_accepted_or_refused_in_one_line(expression, where, folder, capsys):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    if where == "roll":
        data["transforms"][1]["roll"]["shift"] = expression
    else:
        set_path(data, where, expression)
    dry_run(folder, yaml.safe_dump(data), capsys)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3), st.text(max_size=3)), max_size=6))
def test_mutated_yaml_text_is_accepted_or_refused_in_one_line(edits, folder, capsys):
    text = yaml.safe_dump(BASE) + "anchor: &a [1, 2]\nalias: *a\n"
    for position, kind, insert in edits:
        at = position % (len(text) + 1)
        text = text[:at] + insert + text[at + kind:]  # replace `kind` characters by `insert`
    dry_run(folder, text, capsys)


def declared_numbers() -> list[tuple[str, str | None]]:
    """Every number a config declares, as (key path, transform): the animation's, each section's,
    the noise input's and the clip's (config models), and each built-in transform's parameters."""
    import transforms as registry
    from animator.settings import params

    found = [(name if section == "animation" else f"{section}.{name}", None)
             for section, table in params.SECTIONS.items() for name, param in table.items()
             if _numeric(param.annotation, param.default)]
    found += [("input.noise.seed", None), ("input.noise.size", None), ("input.start", None),
              ("input.end", None), ("size", None)]
    for name in registry.available():
        if name in registry.active() and registry.get(name).source == "built-in":
            found += [(param.name, name) for param in registry.get(name).params
                      if _numeric(param.annotation, param.default)]
    return found


def _numeric(annotation, default) -> bool:
    import typing

    options = typing.get_args(annotation) or (annotation,)
    return any(option in (int, float) for option in options) or (
        annotation is None and isinstance(default, (int, float)) and not isinstance(default, bool))


DECLARED = declared_numbers()
EXTREMES = st.sampled_from([-1, 0, -(10**30), 10**30, 10**400, -(10**400), 1e308, -1e308, 1e-308,
                            2**63, float("nan"), float("inf"), float("-inf")])


@FUZZ
@given(where=st.sampled_from(DECLARED), value=EXTREMES, pair=st.booleans())
def test_extreme_values_of_every_declared_number_are_accepted_or_refused(where, value, pair, folder,
                                                                           capsys):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    key, transform = where
    value = [value, value] if pair and key in ("size", "input.noise.size") else value
    if transform is not None:
        data["transforms"] = [{transform: {key: value}}]
    elif key.startswith("input.") and key.split(".")[1] in ("start", "end"):
        data["input"] = {"video": "clip.mp4", key.split(".")[1]: value}
    else:
        set_path(data, key, value)
    dry_run(folder, yaml.safe_dump(data, allow_unicode=True), capsys)


def test_the_declared_numbers_include_every_section_and_transform():
    keys = {key if transform is None else f"{transform}.{key}" for key, transform in DECLARED}
    assert {"seed", "fps", "dream.jitter", "dream.octave_scale", "video.every", "output.loop",
            "input.noise.seed", "zoom.factor", "roll.group", "affine.sharpen"} <= keys
