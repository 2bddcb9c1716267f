"""Schedules: constants, keyframes (linear, smooth, step), Deforum strings, safe expressions."""

import math
import time

import numpy as np
import pytest

from animator.settings.errors import ConfigError
from animator.settings.schedule import parse


def test_number_is_constant():
    schedule = parse(1.5)
    assert schedule.constant == 1.5
    assert schedule(0) == 1.5 and schedule(1000) == 1.5
    assert isinstance(schedule(3), float)


def test_expression_is_not_constant():
    assert parse("1 + t").constant is None
    assert parse({0: 1.0, 10: 2.0}).constant is None


def test_same_source_gives_equal_schedules():
    assert parse("1 + t") == parse("1 + t")
    assert parse(1.0) != parse(2.0)


def test_linear_keyframes_interpolate_and_hold():
    schedule = parse({0: 1.0, 10: 2.0, 20: 0.0})
    assert schedule(5) == pytest.approx(1.5)
    assert schedule(10) == pytest.approx(2.0)
    assert schedule(15) == pytest.approx(1.0)
    assert schedule(-3) == pytest.approx(1.0)  # before the first: hold
    assert schedule(99) == pytest.approx(0.0)  # after the last: hold


def test_keyframes_out_of_order_are_sorted():
    assert parse({10: 2.0, 0: 1.0})(5) == pytest.approx(1.5)


def test_smooth_keyframes_follow_smoothstep():
    schedule = parse({"keyframes": {0: 0.0, 10: 1.0}, "interpolation": "smooth"})
    assert schedule(0) == 0.0
    assert schedule(2.5) == pytest.approx(0.15625)  # 3u² - 2u³ at u = 1/4
    assert schedule(5) == pytest.approx(0.5)
    assert schedule(7.5) == pytest.approx(0.84375)
    assert schedule(10) == pytest.approx(1.0)


def test_step_keyframes_hold_until_the_next():
    schedule = parse({"keyframes": {0: 1.0, 10: 3.0}, "interpolation": "step"})
    assert schedule(9.9) == 1.0
    assert schedule(10) == 3.0
    assert schedule(50) == 3.0


def test_linear_is_the_default_in_the_long_form():
    assert parse({"keyframes": {0: 0.0, 4: 1.0}})(1) == pytest.approx(0.25)


def test_keyframe_values_may_be_expressions():
    schedule = parse({0: "t", 10: "2*t"})
    assert schedule(5) == pytest.approx(5 + (10 - 5) * 0.5)


def test_deforum_string():
    schedule = parse("0:(1.0), 120:(1.05)")
    assert schedule(60) == pytest.approx(1.025)
    assert schedule(200) == pytest.approx(1.05)


def test_deforum_values_are_expressions_with_nested_parentheses():
    schedule = parse(" 0: (1 + sin(0)) , 4:(max(1, 2)*(t/4))")
    assert schedule(2) == pytest.approx(1 + (2 * 2 / 4 - 1) * 0.5)
    assert schedule(8) == pytest.approx(4.0)


def test_expression_of_t():
    schedule = parse("1.02 + 0.01*sin(t/8)")
    assert schedule(8) == pytest.approx(1.02 + 0.01 * math.sin(1.0))


def test_expression_arithmetic_comparison_and_constants():
    assert parse("2**3 + 7 // 2 + 7 % 4 - -1")(0) == 2**3 + 3 + 3 + 1
    assert parse("(t > 5) * 10")(6) == 10.0
    assert parse("(t > 5) * 10")(5) == 0.0
    assert parse("1 < t <= 3")(3) == 1.0
    assert parse("pi + e + floor(2.7) + ceil(0.2) + abs(-1) + sqrt(4)")(0) == pytest.approx(
        math.pi + math.e + 2 + 1 + 1 + 2
    )
    assert parse("min(3, t, 5) + max(1, 2, 0)")(1) == 1 + 2


def test_expression_vectorised_over_n():
    schedule = parse("n / 2 + t", names=("t", "n"))
    np.testing.assert_allclose(schedule(1, n=np.arange(4.0)), [1.0, 1.5, 2.0, 2.5])
    steps = parse("where(n > 1, 5, 0) + min(n, 2)", names=("t", "n"))
    np.testing.assert_allclose(steps(0, n=np.arange(4.0)), [0.0, 1.0, 7.0, 7.0])


def test_n_is_refused_where_the_transform_does_not_supply_it():
    with pytest.raises(ConfigError, match="unknown name 'n'"):
        parse("n / 15", "transforms[0].zoom.factor")


def test_unknown_name_message_names_path_expression_and_allowed():
    with pytest.raises(ConfigError) as caught:
        parse("1 + x", "transforms[0].zoom.factor")
    message = str(caught.value)
    assert message.startswith(
        "transforms[0].zoom.factor: unknown name 'x' in expression '1 + x'; allowed: t, "
    )
    assert "sin" in message and "cos" in message


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "__import__('os').system('true')",
        "t.__class__",
        "(1).real",
        "open('x')",
        "'a' * 3",
        "lambda: 1",
        "[i for i in range(3)]",
        "{1: 2}",
        "sin(x=1)",
        "sin(*[1])",
        "t if t else 1",
        "t and 1",
        "globals()",
        "x := 1",
    ],
)
def test_unsafe_or_unknown_expressions_are_refused_at_parse_time(expression):
    with pytest.raises(ConfigError, match=r"^p\.q: .*"):
        parse(expression, "p.q")


def test_syntax_error_is_a_config_error():
    with pytest.raises(ConfigError, match=r"p: invalid expression '1 \+'"):
        parse("1 +", "p")


def test_wrong_arity_fails_at_load_time():
    with pytest.raises(ConfigError, match="p: cannot evaluate"):
        parse("sin(1, 2, 3)", "p")


def test_huge_powers_do_not_hang():
    start = time.monotonic()
    schedule = parse("10**10**10", "p")
    with pytest.raises(ConfigError, match="not finite"):
        schedule(0)
    assert time.monotonic() - start < 1.0


def test_non_finite_value_names_path_and_frame():
    schedule = parse("1 / (t - 3)", "transforms[2].zoom.factor")
    assert schedule(4) == 1.0
    with pytest.raises(ConfigError, match=r"transforms\[2\]\.zoom\.factor: .* at t=3"):
        schedule(3)


@pytest.mark.parametrize(
    "value, message",
    [
        (True, "expected a number"),
        (None, "expected a number"),
        ([1, 2], "expected a number, keyframes or an expression, got list"),
        (float("nan"), "finite"),
        ({}, "at least one keyframe"),
        ({-1: 1.0}, "must be >= 0"),
        ({"a": 1.0}, "'a' is not a frame number"),
        ({0: [1]}, "expected a number or an expression"),
        ({0: "1 + y"}, "unknown name 'y'"),
        ({"keyframes": {0: 1}, "interpolation": "cubic"}, "expected one of"),
        ({"keyframes": {0: 1}, "ease": "x"}, "unknown key"),
        ({"keyframes": 3}, "expected a mapping"),
        ("0:(1.0), 10:(2.0", "unbalanced"),
        ("0:(1.0) 10:(2.0)", "expected ','"),
        ("0:(1.0), x:(2.0)", "expected 'frame:\\(value\\)'"),
    ],
)
def test_bad_values_fail_with_the_path(value, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse(value, "dream.step_size")
    assert str(caught.value).startswith("dream.step_size")


def test_unexpected_names_at_call_time_are_a_type_error():
    with pytest.raises(TypeError):
        parse("t")(0, n=np.arange(3))
