"""Shared fixtures: test images (generated, or the public-domain photos scikit-image ships)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Every test traces its octaves itself (tests count traces); the trace cache's own tests turn
# it on in a folder of their own. Subprocesses inherit this.
os.environ["ANIMATOR_TF_CACHE"] = "off"


def skimage_photo(name: str) -> Path:
    """Path of a photo shipped in scikit-image's wheel (astronaut, chelsea, coffee)."""
    import skimage

    return Path(skimage.__file__).parent / "data" / f"{name}.png"


@pytest.fixture(scope="session")
def photo_path() -> Path:
    return skimage_photo("chelsea")


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """Chelsea the cat, 96x64, float32 RGB 0..255."""
    from PIL import Image

    with Image.open(skimage_photo("chelsea")) as image:
        return np.asarray(image.convert("RGB").resize((96, 64)), np.float32)
