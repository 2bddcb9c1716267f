"""Shifts: exact whole-pixel column and row rolls with wrap-around, sine and random shifts."""

import numpy as np
import pytest

from animator.settings.errors import ConfigError
from transforms import Context, build_chain
from transforms.shifts import roll, roll_lines, sine_shift, stochastic_shift


def numbered(height=6, width=5):
    """A frame whose every pixel (and channel) holds a distinct value."""
    return np.arange(height * width * 3, dtype=np.float32).reshape(height, width, 3)


def context(frame, index=0, seed=0):
    height, width = frame.shape[:2]
    return Context(index, 100, (width, height), np.random.default_rng(seed))


def apply(spec, frame, index=0, seed=0):
    return np.asarray(build_chain(spec).apply(frame, context(frame, index, seed)))


def test_roll_moves_column_n_down_by_exactly_shift_n_with_wrap_around():
    frame = numbered()
    out = apply([{"roll": {"shift": "2 * n - 3"}}], frame)
    for n in range(frame.shape[1]):
        np.testing.assert_array_equal(out[:, n], np.roll(frame[:, n], 2 * n - 3, axis=0))


def test_roll_rows_moves_row_n_right():
    frame = numbered()
    out = apply([{"roll": {"shift": "n + t", "axis": "rows"}}], frame, index=2)
    for n in range(frame.shape[0]):
        np.testing.assert_array_equal(out[n], np.roll(frame[n], n + 2, axis=0))


def test_roll_by_a_constant_is_numpy_roll():
    frame = numbered()
    np.testing.assert_array_equal(apply([{"roll": {"shift": 4}}], frame), np.roll(frame, 4, 0))


def test_roll_groups_move_together():
    frame = numbered(width=7)
    out = apply([{"roll": {"shift": "n", "group": 3}}], frame)
    for column, group in enumerate([0, 0, 0, 1, 1, 1, 2]):
        np.testing.assert_array_equal(out[:, column], np.roll(frame[:, column], group, axis=0))


def test_roll_rounds_fractional_shifts_and_never_interpolates():
    frame = numbered()
    out = apply([{"roll": {"shift": 1.4}}], frame)
    np.testing.assert_array_equal(out, np.roll(frame, 1, axis=0))
    assert set(out.ravel()) == set(frame.ravel())


def test_roll_accepts_numpy_and_a_function_directly():
    frame = numbered()
    out = np.asarray(roll(frame, context(frame), shift=lambda n: -n))
    np.testing.assert_array_equal(out[:, 2], np.roll(frame[:, 2], -2, axis=0))


def test_roll_lines_directly():
    frame = numbered()
    out = np.asarray(roll_lines(frame, [0, 1, 2, 3, 4, 5], axis="rows"))
    np.testing.assert_array_equal(out[5], np.roll(frame[5], 5, axis=0))


def test_sine_shift_follows_the_formula_at_frame_t():
    frame = numbered(height=20, width=12)
    out = np.asarray(sine_shift(frame, context(frame, index=3), amplitude=5, period=8, speed=0.5))
    for n in range(12):
        shift = int(np.rint(5 * np.sin(2 * np.pi * n / 8 + 0.5 * 3)))
        np.testing.assert_array_equal(out[:, n], np.roll(frame[:, n], shift, axis=0))


def detected_shifts(frame, out, axis_length):
    """For each column, the roll that turns the input column into the output column."""
    shifts = []
    for n in range(frame.shape[1]):
        matches = [
            s for s in range(axis_length) if np.array_equal(np.roll(frame[:, n], s, 0), out[:, n])
        ]
        assert len(matches) == 1
        shift = matches[0]
        shifts.append(shift - axis_length if shift > axis_length // 2 else shift)
    return np.array(shifts)


def test_stochastic_shift_is_within_bounds_and_covers_them():
    frame = numbered(height=16, width=200)
    out = np.asarray(stochastic_shift(frame, context(frame, seed=7), low=-3, high=2))
    shifts = detected_shifts(frame, out, 16)
    assert shifts.min() == -3 and shifts.max() == 2
    assert set(shifts) == set(range(-3, 3))


def test_stochastic_shift_replays_with_the_same_seed():
    frame = numbered(height=16, width=50)
    first = apply([{"stochastic_shift": {"low": -4, "high": 4}}], frame, seed=11)
    again = apply([{"stochastic_shift": {"low": -4, "high": 4}}], frame, seed=11)
    other = apply([{"stochastic_shift": {"low": -4, "high": 4}}], frame, seed=12)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_stochastic_shift_draws_one_shift_per_group():
    frame = numbered(height=16, width=12)
    out = np.asarray(stochastic_shift(frame, context(frame, seed=3), low=-5, high=5, group=4))
    shifts = detected_shifts(frame, out, 16)
    assert len(set(shifts[:4])) == 1 and len(set(shifts[4:8])) == 1 and len(set(shifts[8:])) == 1


@pytest.mark.parametrize("params, message", [
    ({"low": 3, "high": 1}, r"transforms\[0\]\.stochastic_shift: low: must be <= high, got low=3, high=1$"),
    ({"low": 3}, r"stochastic_shift: low: must be <= high, got low=3, high=2$"),  # high's default
    ({"low": "t / 100", "high": 2}, r"low: must be <= high, got low=3, high=2 at frame 251$"),
])
def test_stochastic_shift_refuses_low_above_high_when_the_config_loads(params, message):
    with pytest.raises(ConfigError, match=message):
        build_chain([{"stochastic_shift": params}], frames=1000)


@pytest.mark.parametrize("period, message", [
    (0, r"transforms\[0\]\.sine_shift: period: must not be 0 .*\)$"),
    ("40 - t / 10", r"sine_shift: period: must not be 0 .* at frame 400$"),
])
def test_sine_shift_refuses_a_zero_period_when_the_config_loads(period, message):
    with pytest.raises(ConfigError, match=message):
        build_chain([{"sine_shift": {"period": period}}], frames=1000)


def test_a_scheduled_period_that_never_reaches_zero_loads():
    assert build_chain([{"sine_shift": {"period": "40 + t / 10"}}], frames=1000).names == ["sine_shift"]


def test_roll_truncate_is_the_notebooks_int_n_over_15():
    frame = np.random.default_rng(0).uniform(0, 255, (20, 64, 3)).astype(np.float32)
    out = apply([{"roll": {"shift": "n / 15", "rounding": "truncate"}}], frame)
    expected = frame.copy()
    for n in range(frame.shape[1]):  # the notebook's loop
        expected[:, n] = np.roll(expected[:, n], int(n / 15), axis=0)
    np.testing.assert_array_equal(out, expected)
    rounded = apply([{"roll": {"shift": "n / 15"}}], frame)
    assert not np.array_equal(rounded[:, 8], expected[:, 8])  # 8/15 rounds to 1, truncates to 0


def test_roll_truncates_negative_shifts_toward_zero():
    frame = numbered(6, 5)
    out = apply([{"roll": {"shift": "-n / 2", "rounding": "truncate"}}], frame)
    for n in range(frame.shape[1]):
        np.testing.assert_array_equal(out[:, n], np.roll(frame[:, n], int(-n / 2), axis=0))
