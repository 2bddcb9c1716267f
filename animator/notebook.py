"""A render's live preview in Jupyter: the newest frame with progress and ETA, updated in place,
then the GIF or MP4 itself in its place.

Used by `animator.render` inside a notebook kernel; IPython is imported only then. The preview
never waits for a frame: it shows the newest one whose pixels are already on the host.
"""

from __future__ import annotations

import base64
import html
import time

from animator.media.images import preview_png
from animator.progress import _clock

PREVIEW_SIDE = 384  # pixels: the preview's longest side, enough to judge a frame, cheap to send


class LivePreview:
    """One display area (an IPython display handle) that a render updates as it goes."""

    def __init__(self, config, every: float = 0.5) -> None:
        from IPython.display import HTML, display

        self.name = config.output_path.name
        self.every = every  # seconds between redraws: a notebook's front end is slower than a frame
        self.start = time.monotonic()
        self.drawn_at = 0.0
        self.waiting = []  # frames whose pixels are still being copied off the device
        self.handle = display(HTML(f"<i>dreaming {html.escape(self.name)} …</i>"), display_id=True)

    def update(self, made) -> None:
        """Note a frame just dreamed (`animate.Dreamed`); redraw with the newest frame ready."""
        self.waiting.append(made)
        if made.index + 1 == made.total:  # the last frame: the loop is over, waiting costs nothing
            made.pixels.result()
        ready = [m for m in self.waiting if m.pixels.done()]
        if not ready:
            return
        newest = ready[-1]
        self.waiting = [m for m in self.waiting if m.index > newest.index]
        now = time.monotonic()
        if now - self.drawn_at < self.every and newest.index + 1 < newest.total:
            return
        self.drawn_at = now
        self._draw(newest, now)

    def _draw(self, made, now: float) -> None:
        from IPython.display import HTML

        done, total = made.index + 1, made.total
        worked = done - made.started_at
        rate = (now - self.start) / worked if worked > 0 else 0
        timing = f" · {rate:.1f} s/frame · ETA {_clock(rate * (total - done))}" if rate else ""
        png = base64.b64encode(preview_png(made.pixels.result(), PREVIEW_SIDE)).decode()
        self.handle.update(HTML(
            f'<div><img src="data:image/png;base64,{png}" alt="frame {made.index}"/><br/>'
            f'<progress value="{done}" max="{total}"></progress> '
            f"{html.escape(self.name)}: frame {done}/{total}{timing}</div>"))

    def finish(self, result) -> None:
        """Replace the preview with the animation (GIF or MP4), or a line for a frames folder."""
        from IPython.display import HTML, Image, Video

        output = result.output
        if output is None:
            self.handle.update(HTML(f"{result.frames} frames in {html.escape(str(result.frames_dir))}"))
        elif output.suffix.lower() == ".mp4":
            self.handle.update(Video(str(output), embed=True, mimetype="video/mp4",
                                     html_attributes="controls autoplay loop muted"))
        elif output.suffix.lower() == ".gif":
            self.handle.update(Image(data=output.read_bytes(), format="gif"))
        else:  # another image format (an animated WebP): the browser plays it in an <img>
            data = base64.b64encode(output.read_bytes()).decode()
            kind = output.suffix.lstrip(".").lower()
            self.handle.update(HTML(f'<img src="data:image/{kind};base64,{data}"/>'))
