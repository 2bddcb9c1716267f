"""Optical flow for video input: Farneback's estimate, the consistency mask, the warp, the mix."""

from __future__ import annotations

import numpy as np
import pytest

from animator.renderer import flow


def textured(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    from scipy import ndimage

    noise = np.random.default_rng(seed).uniform(0, 255, (height, width, 3))
    return ndimage.gaussian_filter(noise, (1.5, 1.5, 0)).astype(np.float32)


def grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    return rows, columns


def test_farneback_finds_a_whole_frame_shift():
    image = textured(48, 72)
    shifted = np.roll(image, 3, axis=1)  # everything 3 px to the right
    estimate = flow.farneback(image[:, 8:-8], shifted[:, 8:-8])
    assert np.median(estimate[..., 0]) == pytest.approx(3, abs=0.25)
    assert np.median(estimate[..., 1]) == pytest.approx(0, abs=0.25)


def test_flows_that_agree_are_reliable_and_disagreeing_ones_are_not():
    height, width = 8, 10
    rows, columns = grid(height, width)
    forward = np.zeros((height, width, 2), np.float32)
    forward[..., 0] = 2.0  # everything moves 2 px right
    backward = -forward
    backward[2:4, 5:7] = 0.0  # here the way back does not return home: an occlusion
    reliable = flow.consistent(forward, backward, columns + backward[..., 0], rows + backward[..., 1])
    expected = np.ones((height, width), bool)
    expected[2:4, 5:7] = False
    expected[:, :1] = False  # their source lies 2 px left of the frame: entering it
    np.testing.assert_array_equal(reliable, expected)


def test_no_flow_carries_every_pixel_from_where_it_was():
    step = flow.carry(textured(6, 5), textured(6, 5, seed=1), "none")
    rows, columns = grid(6, 5)
    np.testing.assert_array_equal(step.source, np.stack([rows, columns]))
    np.testing.assert_array_equal(step.reliable, np.ones((6, 5, 1)))


def test_the_warp_moves_pixels_to_where_the_source_says():
    from keras import ops

    frame = textured(6, 8)
    rows, columns = grid(6, 8)
    warped = ops.convert_to_numpy(flow.warp(frame, np.stack([rows, columns - 1])))
    np.testing.assert_allclose(warped[:, 1:], frame[:, :-1], atol=1e-4)
    np.testing.assert_allclose(warped[:, 0], frame[:, 0], atol=1e-4)  # the edge repeats


def test_mix_moves_each_pixel_by_its_weight():
    from keras import ops

    start, other = np.zeros((2, 2, 3), np.float32), np.full((2, 2, 3), 100, np.float32)
    weight = np.array([[[0.0], [0.25]], [[1.0], [0.5]]], np.float32)
    mixed = ops.convert_to_numpy(flow.mix(start, other, weight))
    np.testing.assert_allclose(mixed[..., 0], [[0, 25], [100, 50]])


def carry_as_before(previous: np.ndarray, following: np.ndarray) -> flow.Carry:
    """The carry as first written: each flow estimated from its own greys of both frames."""
    rows, columns = grid(*following.shape[:2])
    backward = flow.farneback(following, previous)
    forward = flow.farneback(previous, following)
    source_x, source_y = columns + backward[..., 0], rows + backward[..., 1]
    reliable = flow.consistent(forward, backward, source_x, source_y)
    return flow.Carry(np.stack([source_y, source_x]), reliable[..., None].astype(np.float32))


def test_the_carry_greys_each_frame_once_and_moves_pixels_as_before(monkeypatch):
    from keras import ops

    previous = textured(40, 56)
    following = np.roll(previous, (1, 2), axis=(0, 1)) + textured(40, 56, seed=1) * 0.1
    before = carry_as_before(previous, following)
    greys = []

    def counted(frame):
        greys.append(frame)
        return grey(frame)

    grey = flow._grey
    monkeypatch.setattr(flow, "_grey", counted)
    step = flow.carry(previous, following)
    assert len(greys) == 2
    assert greys[0] is previous and greys[1] is following
    np.testing.assert_array_equal(step.source, before.source)
    np.testing.assert_array_equal(step.reliable, before.reliable)
    assert not step.reliable.all() and step.reliable.any()  # the flow is not trivial
    dream = textured(40, 56, seed=2)
    np.testing.assert_array_equal(ops.convert_to_numpy(flow.warp(dream, step.source)),
                                  ops.convert_to_numpy(flow.warp(dream, before.source)))


def test_no_flow_carries_the_frame_as_it_is_without_a_warp(monkeypatch):
    from keras import ops

    frame = ops.convert_to_tensor(textured(6, 5))
    step = flow.carry(textured(6, 5, seed=1), textured(6, 5, seed=2), "none")
    identity_warp = ops.convert_to_numpy(flow.warp(frame, step.source))

    def no_warp(frame, source):
        raise AssertionError("a still carry needs no warp")

    monkeypatch.setattr(flow, "warp", no_warp)
    moved = flow.move(frame, step)
    assert moved is frame
    np.testing.assert_array_equal(ops.convert_to_numpy(moved), identity_warp)
    np.testing.assert_array_equal(ops.convert_to_numpy(moved), textured(6, 5))
