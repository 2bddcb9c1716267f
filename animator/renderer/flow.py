"""Optical flow between a video's input frames, and the previous dream carried along it.

The flow is computed on the host from the decoded input frames (OpenCV's Farneback, on greys),
never from the dreamed ones; the warp and the blend then run in `keras.ops` on the device, where
the dreamed frame already is. Where the forward and backward flows disagree (occlusions, things
entering the frame) the carried dream is unreliable, so the new input frame shows there instead.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

METHODS = ("farneback", "none")

# OpenCV's suggested Farneback settings for natural video: a 3-level pyramid halving each time,
# 3 iterations per level, a degree-5 polynomial fit (sigma 1.1 goes with 5). The averaging window
# (15 px in OpenCV's 640x480 example) scales with the frame: about 1/32 of its short side.
FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "iterations": 3, "poly_n": 5, "poly_sigma": 1.1,
             "flags": 0}
WINDOW_SHARE, WINDOW_RANGE = 1 / 32, (7, 31)  # pixels, odd

# Forward-backward consistency (Sundaram et al. 2010, as in Ruder et al.'s video style transfer):
# a pixel is occluded when |f(x + b(x)) + b(x)|^2 > SLACK * (|f|^2 + |b|^2) + TOLERANCE (pixels^2).
SLACK, TOLERANCE = 0.01, 0.5
# A source up to this many pixels outside the frame is read from its edge (slow pans, flow noise);
# further out it is something entering the frame, unreliable.
EDGE_SLACK = 1.0


class Carry(NamedTuple):
    """How to carry a frame from one input frame to the next.

    `source`: 2×H×W float32, the (row, column) in the previous frame each pixel of the new one
    comes from; `reliable`: H×W×1 float32, 1 where that source is trustworthy, 0 where it is not;
    `still`: every source is the pixel itself (no motion), so there is nothing to warp.
    """

    source: np.ndarray
    reliable: np.ndarray
    still: bool = False


def farneback(previous: np.ndarray, following: np.ndarray) -> np.ndarray:
    """Dense flow (H×W×2, x then y, pixels) taking each pixel of `previous` to `following`.

    Both are H×W×3 RGB frames (uint8, or float in 0..255).
    """
    return _farneback_greys(_grey(previous), _grey(following))


def _farneback_greys(previous: np.ndarray, following: np.ndarray) -> np.ndarray:
    import cv2

    low, high = WINDOW_RANGE
    window = min(high, max(low, 2 * round(min(previous.shape[:2]) * WINDOW_SHARE / 2) + 1))
    return cv2.calcOpticalFlowFarneback(previous, following, None, winsize=window, **FARNEBACK)


def carry(previous: np.ndarray, following: np.ndarray, method: str = "farneback") -> Carry:
    """Where each pixel of `following` was in `previous`, and whether to trust it.

    `method` "none" carries every pixel from the same place (no motion), all reliable.
    """
    height, width = following.shape[:2]
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    if method == "none":
        return Carry(np.stack([rows, columns]), np.ones((height, width, 1), np.float32), still=True)
    # Each frame's grey once: both flows are estimated from the same two.
    previous_grey, following_grey = _grey(previous), _grey(following)
    backward = _farneback_greys(following_grey, previous_grey)
    forward = _farneback_greys(previous_grey, following_grey)
    source_x, source_y = columns + backward[..., 0], rows + backward[..., 1]
    reliable = consistent(forward, backward, source_x, source_y)
    return Carry(np.stack([source_y, source_x]), reliable[..., None].astype(np.float32))


def consistent(forward: np.ndarray, backward: np.ndarray, source_x: np.ndarray,
               source_y: np.ndarray) -> np.ndarray:
    """H×W bool: True where following the backward flow, then the forward flow, comes back home
    and the source lies inside the frame."""
    import cv2

    height, width = backward.shape[:2]
    forward_there = cv2.remap(forward, source_x, source_y, cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    mismatch = np.sum((forward_there + backward) ** 2, axis=-1)
    scale = np.sum(forward_there ** 2, axis=-1) + np.sum(backward ** 2, axis=-1)
    inside = ((source_x >= -EDGE_SLACK) & (source_x <= width - 1 + EDGE_SLACK)
              & (source_y >= -EDGE_SLACK) & (source_y <= height - 1 + EDGE_SLACK))
    return inside & (mismatch <= SLACK * scale + TOLERANCE)


def warp(frame, source):
    """`frame` (H×W×3, on the device) sampled bilinearly at `source` (2×H×W rows, columns)."""
    from keras import ops

    frame = ops.convert_to_tensor(frame, "float32")
    source = ops.convert_to_tensor(source, "float32")
    channels = [ops.image.map_coordinates(frame[..., c], source, order=1, fill_mode="nearest")
                for c in range(int(frame.shape[-1]))]
    return ops.stack(channels, axis=-1)


def move(frame, step: Carry):
    """`frame` (H×W×3, on the device) carried along `step`: warped to where its sources say, or
    as it is when `step` is still (an identity warp would only cost a pass over the frame)."""
    return frame if step.still else warp(frame, step.source)


def mix(frame, other, weight):
    """`frame` moved towards `other` by `weight` (a number, or H×W×1 per pixel, in 0..1)."""
    from keras import ops

    frame = ops.convert_to_tensor(frame, "float32")
    return frame + weight * (ops.convert_to_tensor(other, "float32") - frame)


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
