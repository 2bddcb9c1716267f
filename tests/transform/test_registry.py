"""The transform registry: registration forms, introspected parameters, lookups, listing."""

import subprocess
import sys
from typing import Literal

import pytest

import transforms
from animator.settings.errors import ConfigError, PluginError
from transforms.registry import Profile, Registry


@pytest.fixture
def registry():
    """A fresh registry holding only the built-ins, active for the test."""
    with transforms.isolated() as fresh:
        yield fresh


def test_decorator_with_a_name_records_signature_and_description(registry):
    @transforms.register("glow")
    def glow(frame, ctx, radius: float = 2.0, mode: Literal["add", "screen"] = "add"):
        """Add a soft glow around bright areas.

        More text that is not part of the description.
        """
        return frame

    transform = transforms.get("glow")
    assert transform.function is glow
    assert transform.description == "Add a soft glow around bright areas."
    assert [(p.name, p.annotation, p.default) for p in transform.params] == [
        ("radius", float, 2.0),
        ("mode", Literal["add", "screen"], "add"),
    ]
    assert not transform.numpy
    assert transform.source.startswith("module ") and "test_registry" in transform.source


def test_call_form_and_bare_decorator_use_the_function_name(registry):
    def blend(frame, ctx, amount: float = 0.5):
        return frame

    transforms.register("mix")(blend)
    transforms.register(blend)
    assert {"mix", "blend"} <= set(transforms.available())
    assert transforms.get("mix").function is blend


def test_numpy_flag_is_recorded(registry):
    @transforms.register("flip", numpy=True)
    def flip(frame, ctx):
        return frame[::-1]

    assert transforms.get("flip").numpy


def test_required_parameters_and_any_parameters(registry):
    @transforms.register("custom")
    def custom(frame, ctx, matrix, **extra):
        return frame

    transform = transforms.get("custom")
    assert transform.params[0].required and transform.params[0].annotation is None
    assert transform.accepts_any


def test_builtins_are_registered():
    names = transforms.available()
    for name in [
        "zoom", "stretch", "rotate", "translate", "affine", "roll", "sine_shift",
        "stochastic_shift", "sobel", "prewitt", "blur", "color_match", "hue_shift",
    ]:  # fmt: skip
        assert name in names
    assert names == sorted(names)
    assert transforms.get("zoom").source == "built-in"
    assert transforms.get("roll").param("shift").annotation is Profile


def test_unknown_name_lists_close_and_available_names(registry):
    with pytest.raises(ConfigError) as caught:
        transforms.get("zom")
    message = str(caught.value)
    assert "unknown transform 'zom'" in message
    assert "Did you mean: zoom?" in message
    assert "Available: affine, blur," in message


def test_describe_lists_parameters_with_types_defaults_and_description():
    lines = transforms.describe()
    assert any(
        line.startswith("zoom(factor: float (>= 0.001 and <= 1000) = 1.05, "
                        "center: tuple[float, float] = (0.5, 0.5)")
        for line in lines
    )
    assert ("roll(shift: f(n, t) = 0.0, axis: columns|rows = 'columns', group: int (>= 1) = 1, "
            "rounding: nearest|truncate = 'nearest')") in lines
    index = lines.index(next(line for line in lines if line.startswith("sobel(")))
    assert lines[index + 1].strip().startswith("Sobel edge magnitude")


def test_a_function_without_frame_and_ctx_is_refused(registry):
    with pytest.raises(PluginError, match="must take \\(frame, ctx, \\*\\*params\\)"):
        transforms.register("bad")(lambda frame: frame)


def test_a_name_taken_by_another_source_is_refused(registry):
    def my_zoom(frame, ctx):
        return frame

    with registry.loading("other.py"):
        with pytest.raises(PluginError, match="'zoom' from other.py clashes with .*built-in"):
            transforms.register("zoom")(my_zoom)


def test_reloading_the_same_source_replaces(registry):
    with registry.loading("effects.py"):
        transforms.register("x")(lambda frame, ctx: frame)
        second = transforms.register("x")(lambda frame, ctx: frame + 1)
    assert transforms.get("x").function is second
    assert transforms.get("x").origin == "plugin effects.py"


def test_isolated_registry_is_discarded_after_the_block():
    with transforms.isolated() as fresh:
        transforms.register("temporary")(lambda frame, ctx: frame)
        assert "temporary" in fresh
        assert transforms.active() is fresh
    assert "temporary" not in transforms.available()


def test_empty_registry_without_builtins():
    with transforms.isolated(builtins=False):
        assert transforms.available() == []


def test_a_standalone_registry_object():
    def one(frame, ctx, k: int = 1):
        return frame

    registry = Registry(entry_point_group=None)
    registry.register("one")(one)
    assert registry.available() == ["one"]
    assert "one" in registry and "zoom" not in registry


def test_importing_transforms_and_listing_does_not_load_keras():
    code = (
        "import sys, transforms; lines = transforms.describe(); "
        "assert lines, 'nothing listed'; "
        "heavy = [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
