"""A dreamed frame copied to the host as the uint8 RGB pixels of its PNG, checked finite.

The frame loop copies each frame off its device once, on its fetch thread. On an accelerator one
compiled call first rounds the float frame to uint8 and tells whether every value is finite: a
quarter of the float frame's bytes cross the bus, and the host spends no CPU on the frame (numpy
takes ~5 ms for a 1080p frame). On a CPU, where the device is the host, numpy does it on the fetch
thread: measured cheaper there than XLA:CPU, whose threads spin while the PNG writer and ffmpeg
hold the cores.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from animator.media import images


class HostFrame(NamedTuple):
    """A frame on the host: its uint8 RGB pixels (H×W×3) and whether every float value of the
    frame was finite (if not, the pixels hold no meaning)."""

    rgb: np.ndarray
    finite: bool


def to_host(frame, on_device: bool | None = None) -> HostFrame:
    """Round and clip the 0..255 float frame `frame` (a backend tensor or numpy, H×W×3) to uint8
    and copy it to the host; `on_device` (default: on an accelerator) does it on the frame's
    device. The pixels equal `images.to_uint8`'s wherever the frame is finite (half to even)."""
    from animator.engine.backend import has_accelerator

    if not (has_accelerator() if on_device is None else on_device):
        pixels = np.asarray(frame)  # a CPU tensor's own buffer: no copy
        finite = bool(np.isfinite(pixels).all())
        return HostFrame(images.rgb_uint8(pixels, finite=finite), finite)
    from keras import ops

    rgb, finite = _program()(ops.convert_to_tensor(frame, "float32"))
    return HostFrame(images.rgb_uint8(np.asarray(rgb)), bool(np.asarray(finite)))


@functools.cache
def _program():
    """The compiled rounding for the active backend, traced once per frame size."""
    from animator.engine.backend import compiled

    return compiled(_round)


def _round(frame):
    from keras import ops

    rounded = ops.clip(ops.round(frame), 0.0, 255.0)  # a non-finite frame is refused: any value
    return ops.cast(rounded, "uint8"), ops.all(ops.isfinite(frame))
