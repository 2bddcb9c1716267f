#!/usr/bin/env python
"""The README's guided-dream picture: one photo dreamed plain and guided by two guide images.

    python scripts/guided.py docs/guided.jpg

Chelsea the cat (configs/images) at 288x192, the default model (mobilenet_v2, bundled ImageNet
weights, offline) with its default layers, 3 octaves of 10 steps; guided by the coffee cup, then by
the astronaut.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

IMAGES = Path(__file__).resolve().parent.parent / "configs" / "images"
SIZE = (288, 192)


def main(out: str) -> None:
    from animator.engine.dream import Dreamer, DreamSettings

    with Image.open(IMAGES / "chelsea.jpg") as image:
        photo = np.asarray(image.convert("RGB").resize(SIZE), np.float32)
    settings = DreamSettings(octaves=3, steps=10, step_size=2.0, jitter=16)
    panels = []
    for guide in (None, "coffee.jpg", "astronaut.jpg"):
        objective = [{"guide": str(IMAGES / guide), "weight": 2.0}] if guide else []
        dreamer = Dreamer(objective=objective)  # the default model and layers
        panels.append(dreamer.dream(photo, settings, seed=1))
    sheet = np.concatenate(panels, axis=1).clip(0, 255).astype(np.uint8)
    Image.fromarray(sheet).save(out, quality=85)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/guided.jpg")
