"""A sweep's results: a contact sheet (every variant in a labelled grid, one GIF or MP4) and an
`index.html` gallery (each variant's settings, status, output and the YAML that renders it alone).

Both are made from what is on disk (the variants' frames folders), so they can be rebuilt at any
time and show a stopped sweep's partial frames too.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from animator.media import images
from animator.sweep.model import Outcome, Sweep, Variant, value_text, variant_yaml

GAP = 2  # pixels between cells
BACKGROUND = (24, 24, 24)
TEXT = (230, 230, 230)


@dataclass(frozen=True)
class SheetLayout:
    """Cells in rows of `columns`, each a `tile` (width, height) frame area above a label."""

    columns: int
    rows: int
    tile: tuple[int, int]
    label_height: int

    def box(self, index: int) -> tuple[int, int, int, int]:
        """The frame area (left, top, width, height) of cell `index`, counted row by row."""
        row, column = divmod(index, self.columns)
        width, height = self.tile
        return (GAP + column * (width + GAP), GAP + row * (height + self.label_height + GAP),
                width, height)

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.tile
        return (GAP + self.columns * (width + GAP),
                GAP + self.rows * (height + self.label_height + GAP))


def sheet_layout(sweep: Sweep) -> SheetLayout | None:
    """The grid for `sweep`'s variants (about square), or None while no variant has a frame."""
    first = next((v for v in sweep.variants if v.frames_done()), None)
    if first is None:
        return None
    with Image.open(_frame_paths(first)[0]) as image:
        width, height = image.size
    scale = sweep.sheet.tile / max(width, height)
    tile = (max(1, round(width * scale)), max(1, round(height * scale)))
    count = len(sweep.variants)
    columns = math.ceil(math.sqrt(count))
    lines = max(len(v.label()) for v in sweep.variants) + 1  # + the id
    return SheetLayout(columns, math.ceil(count / columns), tile, lines * _line_height() + 4)


def write_contact_sheet(sweep: Sweep) -> Path | None:
    """Write the contact sheet (GIF or MP4 by its suffix) at the sweep's fps; as many frames as
    the longest variant, a shorter one holding its last frame. None while nothing is rendered."""
    from animator.media.video import open_writer

    layout = sheet_layout(sweep)
    if layout is None:
        return None
    canvas = _labelled_canvas(sweep, layout)
    frames = [_frame_paths(variant) for variant in sweep.variants]
    with open_writer(sweep.sheet_path, sweep.sheet.fps or sweep.fps, loop=0) as writer:
        for index in range(max(len(paths) for paths in frames)):
            writer.write(_sheet_frame(canvas, layout, frames, index))
    return sweep.sheet_path


def _frame_paths(variant: Variant) -> list[Path]:
    from animator.renderer.state import FrameStore

    store = FrameStore(variant.config.frames_dir)
    return [store.frame_path(i) for i in range(store.frame_count())]


def _sheet_frame(canvas: Image.Image, layout: SheetLayout, frames: list[list[Path]],
                 index: int) -> np.ndarray:
    sheet = canvas.copy()
    for cell, paths in enumerate(frames):
        if not paths:
            continue
        left, top, width, height = layout.box(cell)
        with Image.open(paths[min(index, len(paths) - 1)]) as frame:
            fitted = _fit(frame.convert("RGB"), (width, height))
        sheet.paste(fitted, (left + (width - fitted.width) // 2, top + (height - fitted.height) // 2))
    return np.asarray(sheet)


def _fit(frame: Image.Image, box: tuple[int, int]) -> Image.Image:
    """`frame` scaled to fit `box`, aspect kept; unchanged when it already has the box's size."""
    scale = min(box[0] / frame.width, box[1] / frame.height)
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    return frame if size == frame.size else frame.resize(size, Image.Resampling.LANCZOS)


def _labelled_canvas(sweep: Sweep, layout: SheetLayout) -> Image.Image:
    """The background with every cell's label (its settings, then its id, clipped to the cell)."""
    canvas = Image.new("RGB", layout.size, BACKGROUND)
    font, line = ImageFont.load_default(), _line_height()
    for cell, variant in enumerate(sweep.variants):
        left, top, width, height = layout.box(cell)
        label = Image.new("RGB", (width, layout.label_height), BACKGROUND)
        draw = ImageDraw.Draw(label)
        status = "" if variant.frames_done() else " (no frames)"
        for row, text in enumerate([*variant.label(), variant.id + status]):
            draw.text((1, 2 + row * line), text, fill=TEXT, font=font)
        canvas.paste(label, (left, top + height))
    return canvas


def _line_height() -> int:
    left, top, right, bottom = ImageFont.load_default().getbbox("Ag|")
    return bottom - top + 3


# --- index.html -----------------------------------------------------------------------------


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; background: #111; color: #ddd; }
a { color: #9cf; }
.variants { display: flex; flex-wrap: wrap; gap: 1.5em; }
section { background: #1c1c1c; padding: 1em; border-radius: 6px; max-width: 28em; }
.failed { color: #f88; } .stopped { color: #fc6; } .finished, .skipped { color: #8d8; }
img, video { max-width: 100%; image-rendering: pixelated; }
section img, section video { width: 100%; }
pre { background: #000; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
"""


def write_index(sweep: Sweep, outcomes: list[Outcome], sheet: Path | None) -> Path:
    """Write `index.html` beside the variants' folders; every value in it is HTML-escaped."""
    counts = {}
    for outcome in outcomes:
        status = "finished earlier" if outcome.status == "skipped" else outcome.status
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>sweep {_e(sweep.source.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>sweep {_e(sweep.source.name)}</h1>",
        f"<p>{len(sweep.variants)} variants: {_e(summary)}</p>",
    ]
    if sheet is not None:
        parts.append(f"<h2>contact sheet</h2><p>{_media(sheet, sweep.folder)}</p>")
    parts.append('<div class="variants">')
    parts += [_variant_html(v, o, sweep.folder) for v, o in zip(sweep.variants, outcomes)]
    parts.append("</div></body></html>\n")
    text = "\n".join(parts).encode()
    images.write_atomic(sweep.index_path, lambda stream: stream.write(text), retry="run the sweep again")
    return sweep.index_path


def _variant_html(variant: Variant, outcome: Outcome, folder: Path) -> str:
    config = variant.config
    settings = "".join(f"<li><code>{_e(key)}</code> = <code>{_e(value_text(value))}</code></li>"
                       for key, value in variant.settings.items())
    output = config.output_path
    if output.is_file():
        shown = _media(output, folder)
    elif done := variant.frames_done():
        shown = f'<a href="{_href(config.frames_dir, folder)}/">{done} frames</a>'
    else:
        shown = "<p>no frames yet</p>"
    command = f"animator render {_rel(variant.yaml_path, folder)}"
    return (f'<section id="{_e(variant.id)}"><h2>{_e(variant.id)}</h2>'
            f'<p class="{_e(outcome.status)}">{_e(_status(variant, outcome))}</p>'
            f"<ul>{settings}</ul>{shown}"
            f"<details><summary>YAML to render it alone (from this page's folder): "
            f"<code>{_e(command)}</code></summary>"
            f"<pre>{_e(variant_yaml(variant))}</pre></details></section>")


def _status(variant: Variant, outcome: Outcome) -> str:
    total = variant.config.frames
    if outcome.status == "failed":
        return f"failed: {outcome.worded()}"
    if outcome.status == "skipped":
        return f"finished earlier ({total} frames)"
    if outcome.status == "finished":
        return f"finished ({total} frames, {outcome.seconds:.0f} s)"
    return f"{outcome.status} at {variant.frames_done()} of {total} frames: run the sweep again"


def _media(path: Path, folder: Path) -> str:
    href = _href(path, folder)
    if path.suffix.lower() == ".mp4":
        return f'<video src="{href}" controls loop muted autoplay playsinline></video>'
    return f'<img src="{href}" alt="{_e(path.name)}">'


def _rel(path: Path, folder: Path) -> str:
    return os.path.relpath(path, folder)


def _href(path: Path, folder: Path) -> str:
    return _e(quote(Path(_rel(path, folder)).as_posix()))


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)
