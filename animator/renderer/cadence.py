"""Cadence: dream every Nth frame and make the frames between from the transforms alone.

With `dream.cadence` N (a schedule of the frame index, read at each dreamed frame), the frames
dreamed are 0, then each dreamed frame t plus N(t), and the last frame. A frame j between the
dreams of frames p and n is the dream of p carried forward by the transforms of frames p..j-1
(F_j, which the next dream starts from, as at cadence 1) cross-faded with the dream of n carried
back through the inverse transforms of frames n-1..j (B_j): (1 - w) F_j + w B_j, w = (j - p) /
(n - p) (Deforum's `diffusion_cadence`). Each frame then changes from the transformed previous
one by about 1/N of a dream's change, evenly, with no pulse at the dreamed frames. Where the
chain has a transform without an inverse (edges, blur, random shifts, a plugin that declares
none; `animator transforms` says which) or a video input moves the dream along its optical
flow, frame j is F_j alone and the change comes at the dreamed frame.

A resume point may fall on any frame: the state before frame j holds F_j, so a resumed render
carries F_j forward to the next dream and gives the frames an uninterrupted one would have.
Everything runs in `keras.ops` on the frame's device.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from animator.settings import schedule

__all__ = ["Dreams", "Span", "dreamed_frames", "in_between"]


@dataclass(frozen=True)
class Span:
    """The dreams around a frame: `previous` (None before frame 0) < frame <= `next`."""

    previous: int | None
    next: int


class Dreams:
    """Which frames of `config`'s render are dreamed (`dream.cadence`, clamped to the last frame)."""

    def __init__(self, config) -> None:
        self.config, self.frames = config, config.animation.frames
        constant = schedule.parse(config.animation.dream.cadence, "dream.cadence").constant
        self.constant = None if constant is None else round(constant)  # checked >= 1 at load
        self.walked = Span(None, 0)  # the newest span found, where the walk goes on from

    def cadence(self, t: int) -> int:
        """Frames from the dream of frame `t` to the next one."""
        return self.constant or self.config.dream_settings(t).cadence

    def after(self, t: int) -> int:
        """The frame dreamed after frame `t`'s dream (the last frame is always dreamed)."""
        return min(t + self.cadence(t), self.frames - 1)

    def span(self, index: int) -> Span:
        """The dreams around frame `index`; frames are asked for in order (a resume starts late)."""
        if self.constant is not None and index > 0:
            previous = (index - 1) // self.constant * self.constant
            return Span(previous, self.after(previous))
        span = self.walked if self.walked.next <= index else Span(None, 0)
        while span.next < index:
            span = Span(span.next, self.after(span.next))
        self.walked = span
        return span


def dreamed_frames(config) -> Iterator[int]:
    """The indices of the frames a render of `config` dreams, in order."""
    schedule, t = Dreams(config), 0
    while t < schedule.frames - 1:
        yield t
        t = schedule.after(t)
    yield t


def in_between(chain, carried: list, dreamed, span: Span, contexts: list) -> list:
    """The frames `contexts[i].index` (F_j in `carried[i]`, consecutive, up to `span.next` - 1):
    each F_j cross-faded with `dreamed` (the dream of frame `span.next`) carried back to it
    through `chain`'s inverses, or F_j alone when `chain` is None (no inverse)."""
    if chain is None:
        return list(carried)
    gap, back, shown = span.next - span.previous, dreamed, []
    for forward, ctx in zip(reversed(carried), reversed(contexts)):
        back = chain.invert(back, ctx)
        share = (ctx.index - span.previous) / gap
        shown.append(forward + share * (back - forward))
    return shown[::-1]
