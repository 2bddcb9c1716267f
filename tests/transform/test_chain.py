"""The chain: the YAML list form, checks at build time, per-frame schedules, output checks."""

import numpy as np
import pytest

import transforms
from animator.settings.errors import ConfigError
from transforms import Chain, Context, Profile, build_chain


@pytest.fixture
def registry():
    with transforms.isolated() as fresh:
        yield fresh


@pytest.fixture
def probe(registry):
    """A transform that records the arguments it receives and returns the frame."""
    seen = []

    @transforms.register("probe")
    def probe(
        frame,
        ctx,
        value: float = 0.0,
        count: int = 1,
        flag: bool = False,
        label: str = "",
        pair: tuple[float, float] = (0.0, 0.0),
        shift: Profile = 0.0,
    ):
        seen.append({"index": ctx.index, "value": value, "count": count, "flag": flag,
                     "label": label, "pair": pair, "shift": shift})  # fmt: skip
        return frame

    return seen


def frame(height=4, width=5):
    return np.random.default_rng(0).uniform(0, 255, (height, width, 3)).astype(np.float32)


def context(index=0):
    return Context(index, 100, (5, 4), np.random.default_rng(0))


def test_list_form_with_names_params_and_empty_params():
    chain = build_chain([{"zoom": {"factor": 1.04}}, {"roll": {"shift": "n / 15"}}, "sobel",
                         {"blur": None}])  # fmt: skip
    assert chain.names == ["zoom", "roll", "sobel", "blur"]
    assert len(chain) == 4
    assert chain.steps[0].path == "transforms[0].zoom"


def test_empty_chain_returns_the_frame_as_float32_tensor():
    out = build_chain(None).apply(frame(), context())
    assert len(build_chain([])) == 0
    np.testing.assert_array_equal(np.asarray(out), frame())
    assert not isinstance(out, np.ndarray)
    assert str(np.asarray(out).dtype) == "float32"


def test_chain_applies_in_order():
    flat = np.zeros((6, 6, 3), np.float32)
    flat[:, 3:] = 255.0
    edges_then_roll = np.asarray(build_chain(["sobel", {"roll": {"shift": 1, "axis": "rows"}}])
                                 .apply(flat, context()))  # fmt: skip
    roll_then_edges = np.asarray(build_chain([{"roll": {"shift": 1, "axis": "rows"}}, "sobel"])
                                 .apply(flat, context()))  # fmt: skip
    assert not np.array_equal(edges_then_roll, roll_then_edges)


def test_parameters_are_evaluated_at_the_frame_index(probe):
    chain = build_chain([{"probe": {"value": {0: 0.0, 10: 1.0}, "count": "t / 4",
                                    "pair": ["t", 2], "shift": "n * t"}}])  # fmt: skip
    chain.apply(frame(), context(index=6))
    seen = probe[-1]
    assert seen["value"] == pytest.approx(0.6)
    assert seen["count"] == 2 and isinstance(seen["count"], int)  # 1.5 rounds to 2
    assert seen["pair"] == (6.0, 2.0)
    np.testing.assert_allclose(seen["shift"](np.arange(3)), [0.0, 6.0, 12.0])


def test_a_constant_profile_is_broadcast_over_n(probe):
    build_chain([{"probe": {"shift": 3}}]).apply(frame(), context())
    np.testing.assert_allclose(probe[-1]["shift"](np.arange(4)), [3.0] * 4)


def test_defaults_are_used_for_missing_parameters(probe):
    build_chain(["probe"]).apply(frame(), context())
    assert probe[-1]["value"] == 0.0 and probe[-1]["label"] == ""


def test_unknown_transform_names_the_path_and_close_names():
    with pytest.raises(ConfigError) as caught:
        build_chain(["sobel", {"zooom": {"factor": 1.1}}])
    message = str(caught.value)
    assert message.startswith("transforms[1]: unknown transform 'zooom'. Did you mean: zoom?")


def test_unknown_parameter_names_the_key_path_and_expected_ones():
    with pytest.raises(ConfigError) as caught:
        build_chain([{"zoom": {}}, {"roll": {"shfit": 3}}])
    assert str(caught.value) == (
        "transforms[1].roll.shfit: unknown parameter; expected one of "
        "['shift', 'axis', 'group', 'rounding']. "
        "Did you mean: shift?"
    )


def test_bad_schedule_names_the_key_path():
    with pytest.raises(ConfigError, match=r"^transforms\[0\]\.zoom\.factor: unknown name 'x'"):
        build_chain([{"zoom": {"factor": "1 + x"}}])


def test_every_problem_is_reported_together():
    with pytest.raises(ConfigError) as caught:
        build_chain([{"zoom": {"factor": "1 + x", "centre": [0.5, 0.5]}}, "nope"])
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("transforms[0].zoom.factor:")
    assert lines[1].startswith("transforms[0].zoom.centre: unknown parameter")
    assert lines[2].startswith("transforms[1]: unknown transform 'nope'")


@pytest.mark.parametrize(
    "item, message",
    [
        ({"zoom": {"fill": "mirror"}}, r"transforms\[0\]\.zoom\.fill: expected one of \['reflect'"),
        ({"zoom": {"center": [0.5]}}, r"transforms\[0\]\.zoom\.center: expected 2 items"),
        ({"zoom": {"center": 0.5}}, r"transforms\[0\]\.zoom\.center: expected a list"),
        ({"zoom": {"center": [0.5, "y"]}}, r"transforms\[0\]\.zoom\.center\[1\]: unknown name"),
        ({"sobel": {"keep_color": "yes"}}, r"transforms\[0\]\.sobel\.keep_color: expected true"),
        ({"affine": {}}, r"transforms\[0\]\.affine\.matrix: missing required parameter"),
        ({"affine": {"matrix": [[1, 0, "q"]]}}, r"affine\.matrix\[0\]\[2\]: unknown name 'q'"),
        ({"zoom": 1.1}, r"transforms\[0\]\.zoom: expected a mapping of parameters"),
        ({"zoom": {}, "roll": {}}, r"transforms\[0\]: expected a transform name or a one-key"),
        ({"roll": {"shift": "n + m"}}, r"roll\.shift: unknown name 'm'"),
        ({"zoom": {"factor": "n"}}, r"zoom\.factor: unknown name 'n'"),
    ],
)
def test_bad_items_fail_at_build_time_with_the_key_path(item, message):
    with pytest.raises(ConfigError, match=message):
        build_chain([item])


def test_the_spec_must_be_a_list():
    with pytest.raises(ConfigError, match="^steps: expected a list of transforms"):
        build_chain({"zoom": {}}, path="steps")


def test_transforms_with_any_parameters_take_them_through(registry):
    @transforms.register("open")
    def open_ended(frame, ctx, **params):
        assert params == {"anything": [1, 2]}
        return frame

    build_chain([{"open": {"anything": [1, 2]}}]).apply(frame(), context())


def test_unannotated_numeric_defaults_are_schedules(registry):
    seen = []

    @transforms.register("plain")
    def plain(frame, ctx, amount=1.0, name="x"):
        seen.append((amount, name))
        return frame

    build_chain([{"plain": {"amount": "t * 2", "name": "y"}}]).apply(frame(), context(3))
    assert seen == [(6.0, "y")]


def test_apply_function_and_chain_value():
    chain = build_chain(["sobel"])
    assert isinstance(chain, Chain)
    a = np.asarray(transforms.apply(chain, frame(), context()))
    np.testing.assert_array_equal(a, np.asarray(chain.apply(frame(), context())))


def test_a_schedule_that_goes_non_finite_names_its_path(registry):
    chain = build_chain([{"zoom": {"factor": "1 / (t - 2)"}}])
    with pytest.raises(ConfigError, match=r"transforms\[0\]\.zoom\.factor: .* at t=2"):
        chain.apply(frame(), context(index=2))


@pytest.mark.parametrize(("matrix", "says"), [
    ([[1, 0], [0, 1]], "2 or 3 rows of 3 numbers.*got \\[2, 2\\]"),
    ([[1, 0, 0]], "got \\[3\\]"),
    ([[1, 0, 0], [0, 1, 0], [0, 0.001, 1]], "third row must be \\[0, 0, 1\\]"),
])
def test_a_bad_affine_matrix_is_refused_when_the_config_loads(matrix, says):
    with pytest.raises(ConfigError, match=r"transforms\[1\]\.affine: matrix: .*" + says):
        build_chain(["sobel", {"affine": {"matrix": matrix}}])


def test_an_affine_matrix_with_scheduled_numbers_passes_the_load_check():
    chain = build_chain([{"affine": {"matrix": [[1, 0, "t * 2"], [0, 1, 0], [0, 0, 1]]}}])
    assert chain.names == ["affine"]


def test_a_plugin_can_check_its_parameters_when_the_config_loads():
    def odd_only(params):
        if params.get("size", 1) % 2 == 0:
            raise ValueError("size: must be odd")

    with transforms.registry.isolated() as registry:
        registry.register("box", check=odd_only)(lambda frame, ctx, size: frame)
        assert len(build_chain([{"box": {"size": 3}}], registry=registry)) == 1
        with pytest.raises(ConfigError, match=r"transforms\[0\]\.box: size: must be odd"):
            build_chain([{"box": {"size": 4}}], registry=registry)


def test_a_step_is_read_by_one_function_in_each_of_its_forms():
    from transforms import StepSpec, read_step

    assert read_step("zoom") == StepSpec("zoom")
    assert read_step({"zoom": {"factor": 2}}) == StepSpec("zoom", None, {"factor": 2}, True)
    assert read_step({"zoom": None}) == StepSpec("zoom", None, None, True)
    spec = read_step({"fx/my_effects.py:vignette": {"strength": 1}})
    assert (spec.plugin, spec.name, spec.names_file) == ("fx/my_effects.py", "vignette", True)
    assert spec.item("/abs/fx/my_effects.py") == {"/abs/fx/my_effects.py:vignette": {"strength": 1}}
    module = read_step("my_package.effects:vignette")
    assert (module.plugin, module.names_file, module.item()) == ("my_package.effects", False,
                                                                 "my_package.effects:vignette")
    for bad, says in ((["zoom"], "expected a transform name"), ({"a": 1, "b": 2}, "one-key mapping"),
                      ({"zoom": 3}, "transforms.zoom: expected a mapping of parameters")):
        with pytest.raises(ConfigError, match=says):
            read_step(bad)
