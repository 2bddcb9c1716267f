"""What a transform knows about the frame it is given: its index, the size, the random generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    """Per-frame facts handed to every transform.

    index: frame index, 0-based (the `t` of schedules). total: frames in the render.
    size: (width, height) in pixels. rng: the generator the frame loop seeds and owns; a random
    transform draws its parameters from it first, then applies them deterministically.
    first_frame: the first frame (for colour matching), or None.
    """

    index: int
    total: int
    size: tuple[int, int]
    rng: np.random.Generator
    first_frame: object = None
