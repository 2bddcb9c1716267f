"""One frame's dream settings: how hard and at which scales, checked against `params.DREAM`.

The config builds them for each frame (`Config.dream_settings(t)`), the engine takes them
(`animator.engine.dream.Dreamer`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from animator.settings.errors import ConfigError
from animator.settings.params import DREAM

_DEFAULT = {name: param.default for name, param in DREAM.items()}


@dataclass(frozen=True)
class DreamSettings:
    """How hard and at which scales to dream one frame.

    Each setting's meaning, unit, range and default are declared once, in
    `animator.settings.params.DREAM`; tile_size None is its "auto" (from the memory budget). `frame` is
    the frame index at which the objective's weight schedules are read.
    """

    octaves: int = _DEFAULT["octaves"]
    octave_scale: float = _DEFAULT["octave_scale"]
    steps: int = _DEFAULT["steps"]
    step_size: float = _DEFAULT["step_size"]
    jitter: int = _DEFAULT["jitter"]
    tile_size: int | None = None  # the declared "auto"
    normalisation: str = _DEFAULT["normalisation"]
    max_loss: float | None = _DEFAULT["max_loss"]
    cadence: int = _DEFAULT["cadence"]  # frames from this dream to the next (the frame loop's)
    frame: int = 0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            declared, value = DREAM.get(field.name), getattr(self, field.name)
            problem = declared and declared.range and value is not None and declared.range.violation(value)
            if problem:
                raise ConfigError(f"dream.{field.name}: {problem}, got {value!r} at frame {self.frame}")
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError(f"dream.normalisation: must be one of {', '.join(NORMALISATIONS)}, "
                              f"got {self.normalisation!r}")


NORMALISATIONS = DREAM["normalisation"].choices
